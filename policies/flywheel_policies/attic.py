"""Attic in the stack (atticd workloads, server.toml) and its garbage collection: one GC CronJob, a retention period."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .common import (
    CONFIG_MAP,
    CRON_JOB,
    GROUP_VARIABLE,
    UNKNOWN,
    WORKLOAD_TYPES,
    Res,
    as_dict,
    as_list,
    dig,
    stack_resources,
    text,
)
from .workloads import container_argv, containers, image_name


def atticd_mode(container: dict[str, Any]) -> str | None:
    """The ``--mode`` an atticd container runs in (monolithic when unset), None for other containers."""
    argv = container_argv(container)
    image = text(container.get("image")) or ""
    command = [a for a in as_list(container.get("command")) if isinstance(a, str)]
    runs_atticd = any(a.rsplit("/", 1)[-1] == "atticd" for a in argv) or (not command and image_name(image) == "attic")
    if not runs_atticd:
        return None
    for index, arg in enumerate(argv):
        if arg in {"--mode", "-m"} and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--mode="):
            return arg.partition("=")[2]
    return "monolithic"


def atticd_modes(res: Res) -> list[str]:
    return [m for m in (atticd_mode(c) for c in containers(res)) if m is not None]


def attic_servers(resources: list[Res]) -> list[Res]:
    return [r for r in resources if r.type in WORKLOAD_TYPES and any(atticd_modes(r))]


def server_tomls(res: Res) -> Iterator[dict[str, Any]]:
    for key, value in as_dict(res.props.get("data")).items():
        if key.endswith(".toml") and "server" in key and isinstance(value, str):
            try:
                yield tomllib.loads(value)
            except tomllib.TOMLDecodeError:
                continue


def attic_api_endpoints(resources: list[Res]) -> set[str]:
    """``api-endpoint`` of every Attic server.toml in the stack (normalised without trailing '/')."""
    endpoints = set()
    for res in resources:
        if res.type != CONFIG_MAP:
            continue
        for doc in server_tomls(res):
            endpoint = doc.get("api-endpoint")
            if isinstance(endpoint, str):
                endpoints.add(endpoint.rstrip("/"))
    return endpoints


def runs_attic(resources: list[Res]) -> bool:
    """Whether the stack runs Attic at all: an atticd workload, a server.toml, or ATTIC_SERVER handed to CI."""
    return (
        bool(attic_servers(resources))
        or any(True for r in resources if r.type == CONFIG_MAP for _ in server_tomls(r))
        or any(r.type == GROUP_VARIABLE and r.props.get("key") == "ATTIC_SERVER" for r in resources)
    )


_HUMANTIME_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Zµ]*)")


def humantime_is_zero(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if not isinstance(value, str):
        return True
    numbers = [float(n) for n, _ in _HUMANTIME_PART.findall(value)]
    return not numbers or all(n == 0 for n in numbers)


def _validate_attic_gc_present(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args)
    gc_jobs = [r for r in resources if r.type == CRON_JOB and "garbage-collector-once" in atticd_modes(r)]
    if not gc_jobs and runs_attic(resources):
        report_violation(
            "no CronJob runs atticd --mode garbage-collector-once: nothing prunes the Attic cache; "
            "add the GC CronJob (components/attic_gc.py)"
        )
    elif len(gc_jobs) > 1:
        for res in gc_jobs:
            report_violation(
                f"{len(gc_jobs)} CronJobs run attic GC ({', '.join(sorted(r.display_name for r in gc_jobs))}); "
                "keep exactly one so passes never overlap",
                res.urn,
            )
    for res in gc_jobs:
        policy = dig(res.props, "spec", "concurrencyPolicy")
        if policy is not UNKNOWN and policy != "Forbid":
            report_violation(
                f"GC CronJob '{res.display_name}' has concurrencyPolicy {policy or 'unset (Allow)'}; "
                "set concurrencyPolicy: Forbid so two GC passes never run at once",
                res.urn,
            )
    for res in resources:
        if res.type not in WORKLOAD_TYPES:
            continue
        for mode in atticd_modes(res):
            if mode in {"monolithic", "garbage-collector"}:
                report_violation(
                    f"{res.kind_name} runs atticd in '{mode}' mode, a GC loop beside the GC CronJob "
                    "(monolithic also migrates in every replica); run --mode api-server instead",
                    res.urn,
                )
    tomls = [(res, doc) for res in resources if res.type == CONFIG_MAP for doc in server_tomls(res)]
    if not tomls and (gc_jobs or attic_servers(resources)):
        report_violation("no ConfigMap carries Attic's server.toml, so no default-retention-period is set")
    for res, doc in tomls:
        retention = dig(doc, "garbage-collection", "default-retention-period")
        if humantime_is_zero(retention):
            got = "missing" if retention is None else repr(retention)
            report_violation(
                f"server.toml in ConfigMap '{res.display_name}': [garbage-collection] default-retention-period is "
                f"{got}, so GC never removes anything by age; set it, e.g. '30 days'",
                res.urn,
            )


ATTIC_GC_PRESENT = StackValidationPolicy(
    "attic-gc-present",
    "Exactly one Attic GC CronJob (garbage-collector-once, concurrencyPolicy Forbid), a non-zero "
    "default-retention-period, and no GC loop beside it.",
    _validate_attic_gc_present,
    EnforcementLevel.MANDATORY,
)
