"""This repository's own `.gitlab-ci.yml` plan and deploy jobs, run as written by gitlab-ci-local's shell executor
with the real Pulumi CLI (and the lab's plugins) on PATH, against the lab's API server.

The stack is a second deployment beside test_engine.py's: its own state backend, namespace `flywheel-ci` and GitLab
group, so neither sees the other. Each job runs in its own copy of the repository (`--shell-isolation`): the plan
reaches deploy only as plan:dev's artifact, and the pack's venv and the project's .venv are what the jobs'
before_script finds (links committed into the copy, as a runner's cache would restore them).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.e2e.project import PASSPHRASE, Project, policy_venv
from lab.e2e.session import CI_GROUP, CI_TEMPLATE_PROJECT, Lab
from tests.test_gitlab_ci_yml import git, gitlab_ci_local, project_copy

NAMESPACE = "flywheel-ci"


def test_plan_then_deploy_apply_the_reviewed_change_with_the_real_cli(lab: Lab, tmp_path: Path) -> None:
    assert lab.project is not None and lab.kube is not None and lab.control_plane is not None
    repo = project_copy(tmp_path / "repo", policy_venv=False)
    (repo / "policies" / "venv").symlink_to(policy_venv())
    state = tmp_path / "state"
    cli = Project(
        tmp_path,
        lab.project.path_entries,
        env={"PULUMI_BACKEND_URL": f"file://{state}", "KUBECONFIG": str(lab.control_plane.kubeconfig)},
    )
    cli.dir = repo
    cli.state, cli.home = state, tmp_path / "pulumi-home"
    state.mkdir()
    cli.home.mkdir()
    cli.pulumi("stack", "init", "dev").check()
    stack_file = repo / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"] = lab.other_deployment_values(NAMESPACE, CI_GROUP, CI_TEMPLATE_PROJECT)
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    cli.pulumi("config", "set", "--stack", "dev", "--secret", "gitlab:token", lab.gitlab_token).check()
    (repo / ".gitignore").write_text("build/\n.gitlab-ci-local/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the ci stack")

    variables = {
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_HOME": str(cli.home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "KUBECONFIG": str(lab.control_plane.kubeconfig),
    }
    args = ["--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
    args += [item for key, value in variables.items() for item in ("--variable", f"{key}={value}")]
    path = Path(":".join(str(p) for p in lab.project.path_entries))
    artifacts = repo / ".gitlab-ci-local/artifacts/planOgdev/build/plan"

    # The stack's first deploy goes through a plan too: every generated key, token and password is unknown when
    # plan:dev runs, and deploy:dev's `pulumi up --plan` must accept what the providers then return (a Secret
    # planned with an unknown stringData and applied as data was refused here: components/kube.py secret_data).
    first_plan = gitlab_ci_local(repo, *args, "plan:dev", timeout=900, path=path)
    assert first_plan.returncode == 0, first_plan.stdout[-4000:] + first_plan.stderr[-2000:]
    first_deploy = gitlab_ci_local(repo, *args, "deploy:dev", timeout=1200, path=path)
    assert first_deploy.returncode == 0, first_deploy.stdout[-4000:] + first_deploy.stderr[-2000:]
    assert "violates plan" not in first_deploy.stdout + first_deploy.stderr
    assert lab.kube.get("apps/v1", "Deployment", "attic", NAMESPACE) is not None
    assert lab.kube.get("v1", "Namespace", f"{NAMESPACE}-jobs") is not None

    # the change under review: a GC retention edit, committed, planned, reviewed, deployed
    cli.pulumi("config", "set", "--stack", "dev", "--path", "flywheel:attic.gc.retention", "14 days").check()
    git(repo, "commit", "-q", "-am", "attic: keep 14 days")
    plan = gitlab_ci_local(repo, *args, "plan:dev", timeout=900, path=path)
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr[-2000:]
    assert (artifacts / "dev.json").stat().st_size > 0
    assert "plan: saved build/plan/dev.json" in plan.stdout
    reviewed = (artifacts / "dev.txt").read_text()
    assert "attic-config" in reviewed  # the reviewed diff names the change

    deploy = gitlab_ci_local(repo, *args, "deploy:dev", timeout=1200, path=path)
    assert deploy.returncode == 0, deploy.stdout[-4000:] + deploy.stderr[-2000:]
    assert "14d" in deploy.stdout or "14 days" in deploy.stdout, deploy.stdout[-3000:]

    # a merge request's preview job: the real preview's --diff text and --json digest reach the MR note
    mr = [
        "--variable",
        "CI_PIPELINE_SOURCE=merge_request_event",
        "--variable",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main",
    ]
    preview = gitlab_ci_local(repo, *args, *mr, "preview:dev", timeout=900, path=path)
    assert preview.returncode == 0, preview.stdout[-4000:] + preview.stderr[-2000:]
    note = (repo / ".gitlab-ci-local/artifacts/previewOgdev/build/preview/dev.md").read_text()
    assert "Pulumi preview" in note and "no changes" in note.lower(), note[:2000]

    # the deployed stack is what the plan said: nothing left to change
    again = cli.pulumi("preview", "--stack", "dev", "--expect-no-changes")
    assert again.returncode == 0, again.stdout[-3000:]
