"""The cache bootstrap script, run with real bash and curl against a loopback stand-in of Attic's cache-config API.

The stand-in answers as atticd does (server/src/api/v1/cache_config.rs, error.rs): 200 with an
empty body on success, and ``{"code", "error", "message"}`` JSON on errors (400
CacheAlreadyExists, 401 Unauthorized, ...). It is a stand-in, not Attic.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from components.attic import CACHE_INIT_SCRIPT, configure_cache_request, create_cache_request
from components.config import AtticConfig
from tests.conftest import require_tool

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbml0In0.c2lnbmF0dXJl"
SECRET_KEY = "attic.example.com-main-1:" + "A" * 86 + "=="
PUBLIC_KEY = "attic.example.com-main-1:" + "B" * 43 + "="
CONFIG = AtticConfig.model_validate({"cacheName": "main", "gc": {"retention": "30 days"}})


@dataclass
class CacheConfigStandIn:
    """Attic's cache-config routes over loopback HTTP; records what it was asked."""

    token: str = TOKEN
    caches: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    fail_patch: tuple[int, str, str] | None = None
    served_public_key: str | None = None
    seen_authorization: list[str] = field(default_factory=list)

    def handle(self, method: str, path: str, body: bytes, authorization: str) -> tuple[int, dict[str, Any] | None]:
        payload = json.loads(body) if body else None
        self.requests.append((method, path, payload))
        self.seen_authorization.append(authorization)
        prefix = "/_api/v1/cache-config/"
        if not path.startswith(prefix):
            return 404, error(404, "NotFound", "The URL you requested was not found.")
        if authorization != f"Bearer {self.token}":
            return 401, error(401, "Unauthorized", "Unauthorized.")
        name = path[len(prefix) :]
        if method == "POST":
            if name in self.caches:
                return 400, error(400, "CacheAlreadyExists", "The cache already exists.")
            self.caches[name] = dict(payload or {})
            return 200, None
        if name not in self.caches:
            return 404, error(404, "NoSuchCache", "The requested cache does not exist.")
        if method == "PATCH":
            if self.fail_patch:
                code, kind, message = self.fail_patch
                return code, error(code, kind, message)
            self.caches[name].update(payload or {})
            return 200, None
        if method == "GET":
            keypair = self.caches[name].get("keypair", {}).get("Keypair", "")
            public = self.served_public_key or PUBLIC_KEY if keypair == SECRET_KEY else "other-1:xyz="
            return 200, {"public_key": public, "is_public": self.caches[name].get("is_public")}
        return 405, error(405, "RequestError", "method not allowed")


def error(code: int, kind: str, message: str) -> dict[str, Any]:
    return {"code": code, "error": kind, "message": message}


@pytest.fixture
def api() -> Iterator[tuple[CacheConfigStandIn, str]]:
    stand_in = CacheConfigStandIn()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = stand_in.handle(
                self.command, self.path, self.rfile.read(length), self.headers.get("Authorization", "")
            )
            body = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _serve  # noqa: N815 (http.server's naming)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield stand_in, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def run_script(
    tmp_path: Path,
    endpoint: str,
    *,
    token: str = TOKEN,
    expected_key: str = PUBLIC_KEY,
    bash_options: tuple[str, ...] = (),
    path: str | None = None,
) -> subprocess.CompletedProcess[str]:
    require_tool("bash")
    require_tool("curl")
    init = tmp_path / "init"
    init.mkdir(exist_ok=True)
    (init / "token").write_text(token)
    (init / "create-cache.json").write_text(json.dumps(create_cache_request(CONFIG, SECRET_KEY)))
    (init / "configure-cache.json").write_text(json.dumps(configure_cache_request(CONFIG, SECRET_KEY)))
    env = {
        "PATH": path or os.environ["PATH"],
        "ATTIC_ENDPOINT": endpoint,
        "ATTIC_CACHE": "main",
        "ATTIC_INIT_DIR": str(init),
        "EXPECTED_PUBLIC_KEY": expected_key,
        "ATTIC_RETRIES": "1",
        "ATTIC_RETRY_DELAY": "1",
        "TMPDIR": str(tmp_path),
        "HOME": str(tmp_path),
    }
    return subprocess.run(
        ["bash", *bash_options, str(CACHE_INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def methods(stand_in: CacheConfigStandIn) -> list[str]:
    return [method for method, _, _ in stand_in.requests]


def test_script_is_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, "--severity=style", str(CACHE_INIT_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_creates_the_cache_then_patches_retention_and_checks_the_key(
    api: tuple[CacheConfigStandIn, str], tmp_path: Path
) -> None:
    stand_in, endpoint = api
    result = run_script(tmp_path, endpoint)
    assert result.returncode == 0, result.stderr
    assert methods(stand_in) == ["POST", "PATCH", "GET"]
    created = stand_in.requests[0][2]
    assert created is not None
    assert created["upstream_cache_key_names"] == ["cache.nixos.org-1"]
    assert created["keypair"] == {"Keypair": SECRET_KEY}
    assert created["is_public"] is False
    patched = stand_in.requests[1][2]
    assert patched is not None and patched["retention_period"] == {"Period": 30 * 86400}
    assert stand_in.caches["main"]["retention_period"] == {"Period": 30 * 86400}
    assert all(path == "/_api/v1/cache-config/main" for _, path, _ in stand_in.requests)
    assert "created cache 'main'" in result.stdout
    assert set(stand_in.seen_authorization) == {f"Bearer {TOKEN}"}


def test_an_existing_cache_is_success_followed_by_the_patch(
    api: tuple[CacheConfigStandIn, str], tmp_path: Path
) -> None:
    stand_in, endpoint = api
    stand_in.caches["main"] = {"keypair": {"Keypair": "old-1:" + "C" * 86 + "=="}, "is_public": True}
    result = run_script(tmp_path, endpoint)
    assert result.returncode == 0, result.stderr
    assert methods(stand_in) == ["POST", "PATCH", "GET"]
    assert "already exists" in result.stdout
    # converged: retention, keypair and visibility now as configured
    assert stand_in.caches["main"]["retention_period"] == {"Period": 30 * 86400}
    assert stand_in.caches["main"]["keypair"] == {"Keypair": SECRET_KEY}
    assert stand_in.caches["main"]["is_public"] is False


def test_running_twice_is_idempotent(api: tuple[CacheConfigStandIn, str], tmp_path: Path) -> None:
    stand_in, endpoint = api
    assert run_script(tmp_path, endpoint).returncode == 0
    second = run_script(tmp_path, endpoint)
    assert second.returncode == 0, second.stderr
    assert methods(stand_in) == ["POST", "PATCH", "GET"] * 2


def test_unauthorized_fails_with_the_servers_message_and_patches_nothing(
    api: tuple[CacheConfigStandIn, str], tmp_path: Path
) -> None:
    stand_in, endpoint = api
    result = run_script(tmp_path, endpoint, token="eyJ.wrong.token")
    assert result.returncode != 0
    assert "HTTP 401: Unauthorized." in result.stderr
    assert methods(stand_in) == ["POST"]
    assert "eyJ.wrong.token" not in result.stdout + result.stderr


def test_any_other_error_fails_with_the_servers_message(api: tuple[CacheConfigStandIn, str], tmp_path: Path) -> None:
    stand_in, endpoint = api
    stand_in.fail_patch = (400, "RequestError", "General request error: Invalid retention period")
    result = run_script(tmp_path, endpoint)
    assert result.returncode != 0
    assert "configuring cache 'main' failed: HTTP 400: General request error: Invalid retention period" in result.stderr
    assert methods(stand_in) == ["POST", "PATCH"]


def test_a_cache_signing_with_another_key_fails(api: tuple[CacheConfigStandIn, str], tmp_path: Path) -> None:
    stand_in, endpoint = api
    stand_in.served_public_key = "somebody-else-1:" + "D" * 43 + "="
    result = run_script(tmp_path, endpoint)
    assert result.returncode != 0
    assert "not the published key" in result.stderr


def test_an_unreachable_server_fails_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_script(tmp_path, f"http://127.0.0.1:{port}/")
    assert result.returncode != 0
    assert "cannot reach" in result.stderr


def test_the_token_stays_out_of_output_and_argv(api: tuple[CacheConfigStandIn, str], tmp_path: Path) -> None:
    """A curl wrapper first on PATH records every argv the script gives curl (what /proc/<pid>/cmdline shows)."""
    stand_in, endpoint = api
    curl = require_tool("curl")
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    argv_log = tmp_path / "curl-argv"
    (wrappers / "curl").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >>"{argv_log}"\nexec "{curl}" "$@"\n')
    (wrappers / "curl").chmod(0o755)
    result = run_script(tmp_path, endpoint, path=f"{wrappers}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    argv = argv_log.read_text()
    assert argv.count("--config") == 3  # the wrapper saw all three requests
    assert TOKEN not in argv and "Authorization" not in argv
    assert TOKEN not in result.stdout + result.stderr
    assert set(stand_in.seen_authorization) == {f"Bearer {TOKEN}"}  # the header still reached the server
    # and the scratch directory holding the curl config file is gone afterwards
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp.")]


def test_the_token_stays_out_of_a_bash_x_trace(api: tuple[CacheConfigStandIn, str], tmp_path: Path) -> None:
    """Someone debugging the Job with `bash -x` must not print the token into the pod log."""
    _, endpoint = api
    result = run_script(tmp_path, endpoint, bash_options=("-x",))
    assert result.returncode == 0, result.stderr
    assert "+ curl" in result.stderr  # the trace is really on
    assert TOKEN not in result.stdout + result.stderr
