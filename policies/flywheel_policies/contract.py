"""The cache contract: no CI variable shadows it, and runners, group variables and servers agree on it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .attic import attic_api_endpoints, attic_servers
from .ci_variables import ci_variables, variable_label
from .common import (
    ATTIC_KEYS,
    CONTRACT_KEYS,
    GROUP_VARIABLE,
    SERVICE,
    Res,
    as_dict,
    as_list,
    dig,
    stack_resources,
)
from .runners import environment_of, is_grpc_url, is_runner_release, opts_out_of_cache, runner_config, runner_location


def _validate_contract_not_shadowed(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for res in ci_variables(stack_resources(args)):
        key = res.props.get("key")
        if key in CONTRACT_KEYS:
            report_violation(
                f"{variable_label(res)} would override the value every runner injects and break the cache "
                f"contract; delete it (runners inject {', '.join(CONTRACT_KEYS)})",
                res.urn,
            )


def _service_hosts(res: Res) -> set[str]:
    name, namespace = res.display_name, res.namespace or "default"
    return {f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc", f"{name}.{namespace}"}


def _service_ports(res: Res) -> set[int]:
    ports = set()
    for port in as_list(dig(res.props, "spec", "ports")):
        number = dig(port, "port")
        if isinstance(number, int | float) and not isinstance(number, bool):
            ports.add(int(number))
    return ports


def _is_bazel_service(res: Res) -> bool:
    labels = as_dict(dig(res.props, "metadata", "labels"))
    haystack = " ".join([res.display_name, *(str(v) for v in labels.values())])
    return "bazel" in haystack


def _group_values(resources: list[Res]) -> dict[str, tuple[Res, Any]]:
    values = {}
    for res in resources:
        if res.type == GROUP_VARIABLE and res.props.get("key") in ATTIC_KEYS:
            values[res.props["key"]] = (res, res.props.get("value"))
    return values


def _validate_contract_consistent(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args)
    services = [r for r in resources if r.type == SERVICE]
    endpoints = attic_api_endpoints(resources)
    group = _group_values(resources)
    has_attic = bool(attic_servers(resources)) or bool(endpoints)
    if has_attic:
        for key in ATTIC_KEYS:
            if key not in group:
                report_violation(
                    f"no group variable {key}: CI jobs on any runner need it to find the Attic cache; "
                    "add it from the Attic server's outputs"
                )
    server_var = group.get("ATTIC_SERVER", (None, None))[1]
    if isinstance(server_var, str) and endpoints and server_var.rstrip("/") not in endpoints:
        report_violation(
            f"group variable ATTIC_SERVER is {server_var!r} but the Attic server's api-endpoint is "
            f"{' or '.join(sorted(endpoints))}; set it from the server's endpoint",
            group["ATTIC_SERVER"][0].urn,
        )
    for release in resources:
        if not is_runner_release(release) or opts_out_of_cache(release):
            continue
        config = runner_config(release)
        for index, runner in enumerate(config.runners):
            where = runner_location(release, runner, index)
            env = environment_of(runner)
            remote = env.get("BAZEL_REMOTE_CACHE")
            if remote is not None and is_grpc_url(remote):
                message = _bazel_target_problem(remote, services)
                if message:
                    report_violation(f"{where}: {message}", release.urn)
            for key in ATTIC_KEYS:
                injected = env.get(key)
                if injected is None:
                    if has_attic:
                        report_violation(f"{where}: environment does not inject {key}", release.urn)
                    continue
                expected = group.get(key, (None, None))[1]
                if isinstance(expected, str) and injected.rstrip("/") != expected.rstrip("/"):
                    report_violation(
                        f"{where}: {key} is {injected!r} but group variable {key} is {expected!r}; "
                        "both must come from the same CacheContract",
                        release.urn,
                    )
                if key == "ATTIC_SERVER" and endpoints and injected.rstrip("/") not in endpoints:
                    report_violation(
                        f"{where}: ATTIC_SERVER is {injected!r} but the Attic server's api-endpoint is "
                        f"{' or '.join(sorted(endpoints))}",
                        release.urn,
                    )


def _bazel_target_problem(url: str, services: list[Res]) -> str | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port
    for service in services:
        if host in _service_hosts(service):
            if port is not None and port not in _service_ports(service):
                return (
                    f"BAZEL_REMOTE_CACHE {url} uses port {port} but Service '{service.display_name}' exposes "
                    f"{sorted(_service_ports(service)) or 'no ports'}"
                )
            if not _is_bazel_service(service):
                return (
                    f"BAZEL_REMOTE_CACHE {url} points at Service '{service.display_name}', which is not a bazel cache"
                )
            return None
    candidates = sorted(
        f"grpc://{s.display_name}.{s.namespace or 'default'}.svc.cluster.local:{p}"
        for s in services
        if _is_bazel_service(s)
        for p in sorted(_service_ports(s))
    )
    hint = f"; this stack's bazel cache is at {', '.join(candidates)}" if candidates else ""
    return f"BAZEL_REMOTE_CACHE {url} points at no bazel cache Service of this stack{hint}"


CONTRACT_NOT_SHADOWED = StackValidationPolicy(
    "contract-not-shadowed",
    "No GitLab group or project variable defines BAZEL_REMOTE_CACHE or GF_BAZEL_SUBSTRATE_MODE.",
    _validate_contract_not_shadowed,
    EnforcementLevel.MANDATORY,
)

CONTRACT_CONSISTENT = StackValidationPolicy(
    "contract-consistent",
    "Runners' BAZEL_REMOTE_CACHE points at this stack's bazel cache; ATTIC_* agree with the Attic server "
    "and the group variables.",
    _validate_contract_consistent,
    EnforcementLevel.MANDATORY,
)
