"""Post the infrastructure diff of a merge request as one note per stack.

    python -m tools.mr_note --stack dev --preview-json P.json [--preview-text P.txt] [--preview-exit-code N]
    python -m tools.mr_note --stack dev --render-head build/dev [--render-base build/base/dev]

The first form reads ``pulumi preview --json`` (and the ``--diff`` text, where policy violations are);
the second compares two offline renders (``tools.render_diff``) for pipelines without credentials.
The note is written to ``--out`` (the job artifact, never truncated) and, in a merge-request pipeline,
upserted on the MR through the GitLab REST API: a hidden per-stack marker finds the tool's earlier note,
which is edited in place. Needs CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID and a token with `api`
scope in FLYWHEEL_MR_NOTE_TOKEN (or the variable named by --token-variable).

Exit codes: 0 note written (and posted, or posting skipped or refused: the reason is printed),
2 unreadable input, 3 posting failed and --fail-on-api-error was given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.preview_markdown import (
    ABSENT,
    NOTE_LIMIT,
    Diagnostic,
    PolicyViolation,
    PropertyChange,
    Report,
    ResourceChange,
    TextBlock,
    format_path,
    lookup,
    marker,
    parse_path,
    property_changes,
    redact_text,
    render_note,
    sanitize,
    strip_colors,
    summarize_counts,
    urn_type_and_name,
)

EXIT_OK, EXIT_INPUT, EXIT_API = 0, 2, 3
NOTE_API_VARIABLE = "FLYWHEEL_MR_NOTE_TOKEN"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
# Steps the engine emits around one logical change, folded into the change they belong to.
OP_FOLD = {
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "read-replacement": "read",
    "import-replacement": "import",
    "discard-replaced": "discard",
}
FAILED_SUMMARIES = frozenset({"preview failed", "update failed"})
OP_RANK = ["replace", "delete", "create", "update", "import", "read", "refresh", "discard"]

# --- the preview digest -> Report --------------------------------------------------------------


def report_from_preview(stack: str, digest: dict[str, Any] | None, text: str | None, exit_code: int | None) -> Report:
    """The note's content from a ``pulumi preview --json`` digest plus the ``--diff`` text output."""
    digest = digest or {}
    changes: dict[str, ResourceChange] = {}
    for step in digest.get("steps") or []:
        change = _step_change(step)
        if change is None:
            continue
        earlier = changes.get(change.urn)
        if earlier is None or _rank(change.op) < _rank(earlier.op):
            if earlier is not None and not change.properties:
                change.properties = earlier.properties
            changes[change.urn] = change
        elif not earlier.properties:
            earlier.properties = change.properties
    counts = {str(op): int(n) for op, n in (digest.get("changeSummary") or {}).items() if int(n)}
    if not counts:
        counts = summarize_counts(c.op for c in changes.values())
    diagnostics = [d for d in map(_diagnostic, digest.get("diagnostics") or []) if not _restates_failure(d)]
    violations = parse_policy_violations(text or "")
    report = Report(
        stack=stack,
        title=f"Pulumi preview: stack `{stack}`",
        counts=counts,
        changes=sorted(changes.values(), key=lambda c: (c.type, c.name)),
        diagnostics=diagnostics,
        violations=violations,
    )
    if not digest:
        report.failure = "`pulumi preview --json` produced no digest"
    elif exit_code and not any(v.blocking for v in violations) and not any(d.severity == "error" for d in diagnostics):
        report.failure = f"`pulumi preview` exited with code {exit_code}"
    if digest.get("maybeCorrupt"):
        report.notes.append("⚠️ The engine reports that some resources **may be corrupt** (`maybeCorrupt`).")
    if text:
        report.blocks.append(TextBlock("Full <code>pulumi preview --diff</code> output", redact_text(text)))
    return report


def _diagnostic(entry: dict[str, Any]) -> Diagnostic:
    # The digest's message starts with the severity's prefix (display/json.go:196 `p.Prefix + p.Message`,
    # prefix "error: " / "warning: " from sdk diag/sink.go:191-210): the note shows the severity once.
    severity = str(entry.get("severity", "info"))
    message = str(entry.get("message", "")).removeprefix(f"{severity}: ")
    return Diagnostic(severity, message, str(entry.get("urn", "")))


def _restates_failure(diagnostic: Diagnostic) -> bool:
    """The engine's closing "preview failed" (resource/deploy/deployment_executor.go:129-136, 484-487): it follows
    every failure, a mandatory policy violation included, and says nothing the rest of the note does not."""
    return diagnostic.severity == "error" and not diagnostic.urn and diagnostic.message.strip() in FAILED_SUMMARIES


def _rank(op: str) -> int:
    return OP_RANK.index(op) if op in OP_RANK else len(OP_RANK)


def _step_change(step: dict[str, Any]) -> ResourceChange | None:
    op = OP_FOLD.get(str(step.get("op")), str(step.get("op")))
    urn = str(step.get("urn", ""))
    old: dict[str, Any] = step.get("oldState") or {}
    new: dict[str, Any] = step.get("newState") or {}
    typ, name = urn_type_and_name(urn)
    typ = str(new.get("type") or old.get("type") or typ)
    if op in {"same", "remove-pending-replace"} or typ == ROOT_STACK_TYPE:
        return None
    change = ResourceChange(
        op=op,
        urn=urn,
        type=typ,
        name=name,
        replace_reasons=[str(r) for r in step.get("replaceReasons") or []],
        protected=bool(old.get("protect")),
        retain_on_delete=bool(old.get("retainOnDelete")),
    )
    if op in {"update", "replace"}:
        change.properties = _step_properties(step, typ, old, new)
    return change


def _step_properties(step: dict[str, Any], typ: str, old: dict[str, Any], new: dict[str, Any]) -> list[PropertyChange]:
    """Changed properties from ``detailedDiff`` (or, from providers without it, ``diffReasons``)."""
    replace_reasons = set(step.get("replaceReasons") or [])
    detailed: dict[str, dict[str, Any]] = step.get("detailedDiff") or {}
    entries = [
        (path, str(d.get("kind", "update")), bool(d.get("inputDiff", True))) for path, d in sorted(detailed.items())
    ]
    if not entries:
        entries = [
            (str(k), "update-replace" if k in replace_reasons else "update", True)
            for k in step.get("diffReasons") or []
        ]
    safe = {
        side: (sanitize(typ, old.get(side) or {}), sanitize(typ, new.get(side) or {})) for side in ("inputs", "outputs")
    }
    properties: list[PropertyChange] = []
    for path, kind, input_diff in entries:
        side = "inputs" if input_diff else "outputs"
        tokens = parse_path(path)
        replaces = kind.endswith("-replace") or path in replace_reasons
        base_kind = kind.removesuffix("-replace")
        old_raw = lookup(old.get(side) or {}, tokens)
        new_raw = lookup(new.get(side) or {}, tokens)
        old_safe, new_safe = (lookup(tree, tokens) for tree in safe[side])
        expanded: list[PropertyChange] = []
        if base_kind == "update" and isinstance(old_raw, dict | list) and isinstance(new_raw, dict | list):
            expanded = property_changes(old_raw, new_raw, old_safe, new_safe, tokens, replaces)
        if not expanded:
            expanded = [
                PropertyChange(
                    path=format_path(tokens),
                    kind=base_kind,
                    old=ABSENT if base_kind == "add" else old_safe,
                    new=ABSENT if base_kind == "delete" else new_safe,
                    replaces=replaces,
                )
            ]
        properties += expanded
    return properties


# One violation as `pulumi preview --diff` prints it (pkg/v3 backend/display/diff.go:235-290, v3.274.1, with
# prefix and linePrefix "" as RenderDiffEvent passes them, diff.go:161-162):
#   "    <pack>@v<version> [exempted: <ids>] [<level>] [severity: <s>]  <policy>  (<type>: <name>)<message>"
# where the exemption, the severity and the resource clause (diff.go:187-195) are optional, and the message is
# the engine's (engine/events.go:705-716) = pulumi-policy's "<description>\n<violation message>"
# (pulumi_policy/policy.py:1341-1343): glued to the clause, its later lines unindented.
_POLICY_LINE = re.compile(
    r"^    (?P<pack>\S+)@v(?P<version>\S+) "
    r"(?:\[exempted(?:: (?P<exceptions>[^\]]*))?\] )?"
    r"\[(?P<level>mandatory|advisory|remediate|disabled)\](?: \[severity: (?P<severity>[a-z]+)\])?"
    r"  (?P<policy>[a-z0-9][a-z0-9_-]*)(?:  \((?P<resource>\S+: [^)]*)\))?(?P<first>.*)$"
)
# Lines of the diff display that are not a violation message: indented resource lines, headers, diagnostics.
_DISPLAY_LINE = re.compile(
    r"^(\s|$|Resources:|Outputs:|Diagnostics:|Duration:|Policy Packs run:|Previewing |Updating |"
    r"(warning|error|info|debug): )"
)


def parse_policy_violations(text: str) -> list[PolicyViolation]:
    """Policy violations in `pulumi preview --diff` text (the JSON digest omits them: display/json.go:249-251)."""
    violations: list[PolicyViolation] = []
    lines = strip_colors(text).splitlines()
    for index, raw in enumerate(lines):
        match = _POLICY_LINE.match(raw)
        if not match:
            continue
        message = [match["first"].strip()]
        for following in lines[index + 1 :]:
            if _DISPLAY_LINE.match(following) or _POLICY_LINE.match(following):
                break
            message.append(following.strip())
        exceptions = tuple(e.strip() for e in (match["exceptions"] or "").split(",") if e.strip())
        violations.append(
            PolicyViolation(
                level=match["level"],
                policy=match["policy"],
                resource=match["resource"] or "",
                message=" — ".join(part for part in message if part),
                exceptions=exceptions,
            )
        )
    return violations


# --- posting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeRequest:
    api_url: str
    project_id: str
    iid: int
    token: str


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    note_id: int


class NoteError(Exception):
    """GitLab refused or failed a request; the message says what, and what to check."""


HINTS = {
    401: "the token was refused (unset, expired or revoked); {variable} needs a token with `api` scope",
    403: "the token may not write notes here; it needs `api` scope and at least the Reporter role",
    404: "project {project} or merge request !{iid} was not found, or the token cannot see it",
}


def _explain(err: Exception, doing: str, mr: MergeRequest, variable: str) -> NoteError:
    import gitlab

    if isinstance(err, gitlab.exceptions.GitlabError):
        code = err.response_code
        reason = str(err.error_message or "").strip()[:300]
        hint = HINTS.get(code or 0, "GitLab answered with a server error; retry the job" if (code or 0) >= 500 else "")
        detail = f"HTTP {code}" + (f" ({reason})" if reason else "")
    else:
        detail, hint = f"{type(err).__name__}: {err}", f"cannot reach {mr.api_url}"
    message = f"{doing} failed: {detail}"
    if hint:
        message += " — " + hint.format(variable=variable, project=mr.project_id, iid=mr.iid)
    return NoteError(message)


def _base_url(api_url: str) -> str:
    """python-gitlab wants the instance URL; CI_API_V4_URL ends in /api/v4."""
    return re.sub(r"/api/v4/?$", "", api_url.rstrip("/"))


def upsert_note(mr: MergeRequest, stack: str, body: str, token_variable: str = NOTE_API_VARIABLE) -> Posted:
    """Edit this tool's note for ``stack`` on the MR, or create it. Other notes are never touched.

    Our note is a non-system note whose body starts with the stack's marker. Newest first; a note that
    carries the marker but is not ours (GitLab answers 403 to the edit) is skipped.
    """
    import gitlab
    import requests

    client = gitlab.Gitlab(_base_url(mr.api_url), private_token=mr.token, timeout=30)
    merge_request = client.projects.get(mr.project_id, lazy=True).mergerequests.get(mr.iid, lazy=True)
    head = marker(stack)
    failures = (gitlab.exceptions.GitlabError, requests.RequestException)
    try:
        notes = list(merge_request.notes.list(iterator=True, sort="desc", order_by="created_at"))
    except failures as err:
        raise _explain(err, f"listing the notes of !{mr.iid}", mr, token_variable) from None
    for note in notes:
        if note.attributes.get("system") or not str(note.attributes.get("body", "")).startswith(head):
            continue
        note_id = int(note.attributes["id"])
        try:
            merge_request.notes.update(note_id, {"body": body})
            return Posted("updated", note_id)
        except gitlab.exceptions.GitlabUpdateError as err:
            if err.response_code == 403:
                continue  # someone else's note quoting our marker: leave it alone
            raise _explain(err, f"updating note {note_id}", mr, token_variable) from None
        except failures as err:
            raise _explain(err, f"updating note {note_id}", mr, token_variable) from None
    try:
        created = merge_request.notes.create({"body": body})
    except failures as err:
        raise _explain(err, f"creating a note on !{mr.iid}", mr, token_variable) from None
    return Posted("created", int(created.attributes["id"]))


def merge_request_from_env(env: dict[str, str], token_variable: str) -> MergeRequest | str:
    """The MR to post on, or why posting is skipped."""
    missing = [k for k in ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID") if not env.get(k)]
    if missing:
        return f"not a merge-request pipeline ({', '.join(missing)} unset)"
    token = env.get(token_variable, "")
    if not token:
        return f"{token_variable} is not set (a project access token with `api` scope, Reporter role)"
    if not env["CI_MERGE_REQUEST_IID"].isdigit():
        return f"CI_MERGE_REQUEST_IID is not a number (got {env['CI_MERGE_REQUEST_IID']!r})"
    return MergeRequest(env["CI_API_V4_URL"], env["CI_PROJECT_ID"], int(env["CI_MERGE_REQUEST_IID"]), token)


# --- entry point ---------------------------------------------------------------------------------


def _artifact_pointer(out: Path | None, env: dict[str, str]) -> str | None:
    if out is None:
        return env.get("CI_JOB_URL")
    job = env.get("CI_JOB_URL")
    try:
        relative = out.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:  # outside the project folder: not an artifact path GitLab can link to
        return f"{job}/artifacts/browse" if job else f"`{out}`"
    return f"{job}/artifacts/file/{relative}" if job else f"`{relative}`"


def _source_line(env: dict[str, str], origin: str) -> str:
    parts = [origin]
    if env.get("CI_COMMIT_SHORT_SHA"):
        parts.append(f"commit {env['CI_COMMIT_SHORT_SHA']}")
    if env.get("CI_JOB_URL"):
        parts.append(f"[job]({env['CI_JOB_URL']})")
    parts.append("written by `tools/mr_note.py`")
    return " · ".join(parts)


def _read_json(path: Path) -> dict[str, Any] | None:
    text = path.read_text()
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        # `pulumi preview --json` may print diagnostics before failing: take the last JSON object.
        start = text.rfind("\n{")
        if start < 0:
            return None
        try:
            value = json.loads(text[start:])
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def build_report(args: argparse.Namespace) -> tuple[Report, str]:
    if args.preview_json is not None:
        digest = _read_json(args.preview_json)
        text = args.preview_text.read_text(errors="replace") if args.preview_text else None
        return report_from_preview(args.stack, digest, text, args.preview_exit_code), "`pulumi preview`"
    from tools.render_diff import load_base, load_render, report_from_renders

    base, head = load_base(args.render_base, missing_ok=True), load_render(args.render_head)
    return report_from_renders(args.stack, base, head), "offline render (`make render`), no credentials"


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(prog="python -m tools.mr_note", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name (one note per stack)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preview-json", type=Path, help="output of `pulumi preview --json`")
    source.add_argument("--render-head", type=Path, help="offline render of the MR (build/<stack>)")
    parser.add_argument("--preview-text", type=Path, help="output of `pulumi preview --diff` (policy violations)")
    parser.add_argument("--preview-exit-code", type=int, help="exit code of `pulumi preview`")
    parser.add_argument("--render-base", type=Path, help="offline render of the target branch (omit: none)")
    parser.add_argument("--out", type=Path, help="write the full note here (the job artifact)")
    parser.add_argument("--no-post", action="store_true", help="only write the note, never call GitLab")
    parser.add_argument("--fail-on-api-error", action="store_true", help="exit 3 when the note cannot be posted")
    parser.add_argument("--token-variable", default=NOTE_API_VARIABLE, help="variable holding the API token")
    args = parser.parse_args(argv)

    try:
        report, origin = build_report(args)
    except (OSError, ValueError) as err:
        print(f"mr_note: cannot read the input: {err}", file=sys.stderr)
        return EXIT_INPUT
    report.source = _source_line(env, origin)
    report.artifact = _artifact_pointer(args.out, env)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_note(report, limit=sys.maxsize))
        print(f"mr_note: note for stack '{args.stack}' written to {args.out}")
    body = render_note(report, limit=NOTE_LIMIT)
    if args.no_post:
        if not args.out:
            print(body)
        return EXIT_OK

    target = merge_request_from_env(env, args.token_variable)
    if isinstance(target, str):
        print(f"mr_note: not posting: {target}", file=sys.stderr)
        return EXIT_API if args.fail_on_api_error and "pipeline" not in target else EXIT_OK
    try:
        posted = upsert_note(target, args.stack, body, args.token_variable)
    except NoteError as err:
        print(f"mr_note: the note for stack '{args.stack}' was not posted: {err}", file=sys.stderr)
        return EXIT_API if args.fail_on_api_error else EXIT_OK
    print(f"mr_note: {posted.action} note {posted.note_id} on !{target.iid} ({len(body):,} characters)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
