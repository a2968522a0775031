"""Parse a ``Pulumi.<stack>.yaml`` as the Pulumi CLI (v3.274.1) does, so the offline render sees what the engine sees.

The CLI reads stack files with gopkg.in/yaml.v3 (sdk/go/common/encoding/marshal.go:115) and turns each
value into config with ``unmarshalObject`` (sdk/go/common/resource/config/object.go:467-526). Read there:

- yaml.v3 refuses a mapping key defined twice, in any mapping (yaml.v3@v3.0.1 decode.go:769-777:
  ``line N: mapping key "k" already defined at line M``); PyYAML keeps the last one silently.
- an unquoted timestamp decodes to ``time.Time`` and reaches the program as ``time.Time.String()``
  (object.go:490), e.g. ``2024-01-01`` -> ``"2024-01-01 00:00:00 +0000 UTC"``; PyYAML gives a ``date``.
- ``!!binary`` decodes to the bytes as a string (decode.go, ``scalar``: ``resolved = string(data)``).
- ``.inf`` and ``.nan`` decode to float64 but cannot be marshalled to JSON (object.go:404-406 calls
  ``json.Marshal``, which refuses them): the CLI fails on the stack file.
- non-string mapping keys become ``fmt.Sprintf("%v", k)`` (object.go:505-509): ``1`` -> ``"1"``, ``true`` -> ``"true"``.
- plain scalars resolve by yaml.v3's rules (resolve.go:47-60, 150-260), not PyYAML's YAML 1.1 ones: only
  ``true``/``false`` (three casings) are booleans (``yes``, ``on``, ``off`` stay strings), no base-60 numbers
  (``1:30`` is a string), ``1e3`` is a float, ``0o17``/``0x1f``/``0b101``/``017`` and ``1_000`` are integers.
- an integer beyond int64 is a float64 if it is a uint64 or reads as a decimal, else the text (``_int``).
"""

from __future__ import annotations

import codecs
import datetime
import decimal
import math
import re
from typing import Any

import yaml


class StackFileError(Exception):
    """The stack file is not one the Pulumi CLI would load; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _V3Resolver(yaml.resolver.BaseResolver):
    """Implicit tags of plain scalars as yaml.v3 resolves them (resolve.go:47-60 and ``resolve``)."""


_V3_IMPLICIT = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0[0-7_]*|[1-9][0-9_]*)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (
        "tag:yaml.org,2002:timestamp",
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
        r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        "0123456789",
    ),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
)
for _tag, _pattern, _first in _V3_IMPLICIT:
    _V3Resolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class _StackLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _V3Resolver,
):
    """A safe loader with yaml.v3's scalar rules that records duplicate keys instead of keeping the last one."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _V3Resolver.__init__(self)
        self.duplicates: list[str] = []


INT64 = range(-(2**63), 2**63)
UINT64 = range(2**64)
# yaml.v3's yamlStyleFloat (resolve.go): what it tries once a scalar is neither an int64 nor a uint64
_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _int(loader: _StackLoader, node: yaml.ScalarNode) -> int | float | str:
    """An int-looking scalar as yaml.v3 resolves it (resolve.go, ``resolve``, case 'D', 'S'), with '_' removed:

    strconv.ParseInt(plain, 0, 64) (prefixes 0b/0o/0x, a leading 0 is octal), else ParseUint(plain, 0, 64) (no
    sign), else ParseFloat if it reads as a decimal (``yamlStyleFloat``), else the text as a string. A uint64
    reaches the program as a float64: the CLI re-reads config objects as JSON and keeps a json.Number that is not
    an int64 as float64 (sdk/go/common/resource/config/object.go, ``unmarshalObject``). So 99999999999999999999
    and 18446744073709551615 become floats, 0x7fffffffffffffffff stays the string it is.
    """
    text = str(loader.construct_scalar(node))
    plain = text.replace("_", "")
    sign, digits = (plain[0], plain[1:]) if plain[:1] in "+-" else ("", plain)
    octal = len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()
    try:
        value = int(sign + digits, 8) if octal else int(sign + digits, 0)
    except ValueError:  # a leading-0 "octal" with an 8 or 9: only a decimal float reading is left
        value = None
    if value is not None and value in INT64:
        return value
    if value is not None and not sign and value in UINT64:
        return float(value)
    if _YAML_STYLE_FLOAT.match(plain):
        return float(plain)
    return text


def _float(loader: _StackLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


def _mapping(loader: _StackLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    seen: dict[tuple[str, str], int] = {}
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark)
        # yaml.v3 compares the nodes' kind and raw text (decode.go:773), so `1` and `"1"` are the same key
        identity, line = (type(key_node).__name__, str(key_node.value)), key_node.start_mark.line + 1
        if identity in seen:
            loader.duplicates.append(
                f"line {line}: mapping key {_go_quoted(key_node.value)} already defined at line {seen[identity]}"
            )
        seen.setdefault(identity, line)
        result[_key_text(loader.construct_object(key_node, deep=True))] = loader.construct_object(value_node, deep=True)
    return result


def _go_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# what add_constructor does (a copy of the inherited table), spelled out because the stubs type it for PyYAML's loaders
_StackLoader.yaml_constructors = {
    **yaml.constructor.SafeConstructor.yaml_constructors,
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG: _mapping,
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
}


def decode_stack_file(data: bytes) -> str:
    """The stack file's text as the CLI reads it, or a StackFileError naming the first byte that is not text.

    The CLI drops a UTF-8 byte order mark (sdk/go/common/workspace/loaders.go, ``readFileStripUTF8BOM``) and yaml.v3
    reads UTF-8, or UTF-16 after its BOM (readerc.go, ``yaml_parser_determine_encoding``); it refuses a byte that is
    not UTF-8 (readerc.go: ``yaml: invalid leading UTF-8 octet``, ``invalid trailing UTF-8 octet``), as this does.
    """
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8"
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].decode(encoding, errors="replace").count("\n") + 1
        raise StackFileError(
            [
                f"not {encoding.upper()} text at byte {err.start} (line {line}: {err.reason}, "
                f"byte 0x{data[err.start]:02x}; "
                "the Pulumi CLI refuses it too: yaml: invalid UTF-8 octet; expected the file saved as UTF-8)"
            ]
        ) from None


def load_stack_document(text: str) -> dict[str, Any]:
    """The stack file's document with values as the CLI gives them to the program (see the module docstring)."""
    duplicates: list[str] = []
    try:
        loader = _StackLoader(text)  # its reader refuses control characters (a NUL) already, as yaml.v3's does
        try:
            document = loader.get_single_data()
        finally:
            duplicates = loader.duplicates
            loader.dispose()
    except yaml.YAMLError as err:
        raise StackFileError([f"not valid YAML ({' '.join(str(err).split())})"]) from None
    if duplicates:
        raise StackFileError(duplicates)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError([f"the file must be a mapping with a 'config' key (got a {_yaml_kind(document)})"])
    problems: list[str] = []
    converted = _as_cli_value(document, (), problems)
    if problems:
        raise StackFileError(problems)
    return dict(converted)


def _as_cli_value(value: Any, path: tuple[str, ...], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {_key_text(k): _as_cli_value(v, (*path, _key_text(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_cli_value(v, (*path, f"[{i}]"), problems) for i, v in enumerate(value)]
    if isinstance(value, datetime.datetime | datetime.date):
        return go_time_string(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, set):  # `!!set`: a mapping whose values are null
        return {_key_text(k): None for k in sorted(value, key=str)}
    if isinstance(value, float) and not math.isfinite(value):
        where = ".".join(path).replace(".[", "[") or "(document)"
        problems.append(
            f"{where}: {value!r} cannot be stored as config (the Pulumi CLI refuses it: json: unsupported value; "
            "expected a finite number or a quoted string)"
        )
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        # Go's json.Marshal writes 1e3 as 1000 (the shortest digits, no exponent below 1e21; strconv 'f', -1), which
        # reads back as an int: 2**64 as a float64 is 18446744073709552000, not int()'s 18446744073709551616
        return int(decimal.Decimal(repr(value)))
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, datetime.datetime | datetime.date):
        return go_time_string(key)
    return str(key)


def _yaml_kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "scalar")


def go_time_string(value: datetime.date) -> str:
    """What Go's ``time.Time.String()`` prints for the timestamp yaml.v3 parsed (layout
    ``2006-01-02 15:04:05.999999999 -0700 MST``; a timestamp without zone is UTC)."""
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    numeric = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    zone = "UTC" if minutes == 0 else numeric  # a fixed zone without a name prints its offset again
    return f"{text} {numeric} {zone}"
