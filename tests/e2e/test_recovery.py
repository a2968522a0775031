"""A one-shot Job that failed is re-run by the next `pulumi up` (issue 13.6), through the real engine and the real
pulumi-kubernetes provider, against the real Job controller.

The fault: a kwok Stage (lab/e2e/cluster.py add_stage) that ends every `db-migrations` pod of this stack's namespace
as Failed with exit code 1, as a migrations run against an unreachable database would. The Job controller retries
until the Job's deadline (`attic.migrationsTimeout`, here the 1-minute minimum) and marks it Failed; the provider's
Job await reports that and the up fails, leaving the api-server Deployment (which depends on the migrations)
uncreated. With the fault removed, the next up replaces the failed Job (`pulumi.com/replaceUnready`: provider/v4
pkg/provider/provider.go:1485-1500 replaces a Job that is not Ready) and goes on to create what waited for it.
"""

from __future__ import annotations

from typing import Any

from lab.e2e.session import RECOVERY_GROUP, RECOVERY_TEMPLATE_PROJECT, Lab

STACK = "recovery"
NAMESPACE = "flywheel-recovery"
FAULT = "lab-fail-db-migrations"


def failing_migrations_stage() -> dict[str, Any]:
    """A Running db-migrations pod of this namespace ends Failed (weight 1 beats pod-complete's 0:
    pkg/utils/lifecycle/lifecycle.go:180-190 picks only stages of positive weight when any has one)."""
    return {
        "metadata": {"name": FAULT},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "weight": 1,
            "selector": {
                "matchLabels": {"app.kubernetes.io/component": "db-migrations"},
                "matchExpressions": [
                    {"key": ".metadata.namespace", "operator": "In", "values": [NAMESPACE]},
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                ],
            },
            "next": {
                "statusTemplate": (
                    "{{ $now := Now }}\n"
                    "containerStatuses:\n"
                    "{{ range $index, $item := .spec.containers }}\n"
                    "- image: {{ $item.image | Quote }}\n"
                    "  name: {{ $item.name | Quote }}\n"
                    "  ready: false\n"
                    "  restartCount: 0\n"
                    "  started: false\n"
                    "  state:\n"
                    "    terminated:\n"
                    "      exitCode: 1\n"
                    "      finishedAt: {{ $now | Quote }}\n"
                    "      reason: Error\n"
                    "      startedAt: {{ $now | Quote }}\n"
                    "{{ end }}\n"
                    "phase: Failed\n"
                )
            },
        },
    }


def migrations_jobs(lab: Lab) -> list[dict[str, Any]]:
    assert lab.kube is not None
    return [
        job
        for job in lab.kube.list("batch/v1", "Job", NAMESPACE)
        if job["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "db-migrations"
    ]


def condition(job: dict[str, Any], kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def test_a_failed_migrations_job_is_re_run_by_the_next_up(lab: Lab) -> None:
    assert lab.project is not None and lab.kube is not None and lab.control_plane is not None
    values = lab.other_deployment_values(NAMESPACE, RECOVERY_GROUP, RECOVERY_TEMPLATE_PROJECT)
    values["flywheel:attic"] = {**values["flywheel:attic"], "migrationsTimeout": "1m"}
    lab.init_stack(STACK, values_override=values)

    lab.control_plane.add_stage(failing_migrations_stage())
    try:
        failed = lab.project.pulumi("up", "--stack", STACK, "--yes", "--skip-preview")
        assert failed.returncode != 0, failed.stdout[-3000:]
        [job] = migrations_jobs(lab)
        assert condition(job, "Failed"), job.get("status")
        assert job["status"].get("failed", 0) >= 1  # the Job controller retried pods that kwok failed
        assert "attic-db-migrations" in failed.stdout + failed.stderr
        # what waits for the migrations was not created
        assert lab.kube.get("apps/v1", "Deployment", "attic", NAMESPACE) is None
    finally:
        lab.control_plane.remove_stage(FAULT)

    recovered = lab.project.pulumi("up", "--stack", STACK, "--yes", "--skip-preview")
    assert recovered.returncode == 0, recovered.stdout[-4000:] + recovered.stderr[-2000:]
    [rerun] = migrations_jobs(lab)
    assert rerun["metadata"]["name"] == job["metadata"]["name"]  # same name, deleted first, then created again
    assert rerun["metadata"]["uid"] != job["metadata"]["uid"]
    assert condition(rerun, "Complete") and not condition(rerun, "Failed"), rerun.get("status")
    assert lab.kube.get("apps/v1", "Deployment", "attic", NAMESPACE) is not None

    # a Job that completed is Ready: replaceUnready no longer replaces it
    again = lab.project.pulumi("preview", "--stack", STACK, "--expect-no-changes")
    assert again.returncode == 0, again.stdout[-3000:]
    # the last test of the session: the fake nodes kept their heartbeat all along (lab/e2e/cluster.py
    # NODE_LEASE_SECONDS), so no await above passed or failed because pods went NotReady under it
    assert not lab.control_plane.nodes_went_not_ready()
