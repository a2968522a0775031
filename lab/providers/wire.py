"""Property values as the Pulumi engine sends them over gRPC: Structs of doubles, secret wrappers, unknowns.

The sentinels are the SDK's own (``pulumi/runtime/rpc.py``: ``UNKNOWN``, ``_special_sig_key``,
``_special_secret_sig``), so a stand-in provider reads and writes exactly what a real provider does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

# pulumi/runtime/rpc.py: UNKNOWN, _special_sig_key, _special_secret_sig
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG_KEY = "4dabf18193072939515e22adb298388d"
CONFIDENTIAL_SIG = "1b47061264138c4ac30d75fd1eb44270"


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as Python values: every number is a float, as the engine sent it."""
    return dict(json_format.MessageToDict(struct))


def to_struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in properties.items() if v is not None})
    return struct


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == CONFIDENTIAL_SIG


def secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: CONFIDENTIAL_SIG, "value": value}


def reveal(value: Any) -> Any:
    """The value with every secret wrapper removed (nested ones too)."""
    if is_secret(value):
        return reveal(value.get("value"))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def holds_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_secret(v) for v in value)
    return False


def unwrap(properties: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """Plain values, and the top-level keys that arrived as (or containing) secrets."""
    return {k: reveal(v) for k, v in properties.items()}, frozenset(k for k, v in properties.items() if holds_secret(v))


def wrap(properties: Mapping[str, Any], secret_keys: Iterable[str]) -> dict[str, Any]:
    keys = set(secret_keys)
    return {k: secret(v) if k in keys and v is not None and not is_secret(v) else v for k, v in properties.items()}


def is_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False
