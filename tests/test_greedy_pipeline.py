"""The rendered greedy build component in a consumer pipeline, run by gitlab-ci-local (4.73.0, shell executor).

gitlab-ci-local is an emulator of GitLab's pipeline semantics (needs, stages, rules, inputs,
before/after_script); the shell, Nix and the jobs' commands are real. The consumer pipeline is
``tests/fixtures/ci/consumer.gitlab-ci.yml``; each test adapts its job scripts and the include's inputs.
The Nix jobs reuse the real-Nix lab of test_attic_bootstrap (loopback Attic stand-in, STAND-IN client).
"""

from __future__ import annotations

import copy
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.ci_template import COMPONENT_FILE, render_component
from components.config import SUBSTRATE_MODE, CiTemplateConfig
from tests.conftest import require_tool
from tests.test_attic_bootstrap import Lab, open_lab
from tools import nix_lab

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"
CONSUMER = FIXTURES / "consumer.gitlab-ci.yml"
# What a flywheel runner injects into every job.
CONTRACT = {
    "BAZEL_REMOTE_CACHE": "grpc://bazel-cache.flywheel.svc.cluster.local:9092",
    "GF_BAZEL_SUBSTRATE_MODE": SUBSTRATE_MODE,
}


def _stamp(name: str) -> str:
    return f'date +%s.%N > "$CI_PROJECT_DIR/{name}"'


def consumer(inputs: dict[str, Any], jobs: dict[str, list[str]]) -> dict[str, Any]:
    """The fixture consumer with the include's inputs updated and some jobs' scripts replaced."""
    document: dict[str, Any] = copy.deepcopy(yaml.safe_load(CONSUMER.read_text()))
    document["include"][0]["inputs"].update(inputs)
    for job, script in jobs.items():
        document[job]["script"] = script
    return document


def make_project(root: Path, pipeline: dict[str, Any], variables: dict[str, str]) -> Path:
    project = root / "project"
    (project / "templates").mkdir(parents=True)
    (project / COMPONENT_FILE).write_text(render_component(CiTemplateConfig()))
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (project / ".gitlab-ci-local-variables.yml").write_text(yaml.safe_dump(variables))
    git = ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "consumer"], cwd=project, check=True)
    return project


def gitlab_ci_local(
    project: Path, *jobs: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    tool = require_tool("gitlab-ci-local")
    require_tool("rsync")
    command = [tool, "--home", str(project.parent / "gcl-home"), "--no-color", *jobs]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with open_lab(tmp_path) as opened:
        yield opened


def stamp(project: Path, name: str) -> float:
    return float((project / name).read_text())


# --- the greedy topology ------------------------------------------------------------------------------


def test_validation_and_build_run_in_parallel_and_deploy_waits_for_both(tmp_path: Path) -> None:
    seconds = 3
    pipeline = consumer(
        {
            "nix-build": False,
            "bazel-command": f"{_stamp('build-start')}; sleep {seconds}; {_stamp('build-end')}",
            "contract-check-command": "echo consumer contract check",
        },
        {
            "validate": [_stamp("validate-start"), f"sleep {seconds}", _stamp("validate-end")],
            "deploy": [_stamp("deploy-start"), "echo deployed"],
        },
    )
    project = make_project(tmp_path, pipeline, CONTRACT)
    started = time.monotonic()
    result = gitlab_ci_local(project)
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    build_start, build_end = stamp(project, "build-start"), stamp(project, "build-end")
    validate_start, validate_end = stamp(project, "validate-start"), stamp(project, "validate-end")
    deploy_start = stamp(project, "deploy-start")
    print(
        f"\nMEASURED greedy topology: validate and build {seconds} s each; span to deploy "
        f"{deploy_start - min(build_start, validate_start):.2f} s (sequential would be >= {2 * seconds} s); "
        f"gitlab-ci-local wall {wall:.2f} s"
    )
    assert abs(build_start - validate_start) < 1.5, "build and validation start together"
    assert build_start < validate_end and validate_start < build_end, "they overlap"
    assert deploy_start >= max(build_end, validate_end), "deploy waits for both"
    assert deploy_start - min(build_start, validate_start) < 1.5 * seconds, "about max(...), not the sum"
    assert "consumer contract check" in result.stdout


def test_a_disabled_build_toggle_leaves_the_optional_need_satisfied(tmp_path: Path) -> None:
    """The fixture's deploy needs both build jobs with `optional: true`: nix-build switched off, deploy runs."""
    pipeline = consumer(
        {"nix-build": False, "bazel-command": "echo built", "contract-check-command": "true"},
        {"validate": ["echo lint ok"], "deploy": ["echo deployed > deployed.txt"]},
    )
    project = make_project(tmp_path, pipeline, CONTRACT)
    result = gitlab_ci_local(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "deployed.txt").exists()


def test_failing_validation_stops_deploy_but_not_the_build(tmp_path: Path) -> None:
    pipeline = consumer(
        {"nix-build": False, "bazel-command": "sleep 1; echo built > build-ran.txt", "contract-check-command": "true"},
        {"validate": ["echo lint failed; exit 1"], "deploy": ["echo deployed > deployed.txt"]},
    )
    project = make_project(tmp_path, pipeline, CONTRACT)
    result = gitlab_ci_local(project)
    assert result.returncode != 0, "the pipeline fails"
    assert (project / "build-ran.txt").exists(), "the build ran to the end anyway"
    assert not (project / "deployed.txt").exists(), "deploy did not run"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"GF_BAZEL_SUBSTRATE_MODE": "shared-cache-backed"}, "BAZEL_REMOTE_CACHE is not set"),
        ({**CONTRACT, "GF_BAZEL_SUBSTRATE_MODE": "local"}, "GF_BAZEL_SUBSTRATE_MODE is 'local'"),
        ({"BAZEL_REMOTE_CACHE": CONTRACT["BAZEL_REMOTE_CACHE"]}, "GF_BAZEL_SUBSTRATE_MODE is '<unset>'"),
    ],
)
def test_bazel_job_fails_loudly_when_the_cache_contract_is_broken(
    tmp_path: Path, variables: dict[str, str], named: str
) -> None:
    pipeline = consumer(
        {"nix-build": False, "bazel-command": "echo built > build-ran.txt", "contract-check-command": "true"}, {}
    )
    project = make_project(tmp_path, pipeline, variables)
    result = gitlab_ci_local(project, "greedy:bazel-build")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "cache contract BROKEN" in output and named in output, output
    assert not (project / "build-ran.txt").exists(), "never falls back to an uncached build"


# --- the Nix job, end to end -----------------------------------------------------------------------------


def _nix_job_project(lab: Lab, tmp: Path, chain: nix_lab.Chain) -> tuple[Path, dict[str, str]]:
    env = lab.job_env("gcl")
    variables = {
        key: value
        for key, value in env.items()
        if key.startswith(("ATTIC_", "GREEDY_ATTIC_")) and key not in ("GREEDY_ATTIC_CLIENT_REF",)
    }
    variables["GREEDY_ATTIC_FALLBACK_CLIENT_REF"] = ".#attic-client"
    variables["NIX_CONFIG"] = env["NIX_CONFIG"]
    pipeline = consumer(
        {"bazel-build": False, "installable": chain.installable, "attic-client-ref": lab.client_ref}, {}
    )
    pipeline["deploy"]["needs"] = ["greedy:nix-build"]
    project = make_project(tmp, pipeline, variables)
    process_env = {k: v for k, v in env.items() if not k.startswith(("ATTIC_", "GREEDY_ATTIC_"))}
    return project, process_env


def _job_logs(project: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in (project / ".gitlab-ci-local").rglob("*.log"))


def test_nix_job_publishes_every_path_through_the_template(lab: Lab, tmp_path: Path) -> None:
    chain = nix_lab.write_chain(tmp_path / "chain", 3, seconds=1.0)
    project, env = _nix_job_project(lab, tmp_path, chain)
    result = gitlab_ci_local(project, "greedy:nix-build", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "greedy-attic: publishing: attic watch-store" in output
    assert "greedy-attic: attic watch-store stopped" in output
    assert re.search(r"greedy-attic: pushed what the watcher had not of \d+ new paths", output), output
    outs = nix_lab.chain_out_paths(chain, lab.admin_env)
    assert all(lab.in_cache(outs))
    assert (project / "result").is_symlink()
    logs = _job_logs(project)
    assert "greedy-attic: publishing" in logs, "gitlab-ci-local kept the job log"
    assert lab.token not in output and lab.token not in logs


def test_nix_job_that_fails_still_publishes_what_it_built(lab: Lab, tmp_path: Path) -> None:
    chain = nix_lab.write_chain(tmp_path / "chain", 3, fail_at=3, seconds=0.5)
    project, env = _nix_job_project(lab, tmp_path, chain)
    result = gitlab_ci_local(project, "greedy:nix-build", env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, "the job fails as the build does"
    assert "planned failure of lab-" in output
    assert re.search(r"greedy-attic: pushed what the watcher had not of \d+ new paths", output), "the script's teardown"
    assert all(lab.in_cache(nix_lab.chain_out_paths(chain, lab.admin_env, upto=2)))
    assert lab.token not in output and lab.token not in _job_logs(project)


def test_nix_job_without_attic_variables_builds_and_skips_publication(tmp_path: Path) -> None:
    require_tool("nix")
    env = nix_lab.nix_env(tmp_path / "home")
    chain = nix_lab.write_chain(tmp_path / "chain", 2)
    pipeline = consumer(
        {"bazel-build": False, "installable": chain.installable, "attic-client-ref": "path:/nonexistent#attic"}, {}
    )
    pipeline["deploy"]["needs"] = ["greedy:nix-build"]
    project = make_project(tmp_path, pipeline, {})
    started = time.monotonic()
    result = gitlab_ci_local(project, "greedy:nix-build", env=env)
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    skipped = [line for line in output.splitlines() if "cache publication skipped" in line]
    assert len(skipped) == 1 and "ATTIC_SERVER ATTIC_CACHE ATTIC_PUBLIC_KEY not set" in skipped[0]
    assert "nothing to publish" in output
    print(f"\nMEASURED gitlab-ci-local greedy:nix-build without Attic: {seconds:.2f} s wall")
    # the state directory defaults to the builds dir, private to the job
    assert list(project.glob(".greedy-attic-*/status")), "state under $CI_BUILDS_DIR"
