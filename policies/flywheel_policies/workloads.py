"""Kubernetes workloads as the policies read them: pod spec, containers, command lines, image names."""

from __future__ import annotations

from typing import Any

from .common import CRON_JOB, Res, as_dict, as_list, dig


def pod_spec(res: Res) -> dict[str, Any]:
    if res.type == CRON_JOB:
        return as_dict(dig(res.props, "spec", "jobTemplate", "spec", "template", "spec"))
    if res.type == "kubernetes:core/v1:Pod":
        return as_dict(res.props.get("spec"))
    return as_dict(dig(res.props, "spec", "template", "spec"))


def containers(res: Res) -> list[dict[str, Any]]:
    spec = pod_spec(res)
    found = as_list(spec.get("containers")) + as_list(spec.get("initContainers"))
    return [c for c in found if isinstance(c, dict)]


def container_argv(container: dict[str, Any]) -> list[str]:
    return [a for a in as_list(container.get("command")) + as_list(container.get("args")) if isinstance(a, str)]


def image_name(image: str) -> str:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def pod_spec_labels(res: Res) -> dict[str, Any]:
    return as_dict(dig(res.props, "spec", "template", "metadata", "labels"))
