"""gRPC ``ResourceProvider`` server for the stand-in provider plugins, on the SDK's generated stubs.

Startup follows ``pulumi/dynamic/__main__.py`` main(): bind 127.0.0.1:0, print the port on stdout,
serve until killed. The engine address it is given as an argument is not needed (no engine logging).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from threading import Event
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from lab.providers import wire
from lab.providers.model import Package, Properties, ProviderError, ResourceType

_MISSING = object()
Request = TypeVar("Request")
Response = TypeVar("Response")


def request_type(request: Any) -> str:
    """The resource type: the request's ``type``, else the last type of its URN (``...::parent$type::name``)."""
    if getattr(request, "type", ""):
        return str(request.type)
    return str(request.urn.split("::")[2].split("$")[-1])


def _equal(old: Any, new: Any, as_set: bool) -> bool:
    if wire.is_unknown(new):
        return False
    if as_set and isinstance(old, list) and isinstance(new, list):
        return sorted(map(str, old)) == sorted(map(str, new))
    return bool(old == new)


def changed_inputs(kind: ResourceType, old_inputs: Properties, news: Properties, ignore: set[str]) -> list[str]:
    """Input keys whose value differs between the last deployment and the program (unknown counts as changed)."""
    changed = []
    for key in sorted(set(old_inputs) | set(news)):
        if key in ignore or key == "__defaults":
            continue
        old, new = old_inputs.get(key, _MISSING), news.get(key, _MISSING)
        if new is _MISSING and key in kind.optional_computed:
            continue
        if old is _MISSING or new is _MISSING or not _equal(old, new, key in kind.set_valued):
            changed.append(key)
    return changed


def _fail_on_error(method: Callable[[Any, Request, grpc.ServicerContext], Response]) -> Any:
    """A ProviderError becomes a one-line gRPC error the CLI prints; other exceptions propagate as bugs."""

    def wrapper(self: Any, request: Request, context: grpc.ServicerContext) -> Response:
        try:
            return method(self, request, context)
        except ProviderError as error:
            context.abort(grpc.StatusCode.UNKNOWN, str(error))
            raise AssertionError("grpc's abort() raises") from error

    return wrapper


class StandInProvider(provider_pb2_grpc.ResourceProviderServicer):
    """The engine calls these by their gRPC names (GetPluginInfo, Check, ...), hence the CapWords methods."""

    def __init__(self, package: Package) -> None:
        self.package = package

    # --- plugin and provider configuration ---

    def GetPluginInfo(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> plugin_pb2.PluginInfo:  # noqa: N802
        return plugin_pb2.PluginInfo(version=self.package.version)

    def GetSchema(  # noqa: N802
        self, request: provider_pb2.GetSchemaRequest, context: grpc.ServicerContext
    ) -> provider_pb2.GetSchemaResponse:
        # minimal package schema: the engine needs it only for codegen and conversions, not for up/preview
        schema = f'{{"name": "{self.package.name}", "version": "{self.package.version}"}}'
        return provider_pb2.GetSchemaResponse(schema=schema)

    @_fail_on_error
    def CheckConfig(self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        news = wire.from_struct(request.news)
        plain, _ = wire.unwrap(news)
        failures = [] if wire.is_unknown(plain) else self.package.check_config(plain)
        return provider_pb2.CheckResponse(inputs=wire.to_struct(news), failures=_failures(failures))

    @_fail_on_error
    def DiffConfig(self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        olds, _ = wire.unwrap(wire.from_struct(request.old_inputs) or wire.from_struct(request.olds))
        news, _ = wire.unwrap(wire.from_struct(request.news))
        changed = [k for k in sorted(set(olds) | set(news)) if k != "version" and olds.get(k) != news.get(k)]
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if changed else provider_pb2.DiffResponse.DIFF_NONE,
            diffs=changed,
        )

    @_fail_on_error
    def Configure(self, request: provider_pb2.ConfigureRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        args, _ = wire.unwrap(wire.from_struct(request.args))
        # older engines send only the flat map "<pkg>:config:<key>" -> JSON text
        for name, value in request.variables.items():
            args.setdefault(name.rsplit(":", 1)[-1], value)
        self.package.configure(args)
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True, acceptResources=False)

    # --- resources ---

    @_fail_on_error
    def Check(self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        kind = self.package.type(request_type(request))
        news, secret_keys = wire.unwrap(wire.from_struct(request.news))
        inputs = kind.normalize({**kind.defaults, **news})
        known = {k: v for k, v in inputs.items() if not wire.is_unknown(v)}
        failures = kind.check(known)
        checked = wire.wrap(inputs, secret_keys)
        return provider_pb2.CheckResponse(inputs=wire.to_struct(checked), failures=_failures(failures))

    @_fail_on_error
    def Diff(self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        kind = self.package.type(request_type(request))
        old_inputs, _ = wire.unwrap(wire.from_struct(request.old_inputs))
        if not old_inputs:
            old_inputs, _ = wire.unwrap(wire.from_struct(request.olds))
        news, _ = wire.unwrap(wire.from_struct(request.news))
        changed = changed_inputs(kind, old_inputs, news, set(request.ignoreChanges))
        replaces = [k for k in changed if k in kind.replace_on_changes]
        detailed = {key: _property_diff(key, old_inputs, news, key in replaces) for key in changed}
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if changed else provider_pb2.DiffResponse.DIFF_NONE,
            replaces=replaces,
            diffs=changed,
            detailedDiff=detailed,
            hasDetailedDiff=True,
            deleteBeforeReplace=False,
        )

    @_fail_on_error
    def Create(self, request: provider_pb2.CreateRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        kind = self.package.type(request_type(request))
        inputs, secret_keys = wire.unwrap(wire.from_struct(request.properties))
        if request.preview:
            outputs = {**dict.fromkeys(kind.computed_outputs, wire.UNKNOWN), **inputs}
            return provider_pb2.CreateResponse(id="", properties=self._outputs(kind, outputs, secret_keys))
        resource_id, outputs = kind.create(inputs)
        return provider_pb2.CreateResponse(id=resource_id, properties=self._outputs(kind, outputs, secret_keys))

    @_fail_on_error
    def Read(self, request: provider_pb2.ReadRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        kind = self.package.type(request_type(request))
        state, secret_keys = wire.unwrap(wire.from_struct(request.properties))
        inputs, input_secrets = wire.unwrap(wire.from_struct(request.inputs))
        outputs = kind.read(request.id, state)
        if outputs is None:
            return provider_pb2.ReadResponse(id="")
        return provider_pb2.ReadResponse(
            id=request.id,
            properties=self._outputs(kind, outputs, secret_keys | input_secrets),
            inputs=wire.to_struct(wire.wrap(inputs, input_secrets)),
        )

    @_fail_on_error
    def Update(self, request: provider_pb2.UpdateRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        kind = self.package.type(request_type(request))
        state, _ = wire.unwrap(wire.from_struct(request.olds))
        news, secret_keys = wire.unwrap(wire.from_struct(request.news))
        outputs = {**state, **news} if request.preview else kind.update(request.id, state, news)
        return provider_pb2.UpdateResponse(properties=self._outputs(kind, outputs, secret_keys))

    @_fail_on_error
    def Delete(self, request: provider_pb2.DeleteRequest, context: grpc.ServicerContext) -> Any:  # noqa: N802
        kind = self.package.type(request_type(request))
        state, _ = wire.unwrap(wire.from_struct(request.properties))
        kind.delete(request.id, state)
        return empty_pb2.Empty()

    def Cancel(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:  # noqa: N802
        return empty_pb2.Empty()

    @staticmethod
    def _outputs(kind: ResourceType, outputs: Properties, secret_inputs: frozenset[str]) -> Any:
        return wire.to_struct(wire.wrap(outputs, kind.secret_outputs | secret_inputs))


def _property_diff(key: str, olds: Properties, news: Properties, replace: bool) -> provider_pb2.PropertyDiff:
    kinds = provider_pb2.PropertyDiff
    if key not in olds:
        kind = kinds.ADD_REPLACE if replace else kinds.ADD
    elif key not in news:
        kind = kinds.DELETE_REPLACE if replace else kinds.DELETE
    else:
        kind = kinds.UPDATE_REPLACE if replace else kinds.UPDATE
    return provider_pb2.PropertyDiff(kind=kind, inputDiff=True)


def _failures(failures: list[tuple[str, str]]) -> list[provider_pb2.CheckFailure]:
    return [provider_pb2.CheckFailure(property=prop, reason=reason) for prop, reason in failures]


def serve(package: Package) -> None:
    """Serve ``package`` on a free port of 127.0.0.1 and print the port, as the engine expects."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(StandInProvider(package), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    # the engine reads only the first line; keep stdout quiet afterwards
    sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115
    try:
        Event().wait()
    except KeyboardInterrupt:
        server.stop(0)
