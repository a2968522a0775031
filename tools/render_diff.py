"""Offline desired-state diff: compare two renders (``make render`` output) and print the MR note's Markdown.

    python -m tools.render_diff --base build/base/dev --head build/dev --stack dev [--out FILE]

Resources are matched by URN: added, removed and changed (property level, secrets redacted), plus the
rendered files (server.toml, config.toml, the CI template) as unified diffs and the head's policy
violations. Needs no cluster, state or credentials: both sides come from the program under mocks.
Without --base, or when that folder does not exist (the target branch has no render of this stack),
everything shows as added, and the note says so.
Exit codes: 0 written, 2 a render folder is missing or unreadable.
"""

from __future__ import annotations

import argparse
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
    property_changes,
    render_note,
    sanitize,
    unified_diff,
)

EXIT_OK, EXIT_INPUT = 0, 2
OPTION_KEYS = ("protect", "retainOnDelete", "dependsOn")


@dataclass
class Render:
    """One render folder, read back."""

    path: Path
    resources: dict[str, dict[str, Any]]
    files: dict[str, str]
    violations: list[dict[str, Any]] = field(default_factory=list)


class RenderReadError(ValueError):
    pass


def load_render(path: Path) -> Render:
    resources_file = path / "resources.json"
    try:
        resources = json.loads(resources_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RenderReadError(f"{resources_file}: not a render output ({err}); run `make render` first") from None
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
    return Render(path, {r["urn"]: r for r in resources}, files, list(report.get("violations") or []))


def load_base(path: Path | None) -> Render | None:
    """The target branch's render; None when there is none (it could not render this stack): the note says so."""
    return load_render(path) if path is not None and path.exists() else None


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


def report_from_renders(stack: str, base: Render | None, head: Render) -> Report:
    """The same kind of report as a preview's, from the desired state of the target branch and the MR."""
    before = base.resources if base else {}
    after = head.resources
    changes: list[ResourceChange] = []
    unchanged = 0
    for urn in sorted(before.keys() | after.keys()):
        old, new = before.get(urn), after.get(urn)
        if old is None and new is not None:
            changes.append(ResourceChange("create", urn, new["type"], new["name"]))
        elif new is None and old is not None:
            options = old.get("options") or {}
            changes.append(
                ResourceChange(
                    "delete",
                    urn,
                    old["type"],
                    old["name"],
                    protected=bool(options.get("protect")),
                    retain_on_delete=bool(options.get("retainOnDelete")),
                )
            )
        elif old is not None and new is not None:
            properties = _resource_properties(old, new)
            if properties:
                changes.append(ResourceChange("update", urn, new["type"], new["name"], properties))
            else:
                unchanged += 1
    counts = {op: sum(c.op == op for c in changes) for op in ("create", "update", "delete")}
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
    parser.add_argument("--stack", default="dev", help="stack name (default: dev)")
    parser.add_argument("--out", type=Path, help="write the Markdown here instead of stdout")
    args = parser.parse_args(argv)
    try:
        base, head = load_base(args.base), load_render(args.head)
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
