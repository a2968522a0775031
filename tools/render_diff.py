"""Offline desired-state diff: compare two renders (``make render`` output) and print the MR note's Markdown.

    python -m tools.render_diff --base build/base/dev --head build/dev --stack dev [--out FILE]

Resources are matched by URN: added, removed and changed (property level, secrets redacted), plus the
rendered files (server.toml, config.toml, the CI template) as unified diffs and the head's policy
violations. Needs no cluster, state or credentials: both sides come from the program under mocks.
Without --base everything shows as added, and the note says so; a --base that does not exist is an error
unless --base-missing-ok (CI: the target branch may have no render of this stack). A Kubernetes object whose
name or namespace changes is shown as a replacement, as the provider does it; Secret keys whose value changed
are listed (values redacted) when both renders carry digests made with the same FLYWHEEL_RENDER_SALT, and so are
secure config values whose ciphertext changed (the Secrets built from one change with it).
Renders of two different stacks are matched by their stack-free URN, with a warning.
Exit codes: 0 written, 2 a render folder is missing or unreadable, 3 an internal error (a bug).
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.preview_markdown import (
    PolicyViolation,
    PropertyChange,
    Report,
    ResourceChange,
    TextBlock,
    parse_path,
    property_changes,
    render_note,
    sanitize,
    unified_diff,
)
from tools.render import DIGESTS_FILE, REDACTED, report_internal_error

EXIT_OK, EXIT_INPUT = 0, 2
OPTION_KEYS = ("protect", "retainOnDelete", "dependsOn")
# Input paths whose change makes the Kubernetes provider replace the object instead of updating it
# (pulumi-kubernetes provider/v4 pkg/provider/provider.go:1431 and diff.go:22-36, 206-211; the
# per-kind spec fields of its forceNew table are not modelled): identity, a Secret's type and data.
FORCE_NEW = {
    "*": (("metadata", "name"), ("metadata", "namespace")),
    "Secret": (("type",), ("stringData",), ("data",)),
    "ConfigMap": (("data",), ("binaryData",)),
}


@dataclass
class Render:
    """One render folder, read back."""

    path: Path
    resources: dict[str, dict[str, Any]]
    files: dict[str, str]
    violations: list[dict[str, Any]] = field(default_factory=list)
    secret_digests: dict[str, Any] = field(default_factory=dict)

    @property
    def stacks(self) -> set[str]:
        return {_stack_of(urn) for urn in self.resources}


def _stack_of(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<type>::<name>
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:")


def _without_stack(urn: str) -> str:
    return urn.split("::", 1)[-1]


class RenderReadError(ValueError):
    pass


def load_render(path: Path) -> Render:
    resources_file = path / "resources.json"
    try:
        resources = json.loads(resources_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RenderReadError(f"{resources_file}: not a render output ({err}); run `make render` first") from None
    _check_resources_shape(resources_file, resources)
    try:
        report = json.loads((path / "policy-report.json").read_text())
    except (OSError, json.JSONDecodeError):
        report = {}
    files_root = path / "files"
    files = {
        file.relative_to(files_root).as_posix(): file.read_text(errors="replace")
        for file in sorted(files_root.rglob("*"))
        if file.is_file()
    }
    try:
        digests = json.loads((path / DIGESTS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        digests = {}
    report = report if isinstance(report, dict) else {}  # optional files: a wrong shape counts as absent
    digests = digests if isinstance(digests, dict) else {}
    return Render(path, {r["urn"]: r for r in resources}, files, list(report.get("violations") or []), digests)


def _check_resources_shape(resources_file: Path, resources: Any) -> None:
    """resources.json as tools.render writes it, or one line saying where it is not."""
    expected = "a list of resources, each an object with string 'urn', 'type' and 'name' and object 'inputs', 'options'"
    if not isinstance(resources, list):
        problem = f"got a JSON {type(resources).__name__}"
    else:
        problem = ""
        for index, resource in enumerate(resources):
            if not isinstance(resource, dict):
                problem = f"item [{index}] is a JSON {type(resource).__name__}"
            else:
                wrong = [f"a string {k!r}" for k in ("urn", "type", "name") if not isinstance(resource.get(k), str)]
                wrong += [
                    f"an object {k!r}" for k in ("inputs", "options") if not isinstance(resource.get(k) or {}, dict)
                ]
                problem = f"item [{index}] lacks {', '.join(wrong)}" if wrong else ""
            if problem:
                break
    if problem:
        raise RenderReadError(f"{resources_file}: not a render output ({problem}; expected {expected})")


def load_base(path: Path | None, missing_ok: bool = False) -> Render | None:
    """The target branch's render; None when there is none. A missing folder is an error (a mistyped --base
    would otherwise mean "everything added") unless ``missing_ok`` (the target branch could not render)."""
    if path is None:
        return None
    # a folder whose render failed holds no resources.json (tools.render clears it first)
    if not path.exists() or (path.is_dir() and not (path / "resources.json").exists()):
        if missing_ok:
            return None
        raise RenderReadError(f"{path}: no render here (a mistyped --base? use --base-missing-ok if none is expected)")
    return load_render(path)


def _resource_properties(old: dict[str, Any], new: dict[str, Any]) -> list[PropertyChange]:
    typ = str(new.get("type", ""))
    old_inputs, new_inputs = old.get("inputs") or {}, new.get("inputs") or {}
    changes = property_changes(old_inputs, new_inputs, sanitize(typ, old_inputs), sanitize(typ, new_inputs))
    old_options = {k: (old.get("options") or {}).get(k) for k in OPTION_KEYS}
    new_options = {k: (new.get("options") or {}).get(k) for k in OPTION_KEYS}
    changes += property_changes(old_options, new_options, old_options, new_options, ("options",))
    return changes


def _violation_key(violation: dict[str, Any]) -> tuple[str, str, str]:
    return (str(violation.get("policyName")), str(violation.get("urn")), str(violation.get("message")))


def _force_new(resource: dict[str, Any], properties: list[PropertyChange]) -> list[PropertyChange]:
    """``properties`` with those marked that make the Kubernetes provider replace the object."""
    if not str(resource.get("type", "")).startswith("kubernetes:"):
        return properties
    kind = str((resource.get("inputs") or {}).get("kind", ""))
    prefixes = FORCE_NEW["*"] + FORCE_NEW.get(kind, ())
    return [dataclasses.replace(c, replaces=_on_path(c.path, prefixes)) for c in properties]


def _on_path(path: str, prefixes: tuple[tuple[str, ...], ...]) -> bool:
    parts = tuple(str(token) for token in parse_path(path))
    return any(parts[: len(prefix)] == prefix for prefix in prefixes)


def _secret_value_changes(base: Render, head: Render, urn_of: dict[str, str]) -> dict[str, list[PropertyChange]]:
    """Secret keys whose value changed, by head URN (values redacted); only for digests of the same salt."""
    old, new = base.secret_digests, head.secret_digests
    if not old or not new or old.get("salt") != new.get("salt"):
        return {}
    changes: dict[str, list[PropertyChange]] = {}
    old_by_urn = {urn_of.get(urn, urn): fields for urn, fields in (old.get("resources") or {}).items()}
    for urn, fields in (new.get("resources") or {}).items():
        before = old_by_urn.get(urn) or {}
        for path, digest in sorted(fields.items()):
            if path in before and before[path] != digest:
                changes.setdefault(urn, []).append(PropertyChange(path, "update", REDACTED, REDACTED))
    return changes


def _secure_config_changes(base: Render, head: Render) -> list[str]:
    """Secure config values whose ciphertext changed (same salt only): a Secret built from one shows it too."""
    old, new = base.secret_digests, head.secret_digests
    if not old or not new or old.get("salt") != new.get("salt"):
        return []
    before, after = old.get("config") or {}, new.get("config") or {}
    return [path for path, digest in sorted(after.items()) if path in before and before[path] != digest]


def report_from_renders(stack: str, base: Render | None, head: Render) -> Report:
    """The same kind of report as a preview's, from the desired state of the target branch and the MR."""
    cross_stack = base is not None and bool(base.stacks) and base.stacks != head.stacks
    # renders of two stacks: match resources by their URN without the stack, so the diff says what differs
    base_urn = {urn: (_without_stack(urn) if cross_stack else urn) for urn in (base.resources if base else {})}
    head_urn = {urn: (_without_stack(urn) if cross_stack else urn) for urn in head.resources}
    before = {base_urn[urn]: r for urn, r in (base.resources if base else {}).items()}
    after = {head_urn[urn]: r for urn, r in head.resources.items()}
    secret_changes = _secret_value_changes(base, head, {u: head_urn.get(u, u) for u in base_urn}) if base else {}
    secret_changes = {head_urn.get(urn, urn): c for urn, c in secret_changes.items()}
    changes: list[ResourceChange] = []
    unchanged = 0
    for urn in sorted(before.keys() | after.keys()):
        old, new = before.get(urn), after.get(urn)
        if old is None and new is not None:
            changes.append(ResourceChange("create", new["urn"], new["type"], new["name"]))
        elif new is None and old is not None:
            options = old.get("options") or {}
            changes.append(
                ResourceChange(
                    "delete",
                    old["urn"],
                    old["type"],
                    old["name"],
                    protected=bool(options.get("protect")),
                    retain_on_delete=bool(options.get("retainOnDelete")),
                )
            )
        elif old is not None and new is not None:
            properties = _resource_properties(old, new)
            known = {c.path for c in properties}
            properties += [c for c in secret_changes.get(urn, []) if c.path not in known]
            properties = _force_new(new, properties)
            if properties:
                reasons = [c.path for c in properties if c.replaces]
                op = "replace" if reasons else "update"
                changes.append(ResourceChange(op, new["urn"], new["type"], new["name"], properties, reasons))
            else:
                unchanged += 1
    counts = {op: sum(c.op == op for c in changes) for op in ("create", "replace", "update", "delete")}
    counts["same"] = unchanged

    base_violations = {_violation_key(v) for v in (base.violations if base else [])}
    violations = [
        PolicyViolation(
            level=str(v.get("enforcementLevel", "advisory")),
            policy=str(v.get("policyName", "")),
            resource=str(v.get("urn") or "(stack)").split("::")[-1],
            message=str(v.get("message", "")),
            new=_violation_key(v) not in base_violations if base else None,
        )
        for v in head.violations
    ]

    blocks = []
    before_files = base.files if base else {}
    for path in sorted(before_files.keys() | head.files.keys()):
        old_text, new_text = before_files.get(path), head.files.get(path)
        if old_text == new_text:
            continue
        status = "added" if old_text is None else "removed" if new_text is None else "changed"
        diff = unified_diff(
            old_text or "",
            new_text or "",
            "/dev/null" if old_text is None else f"a/files/{path}",
            "/dev/null" if new_text is None else f"b/files/{path}",
        )
        blocks.append(TextBlock(f"<code>files/{html.escape(path)}</code> ({status})", diff, "diff"))

    notes = [
        "Offline desired state of the target branch against this MR (`make render` under Pulumi mocks): no "
        "cluster, state or credentials involved. Whether a change updates in place or replaces is decided by "
        "the provider at `pulumi preview` time; a resource that changes name, type or parent shows as a "
        "deletion plus a creation (Pulumi replaces it unless aliased)."
    ]
    if base is None:
        notes.append("The target branch has no render of this stack: everything shows as added.")
    if cross_stack and base is not None:
        notes.insert(
            0,
            f"⚠️ These renders are of different stacks (base {', '.join(sorted(base.stacks))}, head "
            f"{', '.join(sorted(head.stacks))}): resources are matched by URN without the stack.",
        )
    for path in _secure_config_changes(base, head) if base else []:
        notes.append(f"Secure config value `{path}` changed (value redacted).")
    if base is not None and not (
        base.secret_digests and base.secret_digests.get("salt") == head.secret_digests.get("salt")
    ):
        notes.append(
            "Secret values are not compared: both renders need digests made with the same FLYWHEEL_RENDER_SALT "
            "(only added or removed Secret keys show)."
        )
    return Report(
        stack=stack,
        title=f"Desired-state diff (offline render): stack `{stack}`",
        counts={op: n for op, n in counts.items() if n},
        changes=changes,
        violations=violations,
        blocks=blocks,
        notes=notes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.render_diff", description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, required=True, help="render of the MR (e.g. build/dev)")
    parser.add_argument("--base", type=Path, help="render of the target branch (omit when it has none)")
    parser.add_argument(
        "--base-missing-ok", action="store_true", help="a --base folder that does not exist means: no base render"
    )
    parser.add_argument("--stack", default="dev", help="stack name (default: dev)")
    parser.add_argument("--out", type=Path, help="write the Markdown here instead of stdout")
    args = parser.parse_args(argv)
    try:
        return write_note(args)
    except Exception as err:  # a bug: its own exit code, so it is never read as a verdict on the input
        raise SystemExit(report_internal_error("render_diff", err)) from err


def write_note(args: argparse.Namespace) -> int:
    try:
        base, head = load_base(args.base, args.base_missing_ok), load_render(args.head)
    except RenderReadError as err:
        print(f"render_diff: {err}", file=sys.stderr)
        return EXIT_INPUT
    markdown = render_note(report_from_renders(args.stack, base, head), limit=sys.maxsize)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown + "\n")
    else:
        print(markdown)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
