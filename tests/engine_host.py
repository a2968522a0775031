"""The SDK's own dynamic-provider host (`python -m pulumi.dynamic`), driven over gRPC as the engine drives it.

The engine side is modelled on what the Pulumi CLI sends (pkg/v3 and sdk/v3 at v3.274.1):
- numbers are doubles (`structpb.Value_NumberValue`, sdk/go/common/resource/plugin/rpc.go:126-131), so the
  host hands the provider floats (`2592000.0`, never `2592000`);
- an unknown is the string sentinel `UnknownStringValue` (sdk/go/common/resource/sig/sig.go:54, marshalled
  by rpc.go:286), which the host turns into a `pulumi.output.Unknown` object in Check and Diff
  (sdk/python/lib/pulumi/runtime/rpc.py:1140-1141 with `keep_unknowns=True`, dynamic/__main__.py:115-116,
  183-184) and into a missing key elsewhere (the value deserializes to None and is dropped, rpc.py:891-893);
- secrets are sent as their plain value: the host's Configure answers `acceptSecrets: False`
  (dynamic/__main__.py:214), and the engine then marshals a secret as its element (rpc.go:222-227,
  pkg/v3 resource/plugin/provider_plugin.go:1202 `KeepSecrets: protocol.acceptSecrets`);
- the engine starts every provider plugin with its own gRPC address as the one argument
  (provider_plugin.go:303); `pulumi.log` in the host does not use it, and what the host prints on stderr
  the CLI shows as info (pkg/v3 resource/plugin/plugin.go:354-357).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic.dynamic import PROVIDER_KEY, ResourceProvider, serialize_provider
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, provider_pb2, provider_pb2_grpc

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # sig.UnknownStringValue
ROOT = Path(__file__).resolve().parent.parent
CALL_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Secret:
    """A secret input as the program sent it; the engine strips it before the dynamic host sees it."""

    value: Any


def engine_value(value: Any) -> Any:
    """``value`` as the engine marshals it for a provider that does not accept secrets."""
    if isinstance(value, Secret):
        return engine_value(value.value)
    if isinstance(value, Mapping):
        return {k: engine_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [engine_value(v) for v in value]
    return value


def engine_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(engine_value(props))  # numbers become doubles here, as on the wire
    return struct


def wire(struct: struct_pb2.Struct) -> dict[str, Any]:
    """What the host sent back, as JSON data (numbers stay doubles)."""
    data: dict[str, Any] = json_format.MessageToDict(struct)
    return data


class EngineLog(engine_pb2_grpc.EngineServicer):
    """The engine's Log endpoint: records what a provider says through the engine, with its severity."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def Log(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC method name)
        with self._lock:
            self.records.append((request.severity, request.message))
        from google.protobuf import empty_pb2

        return empty_pb2.Empty()

    def warnings(self) -> list[str]:
        return [message for severity, message in self.records if severity == engine_pb2.WARNING]


@dataclass
class DynamicHost:
    """One running `python -m pulumi.dynamic` process and a stub to it."""

    stub: Any
    engine: EngineLog
    process: subprocess.Popen[bytes]
    stderr_path: Path
    # id(provider) -> (provider, its serialization). The provider is kept so that its id is never reused by
    # a later object while the entry lives (a collected provider's id went to the next test's provider).
    serialized: dict[int, tuple[ResourceProvider, str]] = field(default_factory=dict)

    def _props(self, provider: ResourceProvider, props: Mapping[str, Any]) -> struct_pb2.Struct:
        key = id(provider)
        if key not in self.serialized:
            self.serialized[key] = (provider, serialize_provider(provider))
        return engine_struct({**props, PROVIDER_KEY: self.serialized[key][1]})

    def check(self, provider: ResourceProvider, news: Mapping[str, Any], olds: Mapping[str, Any] | None = None) -> Any:
        return self.stub.Check(
            provider_pb2.CheckRequest(
                urn=URN,
                olds=self._props(provider, olds) if olds else struct_pb2.Struct(),
                news=self._props(provider, news),
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    def diff(self, provider: ResourceProvider, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Any:
        return self.stub.Diff(
            provider_pb2.DiffRequest(
                id=id_, urn=URN, olds=self._props(provider, olds), news=self._props(provider, news)
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    def create(self, provider: ResourceProvider, props: Mapping[str, Any]) -> Any:
        return self.stub.Create(
            provider_pb2.CreateRequest(urn=URN, properties=self._props(provider, props)),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    def update(self, provider: ResourceProvider, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Any:
        return self.stub.Update(
            provider_pb2.UpdateRequest(
                id=id_, urn=URN, olds=self._props(provider, olds), news=self._props(provider, news)
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    def read(self, provider: ResourceProvider, id_: str, props: Mapping[str, Any]) -> Any:
        return self.stub.Read(
            provider_pb2.ReadRequest(id=id_, urn=URN, properties=self._props(provider, props)),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    def delete(self, provider: ResourceProvider, id_: str, props: Mapping[str, Any]) -> Any:
        return self.stub.Delete(
            provider_pb2.DeleteRequest(id=id_, urn=URN, properties=self._props(provider, props)),
            timeout=CALL_TIMEOUT_SECONDS,
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text()


URN = "urn:pulumi:dev::flywheel::flywheel:index:Test$pulumi-python:dynamic:Resource::under-test"


@contextmanager
def dynamic_host(tmp_path: Path, engine_address: str | None = None) -> Iterator[DynamicHost]:
    """Start the SDK's host in the project directory, as the engine does, with an engine address to talk to
    (``engine_address`` overrides the recording Engine, e.g. with one nothing listens on)."""
    engine = EngineLog()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    engine_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stderr_path = tmp_path / "dynamic-host.stderr"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", engine_address or f"127.0.0.1:{engine_port}"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
            env=env,
        )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            configured = stub.Configure(provider_pb2.ConfigureRequest(), timeout=CALL_TIMEOUT_SECONDS)
            assert not configured.acceptSecrets  # what makes the engine strip secrets (see above)
            yield DynamicHost(stub=stub, engine=engine, process=process, stderr_path=stderr_path)
    finally:
        process.kill()
        process.wait()
        server.stop(0)
