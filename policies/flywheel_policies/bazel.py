"""The bazel-remote cache's volume holds its --max_size with headroom."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import PVC, UNKNOWN, WORKLOAD_TYPES, Res, as_list, config_value, dig, stack_resources, text
from .workloads import container_argv, containers, pod_spec

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$")
_FACTORS = {
    None: 1,
    "m": 0.001,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
DEFAULT_BAZEL_HEADROOM = 1.1


def quantity_bytes(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    return float(match.group(1)) * _FACTORS[match.group(2)] if match else None


def bazel_max_size_gib(container: dict[str, Any]) -> float | None:
    argv = container_argv(container)
    for index, arg in enumerate(argv):
        for flag in ("--max_size", "--max-size"):
            if arg == flag and index + 1 < len(argv):
                return _number(argv[index + 1])
            if arg.startswith(flag + "="):
                return _number(arg.partition("=")[2])
    for env in as_list(container.get("env")):
        if dig(env, "name") == "BAZEL_REMOTE_MAX_SIZE":
            return _number(dig(env, "value"))
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _validate_bazel_cache_capacity(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args)
    headroom = float(config_value(args, "headroom", DEFAULT_BAZEL_HEADROOM, (int, float)))
    claims = {(r.namespace, r.display_name): r for r in resources if r.type == PVC}
    for res in resources:
        if res.type not in WORKLOAD_TYPES:
            continue
        spec = pod_spec(res)
        volumes = {dig(v, "name"): v for v in as_list(spec.get("volumes")) if isinstance(v, dict)}
        templates = {dig(t, "metadata", "name"): t for t in as_list(dig(res.props, "spec", "volumeClaimTemplates"))}
        for container in containers(res):
            if "bazel-remote" not in (text(container.get("image")) or ""):
                continue
            max_gib = bazel_max_size_gib(container)
            if max_gib is None:
                continue
            needed = max_gib * 2**30 * headroom
            data_mounts = [m for m in as_list(container.get("volumeMounts")) if isinstance(m, dict)]
            size, where = _cache_volume_size(data_mounts, volumes, templates, claims, res.namespace)
            if size is UNKNOWN:
                continue
            if size is None:
                report_violation(
                    f"{res.kind_name}: bazel-remote --max_size {max_gib:g} GiB has no sized volume ({where}); "
                    f"mount a PersistentVolumeClaim of at least {needed / 2**30:.0f}Gi",
                    res.urn,
                )
            elif size < needed:
                report_violation(
                    f"{res.kind_name}: bazel-remote --max_size {max_gib:g} GiB does not fit {where} of "
                    f"{size / 2**30:.1f}Gi with {round((headroom - 1) * 100)}% headroom; "
                    f"grow the volume to at least {needed / 2**30:.0f}Gi or lower maxSizeGiB",
                    res.urn,
                )


def _cache_volume_size(
    mounts: list[dict[str, Any]],
    volumes: dict[Any, Any],
    templates: dict[Any, Any],
    claims: dict[tuple[str | None, str], Res],
    namespace: str | None,
) -> tuple[Any, str]:
    """The largest volume mounted into bazel-remote: (bytes | None | UNKNOWN, description)."""
    best: Any = None
    where = "no volume mounted"
    for mount in mounts:
        name = mount.get("name")
        size: Any = None
        label = f"volume '{name}'"
        if name in templates:
            size = quantity_bytes(dig(templates[name], "spec", "resources", "requests", "storage"))
            label = f"volumeClaimTemplate '{name}'"
        elif name in volumes:
            volume = volumes[name]
            claim_name = dig(volume, "persistentVolumeClaim", "claimName")
            if claim_name is UNKNOWN:
                return UNKNOWN, label
            if isinstance(claim_name, str):
                claim = claims.get((namespace, claim_name))
                label = f"PersistentVolumeClaim '{claim_name}'"
                size = quantity_bytes(dig(claim.props, "spec", "resources", "requests", "storage")) if claim else None
                if claim is None:
                    label += " (not in this stack)"
            elif isinstance(dig(volume, "emptyDir"), dict):
                size = quantity_bytes(dig(volume, "emptyDir", "sizeLimit"))
                label = f"emptyDir '{name}'" + ("" if size else " without sizeLimit")
        if size is not None and (best is None or size > best):
            best, where = size, label
        elif best is None:
            where = label
    return best, where


BAZEL_CACHE_CAPACITY = StackValidationPolicy(
    "bazel-cache-capacity",
    "The bazel cache volume holds bazel-remote's max_size with headroom.",
    _validate_bazel_cache_capacity,
    EnforcementLevel.ADVISORY,
    PolicyConfigSchema({"headroom": {"type": "number", "minimum": 1, "default": DEFAULT_BAZEL_HEADROOM}}),
)
