""".gitlab-ci.yml (this repository's own pipeline): the official GitLab CI schema, its structure, which jobs
each kind of pipeline gets (real gitlab-ci-local), and real runs of the render job and of the preview
job's offline path (gitlab-ci-local's shell executor, a local git origin, the GitLab stand-in of
tests/test_mr_note.py), and the plan -> deploy hand-over with a stand-in `pulumi` script. The real
`pulumi preview`/`pulumi up` path needs the Pulumi CLI and a cluster, which this machine does not have."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, require_tool
from tests.test_mr_note import MR_IID, PROJECT_ID, TOKEN, serve_stand_in
from tools.preview_markdown import marker

CI_FILE = ROOT / ".gitlab-ci.yml"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
# Files the pipeline's jobs need from the project (a fresh clone has exactly these).
PROJECT_FILES = [
    "components",
    "policies",
    "tools",
    "__main__.py",
    "Pulumi.yaml",
    "Pulumi.dev.yaml",
    "Makefile",
    "requirements.txt",
    "requirements-dev.txt",
    ".gitlab-ci.yml",
]
PREDEFINED = "CI_PIPELINE_SOURCE,CI_PROJECT_ID,CI_MERGE_REQUEST_IID,CI_MERGE_REQUEST_TARGET_BRANCH_NAME,CI_API_V4_URL"


def pipeline() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CI_FILE.read_text())
    return loaded


def job(name: str) -> dict[str, Any]:
    """A job with its `extends` chain merged (one level of keys, as GitLab merges hashes deeply)."""
    jobs = pipeline()
    merged: dict[str, Any] = {}
    chain = [name]
    while "extends" in jobs[chain[-1]]:
        chain.append(jobs[chain[-1]]["extends"])
    for part in reversed(chain):
        merged.update({k: v for k, v in jobs[part].items() if k != "extends"})
    return merged


def script(name: str) -> str:
    return "\n".join(job(name)["script"])


# --- schema ----------------------------------------------------------------------------------------


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    command = [str(tool), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_validates_against_the_official_gitlab_ci_schema() -> None:
    result = check_jsonschema(CI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    broken = pipeline()
    broken["deploy:dev"]["resource_group"] = ["not", "a", "string"]
    broken["render"]["artifacts"]["when"] = "sometimes"
    (tmp_path / ".gitlab-ci.yml").write_text(yaml.safe_dump(broken))
    result = check_jsonschema(tmp_path / ".gitlab-ci.yml")
    assert result.returncode == 1 and "resource_group" in result.stdout + result.stderr


# --- structure -------------------------------------------------------------------------------------


def test_every_stack_file_has_a_preview_a_plan_and_a_deploy_job() -> None:
    assert "dev" in STACKS
    jobs = pipeline()
    resource_groups = set()
    for stack in STACKS:
        preview, plan, deploy = job(f"preview:{stack}"), job(f"plan:{stack}"), job(f"deploy:{stack}")
        assert {preview["variables"]["STACK"], plan["variables"]["STACK"], deploy["variables"]["STACK"]} == {stack}
        assert deploy["environment"]["name"] == stack
        # a literal per-stack lock: variables in resource_group are not expanded reliably by GitLab
        assert stack in deploy["resource_group"] and "$" not in deploy["resource_group"]
        resource_groups.add(deploy["resource_group"])
    assert len(resource_groups) == len(STACKS)
    per_stack = {n for n in jobs if n.startswith(("preview:", "plan:", "deploy:"))}
    assert per_stack == {f"{kind}:{stack}" for kind in ("preview", "plan", "deploy") for stack in STACKS}


def test_jobs_run_what_the_issue_asks() -> None:
    assert job("test")["script"] == [".ci/run"]
    render = script("render")
    assert "for file in Pulumi.*.yaml" in render and 'make render STACK="$stack"' in render
    assert job("render")["artifacts"]["paths"] == ["build/"] and job("render")["artifacts"]["when"] == "always"
    preview = script("preview:dev")
    assert (
        'pulumi preview --stack "$STACK" --diff --policy-pack policies --non-interactive' in preview
        and 'pulumi preview --stack "$STACK" --policy-pack policies --non-interactive --json' in preview
    )
    assert '-m tools.mr_note --stack "$STACK" --preview-json' in preview
    assert '-m tools.mr_note --stack "$STACK" --render-head' in preview
    assert job("preview:dev")["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    # the raw preview digest holds the stack's values, as a plan does
    assert job("preview:dev")["artifacts"]["access"] == "developer"
    plan = script("plan:dev")
    assert (
        'pulumi preview --stack "$STACK" --diff --policy-pack policies --non-interactive --color never'
        ' --save-plan "build/plan/$STACK.json" >"build/plan/$STACK.txt" 2>&1'
        in " ".join(plan.replace("\\\n", " ").split())
    )
    assert 'cat "build/plan/$STACK.txt"' in plan  # the diff is in the log the deployer reviews
    [plan_rule] = job("plan:dev")["rules"]
    assert "when" not in plan_rule and "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in plan_rule["if"]
    deploy = job("deploy:dev")
    assert deploy["script"][-1] == (
        'pulumi up --stack "$STACK" --yes --policy-pack policies --non-interactive --diff --color never'
        ' --plan "build/plan/$STACK.json"'
    )
    [rule] = deploy["rules"]
    assert rule["when"] == "manual" and rule["if"] == plan_rule["if"]
    assert deploy["interruptible"] is False


def test_every_deploy_applies_the_plan_of_its_own_pipeline() -> None:
    """deploy:<stack> needs plan:<stack> (so the plan is this pipeline's, this commit's) with its artifacts,
    and passes exactly the file the plan job saved and keeps to `pulumi up --plan`."""
    for stack in STACKS:
        plan, deploy = job(f"plan:{stack}"), job(f"deploy:{stack}")
        plan_file = "build/plan/$STACK.json"
        assert f'--save-plan "{plan_file}"' in script(f"plan:{stack}")
        assert any(plan_file.startswith(path) for path in plan["artifacts"]["paths"])
        assert plan["artifacts"]["when"] == "always" and plan["artifacts"]["expire_in"]
        assert plan["artifacts"]["access"] == "developer"  # the plan holds the stack's values
        up = deploy["script"][-1]
        assert up.startswith("pulumi up ") and f'--plan "{plan_file}"' in up and "--yes" in up
        assert not any("pulumi up" in line for line in deploy["script"][:-1])  # no other, unplanned `up`
        needs = {need["job"]: need for need in deploy["needs"]}
        assert needs[f"plan:{stack}"].get("artifacts", True) is True
        assert {"test", "render"} <= set(needs) and "pipeline" not in needs[f"plan:{stack}"]


def test_images_are_pinned() -> None:
    for name in ("test", "render", "preview:dev", "plan:dev", "deploy:dev"):
        image = job(name)["image"]
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and any(c.isdigit() for c in tag), image
    pulumi_image = job("deploy:dev")["image"]
    assert pulumi_image.startswith("pulumi/pulumi-python")
    sdk = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("pulumi=="))
    assert pulumi_image.endswith(":" + sdk.removeprefix("pulumi=="))  # CLI version == SDK version


# --- gitlab-ci-local: which jobs each pipeline gets ------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=True)
    return done.stdout


def project_copy(target: Path, *, policy_venv: bool = True) -> Path:
    """This project as a fresh git clone would have it, on branch main, with this machine's .venv linked in
    (and, with ``policy_venv``, as the policy pack's venv too: it holds the pack's requirements)."""
    target.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "venv"))
        else:
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    if policy_venv:
        (target / "policies/venv").symlink_to(ROOT / ".venv")
    # older than the venv's install markers: `make render` must not reinstall anything
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        os.utime(target / requirements, (946684800, 946684800))
    (target / ".gitignore").write_text(".venv\npolicies/venv\nbuild/\n.gitlab-ci-local/\n")
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "project")
    return target


def gitlab_ci_local(
    cwd: Path, *args: str, timeout: int = 240, path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs gitlab-ci-local in cwd; `path` is put first on the jobs' PATH (the shell executor inherits it)."""
    tool = require_tool("gitlab-ci-local")
    env = {**os.environ, "GCL_IGNORE_PREDEFINED_VARS": PREDEFINED}
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    env.pop("CI", None)
    return subprocess.run(
        [tool, "--no-color", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def listed(cwd: Path, *variables: str) -> dict[str, str]:
    args = [item for v in variables for item in ("--variable", v)]
    result = gitlab_ci_local(cwd, "--list-json", *args)
    assert result.returncode == 0, result.stderr
    return {j["name"]: j["when"] for j in json.loads(result.stdout) if j["when"] != "never"}


def test_each_kind_of_pipeline_gets_its_jobs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(CI_FILE, repo / ".gitlab-ci.yml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "ci")
    push = listed(repo)
    assert push == {"test": "on_success", "render": "on_success", "plan:dev": "on_success", "deploy:dev": "manual"}
    merge_request = listed(repo, "CI_PIPELINE_SOURCE=merge_request_event")
    assert merge_request == {"test": "on_success", "render": "on_success", "preview:dev": "on_success"}
    git(repo, "checkout", "-q", "-b", "feature")
    assert listed(repo) == {"test": "on_success", "render": "on_success"}


def test_expanded_pipeline_keeps_the_deploy_lock_and_environment(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(CI_FILE, repo / ".gitlab-ci.yml")
    git(repo, "init", "-q", "-b", "main")
    result = gitlab_ci_local(repo, "--preview")
    assert result.returncode == 0, result.stderr
    expanded = yaml.safe_load(result.stdout)
    deploy = expanded["deploy:dev"]
    assert deploy["resource_group"] == "pulumi-dev" and deploy["environment"]["name"] == "dev"
    assert deploy["image"]["name"] == job("deploy:dev")["image"]
    assert deploy["before_script"] == job("deploy:dev")["before_script"]
    assert {"job": "plan:dev", "artifacts": True, "optional": False} in deploy["needs"]
    assert expanded["plan:dev"]["artifacts"]["paths"] == ["build/plan/"]


# --- real job runs ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_render_job_renders_every_stack_file_and_fails_on_a_broken_one(tmp_path: Path) -> None:
    repo = project_copy(tmp_path / "repo")
    dev = (repo / "Pulumi.dev.yaml").read_text()
    (repo / "Pulumi.staging.yaml").write_text(
        dev.replace("flywheel:namespace: flywheel", "flywheel:namespace: staging")
    )
    result = gitlab_ci_local(repo, "--force-shell-executor", "render")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "render: rendered dev staging into build/" in result.stdout
    for stack, namespace in (("dev", "flywheel"), ("staging", "staging")):
        resources = json.loads((repo / "build" / stack / "resources.json").read_text())
        assert any(r["type"] == "kubernetes:core/v1:Namespace" and r["name"] == namespace for r in resources)

    (repo / "Pulumi.broken.yaml").write_text(dev.replace("replicas: 2", "replicas: 0"))
    result = gitlab_ci_local(repo, "--force-shell-executor", "render")
    assert result.returncode == 1
    assert "render: stack 'broken' FAILED" in result.stdout + result.stderr
    assert "flywheel:attic.replicas" in result.stdout + result.stderr
    assert "render: rendered dev staging into build/" in result.stdout  # the good stacks still render


@pytest.mark.slow
def test_preview_job_without_credentials_posts_the_offline_diff(tmp_path: Path) -> None:
    """The MR pipeline's preview:dev job with no PULUMI_BACKEND_URL/KUBECONFIG: it renders the target branch
    (fetched from origin) and the MR, and posts the desired-state diff to the GitLab stand-in."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = project_copy(tmp_path / "repo")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    git(repo, "checkout", "-q", "-b", "add-arm-pool")
    stack = yaml.safe_load((repo / "Pulumi.dev.yaml").read_text())
    stack["config"]["flywheel:runners"].append({"name": "arm", "tags": ["flywheel-arm"], "concurrent": 2})
    (repo / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack, sort_keys=False))
    git(repo, "commit", "-q", "-am", "runners: an arm pool")

    with serve_stand_in() as stand_in:
        variables = {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_IID": str(MR_IID),
            "CI_PROJECT_ID": str(PROJECT_ID),
            "CI_API_V4_URL": f"{stand_in.url}/api/v4",
            "FLYWHEEL_MR_NOTE_TOKEN": TOKEN,
        }
        args = [item for k, v in variables.items() for item in ("--variable", f"{k}={v}")]
        result = gitlab_ci_local(repo, "--force-shell-executor", *args, "preview:dev")
        notes = stand_in.notes[MR_IID]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "posting the offline desired-state diff of 'dev'" in result.stdout
    [note] = notes
    body = note["body"]
    assert body.startswith(marker("dev") + "\n\n### Desired-state diff (offline render): stack `dev`")
    assert "everything shows as added" not in body  # the target branch was rendered
    assert "| `runners-arm` | ➕ create |" in body
    assert "<code>files/runners/arm/config.toml</code> (added)" in body
    assert "to delete" not in body.splitlines()[4]
    assert (repo / "build/preview/dev.md").read_text() == body
    assert git(repo, "worktree", "list").count("\n") == 1  # the base checkout is cleaned up


# A stand-in for the Pulumi CLI (this machine has neither the CLI nor a cluster): it logs its arguments,
# `preview --save-plan P` writes a plan with a unique nonce to P and prints a diff, `preview --json` prints
# the digest file named by STAND_IN_DIGEST, `up --plan P` prints the plan it was given.
# STAND_IN_PREVIEW_FAILS makes the preview fail like a policy violation would: exit 1, as the real CLI 3.274.1 does
# for any failed preview (a bail: pkg/v3 cmd/pulumi/cmd/exit_codes.go:91-92; ExitPolicyViolation is not wired yet).
# Like the CLI, `--policy-pack DIR` needs DIR/PulumiPolicy.yaml (pkg/v3 resource/plugin/analyzer_plugin.go:134-138)
# and the pack's `virtualenv` option, resolved against DIR (sdk/v3 python/toolchain/pip.go:607-615, v3.274.1), to
# hold a python: the CLI does not create it outside `pulumi install`. The message is the one the real CLI 3.274.1
# printed with the lab's Python language host (the real host's module is not reachable here).
PULUMI_STAND_IN = r"""#!/usr/bin/env bash
echo "pulumi $*" >>"$PULUMI_STAND_IN_LOG"
command=$1
plan="" json="" pack=""
while [ $# -gt 0 ]; do
  case "$1" in --save-plan|--plan) plan=$2 ;; --json) json=1 ;; --policy-pack) pack=$2 ;; esac
  shift
done
if [ -n "$pack" ]; then
  if [ ! -f "$pack/PulumiPolicy.yaml" ]; then
    echo "error: failed to load Pulumi policy project located at \"$pack\"" >&2; exit 1
  fi
  venv=$(sed -n 's/^ *virtualenv: *//p' "$pack/PulumiPolicy.yaml")
  case "$venv" in "") ;; /*) ;; *) venv="$PWD/$pack/$venv" ;; esac
  if [ -n "$venv" ] && [ ! -x "$venv/bin/python" ]; then
    echo "error: policy pack \"$PWD/$pack\" failed to start: could not read plugin [$pack]: problem executing" \
      "plugin program (could not run language executor): fork/exec $venv/bin/python: no such file or directory" >&2
    exit 1
  fi
fi
case "$command" in
  preview)
    if [ -n "$json" ]; then cat "$STAND_IN_DIGEST"; exit 0; fi
    echo "+ kubernetes:core/v1:Namespace flywheel create"
    if [ -n "${STAND_IN_PREVIEW_FAILS:-}" ]; then echo "error: mandatory policy violated"; exit 1; fi
    if [ -n "$plan" ]; then printf '{"nonce": "%s"}\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$plan"; fi
    ;;
  up) echo "applying plan $(cat "$plan")" ;;
esac
"""


@pytest.mark.slow
def test_deploy_applies_the_plan_job_artifact_with_a_pulumi_stand_in(tmp_path: Path) -> None:
    """plan:dev then deploy:dev in gitlab-ci-local's shell executor with artifact isolation (each job in its
    own copy of the repository, so the plan reaches deploy only as plan:dev's artifact through `needs`),
    with a stand-in `pulumi` script: deploy hands exactly the saved plan to `pulumi up --plan`; without a
    plan, or without credentials, nothing runs and the job says why."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(PULUMI_STAND_IN)
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi.log"
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(CI_FILE, repo / ".gitlab-ci.yml")
    shutil.copytree(ROOT / "policies", repo / "policies", ignore=shutil.ignore_patterns("__pycache__", "venv"))
    (repo / ".venv").symlink_to(ROOT / ".venv")  # committed: the isolated job copies get it too
    (repo / "policies/venv").symlink_to(ROOT / ".venv")  # the pack's venv (its requirements are in .venv)
    (repo / ".gitignore").write_text("build/\n.gitlab-ci-local/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "ci")
    base = ["--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
    base += ["--variable", f"PULUMI_STAND_IN_LOG={log}"]
    credentials = ["--variable", "PULUMI_BACKEND_URL=file:///state", "--variable", "KUBECONFIG=/kubeconfig"]

    def run(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        log.write_text("")
        result = gitlab_ci_local(repo, *base, *args, path=bin_dir)
        return result, log.read_text().splitlines()

    result, calls = run(*credentials, "plan:dev")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert calls == [
        "pulumi preview --stack dev --diff --policy-pack policies --non-interactive --color never"
        " --save-plan build/plan/dev.json"
    ]
    assert "plan:dev > + kubernetes:core/v1:Namespace flywheel create" in result.stdout  # the diff, in the log
    assert not (repo / "build").exists()  # isolated: the plan exists only as the job's artifact
    artifacts = repo / ".gitlab-ci-local/artifacts/planOgdev/build/plan"
    plan = (artifacts / "dev.json").read_text().strip()
    assert (artifacts / "dev.txt").read_text() == "+ kubernetes:core/v1:Namespace flywheel create\n"

    result, calls = run(*credentials, "deploy:dev")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert calls == [
        "pulumi up --stack dev --yes --policy-pack policies --non-interactive --diff --color never"
        " --plan build/plan/dev.json"
    ]
    assert f"deploy:dev > applying plan {plan}" in result.stdout

    shutil.rmtree(artifacts)  # the plan failed or expired
    result, calls = run(*credentials, "deploy:dev")
    assert result.returncode == 1 and calls == []
    assert "deploy: no plan build/plan/dev.json from plan:dev of this pipeline" in result.stdout

    result, calls = run(*credentials, "--variable", "STAND_IN_PREVIEW_FAILS=1", "plan:dev")
    assert result.returncode == 1 and len(calls) == 1
    assert "plan:dev > error: mandatory policy violated" in result.stdout
    assert "mandatory policy violated" in (artifacts / "dev.txt").read_text()  # kept for the reviewer

    result, calls = run("plan:dev")
    assert result.returncode == 1 and calls == []
    assert "plan: PULUMI_BACKEND_URL and KUBECONFIG must be set" in result.stdout


@pytest.mark.slow
def test_preview_job_with_credentials_posts_the_preview_with_a_pulumi_stand_in(tmp_path: Path) -> None:
    """The MR pipeline's preview:dev job with PULUMI_BACKEND_URL and KUBECONFIG set: the `--diff` text and the
    `--json` digest of a stand-in `pulumi` reach tools/mr_note.py, which posts them to the GitLab stand-in;
    a failing preview fails the job and the note says so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(PULUMI_STAND_IN)
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi.log"
    repo = project_copy(tmp_path / "repo")
    digest = ROOT / "tests/fixtures/preview/update_detailed.json"
    with serve_stand_in() as stand_in:
        variables = {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(MR_IID),
            "CI_PROJECT_ID": str(PROJECT_ID),
            "CI_API_V4_URL": f"{stand_in.url}/api/v4",
            "FLYWHEEL_MR_NOTE_TOKEN": TOKEN,
            "PULUMI_BACKEND_URL": "file:///state",
            "KUBECONFIG": "/kubeconfig",
            "PULUMI_STAND_IN_LOG": str(log),
            "STAND_IN_DIGEST": str(digest),
        }
        args = [item for k, v in variables.items() for item in ("--variable", f"{k}={v}")]
        result = gitlab_ci_local(repo, "--force-shell-executor", *args, "preview:dev", path=bin_dir)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        [note] = stand_in.notes[MR_IID]
        assert "✅ **3 to update**" in note["body"] and "| | | `spec.replicas` | `2` → `3` |" in note["body"]
        assert "+ kubernetes:core/v1:Namespace flywheel create" in note["body"]  # the --diff text, collapsed
        assert [line.split(" --")[0] for line in log.read_text().splitlines()] == ["pulumi preview"] * 2

        failing = [*args, "--variable", "STAND_IN_PREVIEW_FAILS=1"]
        result = gitlab_ci_local(repo, "--force-shell-executor", *failing, "preview:dev", path=bin_dir)
        assert result.returncode == 1
        [note] = stand_in.notes[MR_IID]  # the same note, edited
        assert "❌ **Failed**: `pulumi preview` exited with code 1" in note["body"]
        assert "error: mandatory policy violated" in note["body"]


@pytest.mark.slow
def test_pulumi_jobs_create_the_policy_packs_virtualenv(tmp_path: Path) -> None:
    """A fresh clone has no policies/venv; the CLI (the stand-in models its check) refuses `--policy-pack
    policies` without it, so the job must make it from policies/requirements.txt before calling pulumi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(PULUMI_STAND_IN)
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi.log"
    log.write_text("")
    repo = project_copy(tmp_path / "repo", policy_venv=False)
    assert not (repo / "policies/venv").exists()
    variables = ["--variable", f"PULUMI_STAND_IN_LOG={log}"]
    variables += ["--variable", "PULUMI_BACKEND_URL=file:///state", "--variable", "KUBECONFIG=/kubeconfig"]
    result = gitlab_ci_local(repo, "--force-shell-executor", *variables, "plan:dev", path=bin_dir, timeout=480)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert log.read_text().startswith("pulumi preview --stack dev --diff --policy-pack policies")
    imports = "import pulumi, pulumi_policy, yaml"
    probe = subprocess.run([repo / "policies/venv/bin/python", "-c", imports], capture_output=True, check=False)
    assert probe.returncode == 0, probe.stderr
