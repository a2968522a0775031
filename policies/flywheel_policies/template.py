"""The committed greedy CI template: build jobs start at once, the attic client is substituted, never built."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .common import REPOSITORY_FILE, UNKNOWN, Res, resource_of, text, yaml_documents

# `nix build` or a wrapper named like one (`bounded_nix build`), then `--max-jobs 0` on the same command.
_BOOTSTRAP = re.compile(
    r"(?:^|[\s(]|\$\()(?:[\w./-]*[_/-])?nix(?:\s+--?[\w-]+(?:[= ][^\s-]\S*){0,2})*\s+"
    r"(?:build|shell|profile\s+install|copy)\b"
)
_NO_LOCAL_BUILDS = re.compile(r"(--max-jobs[= ]0\b|(?<![\w-])-j\s*0\b)")
_JOB_KEYWORDS = {"default", "include", "stages", "variables", "workflow", "spec", "image", "services", "cache"}


def template_documents(res: Res) -> list[Any] | None:
    content = res.props.get("content")
    if not isinstance(content, str):
        return None
    if res.props.get("encoding") == "base64":
        try:
            content = base64.b64decode(content).decode()
        except (binascii.Error, ValueError):
            return None
    return yaml_documents(content)


def template_jobs(documents: list[Any]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if not isinstance(doc, dict) or set(doc) == {"spec"}:
            continue
        for name, job in doc.items():
            if isinstance(name, str) and name not in _JOB_KEYWORDS and isinstance(job, dict):
                jobs[name] = job
    return jobs


def _is_build_job(name: str, job: dict[str, Any]) -> bool:
    return not name.startswith(".") and (job.get("stage") == "build" or re.search(r"build$", name) is not None)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def has_substitution_only_bootstrap(documents: list[Any]) -> bool:
    for string in _strings(documents):
        for line in re.split(r"\n|;|&&|\|\|", string):
            if _BOOTSTRAP.search(line) and _NO_LOCAL_BUILDS.search(line):
                return True
    return False


def is_ci_template(res: Res) -> bool:
    path = text(res.props.get("filePath")) or ""
    return res.type == REPOSITORY_FILE and path.endswith((".yml", ".yaml"))


def _validate_greedy_template_shape(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if not is_ci_template(res) or res.props.get("content") is UNKNOWN:
        return
    path = res.props.get("filePath")
    documents = template_documents(res)
    if documents is None:
        report_violation(f"CI template {path}: content is not readable YAML")
        return
    jobs = template_jobs(documents)
    builds = {name: job for name, job in jobs.items() if _is_build_job(name, job)}
    if not builds:
        report_violation(f"CI template {path}: no build job (a job in stage 'build' or named '*build')")
    for name, job in sorted(builds.items()):
        if job.get("needs") != []:
            got = "no needs" if "needs" not in job else f"needs: {json.dumps(job.get('needs'))}"
            report_violation(
                f"CI template {path}: build job '{name}' has {got}; set needs: [] so it starts at once, "
                "in parallel with validation"
            )
    if not has_substitution_only_bootstrap(documents):
        report_violation(
            f"CI template {path}: no substitution-only bootstrap (`nix build ... --max-jobs 0`); the attic "
            "client must be fetched from a cache, never compiled on the runner"
        )


GREEDY_TEMPLATE_SHAPE = ResourceValidationPolicy(
    "greedy-template-shape",
    "The committed CI template starts build jobs at once (needs: []) and bootstraps the attic client "
    "substitution-only (--max-jobs 0).",
    _validate_greedy_template_shape,
    EnforcementLevel.MANDATORY,
)
