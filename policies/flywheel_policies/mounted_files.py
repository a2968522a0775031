"""Secret and ConfigMap files a pod mounts are readable by the process that runs in it.

The kubelet writes those files owned by root with the volume's `defaultMode`/`items[].mode` (API default
0644); only with the pod's `fsGroup` does it give them to that group and add group read (kubernetes
pkg/volume/volume_linux.go SetVolumeOwnership, roMask 0440). A non-root process (including one an image's
entrypoint drops to, like SeaweedFS's uid 1000) cannot read a file without "other" read unless the pod sets
`fsGroup`. Only an explicit `runAsUser: 0` is known to read it without one.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .common import UNKNOWN, WORKLOAD_TYPES, Res, as_dict, as_list, resource_of
from .workloads import containers, pod_spec

DEFAULT_MODE = 0o644
OTHER_READ = 0o004


def _modes(volume: dict[str, Any]) -> list[int] | None:
    source = as_dict(volume.get("secret") or volume.get("configMap"))
    default = source.get("defaultMode", DEFAULT_MODE)
    items = [as_dict(item) for item in as_list(source.get("items"))]
    modes = [item.get("mode", default) for item in items] or [default]
    if any(mode is UNKNOWN or not isinstance(mode, int | float) for mode in modes):
        return None
    return [int(mode) for mode in modes]


def _root_by_spec(pod: dict[str, Any], container: dict[str, Any]) -> bool:
    user = as_dict(container.get("securityContext")).get(
        "runAsUser", as_dict(pod.get("securityContext")).get("runAsUser")
    )
    return user == 0


def check_mounted_files(res: Res) -> list[str]:
    if res.type not in WORKLOAD_TYPES:
        return []
    pod = pod_spec(res)
    if as_dict(pod.get("securityContext")).get("fsGroup") is not None:
        return []
    volumes = {v.get("name"): v for v in map(as_dict, as_list(pod.get("volumes"))) if "secret" in v or "configMap" in v}
    problems = []
    for container in containers(res):
        if _root_by_spec(pod, container):
            continue
        for mount in map(as_dict, as_list(container.get("volumeMounts"))):
            volume = volumes.get(mount.get("name"))
            modes = None if volume is None else _modes(volume)
            if modes is None or all(mode & OTHER_READ for mode in modes):
                continue
            worst = min(modes, key=lambda mode: mode & OTHER_READ)
            problems.append(
                f"{res.kind_name}: container '{container.get('name')}' mounts volume '{mount.get('name')}' at "
                f"{mount.get('mountPath')} with mode {worst:#o} (root-owned, no read for others) and the pod sets "
                "no fsGroup: a non-root process cannot read it; set securityContext.fsGroup to the process's group"
            )
    return problems


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    for message in check_mounted_files(res):
        report_violation(message)


MOUNTED_FILES_READABLE = ResourceValidationPolicy(
    "mounted-files-readable",
    "Secret and ConfigMap files a pod mounts without read for others come with the pod's fsGroup.",
    _validate,
    EnforcementLevel.MANDATORY,
)
