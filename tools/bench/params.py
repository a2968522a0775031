"""``--param BENCH.KEY=VALUE``: a benchmark's parameter dataclass with some fields replaced from text."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

P = TypeVar("P", bound="DataclassInstance")


def with_overrides(params: P, overrides: Mapping[str, str], bench: str) -> P:
    """``{"links": "8"}`` -> a copy of ``params`` with each value parsed to its field's declared type.

    The declared type, not the current value's: ``PipelineParams(validate_seconds=2)`` holds an int
    in a float field, and ``1.5`` must still be accepted for it.
    """
    types = typing.get_type_hints(type(params))
    changes: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in types:
            raise ValueError(f"unknown {bench} parameter {key!r} (known: {', '.join(sorted(types))})")
        try:
            changes[key] = types[key](text)
        except ValueError:
            raise ValueError(f"{bench}.{key} expects {types[key].__name__} (got {text!r})") from None
    return dataclasses.replace(params, **changes)
