"""GitLab runner pools: their config.toml injects the cache contract, privileged pools are opt-in, limits are set."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import (
    CONTRACT_KEYS,
    HELM_RELEASE,
    SUBSTRATE_MODE,
    UNKNOWN,
    USER_RUNNER,
    Res,
    as_dict,
    as_list,
    dig,
    meaningful,
    resource_of,
    stack_resources,
    text,
)

# How a runner pool with `cacheInjection: false` is recognised: a job pod label in its config.toml
# ([runners.kubernetes] pod_labels), or the same flag under the release's `flywheel` values.
CACHE_INJECTION_LABEL = "flywheel.dev/cache-injection"


def is_runner_release(res: Res) -> bool:
    chart = text(res.props.get("chart")) or ""
    return res.type == HELM_RELEASE and chart.rstrip("/").rsplit("/", 1)[-1] == "gitlab-runner"


@dataclass(frozen=True)
class RunnerConfig:
    """A runner release's config.toml: parsed document, or why it could not be read."""

    document: dict[str, Any] | None
    problem: str | None
    unknown: bool = False

    @property
    def runners(self) -> list[dict[str, Any]]:
        return [r for r in as_list(as_dict(self.document).get("runners")) if isinstance(r, dict)]


def runner_config(res: Res) -> RunnerConfig:
    raw = dig(res.props, "values", "runners", "config")
    if raw is UNKNOWN:
        return RunnerConfig(None, None, unknown=True)
    if raw is None:
        return RunnerConfig(None, "values.runners.config (the runner's config.toml) is missing")
    if not isinstance(raw, str):
        return RunnerConfig(None, "values.runners.config is not a config.toml string")
    try:
        return RunnerConfig(tomllib.loads(raw), None)
    except tomllib.TOMLDecodeError as err:
        if "{{" in raw:  # a Helm template expression: only the chart knows what it renders to
            return RunnerConfig(None, None, unknown=True)
        return RunnerConfig(None, f"values.runners.config is not valid TOML ({err})")


def release_label(res: Res) -> str:
    name = text(res.props.get("name")) or res.name
    return f"runner release '{name}'"


def opts_out_of_cache(res: Res) -> bool:
    """Whether the pool declares ``cacheInjection: false`` (a job pod label, or release values)."""
    if dig(res.props, "values", "flywheel", "cacheInjection") is False:
        return True
    labels = [dig(r, "kubernetes", "pod_labels", CACHE_INJECTION_LABEL) for r in runner_config(res).runners]
    return bool(labels) and all(str(label).lower() in {"false", "disabled"} for label in labels)


def environment_of(runner: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in as_list(runner.get("environment")):
        if isinstance(item, str) and "=" in item:
            key, _, value = item.partition("=")
            env[key] = value
    return env


def runner_location(res: Res, runner: dict[str, Any], index: int) -> str:
    """Where one [[runners]] entry sits: its release, then its name (or position) in config.toml."""
    name = text(runner.get("name"))
    entry = f"[[runners]] '{name}'" if name else f"[[runners]] #{index + 1}"
    return f"{release_label(res)}: config.toml {entry}"


def is_grpc_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"grpc", "grpcs"} and bool(parts.hostname)


def check_runner_contract(res: Res) -> list[str]:
    """Messages for one gitlab-runner release that does not inject the cache contract."""
    if not is_runner_release(res) or opts_out_of_cache(res):
        return []
    config = runner_config(res)
    if config.unknown:
        return []
    if config.problem:
        return [f"{release_label(res)}: {config.problem}; it must carry a [[runners]] entry injecting the contract"]
    if not config.runners:
        return [f"{release_label(res)}: config.toml has no [[runners]] entry to inject {', '.join(CONTRACT_KEYS)}"]
    problems = []
    for index, runner in enumerate(config.runners):
        where = runner_location(res, runner, index)
        misplaced = dig(runner, "kubernetes", "environment")
        if misplaced is not None:
            problems.append(
                f"{where}: 'environment' sits under [runners.kubernetes], where the runner ignores it; "
                "move it to the [[runners]] table itself"
            )
        env = environment_of(runner)
        remote = env.get("BAZEL_REMOTE_CACHE")
        if remote is None:
            problems.append(
                f"{where}: environment does not inject BAZEL_REMOTE_CACHE; "
                "add BAZEL_REMOTE_CACHE=grpc://<bazel cache service>:9092 to [[runners]] environment"
            )
        elif not is_grpc_url(remote):
            problems.append(
                f"{where}: BAZEL_REMOTE_CACHE is {remote!r}, not a grpc:// or grpcs:// URL; "
                "point it at the bazel cache Service, e.g. grpc://<service>.<namespace>.svc.cluster.local:9092"
            )
        mode = env.get("GF_BAZEL_SUBSTRATE_MODE")
        if mode != SUBSTRATE_MODE:
            got = "is missing" if mode is None else f"is {mode!r}"
            problems.append(
                f"{where}: GF_BAZEL_SUBSTRATE_MODE {got}; inject GF_BAZEL_SUBSTRATE_MODE={SUBSTRATE_MODE} "
                "in [[runners]] environment"
            )
    return problems


def _validate_runner_contract(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for message in check_runner_contract(resource_of(args)):
        report_violation(message)


def _validate_runner_privileged_explicit(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A privileged pool is declared to jobs by its tags: its GitLab runner takes only jobs that ask for them."""
    resources = stack_resources(args)
    for res in resources:
        if not is_runner_release(res):
            continue
        for index, runner in enumerate(runner_config(res).runners):
            kube = as_dict(runner.get("kubernetes"))
            where = runner_location(res, runner, index)
            if kube.get("allow_privilege_escalation") is True and kube.get("privileged") is not True:
                report_violation(
                    f"{where} allows privilege escalation without declaring privileged = true; "
                    "set both from the pool's privileged flag",
                    res.urn,
                )
            if kube.get("privileged") is not True:
                continue
            siblings = [r for r in resources if r.type == USER_RUNNER and r.parent == res.parent]
            for gitlab_runner in siblings:
                tags = [t for t in as_list(gitlab_runner.props.get("tagLists")) if isinstance(t, str) and t]
                untagged = gitlab_runner.props.get("untagged")
                if untagged is UNKNOWN:
                    continue
                if untagged is not False or not tags:
                    report_violation(
                        f"{where} runs privileged job pods, but its GitLab runner '{gitlab_runner.name}' "
                        f"{'takes untagged jobs' if untagged is not False else 'has no tags'}; set untagged: false "
                        "and a tag, so only jobs that ask for this pool get a privileged pod",
                        res.urn,
                    )
            if not siblings:
                report_violation(
                    f"{where} runs privileged job pods, but no GitLab runner of this stack belongs to its pool, "
                    "so nothing shows which jobs may use it",
                    res.urn,
                )


def _validate_runner_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if not is_runner_release(res):
        return
    for index, runner in enumerate(runner_config(res).runners):
        kube = as_dict(runner.get("kubernetes"))
        missing = [key for key in ("cpu_limit", "memory_limit") if not meaningful(kube.get(key))]
        if missing:
            report_violation(
                f"{runner_location(res, runner, index)} sets no "
                f"{' or '.join(missing)} for job pods; one job could starve the node; set cpuLimit and memoryLimit"
            )


SERVICE_SIZE_KEYS = ("service_cpu_request", "service_cpu_limit", "service_memory_request", "service_memory_limit")


def _validate_runner_service_sizes(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """dind builds run in the `docker:dind` service container: unsized, it gets the LimitRange default."""
    res = resource_of(args)
    if not is_runner_release(res):
        return
    for index, runner in enumerate(runner_config(res).runners):
        kube = as_dict(runner.get("kubernetes"))
        if kube.get("privileged") is not True:
            continue
        missing = [key for key in SERVICE_SIZE_KEYS if not meaningful(kube.get(key))]
        if missing:
            report_violation(
                f"{runner_location(res, runner, index)} runs privileged job pods (docker-in-docker builds run in "
                f"the service container) but sets no {', '.join(missing)}; the service gets the jobs LimitRange "
                "default (1 CPU, 1Gi); set the pool's services requests and limits"
            )


RUNNER_CACHE_CONTRACT = ResourceValidationPolicy(
    "runner-cache-contract",
    "Runners inject BAZEL_REMOTE_CACHE (grpc://) and GF_BAZEL_SUBSTRATE_MODE=shared-cache-backed "
    "under [[runners]] environment.",
    _validate_runner_contract,
    EnforcementLevel.MANDATORY,
)

RUNNER_PRIVILEGED_EXPLICIT = StackValidationPolicy(
    "runner-privileged-explicit",
    "Privileged job pods only in runner pools that declare it to jobs (tag-only GitLab runners).",
    _validate_runner_privileged_explicit,
    EnforcementLevel.ADVISORY,
)

RUNNER_LIMITS = ResourceValidationPolicy(
    "runner-limits",
    "Every runner pool sets CPU and memory limits for job pods.",
    _validate_runner_limits,
    EnforcementLevel.ADVISORY,
)

RUNNER_SERVICE_SIZES = ResourceValidationPolicy(
    "runner-service-sizes",
    "Privileged (docker-in-docker) runner pools size their service containers.",
    _validate_runner_service_sizes,
    EnforcementLevel.ADVISORY,
)
