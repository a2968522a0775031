"""The first `pulumi up`: the database is awaited before Attic starts, one-shot Jobs are re-run when they failed.

Asserted on what the program sends the engine (the mock monitor's RegisterResource requests): the annotations
pulumi-kubernetes reads (provider/pkg/metadata/annotations.go: `pulumi.com/waitFor`,
`pulumi.com/replaceUnready`), customTimeouts, dependencies. What the provider and the cluster then do with them
is the e2e lab's to prove (a real `pulumi up` against an API server).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import dev_stack, stack_with
from tests.test_config import dev_raw
from tools.mocks import FlywheelMocks, RecordingMonitor, Registration
from tools.render import run_program

ONE_SHOT_JOBS = ("attic-db-migrations", "attic-cache-init", "storage-create-bucket")


JOB, DEPLOYMENT, CLUSTER = (
    "kubernetes:batch/v1:Job",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
)


def registrations(overrides: dict[str, Any] | None = None) -> dict[str, Registration]:
    """The program's Jobs, Deployments and Cluster by name, as registered."""
    monitor = RecordingMonitor(FlywheelMocks())
    run_program("dev", stack_with(overrides) if overrides else dev_stack(), monitor=monitor)
    return {r.name: r for r in monitor.registrations if r.type in (JOB, DEPLOYMENT, CLUSTER)}


@pytest.fixture(scope="module")
def dev() -> dict[str, Registration]:
    return registrations()


def annotations(registration: Registration) -> dict[str, str]:
    return dict(registration.inputs["metadata"].get("annotations") or {})


def test_the_cnpg_cluster_is_awaited_until_ready(dev: dict[str, Registration]) -> None:
    cluster = dev["attic-db-cluster"]
    assert cluster.type == CLUSTER
    assert annotations(cluster)["pulumi.com/waitFor"] == "condition=Ready"
    assert cluster.custom_timeouts == {"create": "900s", "update": "900s"}


def test_attic_starts_only_after_the_cluster(dev: dict[str, Registration]) -> None:
    cluster = dev["attic-db-cluster"].urn
    migrations = dev["attic-db-migrations"]
    assert cluster in migrations.depends_on
    api_server = dev["attic"]
    assert api_server.type == DEPLOYMENT
    assert migrations.urn in api_server.depends_on and cluster in api_server.depends_on


@pytest.mark.parametrize("job", ONE_SHOT_JOBS)
def test_one_shot_jobs_are_replaced_when_not_complete_and_awaited_past_their_deadline(
    dev: dict[str, Registration], job: str
) -> None:
    registration = dev[job]
    assert registration.type == JOB
    assert annotations(registration)["pulumi.com/replaceUnready"] == "true"
    deadline = registration.inputs["spec"]["activeDeadlineSeconds"]
    awaited = f"{int(deadline) + 60}s"
    assert registration.custom_timeouts == {"create": awaited, "update": awaited}


def test_timeouts_follow_the_config() -> None:
    raw = dev_raw()
    attic = raw["attic"] | {"migrationsTimeout": "45m", "cacheInitTimeout": 300}
    database = raw["database"] | {"readyTimeout": "1h"}
    changed = registrations({"attic": attic, "database": database})
    assert changed["attic-db-migrations"].inputs["spec"]["activeDeadlineSeconds"] == 2700
    assert changed["attic-db-migrations"].custom_timeouts["create"] == "2760s"
    assert changed["attic-cache-init"].inputs["spec"]["activeDeadlineSeconds"] == 300
    assert changed["attic-db-cluster"].custom_timeouts == {"create": "3600s", "update": "3600s"}
