"""The README's config reference table, generated from the config models so it cannot drift.

python -m tools.config_reference           print the table
python -m tools.config_reference --write   replace it in README.md (between the config markers)
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components import config_types
from components.config import NAMESPACE, PlatformConfig

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config:start -->", "<!-- config:end -->"
CONSTRAINED_NAMES = {
    config_types.check_dns_label: "DNS label",
    config_types.check_hostname: "host name",
    config_types.check_quantity: "quantity",
    config_types.check_humantime: "duration",
    config_types.check_cron: "cron",
    config_types.check_bucket_name: "bucket name",
    config_types.check_http_url: "URL",
    config_types.check_endpoint_url: "URL",
    config_types.check_attic_cache_name: "cache name",
    config_types.check_image: "image",
    config_types.check_gitlab_variable_key: "variable key",
}


def rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every key of the flywheel namespace, in model order."""
    found: list[tuple[str, str, str, str]] = []
    for name, field in PlatformConfig.model_fields.items():
        _walk(f"{NAMESPACE}:{field.alias or name}", field, found)
    return found


def _walk(key: str, field: FieldInfo, found: list[tuple[str, str, str, str]]) -> None:
    annotation = field.annotation
    found.append((key, _type_name(annotation, field), _default(field), field.description or ""))
    model, container = _nested_model(annotation)
    if model is None:
        return
    child_prefix = {"list": f"{key}[]", "dict": f"{key}.<KEY>"}.get(container, key)
    for name, child in model.model_fields.items():
        _walk(f"{child_prefix}.{child.alias or name}", child, found)


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "object"
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "list"
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return args[1], "dict"
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _nested_model(args[0])
    return None, ""


def _type_name(annotation: Any, field: FieldInfo | None = None) -> str:
    for check in field.metadata if field else []:
        name = CONSTRAINED_NAMES.get(getattr(check, "func", None))  # type: ignore[arg-type]
        if name:
            return name
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        validators = [getattr(m, "func", None) for m in args[1:]]
        names = [CONSTRAINED_NAMES[v] for v in validators if v in CONSTRAINED_NAMES]
        return names[0] if names else _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is list:
        inner = args[0]
        return "list of objects" if isinstance(inner, type) and issubclass(inner, BaseModel) else "list of strings"
    if origin is dict:
        inner = args[1]
        return "map of objects" if isinstance(inner, type) and issubclass(inner, BaseModel) else "map of strings"
    if annotation is SecretStr:
        return "secret string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {str: "string", int: "integer", bool: "boolean"}.get(annotation, str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "per key (rows below)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "one pool `default` (tags `flywheel`)"
    if value in ({}, []):
        return "empty"
    return f"`{json.dumps(value)}`"


def table() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, type_name, default, meaning in rows():
        lines.append(f"| `{key}` | {type_name} | {default} | {meaning.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


def replace_in(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md lacks the markers {START} and {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(table())
        return 0
    try:
        README.write_text(replace_in(README.read_text()))
    except (OSError, ValueError) as err:
        print(f"config_reference: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
