"""The real Pulumi CLI runs the stand-in plugins against the GitLab API stand-in.

`pulumi up`, a second `pulumi up` (no changes, no write to GitLab), `pulumi refresh` (no drift), an
in-place update and `pulumi destroy`, on a small program with every gitlab/random/tls resource type
flywheel uses (tests/fixtures/lab_cli_program). The CLI (real, 3.274.1) and the Python language host (the
lab's stand-in, lab/standins/pulumi-language-python) are what `make lab` builds; without them this test
skips (and fails under CI=true). `make e2e` runs it after building them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.build import CACHE, by_name
from lab.gitlab_api import GitLabStandIn, read_record, seeded
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "tests" / "fixtures" / "lab_cli_program"
TOKEN = "glpat-lab-cli-0001"
WRITES = {"POST", "PUT", "DELETE"}

# five CLI runs start the language host and three plugins each: minutes on a loaded 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pulumi-cli"), pytest.mark.timeout(900)]


def _tool(name: str) -> Path:
    """The lab's build of ``name`` (lab.build), else another complete build of the same version in its cache."""
    counterpart = by_name(name)
    if counterpart.built():
        return counterpart.bin_dir / name
    others = sorted(CACHE.glob(f"bin/{name}-{counterpart.version}-*/.complete"))
    if others:
        return others[-1].parent / name
    message = f"{name} {counterpart.version} is not built under {CACHE / 'bin'} (make lab builds it)"
    # `make e2e` builds the lab first: under CI=true a missing build is a failure, never a skip
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@pytest.fixture
def gitlab_api(tmp_path: Path) -> Iterator[GitLabStandIn]:
    groups, projects = {"acme/platform": 4242}, {"acme/platform/ci-templates": 7}
    with seeded(TOKEN, groups, projects, record=tmp_path / "requests.jsonl") as server:
        yield server


@pytest.fixture
def pulumi(tmp_path: Path, gitlab_api: GitLabStandIn) -> Any:
    cli, language_host = _tool("pulumi"), _tool("pulumi-language-python")
    program = tmp_path / "program"
    shutil.copytree(PROGRAM, program)
    project = {"name": "labcheck", "runtime": {"name": "python", "options": {"virtualenv": str(ROOT / ".venv")}}}
    (program / "Pulumi.yaml").write_text(json.dumps(project))
    (tmp_path / "state").mkdir()
    path = [str(ROOT / "lab" / "providers" / "bin"), str(language_host.parent), str(cli.parent), os.environ["PATH"]]
    env = {
        **os.environ,
        "PATH": os.pathsep.join(path),
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "lab-cli",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [str(cli), *args], cwd=program, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    run("stack", "init", "lab")
    run("config", "set", "labcheck:url", gitlab_api.url)
    run("config", "set", "--secret", "gitlab:token", TOKEN)
    return run


def test_up_again_refresh_update_destroy(pulumi: Any, gitlab_api: GitLabStandIn) -> None:
    first = pulumi("up", "--yes")
    assert "+ 11 created" in first
    assert re.search(r"runner_token\s*: \[secret\]", first) and re.search(r"key_id\s*: \[secret\]", first)
    api = gitlab_api.state
    assert [r.tag_list for r in api.runners.values()] == [["flywheel-nix"]]
    attic_token = api.variables[4242][("ATTIC_TOKEN", "*")]
    assert (attic_token.masked, attic_token.hidden) == (True, True)
    assert api.projects[7].files["main"]["templates/greedy-build.yml"].content.startswith(b"spec: {}\n---\n")
    # the release is tagged at the commit that added the component file (it depends on it)
    assert api.projects[7].tags["1.0.0"].commit_id == api.projects[7].commits[-1].id
    assert api.projects[7].releases["1.0.0"].name == "greedy-build 1.0.0"

    writes = len([e for e in read_record(gitlab_api.record or Path()) if e["method"] in WRITES])
    assert "11 unchanged" in pulumi("up", "--yes")
    assert "11 unchanged" in pulumi("refresh", "--yes")
    assert len([e for e in read_record(gitlab_api.record or Path()) if e["method"] in WRITES]) == writes

    state = pulumi("stack", "export")
    for secret in (attic_token.value, next(iter(api.runners.values())).token, "PRIVATE KEY", TOKEN):
        assert secret not in state and secret not in first

    pulumi("config", "set", "labcheck:runnerDescription", "pool nix v2")
    updated = pulumi("up", "--yes")
    assert "~ 1 updated" in updated and "10 unchanged" in updated
    assert [r.description for r in api.runners.values()] == ["pool nix v2"]

    pulumi("destroy", "--yes")
    assert api.runners == {} and api.variables[4242] == {}
    assert "templates/greedy-build.yml" not in api.projects[7].files["main"]
    assert list(api.projects[7].releases) == ["1.0.0"]  # retain_on_delete: destroy leaves the release in GitLab
