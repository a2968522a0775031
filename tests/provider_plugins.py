"""Start a provider plugin the way the Pulumi engine does and talk to it over real gRPC.

The engine runs ``pulumi-resource-<name> <engine address>``, reads the port from the first stdout
line and dials it; values travel as ``google.protobuf.Struct`` (numbers as doubles).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_BIN = ROOT / "lab" / "providers" / "bin"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return dict(json_format.MessageToDict(message))


def secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def reveal(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] if is_secret(v) else v for k, v in values.items()}


def urn(pulumi_type: str, name: str) -> str:
    return f"urn:pulumi:lab::flywheel::{pulumi_type}::{name}"


@dataclass
class Plugin:
    process: subprocess.Popen[str]
    stub: provider_pb2_grpc.ResourceProviderStub
    name: str

    def configure(self, args: dict[str, Any]) -> provider_pb2.ConfigureResponse:
        request = provider_pb2.ConfigureRequest(args=struct(args), acceptSecrets=True, acceptResources=True)
        return self.stub.Configure(request)

    def check(self, pulumi_type: str, news: dict[str, Any], olds: dict[str, Any] | None = None) -> Any:
        request = provider_pb2.CheckRequest(
            urn=urn(pulumi_type, "r"), type=pulumi_type, olds=struct(olds or {}), news=struct(news)
        )
        return self.stub.Check(request)

    def create(self, pulumi_type: str, inputs: dict[str, Any], preview: bool = False) -> Any:
        request = provider_pb2.CreateRequest(
            urn=urn(pulumi_type, "r"), type=pulumi_type, properties=struct(inputs), preview=preview
        )
        return self.stub.Create(request)

    def diff(
        self, pulumi_type: str, resource_id: str, olds: dict[str, Any], old_inputs: dict[str, Any], news: dict[str, Any]
    ) -> Any:
        request = provider_pb2.DiffRequest(
            id=resource_id,
            urn=urn(pulumi_type, "r"),
            type=pulumi_type,
            olds=struct(olds),
            old_inputs=struct(old_inputs),
            news=struct(news),
        )
        return self.stub.Diff(request)

    def read(self, pulumi_type: str, resource_id: str, properties: dict[str, Any], inputs: dict[str, Any]) -> Any:
        request = provider_pb2.ReadRequest(
            id=resource_id,
            urn=urn(pulumi_type, "r"),
            type=pulumi_type,
            properties=struct(properties),
            inputs=struct(inputs),
        )
        return self.stub.Read(request)

    def update(self, pulumi_type: str, resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        request = provider_pb2.UpdateRequest(
            id=resource_id, urn=urn(pulumi_type, "r"), type=pulumi_type, olds=struct(olds), news=struct(news)
        )
        return self.stub.Update(request)

    def delete(self, pulumi_type: str, resource_id: str, properties: dict[str, Any]) -> Any:
        request = provider_pb2.DeleteRequest(
            id=resource_id, urn=urn(pulumi_type, "r"), type=pulumi_type, properties=struct(properties)
        )
        return self.stub.Delete(request)

    def plugin_info(self) -> Any:
        return self.stub.GetPluginInfo(empty_pb2.Empty())


@contextmanager
def running(name: str, env: dict[str, str] | None = None) -> Iterator[Plugin]:
    """``pulumi-resource-<name>`` started as the engine starts it (the engine address is a dummy)."""
    launcher = PLUGIN_BIN / f"pulumi-resource-{name}"
    process = subprocess.Popen(
        [str(launcher), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield Plugin(process, provider_pb2_grpc.ResourceProviderStub(channel), name)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
