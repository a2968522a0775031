"""AtticGarbageCollector: one `garbage-collector-once` pass per schedule, with the server's config and secrets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s_schema import schema_errors
from tests.test_attic_server import AtticRun, atticd_containers, run_attic


@pytest.fixture(scope="module")
def gc() -> AtticRun:
    return run_attic({"gc": {"schedule": "0 */6 * * *", "retention": "14 days"}})


def gc_pod(run: AtticRun) -> dict[str, Any]:
    pod: dict[str, Any] = run.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    return pod


def test_cron_job_runs_one_gc_pass_at_a_time_on_the_schedule(gc: AtticRun) -> None:
    cron = gc.one("CronJob", "garbage-collector")
    spec = cron["spec"]
    assert cron["metadata"]["name"] == "attic-gc"
    assert spec["schedule"] == "0 */6 * * *"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 3600
    assert 0 < spec["successfulJobsHistoryLimit"] <= 5 and 0 < spec["failedJobsHistoryLimit"] <= 5
    job = spec["jobTemplate"]["spec"]
    assert job["parallelism"] == 1 and job["completions"] == 1
    assert job["activeDeadlineSeconds"] > 0  # a hung pass cannot block every later run forever
    assert gc_pod(gc)["spec"]["restartPolicy"] == "Never"


def test_gc_runs_garbage_collector_once_never_a_loop(gc: AtticRun) -> None:
    (container,) = gc_pod(gc)["spec"]["containers"]
    assert container["args"][-2:] == ["--mode", "garbage-collector-once"]
    modes = {c["args"][c["args"].index("--mode") + 1] for c in atticd_containers(gc)}
    assert modes == {"api-server", "db-migrations", "garbage-collector-once"}  # no loop, no monolithic


def test_gc_uses_the_servers_image_config_secrets_and_volumes(gc: AtticRun) -> None:
    api = gc.one("Deployment")["spec"]["template"]["spec"]
    (api_container,) = api["containers"]
    pod = gc_pod(gc)
    (container,) = pod["spec"]["containers"]
    assert container["image"] == api_container["image"]
    assert container["env"] == api_container["env"]
    assert container["volumeMounts"] == api_container["volumeMounts"]
    assert pod["spec"]["volumes"] == api["volumes"]
    assert pod["spec"]["securityContext"] == api["securityContext"]
    assert container["resources"] == api_container["resources"]
    assert container["args"][:2] == ["-f", "/etc/attic/server.toml"]
    # the retention it applies is the server's (server.toml is the one ConfigMap both mount)
    assert 'default-retention-period = "14 days"' in gc.values["server_toml"]
    assert "ports" not in container and "readinessProbe" not in container


def test_gc_waits_for_migrations(gc: AtticRun) -> None:
    depends = gc.resource("attic-gc", "CronJob")["options"]["dependsOn"]
    assert gc.resource("attic-db-migrations", "Job")["urn"] in depends


def test_gc_manifest_validates_strictly(gc: AtticRun) -> None:
    assert schema_errors(gc.all("CronJob")) == []
