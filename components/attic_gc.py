"""The Attic garbage collector: one `atticd --mode garbage-collector-once` pass per schedule, never two at once.

It runs with the server's own config, secrets and image (taken from ``AtticServer``), so the
retention it applies is the one server.toml and the cache bootstrap set.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.attic import AtticdMode, AtticServer
from components.config import AtticConfig
from components.kube import standard_labels

GC_MODE: AtticdMode = "garbage-collector-once"
# A run missed by more than this (controller down, previous run still going) is skipped, not queued.
STARTING_DEADLINE_SECONDS = 3600
# Bounds a hung pass: with concurrencyPolicy Forbid it would otherwise block every later run.
ACTIVE_DEADLINE_SECONDS = 6 * 3600
HISTORY_LIMIT = 3


class AtticGarbageCollector(pulumi.ComponentResource):
    """A CronJob on ``attic.gc.schedule`` (UTC); concurrencyPolicy Forbid keeps it to one GC at a time."""

    def __init__(
        self,
        name: str,
        config: AtticConfig,
        namespace: str,
        server: AtticServer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flywheel:index:AtticGarbageCollector", name, None, opts)
        labels = standard_labels(server.name, "garbage-collector")
        pod_template = k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels, annotations=server.config_annotations),
            spec=server.atticd_pod_spec(server.atticd_container(GC_MODE), restart_policy="Never"),
        )
        self.cron_job = k8s.batch.v1.CronJob(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=config.gc.schedule,
                time_zone="Etc/UTC",
                concurrency_policy="Forbid",
                starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
                successful_jobs_history_limit=HISTORY_LIMIT,
                failed_jobs_history_limit=HISTORY_LIMIT,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        # One retry at most: a failed pass is simply repeated at the next schedule.
                        backoff_limit=1,
                        parallelism=1,
                        completions=1,
                        active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                        template=pod_template,
                    ),
                ),
            ),
            # After migrations: a GC against an unmigrated schema would fail.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server.migrations, *server.atticd_dependencies]),
        )
        self.register_outputs({"schedule": config.gc.schedule})
