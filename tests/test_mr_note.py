"""tools/mr_note.py: the note rendered from preview digests, and its upsert against a GitLab stand-in.

The digests in tests/fixtures/preview/ follow the documented shape of `pulumi preview --json`
(pulumi's display.PreviewDigest: steps with op/urn/oldState/newState/diffReasons/replaceReasons/
detailedDiff, diagnostics, changeSummary); the Pulumi CLI itself cannot run on this machine.
The GitLab side is a loopback HTTP server answering the three endpoints the tool uses (list, create and
update merge-request notes) with GitLab's status codes, pagination headers and note size limit: a
stand-in for GitLab, driven through the real python-gitlab client.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tools import mr_note
from tools.preview_markdown import (
    NOTE_LIMIT,
    Report,
    format_path,
    marker,
    parse_path,
    redact_text,
    render_note,
    secret_key,
)

FIXTURES = Path(__file__).parent / "fixtures" / "preview"
TOKEN = "glpat-flywheel-test-token-0001"
OTHER_TOKEN = "glpat-someone-else-000000002"
PROJECT_ID = 42
MR_IID = 7
# Values in secrets.json / policy_violations.txt that stand for leaked secrets: none may reach a note.
LEAKS = [
    "glrt-OLDPLAINTEXTLEAK1",
    "glrt-NEWPLAINTEXTLEAK2",
    "maskedhintvalueold1",
    "maskedhintvaluenew2",
    "c2lnbmluZ2tleW9sZA==",
    "c2lnbmluZ2tleW5ldw==",
    "hunter2old",
    "hunter2new",
    "sentinelleak0ld",
    "sentinelleakn3w",
    "kubepass123",
]


def digest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def note_for(name: str, text: str | None = None, exit_code: int | None = None) -> str:
    return render_note(mr_note.report_from_preview("dev", digest(name), text, exit_code))


def section(note: str, heading: str) -> str:
    """The text from a `#### heading` to the next heading."""
    start = note.index(f"#### {heading}")
    following = note.find("\n#### ", start + 1)
    return note[start : following if following > 0 else None]


# --- rendering the note ----------------------------------------------------------------------------


def test_creates_only_lists_new_resources_without_destructive_callout() -> None:
    note = note_for("creates_only")
    lines = note.splitlines()
    assert lines[0] == marker("dev")
    assert "✅ **3 to create**, no replacements or deletions" in note
    assert "| ➕ create | 3 |" in note and "| · unchanged | 1 |" in note
    assert "Replacements and deletions" not in note
    for typ, name in [
        ("kubernetes:core/v1:Namespace", "flywheel"),
        ("kubernetes:core/v1:ConfigMap", "attic-server-config"),
        ("kubernetes:apps/v1:Deployment", "attic-api"),
    ]:
        assert f"**`{typ}`** (1 create)" in note
        assert f"| `{name}` | ➕ create | | |" in note
    assert "pulumi:pulumi:Stack" not in note  # the root stack's `same` step is not a change


def test_update_shows_each_changed_property_from_the_detailed_diff() -> None:
    note = note_for("update_detailed")
    assert "✅ **3 to update**, no replacements or deletions" in note
    assert (
        '| `attic-api` | 🔄 update | `metadata.annotations["flywheel.dev/config-checksum"]` | `a1b2c3` → `d4e5f6` |'
        in note
    )
    assert "| | | `spec.replicas` | `2` → `3` |" in note
    assert "`spec.template.spec.containers[0].image` | `ghcr.io/zhaofengli/attic:4dbdbee4" in note
    # unchanged parts of the Deployment are not listed
    assert "spec.selector" not in note and "args" not in note
    # a provider without detailedDiff: the property comes from diffReasons
    assert (
        "| `attic-server` | 🔄 update | `description` | `Attic server` → `Attic server (managed by flywheel)` |" in note
    )
    # the embedded server.toml changes as a unified diff
    assert '| `attic-server-config` | 🔄 update | `data["server.toml"]` | _text, 8 lines_ → _text, 12 lines_ |' in note
    diff = note[note.index("<details><summary><code>attic-server-config</code>") :]
    assert "+heartbeat = true\n" in diff and "+[chunking]\n" in diff and " [storage]\n" in diff


def test_update_note_matches_the_reviewed_snapshot() -> None:
    """The whole note for one digest, as a reviewer sees it (tests/fixtures/preview/update_detailed.md)."""
    expected = (FIXTURES / "update_detailed.md").read_text()
    assert note_for("update_detailed") + "\n" == expected


def test_replacement_is_called_out_first_with_its_reason() -> None:
    note = note_for("replace")
    assert note.splitlines()[4] == "⚠️ **Destructive changes**: 1 to replace"
    callouts = section(note, "⚠️ Replacements and deletions")
    assert (
        "- 🔁 **replace** `kubernetes:core/v1:PersistentVolumeClaim` `bazel-cache-data` — "
        "replaced because `spec` changes" in callouts
    )
    assert note.index("Replacements and deletions") < note.index("#### Changed resources")
    # create-replacement / replace / delete-replaced steps are one change
    assert note.count("| `bazel-cache-data` |") == 1
    assert "| `bazel-cache-data` | 🔁 replace | `spec.storageClassName` 🔁 | `standard` → `fast-ssd` |" in note


def test_deletions_are_called_out_with_protection_and_retention() -> None:
    note = note_for("delete")
    assert "⚠️ **Destructive changes**: 3 to delete" in note
    callouts = section(note, "⚠️ Replacements and deletions")
    assert "- 🗑️ **delete** `kubernetes:helm.sh/v3:Release` `runners-dind`" in callouts
    assert "- 🗑️ **delete** `gitlab:index/userRunner:UserRunner` `runners-dind`" in callouts
    bucket = next(line for line in callouts.splitlines() if "storage-bucket" in line)
    assert "**protected**: `pulumi up` refuses to delete it" in bucket
    assert "retainOnDelete: removed from the stack, the object itself stays" in bucket


def test_diagnostics_fail_the_verdict_and_keep_credentials_out() -> None:
    note = note_for("diagnostics")
    assert "❌ **Failed**: 1 error · 1 to create" in note
    diagnostics = section(note, "Diagnostics")
    assert diagnostics.index("❌ **error**") < diagnostics.index("⚠️ **warning**")
    assert "configured Kubernetes cluster is unreachable" in diagnostics
    # the digest's message carries the CLI's "error: " prefix (display/json.go:196): shown once, not twice
    assert "**error** `default_4_34_2`: configured Kubernetes cluster is unreachable" in diagnostics
    assert "**warning** `attic-api`: resource attic-api: the apps/v1 Deployment" in diagnostics
    assert "error: error" not in diagnostics and ": warning:" not in diagnostics
    assert "https://admin:[secret]@10.0.0.1:6443" in diagnostics and "kubepass123" not in note
    assert "_1 informational message(s) in the full output_" in diagnostics


def test_policy_violations_come_from_the_diff_text_as_the_cli_prints_them() -> None:
    """The fixture follows the CLI's diff display (see tests/fixtures/preview/README.md: read from the code)."""
    text = (FIXTURES / "policy_violations.txt").read_text()
    violations = mr_note.parse_policy_violations(text)
    assert [(v.level, v.policy, v.resource, v.exceptions) for v in violations] == [
        ("mandatory", "runner-cache-contract", "kubernetes:helm.sh/v3:Release: runners-nix", ()),
        ("advisory", "attic-replicas-spread", "kubernetes:apps/v1:Deployment: attic-api", ()),
        ("mandatory", "runner-limits", "kubernetes:helm.sh/v3:Release: runners-legacy", ("legacy-runners",)),
        ("mandatory", "attic-gc-present", "pulumi:pulumi:Stack: flywheel-dev", ()),
    ]
    assert violations[0].message == (
        "Runners inject BAZEL_REMOTE_CACHE and GF_BAZEL_SUBSTRATE_MODE. — "
        "runner pool 'nix' does not set GF_BAZEL_SUBSTRATE_MODE=shared-cache-backed"
    )
    assert violations[3].message.endswith("no CronJob runs atticd --mode garbage-collector-once — found 0")
    note = note_for("update_detailed", text, exit_code=1)
    # the exempted mandatory violation blocks nothing
    assert "⛔ **Blocked by policy**: 2 mandatory violations · 3 to update" in note
    assert "- ⛔ **mandatory** `runner-cache-contract` on `kubernetes:helm.sh/v3:Release: runners-nix`" in note
    exempted = "`runner-limits` on `kubernetes:helm.sh/v3:Release: runners-legacy` _(exempted: legacy-runners)_"
    assert f"- ⚠️ **mandatory** {exempted}" in note
    # the full text is collapsed at the end, without terminal colours
    details = note[note.index("<details><summary>Full <code>pulumi preview --diff</code> output") :]
    assert "Previewing update (dev):" in details and "\x1b[" not in details and "warning: colored line" in details


def test_the_progress_displays_policies_block_is_not_what_diff_prints() -> None:
    """`Policies:` with `- [level]` items is the progress display's summary (display/progress.go:866-876): the
    preview job runs with --diff, whose text never has it; nothing there is taken for a violation."""
    progress = (
        "Policies:\n    ❌ flywheel-cache-policies@v0.1.0 (local: policies)\n        - [mandatory]  x  (a:b:C: n)\n"
    )
    assert mr_note.parse_policy_violations(progress) == []


def test_secret_bearing_properties_are_never_shown() -> None:
    text = (FIXTURES / "policy_violations.txt").read_text()
    note = note_for("secrets", text, exit_code=1)
    for leak in LEAKS:
        assert leak not in note
    secret = "🔒 `[secret]` → 🔒 `[secret]`"
    # engine-marked secret ("[secret]"), a masked GitLab variable, a plaintext value under a secret key,
    # an env entry named like a secret, and the secret sentinel object: the change is listed, the value not
    assert f"| `attic-db-url` | 🔄 update | `stringData.url` | {secret} |" in note
    assert f"| `attic-token` | 🔄 update | `value` | {secret} |" in note
    assert f"| `extra-deploy-key` | 🔄 update | `value` | {secret} |" in note
    assert f"| | | `values.runnerToken` | {secret} |" in note
    assert f"`spec.template.spec.containers[0].env[0].value` | {secret} |" in note
    assert f"| | | `password` | {secret} |" in note
    # credentials inside a URL are cut out, the rest stays readable
    assert "`postgresql://attic:[secret]@db.flywheel:5432/attic`" in note
    # non-secret neighbours still show
    assert "| `runners-nix` | 🔄 update | `values.concurrent` | `4` → `8` |" in note
    assert "`host` | `db.example.com` → `db2.example.com` |" in note


def test_missing_digest_or_failed_preview_says_so() -> None:
    no_digest = render_note(mr_note.report_from_preview("dev", None, "error: could not load plugin\n", 1))
    assert "❌ **Failed**: `pulumi preview --json` produced no digest" in no_digest
    assert "error: could not load plugin" in no_digest
    failed = render_note(mr_note.report_from_preview("dev", digest("creates_only"), "", 1))
    assert "❌ **Failed**: `pulumi preview` exited with code 1 · 3 to create" in failed


def test_no_changes() -> None:
    empty = {"steps": [], "changeSummary": {"same": 31}, "duration": 1}
    note = render_note(mr_note.report_from_preview("prod", empty, None, 0))
    assert note.startswith(marker("prod") + "\n")
    assert "✅ **No changes**" in note and "| · unchanged | 31 |" in note and "Changed resources" not in note


def test_oversized_note_is_cut_to_the_limit_with_a_pointer() -> None:
    huge = copy.deepcopy(digest("update_detailed"))
    config_map = next(s for s in huge["steps"] if s["urn"].endswith("::attic-server-config"))
    config_map["newState"]["inputs"]["data"]["server.toml"] = "".join(f"key{i} = {i}\n" for i in range(120_000))
    text = "".join(f"    + line {i} of a very long preview\n" for i in range(40_000))
    report = mr_note.report_from_preview("dev", huge, text, 0)
    report.artifact = "https://gitlab.example.com/acme/flywheel/-/jobs/99/artifacts/file/build/preview/dev.md"
    full = render_note(report, limit=10**9)
    assert len(full) > 2 * NOTE_LIMIT
    note = render_note(report)
    assert len(note) <= NOTE_LIMIT
    assert "**This note is truncated** to fit GitLab's 1,000,000-character limit" in note
    assert report.artifact in note
    # the summary survives the cut; the cut block is closed so the Markdown stays well-formed
    assert "✅ **3 to update**" in note and "| | | `spec.replicas` | `2` → `3` |" in note
    assert "— truncated" in note and note.count("<details>") == note.count("</details>")
    assert note.count("```") % 2 == 0


@pytest.mark.parametrize(
    ("path", "tokens"),
    [
        ("spec.replicas", ["spec", "replicas"]),
        ("spec.template.spec.containers[0].image", ["spec", "template", "spec", "containers", 0, "image"]),
        ('metadata.labels["app.kubernetes.io/name"]', ["metadata", "labels", "app.kubernetes.io/name"]),
        ('data["server.toml"]', ["data", "server.toml"]),
    ],
)
def test_property_paths_round_trip(path: str, tokens: list[str | int]) -> None:
    assert parse_path(path) == tokens
    assert format_path(tokens) == path


def test_secret_key_names() -> None:
    for key in ["password", "runnerToken", "runner-token", "secretAccessKey", "ATTIC_TOKEN", "DATABASE_URL"]:
        assert secret_key(key), key
    for key in ["secretName", "tlsSecretName", "tokenValidity", "accessKeyId", "secretKeyRef", "replicas", "key"]:
        assert not secret_key(key), key


def test_text_redaction_keeps_references_and_placeholders() -> None:
    text = 'token = "glrt-abc123"\nATTIC_TOKEN: $ATTIC_TOKEN\npassword: [secret]\nreplicas: 3\n'
    assert redact_text(text) == "token = [secret]\nATTIC_TOKEN: $ATTIC_TOKEN\npassword: [secret]\nreplicas: 3\n"


def test_table_cells_escape_pipes() -> None:
    step = copy.deepcopy(digest("update_detailed"))
    variable = next(s for s in step["steps"] if "groupVariable" in s["urn"])
    variable["newState"]["inputs"]["description"] = "a | b"
    note = render_note(mr_note.report_from_preview("dev", step, None, 0))
    row = next(line for line in note.splitlines() if "`description`" in line)
    assert row.endswith("`a \\| b` |")
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # four cells: the escaped pipe is no separator


# --- the GitLab stand-in ---------------------------------------------------------------------------


@dataclass
class StandIn:
    """State of the stand-in GitLab: notes per MR, users by token, forced failures, a request log."""

    users: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            TOKEN: {"id": 11, "username": "flywheel-bot"},
            OTHER_TOKEN: {"id": 12, "username": "alice"},
        }
    )
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)  # HTTP method -> status to answer
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000
    url: str = ""

    def add_note(self, iid: int, body: str, token: str = OTHER_TOKEN, system: bool = False) -> dict[str, Any]:
        self.next_id += 1
        note = {
            "id": self.next_id,
            "body": body,
            "author": self.users[token],
            "system": system,
            "created_at": f"2026-01-01T00:{self.next_id % 60:02d}:00Z",
            "noteable_iid": iid,
        }
        self.notes.setdefault(iid, []).append(note)
        return note


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    NOTES = re.compile(rf"^/api/v4/projects/{PROJECT_ID}/merge_requests/(\d+)/notes(?:/(\d+))?$")

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if "json" in (self.headers.get("Content-Type") or ""):
            loaded: dict[str, Any] = json.loads(raw or "{}")
            return loaded
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _handle(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        state.requests.append((method, url.path))
        user = state.users.get(self.headers.get("PRIVATE-TOKEN") or "")
        if user is None:
            return self._reply(401, {"message": "401 Unauthorized"})
        if method in state.fail:
            status = state.fail[method]
            return self._reply(status, {"message": f"{status} stand-in failure"})
        match = self.NOTES.match(url.path)
        if match is None:
            return self._reply(404, {"message": "404 Project Not Found"})
        iid = int(match.group(1))
        if iid not in state.notes:
            return self._reply(404, {"message": "404 Not found"})
        notes = state.notes[iid]
        if method == "GET" and match.group(2) is None:
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            ordered = sorted(notes, key=lambda n: n["id"], reverse=query.get("sort", "desc") == "desc")
            page, per_page = int(query.get("page", 1)), int(query.get("per_page", 20))
            chunk = ordered[(page - 1) * per_page : page * per_page]
            pages = max(1, -(-len(ordered) // per_page))
            headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(ordered))}
            headers["X-Total-Pages"] = str(pages)
            if page < pages:
                next_query = dict(query, page=str(page + 1), per_page=str(per_page))
                encoded = "&".join(f"{k}={v}" for k, v in next_query.items())
                headers["X-Next-Page"] = str(page + 1)
                headers["Link"] = f'<{state.url}{url.path}?{encoded}>; rel="next"'
            return self._reply(200, chunk, headers)
        body = self._body().get("body", "")
        if len(body) > NOTE_LIMIT:  # GitLab's own validation
            return self._reply(400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}})
        if method == "POST" and match.group(2) is None:
            token = self.headers.get("PRIVATE-TOKEN") or ""
            return self._reply(201, state.add_note(iid, body, token))
        if method == "PUT" and match.group(2) is not None:
            note = next((n for n in notes if n["id"] == int(match.group(2))), None)
            if note is None:
                return self._reply(404, {"message": "404 Note Not Found"})
            if note["author"]["id"] != user["id"]:
                return self._reply(403, {"message": "403 Forbidden"})
            note["body"] = body
            return self._reply(200, note)
        return self._reply(405, {"message": "405 Method Not Allowed"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


class _Server(ThreadingHTTPServer):
    state: StandIn


@contextlib.contextmanager
def serve_stand_in() -> Iterator[StandIn]:
    """A loopback stand-in for GitLab's merge-request notes API, on a free port (MR !7 of project 42)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = StandIn(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.state.notes[MR_IID] = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gitlab_stand_in() -> Iterator[StandIn]:
    with serve_stand_in() as stand_in:
        yield stand_in


def ci_env(stand_in: StandIn, **overrides: str) -> dict[str, str]:
    env = {
        "CI_API_V4_URL": f"{stand_in.url}/api/v4",
        "CI_PROJECT_ID": str(PROJECT_ID),
        "CI_MERGE_REQUEST_IID": str(MR_IID),
        "CI_JOB_URL": "https://gitlab.example.com/acme/flywheel/-/jobs/99",
        "CI_COMMIT_SHORT_SHA": "abc1234",
        "FLYWHEEL_MR_NOTE_TOKEN": TOKEN,
    }
    env.update(overrides)
    return env


def run(stand_in: StandIn, fixture: str, *extra: str, env: dict[str, str] | None = None, stack: str = "dev") -> int:
    argv = ["--stack", stack, "--preview-json", str(FIXTURES / f"{fixture}.json"), *extra]
    return mr_note.main(argv, env if env is not None else ci_env(stand_in))


def ours(stand_in: StandIn, stack: str = "dev") -> list[dict[str, Any]]:
    return [n for n in stand_in.notes[MR_IID] if n["author"]["id"] == 11 and n["body"].startswith(marker(stack))]


def test_first_run_creates_the_note(gitlab_stand_in: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(gitlab_stand_in, "creates_only") == 0
    [note] = gitlab_stand_in.notes[MR_IID]
    assert note["body"] == render_note(note_report("creates_only"))
    assert ("POST", f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR_IID}/notes") in gitlab_stand_in.requests
    assert f"created note {note['id']} on !{MR_IID}" in capsys.readouterr().out


def note_report(fixture: str) -> Report:
    report = mr_note.report_from_preview("dev", digest(fixture), None, None)
    env = ci_env(StandIn())
    report.source = mr_note._source_line(env, "`pulumi preview`")
    report.artifact = mr_note._artifact_pointer(None, env)
    return report


def test_later_runs_edit_the_same_note_found_across_pages(gitlab_stand_in: StandIn) -> None:
    assert run(gitlab_stand_in, "creates_only") == 0
    # 30 newer notes push ours to the second page of the (newest-first) listing
    for i in range(30):
        gitlab_stand_in.add_note(MR_IID, f"review comment {i}")
    prod = gitlab_stand_in.add_note(MR_IID, marker("prod") + "\nprod note", token=TOKEN)
    assert run(gitlab_stand_in, "update_detailed") == 0
    assert run(gitlab_stand_in, "delete") == 0
    [note] = ours(gitlab_stand_in)
    assert "3 to delete" in note["body"] and "3 to update" not in note["body"]
    assert len(gitlab_stand_in.notes[MR_IID]) == 32
    assert prod["body"] == marker("prod") + "\nprod note"  # another stack's note is another note
    assert [m for m, _ in gitlab_stand_in.requests].count("POST") == 1
    assert [m for m, _ in gitlab_stand_in.requests].count("PUT") == 2


def test_other_users_notes_are_left_alone(gitlab_stand_in: StandIn) -> None:
    quoting = gitlab_stand_in.add_note(MR_IID, "> " + marker("dev") + "\nwhy does this replace the PVC?")
    copied = gitlab_stand_in.add_note(MR_IID, marker("dev") + "\npasted from an old pipeline")
    system = gitlab_stand_in.add_note(MR_IID, marker("dev") + " added 1 commit", system=True)
    before = copy.deepcopy([quoting, copied, system])
    assert run(gitlab_stand_in, "creates_only") == 0
    assert run(gitlab_stand_in, "update_detailed") == 0
    assert [quoting, copied, system] == before
    [note] = ours(gitlab_stand_in)
    assert "3 to update" in note["body"]
    puts = [path for method, path in gitlab_stand_in.requests if method == "PUT"]
    # only the copied note (which starts with the marker) was tried, refused with 403, then skipped
    assert puts.count(f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR_IID}/notes/{copied['id']}") == 1
    assert not any(path.endswith(f"/{quoting['id']}") or path.endswith(f"/{system['id']}") for path in puts)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            lambda s, env: env.update(FLYWHEEL_MR_NOTE_TOKEN="glpat-revoked-token-123"),
            "listing the notes of !7 failed: HTTP 401 (401 Unauthorized) — the token was refused (unset, expired "
            "or revoked); FLYWHEEL_MR_NOTE_TOKEN needs a token with `api` scope",
        ),
        (
            lambda s, env: env.update(CI_MERGE_REQUEST_IID="8"),
            "listing the notes of !8 failed: HTTP 404 (404 Not found) — project 42 or merge request !8 was not "
            "found, or the token cannot see it",
        ),
        (
            lambda s, env: s.fail.update(POST=500),
            "creating a note on !7 failed: HTTP 500 (500 stand-in failure) — GitLab answered with a server "
            "error; retry the job",
        ),
    ],
    ids=["401", "404", "500"],
)
def test_api_errors_are_reported_without_failing_unless_asked(
    gitlab_stand_in: StandIn, capsys: pytest.CaptureFixture[str], setup: Any, expected: str
) -> None:
    env = ci_env(gitlab_stand_in)
    setup(gitlab_stand_in, env)
    assert run(gitlab_stand_in, "creates_only", env=env) == 0
    captured = capsys.readouterr()
    assert f"mr_note: the note for stack 'dev' was not posted: {expected}" in captured.err
    assert run(gitlab_stand_in, "creates_only", "--fail-on-api-error", env=env) == 3
    captured_again = capsys.readouterr()
    for stream in (captured.out, captured.err, captured_again.out, captured_again.err):
        assert TOKEN not in stream and env["FLYWHEEL_MR_NOTE_TOKEN"] not in stream
    assert gitlab_stand_in.notes.get(MR_IID) == []


def test_unreachable_gitlab_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stand_in = StandIn(url="http://127.0.0.1:9")  # discard port: nothing listens
    assert run(stand_in, "creates_only", "--out", str(tmp_path / "dev.md")) == 0
    err = capsys.readouterr().err
    assert "listing the notes of !7 failed: ConnectionError" in err and "cannot reach http://127.0.0.1:9/api/v4" in err
    assert (tmp_path / "dev.md").read_text().startswith(marker("dev"))


def test_outside_merge_request_pipelines_nothing_is_posted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(StandIn(), "creates_only", "--out", str(tmp_path / "n.md"), env={}) == 0
    assert "not posting: not a merge-request pipeline" in capsys.readouterr().err
    env = ci_env(StandIn(url="http://127.0.0.1:9"))
    del env["FLYWHEEL_MR_NOTE_TOKEN"]
    assert run(StandIn(), "creates_only", env=env) == 0
    assert "not posting: FLYWHEEL_MR_NOTE_TOKEN is not set" in capsys.readouterr().err
    assert run(StandIn(), "creates_only", "--fail-on-api-error", env=env) == 3


def test_oversized_note_is_posted_truncated_and_kept_whole_in_the_artifact(
    gitlab_stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = copy.deepcopy(digest("update_detailed"))
    config_map = next(s for s in huge["steps"] if s["urn"].endswith("::attic-server-config"))
    config_map["newState"]["inputs"]["data"]["server.toml"] = "".join(f"key{i} = {i}\n" for i in range(150_000))
    (tmp_path / "huge.json").write_text(json.dumps(huge))
    (tmp_path / "huge.txt").write_text("".join(f"    + line {i}\n" for i in range(60_000)))
    monkeypatch.chdir(tmp_path)
    argv = ["--stack", "dev", "--preview-json", "huge.json", "--preview-text", "huge.txt"]
    assert mr_note.main([*argv, "--out", "build/preview/dev.md"], ci_env(gitlab_stand_in)) == 0
    [note] = gitlab_stand_in.notes[MR_IID]  # the stand-in refuses bodies over the limit, as GitLab does
    assert len(note["body"]) <= NOTE_LIMIT
    pointer = "https://gitlab.example.com/acme/flywheel/-/jobs/99/artifacts/file/build/preview/dev.md"
    assert f"The full report is in the job artifact: {pointer}" in note["body"]
    artifact = (tmp_path / "build/preview/dev.md").read_text()
    assert len(artifact) > NOTE_LIMIT and "This note is truncated" not in artifact
    assert "+key149999 = 149999" in artifact


def test_offline_render_mode_posts_the_render_diff(gitlab_stand_in: StandIn, tmp_path: Path) -> None:
    """--render-head/--render-base: the same note tool posts the desired-state diff (no credentials)."""
    for side, replicas in (("base", 2), ("head", 3)):
        folder = tmp_path / side
        (folder / "files").mkdir(parents=True)
        resource = {
            "urn": "urn:pulumi:dev::flywheel::kubernetes:apps/v1:Deployment::attic-api",
            "type": "kubernetes:apps/v1:Deployment",
            "name": "attic-api",
            "inputs": {"spec": {"replicas": replicas}},
            "options": {"protect": False, "retainOnDelete": False, "dependsOn": []},
        }
        (folder / "resources.json").write_text(json.dumps([resource]))
        (folder / "policy-report.json").write_text(json.dumps({"violations": []}))
    argv = ["--stack", "dev", "--render-head", str(tmp_path / "head"), "--render-base", str(tmp_path / "base")]
    assert mr_note.main(argv, ci_env(gitlab_stand_in)) == 0
    [note] = gitlab_stand_in.notes[MR_IID]
    assert note["body"].startswith(marker("dev") + "\n\n### Desired-state diff (offline render): stack `dev`")
    assert "| `attic-api` | 🔄 update | `spec.replicas` | `2` → `3` |" in note["body"]
    assert "offline render (`make render`), no credentials" in note["body"]


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--stack", "dev", "--preview-json", str(tmp_path / "missing.json"), "--no-post"]
    assert mr_note.main(argv, {}) == 2
    assert "mr_note: cannot read the input" in capsys.readouterr().err
    assert mr_note.main(["--stack", "dev", "--render-head", str(tmp_path), "--no-post"], {}) == 2


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "note.md"
    args = ["--stack", "dev", "--preview-json", str(FIXTURES / "replace.json"), "--out", str(out), "--no-post"]
    result = subprocess.run(
        [sys.executable, "-m", "tools.mr_note", *args],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CI_")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith(marker("dev"))


def test_violations_and_diagnostics_of_a_real_cli_preview() -> None:
    """Output captured from the real CLI 3.274.1 (tests/fixtures/preview/captured/README.md)."""
    captured = FIXTURES / "captured"
    text = (captured / "policy_preview_diff.txt").read_text()
    digest = json.loads((captured / "policy_preview.json").read_text())
    violations = mr_note.parse_policy_violations(text)
    assert [(v.level, v.policy, v.resource, v.message) for v in violations] == [
        (
            "mandatory",
            "size-limit",
            "pulumi-python:dynamic:Resource: runners-nix",
            "Things are small. — resource 'runners-nix' has size 4 — second line",
        ),
        ("advisory", "advice", "pulumi-python:dynamic:Resource: runners-nix", "Some advice. — just advice"),
        ("mandatory", "gc-present", "pulumi:pulumi:Stack: cap-dev", "Exactly one GC. — no CronJob runs atticd"),
    ]
    note = render_note(mr_note.report_from_preview("dev", digest, text, 1))
    assert "⛔ **Blocked by policy**: 2 mandatory violations · 2 to create" in note
    # the engine's closing "preview failed" error restates the violations: not counted as an error of its own
    diagnostics = section(note, "Diagnostics")
    assert "preview failed" not in diagnostics
    assert "⚠️ **warning**: using pulumi-language-python from $PATH" in diagnostics
    assert "warning: using" not in diagnostics
    # without the violations, the same failure still fails the note (by the exit code)
    failed = render_note(mr_note.report_from_preview("dev", digest, "", 1))
    assert "❌ **Failed**: `pulumi preview` exited with code 1" in failed
