"""The Markdown of a merge-request infrastructure note, shared by ``tools.mr_note`` and ``tools.render_diff``.

Both tools reduce their input (a ``pulumi preview --json`` digest, or two offline renders) to a ``Report``
of ``ResourceChange``s and hand it to ``render_note``. Everything printed passes through the redaction here
first: values the engine or the render marked secret, values under keys that look secret, credentials in
URLs and PEM private keys never reach the note.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# The render's markers; `[secret]` is also how `pulumi preview --json` prints a secret.
from tools.render import REDACTED, SECRET_DATA_FIELDS, UNKNOWN_TEXT

# GitLab refuses notes longer than this (characters).
NOTE_LIMIT = 1_000_000
# Pulumi's wire signature of a secret value, and its serialized "unknown" (computed at apply time).
WIRE_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
UNKNOWN_VALUES = frozenset({"04da6b54-80e4-46f7-96ec-b56ff0331ba9", UNKNOWN_TEXT})
VALUE_WIDTH = 80
MAX_PROPERTY_ROWS = 40


class _Absent:
    """The value on the side of a change where the property does not exist."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

# --- redaction -----------------------------------------------------------------------------------

_SECRET_WORDS = re.compile(
    r"pass(word|wd|phrase)|secret|token|private.?key|credential|api.?key|access.?key|signing.?key|"
    r"database.?url|dsn|connection.?string",
    re.IGNORECASE,
)
# Keys that mention a secret but hold its name, a reference to it or a setting about it.
_NOT_SECRET_SUFFIX = re.compile(
    r"(name|names|ref|path|file|mode|type|kind|validity|window|expiry|ttl|seconds|enabled|length|id|ids|"
    r"keyref|selector|source)$",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.\-]*://[^/\s:@\"']+):([^@\s/\"']+)@", re.IGNORECASE)
_PEM_PRIVATE = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----.*?(-----END \1-----|\Z)", re.DOTALL)
# A value that names where the secret comes from (`$VAR`, `${VAR}`, `$(cmd)`, `$[[ inputs.x ]]`) is no secret.
_VARIABLE_REF = re.compile(r"^\$(\{?[A-Za-z_]|\(|\[\[)")
_SECRET_TYPES_WHOLE_DATA = {"kubernetes:core/v1:Secret": SECRET_DATA_FIELDS}
_GITLAB_VARIABLE_TYPES = {
    "gitlab:index/groupVariable:GroupVariable",
    "gitlab:index/projectVariable:ProjectVariable",
    "gitlab:index/instanceVariable:InstanceVariable",
}


def secret_key(key: str) -> bool:
    """Whether a value stored under ``key`` must be treated as a secret."""
    return bool(_SECRET_WORDS.search(key)) and not _NOT_SECRET_SUFFIX.search(key)


def _is_secret_marker(value: Any) -> bool:
    return value == REDACTED or (isinstance(value, dict) and WIRE_SIGNATURE_KEY in value)


def redact_string(text: str) -> str:
    """Credentials in URLs and whole PEM private keys, inside any string."""
    text = _PEM_PRIVATE.sub(lambda m: f"-----BEGIN {m.group(1)}----- {REDACTED}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)


def _redact_leaf(key: str | None, value: Any) -> Any:
    if _is_secret_marker(value):
        return REDACTED
    if isinstance(value, str):
        if key is not None and secret_key(key) and value and not _VARIABLE_REF.match(value):
            return REDACTED
        return redact_string(value)
    return value


def sanitize(resource_type: str, value: Any) -> Any:
    """A copy of a resource's inputs (or outputs) that is safe to print."""
    return _sanitize(value, None, resource_type, top=True)


def _sanitize(value: Any, key: str | None, resource_type: str, top: bool = False) -> Any:
    if _is_secret_marker(value):
        return REDACTED
    if isinstance(value, dict):
        masked_variable = (
            resource_type in _GITLAB_VARIABLE_TYPES
            and top
            and (bool(value.get("masked")) or bool(value.get("hidden")) or secret_key(str(value.get("key", ""))))
        )
        whole = _SECRET_TYPES_WHOLE_DATA.get(resource_type, ()) if top else ()
        # An environment entry ({name, value}) whose name looks secret.
        env_secret = isinstance(value.get("name"), str) and secret_key(value["name"])
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in whole and isinstance(v, dict):
                out[k] = dict.fromkeys(v, REDACTED)
            elif (masked_variable and k == "value") or (env_secret and k == "value" and isinstance(v, str)):
                out[k] = REDACTED
            else:
                out[k] = _sanitize(v, str(k), resource_type)
        return out
    if isinstance(value, list):
        return [_sanitize(v, key, resource_type) for v in value]
    return _redact_leaf(key, value)


_TEXT_ASSIGNMENT = re.compile(
    r"""^(?P<lead>[\s+\-~>]*(?:export\s+)?["']?(?P<key>[A-Za-z0-9_.\-]+)["']?\s*(?::|=|=>)\s*)(?P<value>\S.*)$"""
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_colors(text: str) -> str:
    """Terminal colour and cursor escapes removed."""
    return _ANSI.sub("", text)


def redact_text(text: str) -> str:
    """Line-wise redaction of free text (CLI output, rendered files): ``secret_key: value`` lines."""
    text = redact_string(strip_colors(text))
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = _TEXT_ASSIGNMENT.match(body)
        if match and secret_key(match["key"]):
            value = match["value"].strip().strip("\"'")
            if value not in {REDACTED, "{", "[", "|", ">"} and not _VARIABLE_REF.match(value):
                line = match["lead"] + REDACTED + line[len(body) :]
        lines.append(line)
    return "".join(lines)


# --- property paths and structural diffs ---------------------------------------------------------

PathToken = str | int
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PATH_TOKEN = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\[\*\]')


def format_path(tokens: Sequence[PathToken]) -> str:
    """Pulumi's property-path syntax: ``spec.template.containers[0].env["A.B"]``."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif _SIMPLE_KEY.match(token):
            out += f".{token}" if out else token
        else:
            out += "[" + json.dumps(token) + "]"
    return out


def parse_path(path: str) -> list[PathToken]:
    """Inverse of ``format_path`` (the keys of a digest's ``detailedDiff``)."""
    tokens: list[PathToken] = []
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None or match.end() == position:
            return [path]  # not a path we understand: treat it as one key
        if match.group(1) is not None:
            tokens.append(match.group(1))
        elif match.group(2) is not None:
            tokens.append(int(match.group(2)))
        elif match.group(3) is not None:
            tokens.append(json.loads(f'"{match.group(3)}"'))
        position = match.end()
    return tokens


def lookup(tree: Any, tokens: Sequence[PathToken]) -> Any:
    """The value at ``tokens`` in ``tree``; ABSENT if missing; REDACTED if a secret encloses it."""
    current = tree
    for token in tokens:
        if current == REDACTED:
            return REDACTED
        in_list = isinstance(token, int) and isinstance(current, list) and 0 <= token < len(current)
        in_dict = isinstance(token, str) and isinstance(current, dict) and token in current
        if not (in_list or in_dict):
            return ABSENT
        current = current[token]
    return current


@dataclass(frozen=True)
class PropertyChange:
    """One changed property: ``kind`` is add, delete or update; ``replaces`` when it forces a replacement."""

    path: str
    kind: str
    old: Any = ABSENT
    new: Any = ABSENT
    replaces: bool = False


def diff_values(old: Any, new: Any, prefix: Sequence[PathToken] = ()) -> Iterator[tuple[list[PathToken], str]]:
    """Leaf-level differences between two JSON values: (path, add|delete|update). Secrets are leaves."""
    if _is_secret_marker(old) or _is_secret_marker(new):
        if old != new:
            yield list(prefix), "update"
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            path = [*prefix, key]
            if key not in old:
                yield path, "add"
            elif key not in new:
                yield path, "delete"
            else:
                yield from diff_values(old[key], new[key], path)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            path = [*prefix, index]
            if index >= len(old):
                yield path, "add"
            elif index >= len(new):
                yield path, "delete"
            else:
                yield from diff_values(old[index], new[index], path)
    elif old != new or type(old) is not type(new):
        yield list(prefix), "update"


def property_changes(
    old_raw: Any,
    new_raw: Any,
    old_safe: Any,
    new_safe: Any,
    prefix: Sequence[PathToken] = (),
    replaces: bool = False,
) -> list[PropertyChange]:
    """Changes found on the raw values, shown with the sanitized ones."""
    changes = []
    for path, kind in diff_values(old_raw, new_raw, prefix):
        relative = path[len(prefix) :]
        changes.append(
            PropertyChange(
                path=format_path(path),
                kind=kind,
                old=ABSENT if kind == "add" else lookup(old_safe, relative),
                new=ABSENT if kind == "delete" else lookup(new_safe, relative),
                replaces=replaces,
            )
        )
    return changes


# --- the report ----------------------------------------------------------------------------------

# Display order and wording of operations; anything else sorts after these under its own name.
OPERATIONS = {
    "replace": ("🔁", "replace"),
    "delete": ("🗑️", "delete"),
    "create": ("➕", "create"),
    "update": ("🔄", "update"),
    "import": ("📥", "import"),
    "read": ("📖", "read"),
    "refresh": ("🔃", "refresh"),
    "discard": ("🗑️", "discard"),
    "same": ("·", "unchanged"),
}
DESTRUCTIVE = ("replace", "delete")


@dataclass
class ResourceChange:
    op: str
    urn: str
    type: str
    name: str
    properties: list[PropertyChange] = field(default_factory=list)
    replace_reasons: list[str] = field(default_factory=list)
    protected: bool = False
    retain_on_delete: bool = False


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    message: str
    urn: str = ""


@dataclass(frozen=True)
class PolicyViolation:
    level: str
    policy: str
    resource: str
    message: str
    new: bool | None = None  # offline diff: whether the MR introduces it (None: unknown)
    exceptions: tuple[str, ...] = ()  # policy exceptions that exempt it (it then blocks nothing)

    @property
    def blocking(self) -> bool:
        return self.level == "mandatory" and not self.exceptions


@dataclass(frozen=True)
class TextBlock:
    """A collapsed block at the end of the note (a unified diff or the CLI output); cut first when too long."""

    summary: str
    text: str
    language: str = "text"


@dataclass
class Report:
    stack: str
    title: str
    counts: dict[str, int]
    changes: list[ResourceChange]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    violations: list[PolicyViolation] = field(default_factory=list)
    blocks: list[TextBlock] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str | None = None
    source: str = ""
    artifact: str | None = None  # where the untruncated note is (URL or path), for the size-limit pointer


def marker(stack: str) -> str:
    """The hidden first line that lets the note tool find its own note for ``stack`` again."""
    return f"<!-- flywheel:mr-note stack={stack} -->"


def urn_type_and_name(urn: str) -> tuple[str, str]:
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return "", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


# --- Markdown ------------------------------------------------------------------------------------


def code(text: str) -> str:
    """An inline code span safe inside a table cell."""
    text = text.replace("\n", " ").replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def format_value(value: Any) -> str:
    if value is ABSENT:
        return "—"
    if value == REDACTED:
        return "🔒 " + code(REDACTED)
    if isinstance(value, str) and value in UNKNOWN_VALUES:
        return "_(known after apply)_"
    if isinstance(value, str) and "\n" in value:
        return f"_text, {len(value.splitlines())} lines_"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(text) > VALUE_WIDTH:
        text = text[: VALUE_WIDTH - 1] + "…"
    return code(text)


def fenced(text: str, language: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{fence}{language}\n{body}{fence}"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _count_phrase(counts: dict[str, int]) -> str:
    parts = [
        f"{counts[op]} to {OPERATIONS[op][1]}"
        for op in ("create", "update", "replace", "delete", "import")
        if counts.get(op)
    ]
    return ", ".join(parts)


def verdict(report: Report) -> str:
    errors = [d for d in report.diagnostics if d.severity == "error"]
    mandatory = [v for v in report.violations if v.blocking]
    phrase = _count_phrase(report.counts)
    changes = f" · {phrase}" if phrase else ""
    if report.failure or errors:
        reason = report.failure or f"{len(errors)} error{'s' * (len(errors) != 1)}"
        return f"❌ **Failed**: {reason}{changes}"
    if mandatory:
        return f"⛔ **Blocked by policy**: {len(mandatory)} mandatory violation{'s' * (len(mandatory) != 1)}{changes}"
    destructive = [op for op in DESTRUCTIVE if report.counts.get(op)]
    if destructive:
        return f"⚠️ **Destructive changes**: {phrase}"
    if phrase:
        return f"✅ **{phrase[0].upper()}{phrase[1:]}**, no replacements or deletions"
    return "✅ **No changes**"


def _counts_table(counts: dict[str, int]) -> str:
    order = list(OPERATIONS)
    rows = sorted((op for op, n in counts.items() if n), key=lambda op: (order.index(op) if op in order else 99, op))
    if not rows:
        return ""
    lines = ["| Operation | Resources |", "|---|---:|"]
    for op in rows:
        icon, word = OPERATIONS.get(op, ("", op))
        lines.append(f"| {icon} {word} | {counts[op]} |")
    return "\n".join(lines)


def _callouts(changes: Sequence[ResourceChange]) -> str:
    lines = []
    for change in sorted(changes, key=lambda c: (DESTRUCTIVE.index(c.op), c.type, c.name)):
        icon, word = OPERATIONS[change.op]
        line = f"- {icon} **{word}** {code(change.type)} {code(change.name)}"
        if change.op == "replace":
            reasons = change.replace_reasons or [p.path for p in change.properties if p.replaces]
            if reasons:
                line += " — replaced because " + ", ".join(code(r) for r in reasons[:8]) + " changes"
        if change.op == "delete" and change.protected:
            line += " — **protected**: `pulumi up` refuses to delete it until it is unprotected"
        if change.op == "delete" and change.retain_on_delete:
            line += " — retainOnDelete: removed from the stack, the object itself stays"
        lines.append(line)
    return "\n".join(lines)


def _resource_rows(change: ResourceChange) -> list[str]:
    icon, word = OPERATIONS.get(change.op, ("", change.op))
    first = f"| {code(change.name)} | {icon} {word} |"
    properties = change.properties[:MAX_PROPERTY_ROWS]
    if not properties:
        return [f"{first} | |"]
    rows = []
    for index, prop in enumerate(properties):
        lead = first if index == 0 else "| | |"
        path = code(prop.path) + (" 🔁" if prop.replaces else "")
        rows.append(f"{lead} {path} | {format_value(prop.old)} → {format_value(prop.new)} |")
    hidden = len(change.properties) - len(properties)
    if hidden:
        rows.append(f"| | | _… {hidden} more properties (see the full diff below)_ | |")
    return rows


def _text_diffs(change: ResourceChange) -> list[TextBlock]:
    """Multi-line string properties (embedded files, scripts) as unified diffs."""
    blocks = []
    for prop in change.properties:
        old = prop.old if isinstance(prop.old, str) else ""
        new = prop.new if isinstance(prop.new, str) else ""
        if ("\n" in old or "\n" in new) and REDACTED not in (prop.old, prop.new):
            diff = unified_diff(old, new, f"a/{prop.path}", f"b/{prop.path}")
            if diff:
                summary = f"<code>{html.escape(change.name)}</code> <code>{html.escape(prop.path)}</code>"
                blocks.append(TextBlock(summary, diff, "diff"))
    return blocks


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        redact_text(old).splitlines(keepends=True),
        redact_text(new).splitlines(keepends=True),
        old_name,
        new_name,
        n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _hunks(diff: str) -> str:
    """A unified diff without its two file-name lines."""
    return diff.split("\n", 2)[2] if diff.startswith("--- ") and diff.count("\n") >= 2 else diff


def _change_sections(changes: Sequence[ResourceChange]) -> list[str]:
    """The per-type tables as small pieces (heading, table head, one resource's rows), for cutting."""
    by_type: dict[str, list[ResourceChange]] = defaultdict(list)
    for change in changes:
        by_type[change.type].append(change)
    order = list(OPERATIONS)
    pieces = []
    for typ in sorted(by_type):
        group = sorted(by_type[typ], key=lambda c: (order.index(c.op) if c.op in order else 99, c.name))
        ops = Counter(c.op for c in group)
        summary = ", ".join(f"{n} {OPERATIONS.get(op, ('', op))[1]}" for op, n in sorted(ops.items()))
        pieces.append(
            f"\n**{code(typ)}** ({summary})\n\n| Resource | Operation | Property | Before → After |\n|---|---|---|---|"
        )
        for change in group:
            pieces.append("\n".join(_resource_rows(change)))
    return pieces


def _diagnostics(diagnostics: Sequence[Diagnostic]) -> str:
    shown = [d for d in diagnostics if d.severity in {"error", "warning"}]
    if not shown:
        return ""
    lines = ["#### Diagnostics"]
    for diag in sorted(shown, key=lambda d: (d.severity != "error", d.urn)):
        icon = "❌" if diag.severity == "error" else "⚠️"
        where = f" {code(urn_type_and_name(diag.urn)[1])}" if diag.urn else ""
        message = redact_text(diag.message).strip()
        if len(message) > 2000:
            message = message[:2000] + " …"
        lines.append(f"- {icon} **{diag.severity}**{where}: " + message.replace("\n", "<br>"))
    informational = len(diagnostics) - len(shown)
    if informational:
        lines.append(f"- _{informational} informational message(s) in the full output_")
    return "\n".join(lines)


def _violations(violations: Sequence[PolicyViolation]) -> str:
    if not violations:
        return ""
    lines = ["#### Policy violations"]
    for violation in sorted(violations, key=lambda v: (not v.blocking, v.policy, v.resource)):
        icon = "⛔" if violation.blocking else "⚠️"
        fresh = {True: " _(new in this MR)_", False: " _(already on the target branch)_", None: ""}[violation.new]
        if violation.exceptions:
            fresh += f" _(exempted: {', '.join(violation.exceptions)})_"
        where = f" on {code(violation.resource)}" if violation.resource else ""
        message = redact_text(violation.message).strip().replace("\n", "<br>")
        lines.append(f"- {icon} **{violation.level}** {code(violation.policy)}{where}{fresh}: {message}")
    return "\n".join(lines)


def _block_text(block: TextBlock, budget: int | None = None) -> str:
    """A collapsed code block; with a budget, the text is cut on a line boundary to fit it."""
    lines = block.text.count("\n") + (not block.text.endswith("\n"))
    summary = f"{block.summary} ({lines} lines)"
    full = details(summary, fenced(block.text, block.language))
    if budget is None or len(full) <= budget:
        return full
    note = "… cut here to fit GitLab's note size limit; the full text is in the job artifact\n"
    room = budget - (len(full) - len(block.text)) - len(note) - 16
    if room <= 0:
        return ""
    head = block.text[:room]
    head = head[: head.rfind("\n") + 1] if "\n" in head else ""
    return details(summary + " — truncated", fenced(head + note, block.language))


def render_note(report: Report, limit: int = NOTE_LIMIT) -> str:
    """The whole note, at most ``limit`` characters: when too long, the end is cut and points to the artifact."""
    destructive = [c for c in report.changes if c.op in DESTRUCTIVE]
    visible = [c for c in report.changes if c.op != "same"]
    head_parts = [marker(report.stack), f"### {report.title}", verdict(report)]
    head_parts += [n for n in report.notes if n]
    head_parts.append(_counts_table(report.counts))
    if destructive:
        head_parts.append("#### ⚠️ Replacements and deletions\n" + _callouts(destructive))
    head_parts += [_diagnostics(report.diagnostics), _violations(report.violations)]
    if visible:
        head_parts.append("#### Changed resources")
    head = "\n\n".join(p for p in head_parts if p)

    pieces = _change_sections(visible)
    # A property's text diff that repeats a rendered file's diff (the CI template's content) is shown once.
    hunks = {_hunks(b.text) for b in report.blocks}
    blocks = [b for c in visible for b in _text_diffs(c) if _hunks(b.text) not in hunks] + report.blocks
    footer = f"\n\n---\n<sub>{report.source}</sub>" if report.source else ""

    full = head + "\n" + "\n".join(pieces) + "".join("\n\n" + _block_text(b) for b in blocks) + footer
    if len(full) <= limit:
        return full

    where = report.artifact or "the job artifact"
    pointer = (
        f"\n\n> ⚠️ **This note is truncated** to fit GitLab's {limit:,}-character limit. "
        f"The full report is in the job artifact: {where}\n"
    )
    budget = limit - len(pointer) - len(footer)
    out = head[:budget] if len(head) > budget else head
    out += "\n"
    omitted = 0
    for index, piece in enumerate(pieces):
        if len(out) + len(piece) + 1 > budget - 200:
            omitted = len(pieces) - index
            break
        out += "\n" + piece
    if omitted:
        out += f"\n\n_… {omitted} more table rows omitted._"
    for block in blocks:
        room = budget - len(out) - 2
        text = _block_text(block, room)
        if not text:
            break
        out += "\n\n" + text
        if text.endswith("</details>") and "— truncated" in text:
            break
    result = out + pointer + footer
    return result[:limit]


def summarize_counts(ops: Iterable[str]) -> dict[str, int]:
    return dict(Counter(ops))
