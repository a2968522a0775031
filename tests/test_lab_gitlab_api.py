"""The GitLab REST API stand-in (lab/gitlab_api), driven by python-gitlab as a real client.

The stand-in is not GitLab: these tests pin that it answers the calls the real gitlab provider and
gitlab-runner make the way GitLab's API docs say, and that its request record never holds a secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gitlab
import pytest

from lab.gitlab_api import REDACTION, GitLabStandIn, read_record, seeded

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "glpat-lab-stand-in-0001"
GROUP, GROUP_ID = "acme/platform", 4242
PROJECT, PROJECT_ID = "acme/platform/ci-templates", 7
ATTIC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl"


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[GitLabStandIn]:
    with seeded(TOKEN, {GROUP: GROUP_ID}, {PROJECT: PROJECT_ID}, record=tmp_path / "requests.jsonl") as server:
        yield server


@pytest.fixture
def gl(stand_in: GitLabStandIn) -> gitlab.Gitlab:
    client = gitlab.Gitlab(stand_in.url, private_token=TOKEN)
    client.auth()
    return client


def test_a_wrong_or_missing_token_is_refused(stand_in: GitLabStandIn) -> None:
    for client in (gitlab.Gitlab(stand_in.url, private_token="nope"), gitlab.Gitlab(stand_in.url)):
        with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
            client.auth()
    # the provider authenticates with a Bearer header (OAuth style); GitLab accepts a PAT there too
    bearer = gitlab.Gitlab(stand_in.url, oauth_token=TOKEN)
    bearer.auth()
    assert bearer.user is not None and bearer.user.username == "flywheel-bot"
    assert [e["auth"] for e in read_record(stand_in.record or Path())] == ["private-token", "none", "bearer"]


def test_groups_and_projects_are_found_by_path_or_id(gl: gitlab.Gitlab) -> None:
    assert gl.groups.get(GROUP).id == GROUP_ID
    assert gl.groups.get(GROUP_ID).full_path == GROUP
    assert gl.projects.get(PROJECT).id == PROJECT_ID
    with pytest.raises(gitlab.exceptions.GitlabGetError) as missing:
        gl.groups.get("acme/elsewhere")
    assert missing.value.response_code == 404


def test_user_runner_lifecycle_and_runner_verify(gl: gitlab.Gitlab, stand_in: GitLabStandIn) -> None:
    created = gl.user.runners.create(
        {"runner_type": "group_type", "group_id": GROUP_ID, "tag_list": ["flywheel-nix"], "run_untagged": False}
    )
    assert created.token.startswith("glrt-")
    runner = gl.runners.get(created.id)
    assert (runner.runner_type, runner.tag_list, runner.run_untagged) == ("group_type", ["flywheel-nix"], False)
    assert [g["id"] for g in runner.groups] == [GROUP_ID]

    runner.description = "nix pool"
    runner.save()
    assert gl.runners.get(created.id).description == "nix pool"

    # what `gitlab-runner register` does with a glrt- token (common/network.go VerifyRunnerRequest)
    gl.runners.verify(created.token)
    with pytest.raises(gitlab.exceptions.GitlabVerifyError):
        gl.runners.verify("glrt-not-a-runner")

    gl.runners.delete(created.id)
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        gl.runners.get(created.id)

    verify = [e for e in read_record(stand_in.record or Path()) if e["path"] == "/api/v4/runners/verify"]
    assert [e["body"]["token"] for e in verify] == [REDACTION, REDACTION]
    assert created.token not in (stand_in.record or Path()).read_text()


def test_a_group_runner_needs_an_existing_group(gl: gitlab.Gitlab) -> None:
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as no_group:
        gl.user.runners.create({"runner_type": "group_type"})
    assert no_group.value.response_code == 400
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as unknown:
        gl.user.runners.create({"runner_type": "group_type", "group_id": 1})
    assert unknown.value.response_code == 404


def test_masked_and_hidden_variable_never_returns_its_value(gl: gitlab.Gitlab, stand_in: GitLabStandIn) -> None:
    group = gl.groups.get(GROUP)
    group.variables.create({"key": "ATTIC_TOKEN", "value": ATTIC_TOKEN, "masked_and_hidden": True, "masked": False})
    group.variables.create({"key": "ATTIC_SERVER", "value": "https://attic.example.com"})
    shown = group.variables.get("ATTIC_TOKEN")
    assert (shown.value, shown.masked, shown.hidden) == (None, True, True)
    assert {v.key: v.value for v in group.variables.list()} == {
        "ATTIC_TOKEN": None,
        "ATTIC_SERVER": "https://attic.example.com",
    }
    # the stand-in keeps the value (jobs would get it); only the API hides it
    assert stand_in.state.variables[GROUP_ID][("ATTIC_TOKEN", "*")].value == ATTIC_TOKEN

    record = (stand_in.record or Path()).read_text()
    assert ATTIC_TOKEN not in record
    bodies = {e["body"].get("key"): e["body"] for e in read_record(stand_in.record or Path()) if e["method"] == "POST"}
    assert bodies["ATTIC_TOKEN"]["value"] == REDACTION
    assert bodies["ATTIC_SERVER"]["value"] == "https://attic.example.com"


def test_variable_rules_of_the_api(gl: gitlab.Gitlab) -> None:
    group = gl.groups.get(GROUP)
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as unmaskable:
        group.variables.create({"key": "SHORT", "value": "abc", "masked": True})
    assert unmaskable.value.response_code == 400
    group.variables.create({"key": "NIX_CONFIG_EXTRA", "value": "max-jobs = auto"})
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as taken:
        group.variables.create({"key": "NIX_CONFIG_EXTRA", "value": "again"})
    assert "already been taken" in str(taken.value)
    variable = group.variables.get("NIX_CONFIG_EXTRA")
    variable.value = "max-jobs = 4"
    variable.save()
    assert group.variables.get("NIX_CONFIG_EXTRA").value == "max-jobs = 4"
    group.variables.delete("NIX_CONFIG_EXTRA")
    assert group.variables.list() == []


def test_repository_file_commits(gl: gitlab.Gitlab, stand_in: GitLabStandIn) -> None:
    project = gl.projects.get(PROJECT)
    path = "templates/greedy-build.yml"
    project.files.create({"file_path": path, "branch": "main", "content": "spec: {}\n", "commit_message": "add"})
    with pytest.raises(gitlab.exceptions.GitlabCreateError):
        project.files.create({"file_path": path, "branch": "main", "content": "x", "commit_message": "again"})
    current = project.files.get(path, ref="main")
    assert current.decode() == b"spec: {}\n"
    assert current.encoding == "base64"

    stale = {"branch": "main", "content": "y", "commit_message": "stale", "last_commit_id": "0" * 40}
    with pytest.raises(gitlab.exceptions.GitlabUpdateError):
        project.files.update(path, stale)
    current.content = "spec: {inputs: {}}\n"
    current.save(branch="main", commit_message="update", last_commit_id=current.last_commit_id)
    assert project.files.get(path, ref="main").decode() == b"spec: {inputs: {}}\n"

    project.files.delete(path, branch="main", commit_message="[DELETE]: add")
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        project.files.get(path, ref="main")
    assert [c.title for c in project.commits.list()] == ["[DELETE]: add", "update", "add"]
    # the file path arrives URL-encoded (python-gitlab addresses the project by its ID once fetched)
    paths = {e["path"] for e in read_record(stand_in.record or Path())}
    assert f"/api/v4/projects/{PROJECT_ID}/repository/files/templates%2Fgreedy-build.yml" in paths


def test_unknown_endpoints_are_404_not_silently_accepted(gl: gitlab.Gitlab) -> None:
    with pytest.raises(gitlab.exceptions.GitlabListError) as error:
        gl.projects.list()
    assert error.value.response_code == 404


def test_cli_serves_on_the_chosen_port_and_records(tmp_path: Path) -> None:
    record = tmp_path / "cli.jsonl"
    command = [sys.executable, "-m", "lab.gitlab_api", "--port", "0", "--record", str(record), "--group", "a/b=12"]
    env = {**os.environ, "GITLAB_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        assert gitlab.Gitlab(url, private_token=TOKEN).groups.get("a/b").id == 12
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert json.loads(record.read_text().splitlines()[0])["path"] == "/api/v4/groups/a%2Fb"
    assert TOKEN not in record.read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--group", "no-id"], "'no-id' is not FULL/PATH=ID"),
        ([], "--token (or $GITLAB_TOKEN) is required"),
    ],
)
def test_cli_bad_arguments_get_a_one_line_error(arguments: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GITLAB_TOKEN"} | {"PYTHONPATH": str(ROOT)}
    if arguments:
        env["GITLAB_TOKEN"] = TOKEN
    result = subprocess.run(
        [sys.executable, "-m", "lab.gitlab_api", *arguments], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_release_from_a_branch_creates_its_tag(gl: gitlab.Gitlab, stand_in: GitLabStandIn) -> None:
    project = gl.projects.get(PROJECT)
    project.files.create({"file_path": "templates/a.yml", "branch": "main", "content": "a", "commit_message": "add"})
    head = project.commits.list()[0].id
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as no_ref:
        project.releases.create({"tag_name": "1.0.0", "name": "no ref"})
    assert no_ref.value.response_code == 422
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as bad_ref:
        project.releases.create({"tag_name": "1.0.0", "ref": "no-such-branch"})
    assert bad_ref.value.response_code == 400
    assert stand_in.state.projects[PROJECT_ID].tags == {}

    created = project.releases.create(
        {"tag_name": "1.0.0", "ref": "main", "name": "greedy-build 1.0.0", "description": "first"}
    )
    assert (created.tag_name, created.name, created.description) == ("1.0.0", "greedy-build 1.0.0", "first")
    assert created.commit["id"] == head and created.tag_path == f"/{PROJECT}/-/tags/1.0.0"
    assert created.released_at.endswith("Z") and created.upcoming_release is False
    assert project.tags.get("1.0.0").target == head
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as again:
        project.releases.create({"tag_name": "1.0.0", "ref": "main"})
    assert again.value.response_code == 409

    fetched = project.releases.get("1.0.0")
    assert fetched.created_at == created.created_at and fetched.name == "greedy-build 1.0.0"
    fetched.description = "first, described"
    fetched.save()
    assert project.releases.get("1.0.0").description == "first, described"

    # an existing tag needs no ref; a historical released_at is kept
    later = project.releases.create({"tag_name": "1.0.0-again", "ref": "1.0.0", "released_at": "2020-01-01T00:00:00Z"})
    assert later.released_at == "2020-01-01T00:00:00.000Z" and later.commit["id"] == head

    project.releases.delete("1.0.0")
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        project.releases.get("1.0.0")
    assert project.tags.get("1.0.0").name == "1.0.0"  # deleting a release keeps its tag
    recorded = [(e["method"], e["path"], e["status"]) for e in read_record(stand_in.record or Path())]
    assert ("POST", f"/api/v4/projects/{PROJECT_ID}/releases", 201) in recorded
    assert ("DELETE", f"/api/v4/projects/{PROJECT_ID}/releases/1.0.0", 200) in recorded
