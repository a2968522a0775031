"""Parse a ``Pulumi.<stack>.yaml`` as the Pulumi CLI (v3.274.1) does, so the offline render sees what the engine sees.

The CLI reads stack files with gopkg.in/yaml.v3 (sdk/go/common/encoding/marshal.go:115) and turns each
value into config with ``unmarshalObject`` (sdk/go/common/resource/config/object.go:467-526). Read there:

- yaml.v3 refuses a mapping key defined twice, in any mapping (yaml.v3@v3.0.1 decode.go:769-777:
  ``line N: mapping key "k" already defined at line M``); PyYAML keeps the last one silently.
- an unquoted timestamp in one of yaml.v3's four layouts (resolve.go:294-300: ``2024-1-2``,
  ``2024-01-02T10:2:3Z``, ``2024-01-02 10:02:03.5``) decodes to ``time.Time`` and reaches the program as
  ``time.Time.String()`` (object.go:490), e.g. ``2024-01-01`` -> ``"2024-01-01 00:00:00 +0000 UTC"``; any other
  spelling (``2001-12-14 21:59:43.10 -5``) stays text. PyYAML gives a ``date`` by its own regex.
- an explicit tag is honoured only when the text resolves to it (resolve.go:132-151): ``!!float x``, ``!!int 0x``,
  ``!!bool yes``, ``!!timestamp foo`` are refused (``cannot decode !!str `x` as a !!float``); a tag on a sequence or
  mapping changes nothing (``!!omap [a: 1]`` is ``[{"a": 1}]``); an unknown tag keeps the scalar's text.
- ``!!binary`` decodes (strict, padded base64, decode.go:573-579) to the bytes as a string; ``!!binary "@@"`` is
  refused.
- ``.inf`` and ``.nan`` decode to float64 but cannot be marshalled to JSON (object.go:404-406 calls
  ``json.Marshal``, which refuses them): the CLI fails on the stack file.
- non-string mapping keys become ``fmt.Sprintf("%v", k)`` (object.go:505-509): ``1`` -> ``"1"``, ``true`` -> ``"true"``.
- plain scalars resolve by yaml.v3's ``resolve`` (resolve.go:126-265), not PyYAML's YAML 1.1 rules: only
  ``true``/``false`` (three casings) are booleans (``yes``, ``on``, ``off`` stay strings), no base-60 numbers
  (``1:30`` is a string), ``1e3`` is a float; ``_`` is dropped before Go's ParseInt/ParseFloat (resolve.go:191), so
  ``1_000``, ``0X10``, ``0B11``, ``0O17``, ``017`` are integers and ``1_000.5``, ``1_0e3`` floats.
- an integer beyond int64 is a float64 if it is a uint64 or reads as a decimal, else the text.
"""

from __future__ import annotations

import binascii
import codecs
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


YAML_V3 = "gopkg.in/yaml.v3@v3.0.1"  # what Pulumi 3.274.1 reads stack files with; file:line below are its source
_PLAIN = "!flywheel/plain"  # an untagged plain scalar: yaml.v3 resolves its text (resolve(""), decode.go:178)
_LONG_TAG_PREFIX = "tag:yaml.org,2002:"  # written !! in yaml.v3's messages (resolve.go:94-102, shortTag)
_RESOLVABLE = {"", "!!str", "!!bool", "!!int", "!!float", "!!null", "!!timestamp"}  # resolve.go:116-122
_RESOLVE_MAP: dict[str, tuple[str, Any]] = {  # resolve.go:47-56, looked up before any parsing
    **dict.fromkeys(("true", "True", "TRUE"), ("!!bool", True)),
    **dict.fromkeys(("false", "False", "FALSE"), ("!!bool", False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), ("!!null", None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), ("!!float", math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ("!!float", math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), ("!!float", -math.inf)),
}
_HINTS = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"), **dict.fromkeys("yYnNtTfFoO~", "M"), ".": "."}
# yamlStyleFloat (resolve.go:124); Go's ParseFloat of a text starting with "." (resolve.go:173-177) reads the same
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
INT64 = range(-(2**63), 2**63)
UINT64 = range(2**64)


class StackTagError(Exception):
    """A scalar yaml.v3 refuses (decode.go:572-577, resolve.go:150): ``problem`` says why, without its text."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _V3Resolver(yaml.resolver.BaseResolver):
    """Leaves plain scalars to ``_go_resolve``: yaml.v3 resolves them in code (resolve.go:126-265), not by regex."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _LONG_TAG_PREFIX + "merge" if value == "<<" else _PLAIN  # decode.go:240-243, 172-179
        return self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else self.DEFAULT_MAPPING_TAG


def _go_resolve(tag: str, text: str) -> tuple[str, Any]:
    """yaml.v3's ``resolve(tag, in)`` (resolve.go:126-265): the resolved tag and value of a scalar's text.

    An explicit tag is honoured only when the text resolves to it (a !!float also takes an int), else yaml.v3
    fails with ``cannot decode <resolved> `<text>` as a <tag>`` (the deferred check, resolve.go:132-151).
    """
    if tag not in _RESOLVABLE:  # resolve.go:128-130: !!binary, !!map, !foo ... keep the text
        return tag, text
    rtag, value = _resolve_text(tag, text)
    if tag in ("", rtag, "!!str"):
        return rtag, value
    if tag == "!!float" and rtag == "!!int" and value in INT64:  # a uint64 is neither int nor int64 there
        return "!!float", float(value)
    raise StackTagError(f"cannot decode {rtag} `…` as a {tag}")  # the text left out: it may be a secret


def _resolve_text(tag: str, text: str) -> tuple[str, Any]:
    hint = _HINTS.get(text[:1], "") if text else "N"  # resolve.go:155-158
    if not hint or tag == "!!str":
        return "!!str", text
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if hint == "." and _YAML_STYLE_FLOAT.fullmatch(text) and math.isfinite(float(text)):
        return "!!float", float(text)  # ParseFloat fails (ErrRange) beyond float64: the text stays a string
    if hint not in "DS":
        return "!!str", text
    if tag in ("", "!!timestamp"):  # resolve.go:184-189
        timestamp = _parse_timestamp(text)
        if timestamp is not None:
            return "!!timestamp", timestamp
    plain = text.replace("_", "")  # resolve.go:191
    for number in (_parse_int(plain, 0), _parse_uint(plain, 0)):  # resolve.go:192-203, each (s, 0, 64)
        if number is not None:
            return "!!int", number
    if _YAML_STYLE_FLOAT.fullmatch(plain) and math.isfinite(float(plain)):  # resolve.go:204-209
        return "!!float", float(plain)
    # resolve.go:210-262: a 0b/0o prefix read again with base 2/8, which then takes a sign after the prefix
    for prefix, base in (("0b", 2), ("0o", 8)):
        if plain.startswith(prefix):
            number = _parse_int(plain[2:], base)
            number = number if number is not None else _parse_uint(plain[2:], base)
        elif plain.startswith("-" + prefix):
            number = _parse_int("-" + plain[3:], base)
        else:
            continue
        if number is not None:
            return "!!int", number
    return "!!str", text


def _parse_uint(text: str, base: int) -> int | None:
    """Go's strconv.ParseUint(text, base, 64): base 0 takes a 0b/0o/0x prefix in either case, a leading 0 is octal."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            if len(text) >= 3 and text[1].lower() in "box":
                base, text = {"b": 2, "o": 8, "x": 16}[text[1].lower()], text[2:]
            else:
                base, text = 8, text[1:]
    value = 0
    for char in text:
        digit = "0123456789abcdefghijklmnopqrstuvwxyz".find(char.lower()) if char.isascii() else -1
        if not 0 <= digit < base:
            return None
        value = value * base + digit
    return value if value in UINT64 else None


def _parse_int(text: str, base: int) -> int | None:
    """Go's strconv.ParseInt(text, base, 64): an optional sign, then ParseUint, within int64."""
    negative = text[:1] == "-"
    magnitude = _parse_uint(text[1:] if text[:1] in "+-" else text, base) if text else None
    if magnitude is None:
        return None
    value = -magnitude if negative else magnitude
    return value if value in INT64 else None


# allowedTimestampFormats (resolve.go:294-300), as time.Parse reads them (Go 1.26 src/time/format.go:1048-1400);
# "2001-12-14 21:59:43.10 -5" fits none of them (resolve.go:299), nor does a zone after a space
_TIMESTAMP_LAYOUTS = (
    ("year", "-", "month", "-", "day", "T", "hour", ":", "minute", ":", "second", "fraction", "zone"),
    ("year", "-", "month", "-", "day", "t", "hour", ":", "minute", ":", "second", "fraction", "zone"),
    ("year", "-", "month", "-", "day", " ", "hour", ":", "minute", ":", "second", "fraction"),
    ("year", "-", "month", "-", "day"),
)


def _parse_timestamp(text: str) -> str | None:
    """yaml.v3's parseTimestamp (resolve.go:306-325): the time as the program gets it (Go's time.Time.String())."""
    year_digits = len(text) - len(text.lstrip("0123456789"))
    if year_digits != 4 or text[4:5] != "-":  # resolve.go:310-318
        return None
    for layout in _TIMESTAMP_LAYOUTS:
        fields = _go_time_parse(layout, text)
        if fields is not None:
            return _go_time_text(*fields)
    return None


def _go_getnum(text: str, fixed: bool) -> tuple[int, str] | None:
    """time.getnum (format.go:926-937): one or two digits (two if ``fixed``)."""
    if not text[:1].isdigit() or not text[:1].isascii():
        return None
    if not (text[1:2].isdigit() and text[1:2].isascii()):
        return None if fixed else (int(text[0]), text[1:])
    return int(text[:2]), text[2:]


def _go_time_parse(layout: tuple[str, ...], value: str) -> tuple[int, int, int, int, int, int, int, int | None] | None:
    """time.Parse(layout, value) for yaml.v3's layouts: (y, m, d, H, M, S, nanoseconds, zone offset in s or None)."""
    year = nanos = 0
    offset: int | None = None
    limits = {"month": range(1, 13), "hour": range(24), "minute": range(60), "second": range(60)}
    numbers: dict[str, int] = {}
    for chunk in layout:
        if chunk == " ":  # time.skip (format.go:962-980): a space matches a run of spaces
            if value[:1] not in ("", " "):
                return None
            value = value.lstrip(" ")
        elif chunk in ("-", ":", "T", "t"):
            if value[:1] != chunk:
                return None
            value = value[1:]
        elif chunk == "year":  # stdLongYear: four characters, the first a digit
            if len(value) < 4 or not value[:4].isdigit() or not value[:4].isascii():
                return None
            year, value = int(value[:4]), value[4:]
        elif chunk in limits or chunk == "day":
            got = _go_getnum(value, False)
            if got is None or (chunk in limits and got[0] not in limits[chunk]):
                return None
            numbers[chunk], value = got
        elif chunk == "fraction":  # stdFracSecond9: optional, "." or ",", every digit read, nine kept
            if len(value) >= 2 and value[0] in ".," and value[1] in "0123456789":
                digits = len(value[1:]) - len(value[1:].lstrip("0123456789"))
                nanos, value = int(value[1 : 1 + digits][:9].ljust(9, "0")), value[1 + digits :]
        elif chunk == "zone":  # stdISO8601ColonTZ: "Z", or ±hh:mm
            if value[:1] == "Z":
                offset, value = None, value[1:]
                continue
            if len(value) < 6 or value[3] != ":" or value[0] not in "+-":
                return None
            hours, minutes = _go_getnum(value[1:3], True), _go_getnum(value[4:6], True)
            if hours is None or minutes is None or hours[0] > 24 or minutes[0] > 60:
                return None
            offset = (hours[0] * 60 + minutes[0]) * 60 * (-1 if value[0] == "-" else 1)
            value = value[6:]
    if value:  # "extra text"
        return None
    month, day = numbers.get("month", 1), numbers.get("day", 1)
    hour, minute, second = numbers.get("hour", 0), numbers.get("minute", 0), numbers.get("second", 0)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days_in = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    if not 1 <= day <= days_in:  # "day out of range"
        return None
    return year, month, day, hour, minute, second, nanos, offset


def _go_time_text(
    year: int, month: int, day: int, hour: int, minute: int, second: int, nanos: int, offset: int | None
) -> str:
    """Go's time.Time.String() (``2006-01-02 15:04:05.999999999 -0700 MST``) of a parsed time. The CLI's local zone is
    UTC: an offset of 0 is that zone (UTC); another is a zone without a name, printed as its offset again."""
    text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
    if nanos:
        text += f".{nanos:09d}".rstrip("0")
    minutes = (offset or 0) // 60
    numeric = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return f"{text} {numeric} {'UTC' if minutes == 0 else numeric}"


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


def _node(loader: _StackLoader, node: yaml.Node) -> Any:
    """Any node as yaml.v3 decodes it into ``any`` (decode.go:484-522): a tag on a sequence or mapping changes
    nothing (``!!omap [a: 1]`` is a list of one mapping, ``!!set`` a mapping of nulls); a scalar's tag is checked."""
    if isinstance(node, yaml.SequenceNode):
        return [loader.construct_object(child, deep=True) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        return _mapping(loader, node)
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    """decode.go:565-580 (``d.scalar``): a quoted or !!str scalar is its text; !!binary is base64; the rest resolve."""
    tag = "" if node.tag == _PLAIN else node.tag
    tag = "!!" + tag.removeprefix(_LONG_TAG_PREFIX) if tag.startswith(_LONG_TAG_PREFIX) else tag
    if tag == "!!str" or (not tag and node.style):  # indicatedString (yaml.go:463-467), quoted: decode.go:244-245
        return node.value
    line = node.start_mark.line + 1
    try:
        rtag, value = _go_resolve(tag, node.value)
    except StackTagError as err:
        raise StackTagError(
            f"line {line}: {err.problem} (the Pulumi CLI refuses it too: yaml: {err.problem}; "
            "expected a value the tag fits, or no tag)"
        ) from None
    if rtag != "!!binary":
        return value
    try:  # Go's base64.StdEncoding (decode.go:574): padding required, only CR and LF skipped
        return binascii.a2b_base64(node.value.replace("\r", "").replace("\n", ""), strict_mode=True)
    except binascii.Error:
        raise StackTagError(
            f"line {line}: !!binary value contains invalid base64 data (the Pulumi CLI refuses it too; "
            "expected standard base64, padded with =)"
        ) from None


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


# every tag, known or not, goes through _node (PyYAML's fallback entry); spelled out for the stubs' sake
_StackLoader.yaml_constructors = {None: _node}
_StackLoader.yaml_multi_constructors = {}


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
    except StackTagError as err:
        raise StackFileError([*duplicates, err.problem]) from None
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
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
        # a uint64: the CLI re-reads config as JSON and keeps a json.Number that is not an int64 as float64
        # (sdk/go/common/resource/config/object.go, ``unmarshalObject``)
        value = float(value)
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
    return str(key)


def _yaml_kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "scalar")
