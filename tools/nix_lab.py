"""A small laboratory for running real Nix against a loopback binary cache (tests and benchmarks).

What is real here and what is a stand-in:

- ``nix`` is the real Nix on this machine (Debian nix-bin, root, no daemon, ``sandbox = false``).
- ``LoopbackCache`` is a stand-in for Attic's HTTP side: a Python ``http.server`` over a directory of
  Nix binary caches (``<root>/<cache>/``, filled by ``nix copy --to``), answering the routes Nix uses
  (``/<cache>/nix-cache-info``, ``*.narinfo``, ``nar/*``) and accepting ``PUT`` uploads the way
  ``nix copy --to http://...`` sends them. It checks a bearer/basic token like Attic does, and can be
  switched into fault modes: ``refuse`` (nothing listens), ``hang`` (accepts TCP, never answers),
  ``unauthorized`` (401 for everything) and ``pull-only`` (a token without push permission: reads answer,
  ``get-missing-paths`` and uploads get atticd's 403 ``AccessError``).
  It also answers the two Attic API calls the attic client makes before pushing (attic's
  client/src/api/mod.rs): ``GET /_api/v1/cache-config/<cache>`` and ``POST /_api/v1/get-missing-paths``.
- ``build_standin_attic_client`` builds a STAND-IN attic client into the store: a shell script
  (``lab/attic/attic-client.sh``, see lab/attic/README.md) modelled on attic's client source:
  ``attic login``, ``attic watch-store`` and ``attic push`` on top of ``nix copy``. It is not Attic.
- ``write_chain`` generates a flake whose package is a chain of N derivations (each depends on the
  previous one), optionally failing at derivation k.

Nix state (``/nix/store``, ``/nix/var``) is shared by every test on the machine; isolation comes from
unique derivation names (a per-test seed) and a private ``XDG_CACHE_HOME`` (Nix's narinfo cache) per run.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
STANDIN_SCRIPT = ROOT / "lab" / "attic" / "attic-client.sh"
EXPERIMENTAL = "experimental-features = nix-command flakes"
OFFLINE = "substituters ="
"""This machine has no route to cache.nixos.org: without this every fresh narinfo cache costs ~4 s of retries."""
BUILDER_PATH = "/usr/bin:/bin"
"""PATH inside test derivations (``sandbox = false``: builders use the host's coreutils)."""

CACHE_CONFIG_ROUTE = "/_api/v1/cache-config/"
MISSING_PATHS_ROUTE = "/_api/v1/get-missing-paths"
CacheMode = Literal["normal", "refuse", "hang", "unauthorized", "pull-only"]
CACHE_MODES: tuple[CacheMode, ...] = ("normal", "refuse", "hang", "unauthorized", "pull-only")
# atticd's answer to a token that may pull but not push: get_missing_paths.rs and upload_path.rs call
# permission.require_push() (server/src/access/mod.rs require_permission_function!: PermissionDenied when the
# token can discover the cache), which server/src/error.rs answers with 403 and this JSON (ErrorResponse; the
# message is ErrorKind::AccessError's "Access error: {0}" over access::Error's doc line).
PUSH_DENIED = json.dumps(
    {
        "code": 403,
        "error": "AccessError",
        "message": "Access error: User does not have permission to complete this action.",
    }
).encode()


# --- running nix -----------------------------------------------------------------------------------


def nix_env(home: Path, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for a Nix invocation with its own narinfo cache and config dirs under ``home``.

    A private ``XDG_CACHE_HOME`` means no negative narinfo answer from another run is reused
    (Nix caches "not in this cache" for an hour by default).
    """
    env = dict(os.environ if base is None else base)
    for name in ("cache", "config", "data"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        NIX_CONFIG=f"{EXPERIMENTAL}\n{OFFLINE}",
    )
    env.update(extra)
    return env


def run_nix(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 120, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``nix <args>`` (or another Nix tool when ``args[0]`` starts with ``nix-``)."""
    command = list(args) if args[0].startswith("nix") else ["nix", *args]
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise NixError(command, result)
    return result


class NixError(Exception):
    def __init__(self, command: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        self.result = result


def build(installable: Sequence[str], env: Mapping[str, str], timeout: float = 120) -> list[str]:
    """``nix build --json --no-link`` (Nix 2.8 has no --print-out-paths); the ``out`` paths."""
    result = run_nix(["build", "--json", "--no-link", *installable], env, timeout=timeout)
    return [entry["outputs"]["out"] for entry in json.loads(result.stdout)]


def is_valid(path: str, env: Mapping[str, str]) -> bool:
    return run_nix(["nix-store", "--check-validity", path], env, check=False).returncode == 0


def delete_paths(paths: Sequence[str], env: Mapping[str, str], attempts: int = 40) -> None:
    """Remove paths from the local store (they must not be alive: no GC root, no live referrer).

    Retried for up to ~20 s: a stand-in watcher of a test running in parallel may hold a temporary
    root on a path while it uploads it (the store is shared; its uploads are bounded).
    """
    for attempt in range(attempts):
        present = [p for p in paths if is_valid(p, env)]
        if not present:
            return
        result = run_nix(["store", "delete", *present], env, check=False)
        if result.returncode == 0:
            return
        if attempt == attempts - 1:
            raise NixError(["nix", "store", "delete", *present], result)
        time.sleep(0.5)


@dataclass(frozen=True)
class SigningKey:
    name: str
    secret_file: Path
    public: str


def make_signing_key(directory: Path, name: str = "flywheel-lab-1") -> SigningKey:
    """A Nix binary-cache keypair (``nix-store --generate-binary-cache-key``)."""
    directory.mkdir(parents=True, exist_ok=True)
    secret, public = directory / f"{name}.sec", directory / f"{name}.pub"
    subprocess.run(["nix-store", "--generate-binary-cache-key", name, str(secret), str(public)], check=True)
    return SigningKey(name, secret, public.read_text().strip())


def copy_to_cache(paths: Sequence[str], cache_dir: Path, key: SigningKey, env: Mapping[str, str]) -> None:
    """Sign ``paths`` (recursively) and ``nix copy`` their closure into the binary cache dir ``cache_dir``."""
    run_nix(["store", "sign", "--recursive", "--key-file", str(key.secret_file), *paths], env)
    run_nix(["copy", "--to", f"file://{cache_dir}", *paths], env)


def narinfo_name(store_path: str) -> str:
    """``/nix/store/<hash>-name`` -> ``<hash>.narinfo`` (the object a binary cache holds for it)."""
    return Path(store_path).name.split("-", 1)[0] + ".narinfo"


# --- derivations -----------------------------------------------------------------------------------


def current_system() -> str:
    result = subprocess.run(
        ["nix", "eval", "--impure", "--raw", "--expr", "builtins.currentSystem"],
        env={**os.environ, "NIX_CONFIG": EXPERIMENTAL},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@dataclass(frozen=True)
class Chain:
    """A flake at ``directory`` whose ``packages.<system>.default`` is link ``length`` of a chain."""

    directory: Path
    seed: str
    length: int
    fail_at: int | None

    @property
    def installable(self) -> str:
        return f"path:{self.directory}#default"

    def link(self, index: int) -> str:
        """The flake attribute of derivation ``index`` (1-based)."""
        return f"path:{self.directory}#link{index}"


def write_chain(
    directory: Path, length: int, *, seed: str | None = None, fail_at: int | None = None, seconds: float = 0.0
) -> Chain:
    """Write a flake with a chain of ``length`` derivations; derivation ``fail_at`` (1-based) exits 1.

    Each derivation sleeps ``seconds``, then writes its output, which references the previous
    one (so link i's closure is links 1..i). ``seed`` makes the store paths unique to one test.
    """
    seed = seed or secrets.token_hex(4)
    directory.mkdir(parents=True, exist_ok=True)
    system = current_system()
    lines = [
        "{",
        '  description = "flywheel lab: a chain of derivations";',
        "  outputs = { self }: let",
        "    link = name: previous: fail: derivation {",
        f'      inherit name previous; system = "{system}"; builder = "/bin/sh"; PATH = "{BUILDER_PATH}";',
        f'      args = [ "-c" "sleep {seconds}; if [ -n \\"$fail\\" ]; then echo planned failure of $name >&2; '
        f'exit 1; fi; printf \\"%s\\\\n%s\\\\n\\" \\"$name\\" \\"$previous\\" > $out" ];',
        '      fail = if fail then "1" else "";',
        "    };",
    ]
    previous = '""'
    for index in range(1, length + 1):
        fails = "true" if index == fail_at else "false"
        lines.append(f'    link{index} = link "lab-{seed}-link{index}" {previous} {fails};')
        previous = f"link{index}"
    attributes = " ".join(f"link{i} = link{i};" for i in range(1, length + 1))
    lines += [
        "  in {",
        f'    packages."{system}" = {{ default = link{length}; {attributes} }};',
        "  };",
        "}",
    ]
    (directory / "flake.nix").write_text("\n".join(lines) + "\n")
    return Chain(directory, seed, length, fail_at)


def chain_out_paths(chain: Chain, env: Mapping[str, str], upto: int | None = None) -> list[str]:
    """The output paths of links 1..upto (evaluated, not built)."""
    paths = []
    for index in range(1, (upto or chain.length) + 1):
        result = run_nix(["eval", "--raw", f"{chain.link(index)}.outPath"], env)
        paths.append(result.stdout.strip())
    return paths


# --- the stand-in attic client ---------------------------------------------------------------------


def build_standin_attic_client(
    workdir: Path, env: Mapping[str, str], *, signing_key: SigningKey | None = None, seed: str | None = None
) -> str:
    """Build the STAND-IN attic client (``tools/attic_standin.sh`` as ``<out>/bin/attic``); its store path.

    ``workdir`` also becomes a flake whose ``attic-client`` package is the same derivation, so
    ``path:<workdir>#attic-client`` works as a client flake ref.

    ``signing_key`` is baked in: the stand-in signs what it pushes, doing the job Attic's server
    does with the cache's keypair. ``seed`` makes the store path unique (so tests may delete it).
    """
    seed = seed or secrets.token_hex(4)
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "attic-standin.sh"
    text = STANDIN_SCRIPT.read_text()
    nix_bin = Path(shutil.which("nix") or "/usr/bin/nix").parent
    text = text.replace("@nixBin@", str(nix_bin)).replace(
        "@signingKeyFile@", str(signing_key.secret_file) if signing_key else ""
    )
    script.write_text(text)
    expression = workdir / "attic-standin.nix"
    expression.write_text(
        "derivation {\n"
        f'  name = "attic-client-standin-{seed}";\n'
        f'  system = "{current_system()}";\n'
        '  builder = "/bin/sh";\n'
        f'  PATH = "{BUILDER_PATH}";\n'
        "  script = builtins.readFile ./attic-standin.sh;\n"
        '  args = [ "-c" "mkdir -p $out/bin && printf %s \\"$script\\" > $out/bin/attic '
        '&& chmod 555 $out/bin/attic" ];\n'
        "}\n"
    )
    (workdir / "flake.nix").write_text(
        "{\n"
        '  description = "flywheel lab: the stand-in attic client as a flake (for .#attic-client refs)";\n'
        f'  outputs = {{ self }}: {{ packages."{current_system()}".attic-client = import ./attic-standin.nix; }};\n'
        "}\n"
    )
    (path,) = build(["--impure", "-f", str(expression)], env)
    return path


# --- one greedy build job: bootstrap, build, teardown --------------------------------------------------

BOOTSTRAP_SCRIPT = ROOT / "components" / "templates" / "attic-bootstrap.sh"
TEARDOWN_SCRIPT = ROOT / "components" / "templates" / "attic-teardown.sh"
NIX_BUILD_SCRIPT = ROOT / "components" / "templates" / "nix-build.sh"


@dataclass(frozen=True)
class Step:
    exit_code: int
    seconds: float
    output: str
    started: float
    ended: float
    """time.monotonic() at start and end."""


@dataclass(frozen=True)
class JobRun:
    bootstrap: Step
    build: Step
    teardown: Step
    """The teardown at the end of the script (the template runs it after the build, in the same shell)."""
    after_script: Step
    """The teardown again, as after_script (a no-op once the script's teardown published)."""
    state: Path

    @property
    def overhead(self) -> float:
        """Seconds the greedy machinery added around the build (bootstrap + teardowns)."""
        return self.bootstrap.seconds + self.teardown.seconds + self.after_script.seconds

    @property
    def log(self) -> str:
        return "\n".join((self.bootstrap.output, self.build.output, self.teardown.output, self.after_script.output))

    def state_files_text(self) -> str:
        """Every readable file the job left in its state directory (logs, status)."""
        texts = []
        for path in sorted(self.state.rglob("*")):
            if path.is_file() and not path.is_symlink():
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)


def _step(command: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float) -> Step:
    started = time.monotonic()
    result = subprocess.run(
        command, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    ended = time.monotonic()
    return Step(result.returncode, ended - started, result.stdout, started, ended)


def run_greedy_job(
    installable: str, env: Mapping[str, str], state: Path, project: Path, timeout: float = 300
) -> JobRun:
    """Run a job the way ``greedy:nix-build`` does: before_script, script (build, teardown), after_script.

    The bootstrap, build and teardown are the real ``components/templates/*.sh`` run by bash, with the
    variables the template sets. ``env`` carries the job's variables (ATTIC_*, GREEDY_ATTIC_*), ``project``
    plays CI_PROJECT_DIR.
    """
    project.mkdir(parents=True, exist_ok=True)
    job_env = {**env, "GREEDY_ATTIC_STATE_DIR": str(state), "CI_PROJECT_DIR": str(project)}
    bootstrap = _step(["bash", str(BOOTSTRAP_SCRIPT)], job_env, project, timeout)
    build = _step(["bash", str(NIX_BUILD_SCRIPT)], {**job_env, "GREEDY_NIX_INSTALLABLE": installable}, project, timeout)
    teardown = _step(["bash", str(TEARDOWN_SCRIPT)], {**job_env, "GREEDY_ATTIC_PHASE": "script"}, project, timeout)
    after_script = _step(["bash", str(TEARDOWN_SCRIPT)], job_env, project, timeout)
    return JobRun(bootstrap, build, teardown, after_script, state)


# --- the loopback binary cache ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    at: float
    """time.monotonic() when the request arrived."""
    method: str
    path: str
    status: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _CacheServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def handle(self) -> None:
        if self.server.lab.mode == "hang":
            # Accept the connection, read nothing, answer nothing, until the cache stops.
            self.server.lab.stopping.wait()
            return
        super().handle()

    def _authorized(self) -> bool:
        lab = self.server.lab
        if lab.mode == "unauthorized":
            return False
        if lab.token is None:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer ") :] == lab.token
        if header.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(header[len("Basic ") :]).decode().partition(":")
            except ValueError:
                return False
            return password == lab.token
        return False

    def _file(self) -> Path | None:
        relative = self.path.split("?", 1)[0].lstrip("/")
        target = (self.server.lab.root / relative).resolve()
        if not relative or not target.is_relative_to(self.server.lab.root.resolve()):
            return None
        return target

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.server.lab.record(self.command, self.path, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="attic stand-in"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if not self._authorized():
            self._answer(401, b"unauthorized\n")
            return
        if self.path.startswith(CACHE_CONFIG_ROUTE):
            self._cache_config(self.path[len(CACHE_CONFIG_ROUTE) :])
            return
        target = self._file()
        if target is None or not target.is_file():
            self._answer(404, b"not found\n")
            return
        kind = "text/x-nix-narinfo" if target.suffix == ".narinfo" else "application/octet-stream"
        self._answer(200, target.read_bytes(), kind)

    def do_HEAD(self) -> None:
        self.do_GET()

    def _cache_config(self, cache: str) -> None:
        lab = self.server.lab
        if not (lab.root / cache / "nix-cache-info").is_file():
            self._answer(404, b'{"code":404,"error":"NoSuchCache","message":"The requested cache does not exist."}')
            return
        body = {"upstream_cache_key_names": list(lab.upstream_cache_key_names), "store_dir": "/nix/store"}
        self._answer(200, json.dumps(body).encode(), "application/json")

    def do_POST(self) -> None:
        body = self._read_body()
        if not self._authorized():
            self._answer(401, b"unauthorized\n")
            return
        if self.path != MISSING_PATHS_ROUTE:
            self._answer(404, b"not found\n")
            return
        if self.server.lab.mode == "pull-only":
            self._answer(403, PUSH_DENIED, "application/json")
            return
        request = json.loads(body)
        cache_dir = self.server.lab.root / request["cache"]
        missing = [h for h in request["store_path_hashes"] if not (cache_dir / f"{h}.narinfo").is_file()]
        self._answer(200, json.dumps({"missing_paths": missing}).encode(), "application/json")

    def do_PUT(self) -> None:
        body = self._read_body()
        if not self._authorized():
            self._answer(401, b"unauthorized\n")
            return
        if self.server.lab.mode == "pull-only":
            self._answer(403, PUSH_DENIED, "application/json")
            return
        target = self._file()
        if target is None:
            self._answer(400, b"bad path\n")
            return
        if len(body) != int(self.headers.get("Content-Length") or 0):
            # the uploader died mid-body (a killed watcher): store nothing, as Attic keeps no partial upload
            self._answer(400, b"incomplete body\n")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # one temporary file per request: two uploads of the same object at once must not mix their bytes
        partial = target.with_name(f"{target.name}.{secrets.token_hex(6)}.part")
        partial.write_bytes(body)
        partial.replace(target)
        self._answer(200)


class _CacheServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, lab: LoopbackCache) -> None:
        self.lab = lab
        super().__init__(("127.0.0.1", port), _Handler)


@dataclass
class LoopbackCache:
    """Loopback HTTP binary caches over ``root`` (one sub-directory per cache name), Attic-shaped URLs.

    ``url`` plays ``ATTIC_SERVER``; ``substituter(cache)`` is ``<url>/<cache>``. With ``token`` set,
    every request needs ``Authorization: Bearer <token>`` or HTTP Basic with the token as password
    (what a netrc ``password`` line sends). Use as a context manager; ``mode`` may change at any time.
    """

    root: Path
    token: str | None = None
    mode: CacheMode = "normal"
    upstream_cache_key_names: tuple[str, ...] = ("cache.nixos.org-1",)
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _server: _CacheServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def substituter(self, cache: str) -> str:
        return f"{self.url}/{cache}"

    def cache_dir(self, cache: str) -> Path:
        path = self.root / cache
        path.mkdir(parents=True, exist_ok=True)
        info = path / "nix-cache-info"
        if not info.exists():
            info.write_text("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n")
        return path

    def has(self, cache: str, store_path: str) -> bool:
        return (self.root / cache / narinfo_name(store_path)).is_file()

    def narinfo_put_time(self, cache: str, store_path: str) -> float | None:
        """When the narinfo of ``store_path`` was uploaded (monotonic), if it was."""
        wanted = f"/{cache}/{narinfo_name(store_path)}"
        with self._lock:
            times = [r.at for r in self.requests if r.method == "PUT" and r.path == wanted and r.status == 200]
        return min(times) if times else None

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append(Request(time.monotonic(), method, path, status))

    def set_mode(self, mode: CacheMode) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {mode!r} (expected one of {', '.join(CACHE_MODES)})")
        listening = self._server is not None
        self.mode = mode
        if mode == "refuse" and listening:
            self._stop_listening()
        elif mode != "refuse" and not listening:
            self._listen()

    def _listen(self) -> None:
        self.stopping.clear()
        self._server = _CacheServer(self.port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"cache:{self.port}", daemon=True)
        self._thread.start()

    def _stop_listening(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> LoopbackCache:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.mode != "refuse":
            self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_listening()


@contextlib.contextmanager
def loopback_cache(root: Path, token: str | None = None, mode: CacheMode = "normal") -> Iterator[LoopbackCache]:
    with LoopbackCache(root, token=token, mode=mode) as cache:
        yield cache
