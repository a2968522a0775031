"""Container images are pinned: a version tag or a digest, never ':latest' or no tag."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .common import REPOSITORY_FILE, resource_of
from .template import template_documents, template_jobs


def image_problem(image: str) -> str | None:
    if "$" in image or "{{" in image:
        return None  # an interpolated reference: judged where it is resolved
    name, _, digest = image.partition("@")
    if digest:
        return None
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return "has no tag"
    if tag == "latest":
        return "uses the moving ':latest' tag"
    return None


def images_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, image) for every image reference in props, including inside a runner's config.toml."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if key in {"image", "imageName", "helper_image", "helperImage"} and isinstance(item, str) and item:
                yield child, item
            elif key in {"image", "helperImage"} and isinstance(item, dict):
                tag = item.get("tag")
                repository = item.get("repository") or item.get("image")
                if isinstance(repository, str) and isinstance(tag, str) and not item.get("digest"):
                    yield child, f"{repository}:{tag}" if tag else repository
            elif key == "config" and isinstance(item, str) and "[[runners]]" in item:
                try:
                    yield from images_in(tomllib.loads(item), f"{child}(config.toml)")
                except tomllib.TOMLDecodeError:
                    continue
            else:
                yield from images_in(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from images_in(item, f"{path}[{index}]")


def _validate_images_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if not (res.type.startswith("kubernetes:") or res.type == REPOSITORY_FILE):
        return
    found = list(images_in(res.props, ""))
    if res.type == REPOSITORY_FILE:
        documents = template_documents(res) or []
        found = [
            (f"{name}.image", image) for name, job in template_jobs(documents).items() for _, image in _job_images(job)
        ]
    for where, image in found:
        problem = image_problem(image)
        if problem:
            report_violation(f"{res.kind_name}: image {image!r} at {where} {problem}; pin a version tag or a digest")


def _job_images(job: dict[str, Any]) -> Iterator[tuple[str, str]]:
    image = job.get("image")
    name = image.get("name") if isinstance(image, dict) else image
    if isinstance(name, str) and name:
        yield "image", name


IMAGES_PINNED = ResourceValidationPolicy(
    "images-pinned",
    "No container image uses ':latest' or no tag at all.",
    _validate_images_pinned,
    EnforcementLevel.ADVISORY,
)
