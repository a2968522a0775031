"""What flywheel's dynamic providers need from the SDK's host they run in (`python -m pulumi.dynamic`).

- Unknown inputs: in Check and Diff the host hands a provider `pulumi.output.Unknown` objects for values
  that are not known yet (sdk/python/lib/pulumi/runtime/rpc.py:1140-1141, dynamic/__main__.py:115-116 and
  183-184, pulumi 3.272.0), anywhere in the inputs.
- Warnings: the engine starts a provider plugin with the engine's gRPC address as its one argument
  (pkg/v3 resource/plugin/provider_plugin.go:303, v3.274.1); `pulumi.log` in the host has no engine
  and prints to stderr, which the CLI shows as info (pkg/v3 resource/plugin/plugin.go:354-357). Seen with the real
  CLI 3.274.1: `warn` here is counted among the update's warnings, `pulumi.log.warn` as a message.
- One-line errors: the host reports a failure as `traceback.format_exc()` (dynamic/__main__.py:86).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pulumi.output import Unknown

Call = TypeVar("Call", bound=Callable[..., Any])
HOST_MODULE = "pulumi.dynamic.__main__"
_engine_lock = threading.Lock()
_engine: list[Any] = []  # the Engine stub, once connected
_limit_lock = threading.Lock()
_limit_before: list[int | None] = []  # sys.tracebacklimit before a one-line error lowered it


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def engine_address() -> str | None:
    """The engine's address when this process is the dynamic-provider host the engine started."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if getattr(spec, "name", None) != HOST_MODULE or len(sys.argv) < 2:
        return None
    return sys.argv[1]


def _engine_stub(address: str) -> Any:
    import grpc
    from pulumi.runtime.proto import engine_pb2_grpc

    with _engine_lock:
        if not _engine:
            _engine.append(engine_pb2_grpc.EngineStub(grpc.insecure_channel(address)))
        return _engine[0]


def warn(message: str) -> None:
    """A warning the user sees as one: through the engine's Log, not the host's stderr."""
    _say("WARNING", "warning", message)


def info(message: str) -> None:
    _say("INFO", "info", message)


def _say(severity: str, prefix: str, message: str) -> None:
    import grpc
    from pulumi.runtime.proto import engine_pb2

    address = engine_address()
    if address is not None:
        request = engine_pb2.LogRequest(severity=getattr(engine_pb2, severity), message=message)
        try:
            _engine_stub(address).Log(request, timeout=10)
            return
        except grpc.RpcError:
            pass  # a message must never fail the operation: say it on stderr instead
    print(f"{prefix}: {message}", file=sys.stderr)


class ProviderError(Exception):
    """A user-facing failure of a provider call: the host shows only its one line."""


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Around a provider call: a ProviderError leaving it is formatted by the host without a traceback.

    The host formats the error after the call has returned, so the traceback limit is lowered on the way out
    and put back when the next call starts, instead of staying lowered for the whole shared host.
    """
    _restore_traceback_limit()
    try:
        yield
    except ProviderError:
        with _limit_lock:
            if not _limit_before:
                _limit_before.append(getattr(sys, "tracebacklimit", None))
            sys.tracebacklimit = 0
        raise


def _restore_traceback_limit() -> None:
    with _limit_lock:
        if not _limit_before:
            return
        before = _limit_before.pop()
        if before is None:
            if hasattr(sys, "tracebacklimit"):
                del sys.tracebacklimit
        else:
            sys.tracebacklimit = before


def engine_call(method: Call) -> Call:
    """Decorates each method the host calls (check, diff, create, read, update, delete) with one_line_errors."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with one_line_errors():
            return method(*args, **kwargs)

    return call  # type: ignore[return-value]
