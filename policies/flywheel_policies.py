"""flywheel's CrossGuard policies: a stack whose cache configuration is wrong is refused.

Self-contained on purpose (pulumi_policy, the standard library and PyYAML only): the policy host
runs ``policies/__main__.py`` with this folder as its import root, while tests and tools import
``policies.flywheel_policies`` from the repository root.

Every policy reads only inputs, tolerates missing properties, and treats a value that is unknown
during preview as "cannot judge yet" (the analyzer runs again with known values on ``pulumi up``).
Props may be the analyzer's unknown-checking proxies: ``known()`` turns them into plain data first.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as _proxy

# --- shared facts -------------------------------------------------------------------------------

SUBSTRATE_MODE = "shared-cache-backed"
CONTRACT_KEYS = ("BAZEL_REMOTE_CACHE", "GF_BAZEL_SUBSTRATE_MODE")
ATTIC_KEYS = ("ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY")
# What the offline render writes where the engine holds a secret value (tools/render.py).
REDACTED = "[secret]"

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
CRON_JOB = "kubernetes:batch/v1:CronJob"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
GROUP_VARIABLE = "gitlab:index/groupVariable:GroupVariable"
PROJECT_VARIABLE = "gitlab:index/projectVariable:ProjectVariable"
INSTANCE_VARIABLE = "gitlab:index/instanceVariable:InstanceVariable"
USER_RUNNER = "gitlab:index/userRunner:UserRunner"
REPOSITORY_FILE = "gitlab:index/repositoryFile:RepositoryFile"
DYNAMIC = "pulumi-python:dynamic:Resource"
WORKLOAD_TYPES = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
    "kubernetes:batch/v1:Job",
    CRON_JOB,
    "kubernetes:core/v1:Pod",
}
CI_VARIABLE_TYPES = {GROUP_VARIABLE: "group", PROJECT_VARIABLE: "project", INSTANCE_VARIABLE: "instance"}

# How a runner pool with `cacheInjection: false` is recognised: a job pod label in its config.toml
# ([runners.kubernetes] pod_labels), or the same flag under the release's `flywheel` values.
CACHE_INJECTION_LABEL = "flywheel.dev/cache-injection"

_UNKNOWN_SENTINELS = frozenset(
    {
        _proxy.UNKNOWN_BOOLEAN_VALUE,
        _proxy.UNKNOWN_NUMBER_VALUE,
        _proxy.UNKNOWN_STRING_VALUE,
        _proxy.UNKNOWN_ARRAY_VALUE,
        _proxy.UNKNOWN_ASSET_VALUE,
        _proxy.UNKNOWN_ARCHIVE_VALUE,
        _proxy.UNKNOWN_OBJECT_VALUE,
    }
)


class _Unknown:
    """A value the engine does not know yet (preview)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()


def known(value: Any) -> Any:
    """Plain dicts/lists from (possibly proxied) props; unknown values become ``UNKNOWN``."""
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                out[str(key)] = known(value[key])
            except _proxy.UnknownValueError:
                out[str(key)] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                items.append(known(value[index]))
            except _proxy.UnknownValueError:
                items.append(UNKNOWN)
        return items
    secret_value = getattr(value, "value", None) if type(value).__name__ == "Secret" else None
    return known(secret_value) if secret_value is not None else value


def dig(value: Any, *path: str | int) -> Any:
    """``value[path...]`` on plain data; None when missing or of the wrong shape, UNKNOWN when unknown."""
    for step in path:
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(step, str) and isinstance(value, dict):
            value = value.get(step)
        elif isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Res:
    """One resource as the policies see it: type, URN, name, plain props, protection options."""

    type: str
    urn: str
    name: str
    props: dict[str, Any]
    protect: bool | None
    retain_on_delete: bool | None
    parent: str | None = None

    @property
    def kind_name(self) -> str:
        return f"{self.type.rsplit(':', 1)[-1]} '{self.display_name}'"

    @property
    def display_name(self) -> str:
        meta = dig(self.props, "metadata", "name")
        return meta if isinstance(meta, str) else self.name

    @property
    def namespace(self) -> str | None:
        return text(dig(self.props, "metadata", "namespace"))


def _res(typ: str, urn: str, name: str, props: Any, opts: Any) -> Res:
    plain = known(props) if props is not None else {}
    retain = getattr(opts, "retain_on_delete", None)
    parent = getattr(opts, "parent", None)
    protect = getattr(opts, "protect", None)
    return Res(
        type=typ,
        urn=urn,
        name=name,
        props=plain if isinstance(plain, dict) else {},
        protect=bool(protect) if protect is not None else None,
        retain_on_delete=bool(retain) if retain is not None else None,
        parent=parent if isinstance(parent, str) and parent else None,
    )


def resource_of(args: ResourceValidationArgs) -> Res:
    return _res(args.resource_type, args.urn, args.name, args.props, args.opts)


def stack_resources(args: StackValidationArgs) -> list[Res]:
    return [_res(r.resource_type, r.urn, r.name, r.props, r.opts) for r in args.resources]


def config_value(args: Any, key: str, default: Any, kind: type | tuple[type, ...]) -> Any:
    """A policy config property, or its default when unset or of the wrong type."""
    try:
        value = args.get_config().get(key, default)
    except (AttributeError, TypeError):
        return default
    if isinstance(value, bool) and kind is not bool:
        return default
    return value if isinstance(value, kind) else default


# --- runner releases and their config.toml --------------------------------------------------------


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


def pool_name(res: Res) -> str:
    return res.display_name if res.display_name else res.name


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


def _runner_label(runner: dict[str, Any], index: int) -> str:
    name = text(runner.get("name"))
    return f"[[runners]] '{name}'" if name else f"[[runners]] #{index + 1}"


def _is_grpc_url(value: str) -> bool:
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
        where = f"{release_label(res)}: config.toml {_runner_label(runner, index)}"
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
        elif not _is_grpc_url(remote):
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


# --- GitLab CI variables ------------------------------------------------------------------------


def ci_variables(resources: list[Res]) -> list[Res]:
    return [r for r in resources if r.type in CI_VARIABLE_TYPES]


def variable_label(res: Res) -> str:
    key = text(res.props.get("key")) or "?"
    kind = CI_VARIABLE_TYPES.get(res.type, "CI")
    return f"{kind} variable {key} ('{res.name}')"


def _validate_contract_not_shadowed(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for res in ci_variables(stack_resources(args)):
        key = res.props.get("key")
        if key in CONTRACT_KEYS:
            report_violation(
                f"{variable_label(res)} would override the value every runner injects and break the cache "
                f"contract; delete it (runners inject {', '.join(CONTRACT_KEYS)})",
                res.urn,
            )


# --- contract consistency -----------------------------------------------------------------------


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


def attic_api_endpoints(resources: list[Res]) -> set[str]:
    """``api-endpoint`` of every Attic server.toml in the stack (normalised without trailing '/')."""
    endpoints = set()
    for res in resources:
        if res.type != CONFIG_MAP:
            continue
        for doc in _server_tomls(res):
            endpoint = doc.get("api-endpoint")
            if isinstance(endpoint, str):
                endpoints.add(endpoint.rstrip("/"))
    return endpoints


def _server_tomls(res: Res) -> Iterator[dict[str, Any]]:
    for key, value in as_dict(res.props.get("data")).items():
        if key.endswith(".toml") and "server" in key and isinstance(value, str):
            try:
                yield tomllib.loads(value)
            except tomllib.TOMLDecodeError:
                continue


def _group_values(resources: list[Res]) -> dict[str, tuple[Res, Any]]:
    values = {}
    for res in resources:
        if res.type == GROUP_VARIABLE and res.props.get("key") in ATTIC_KEYS:
            values[res.props["key"]] = (res, res.props.get("value"))
    return values


def _attic_servers(resources: list[Res]) -> list[Res]:
    return [r for r in resources if r.type in WORKLOAD_TYPES and any(atticd_modes(r))]


def _validate_contract_consistent(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args)
    services = [r for r in resources if r.type == SERVICE]
    endpoints = attic_api_endpoints(resources)
    group = _group_values(resources)
    has_attic = bool(_attic_servers(resources)) or bool(endpoints)
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
            where = f"{release_label(release)}: config.toml {_runner_label(runner, index)}"
            env = environment_of(runner)
            remote = env.get("BAZEL_REMOTE_CACHE")
            if remote is not None and _is_grpc_url(remote):
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


# --- attic processes and GC -----------------------------------------------------------------------


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


def _argv(container: dict[str, Any]) -> list[str]:
    return [a for a in as_list(container.get("command")) + as_list(container.get("args")) if isinstance(a, str)]


def _image_name(image: str) -> str:
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def atticd_mode(container: dict[str, Any]) -> str | None:
    """The ``--mode`` an atticd container runs in (monolithic when unset), None for other containers."""
    argv = _argv(container)
    image = text(container.get("image")) or ""
    command = [a for a in as_list(container.get("command")) if isinstance(a, str)]
    runs_atticd = any(a.rsplit("/", 1)[-1] == "atticd" for a in argv) or (not command and _image_name(image) == "attic")
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


_HUMANTIME_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Zµ]*)")


def humantime_is_zero(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if not isinstance(value, str):
        return True
    numbers = [float(n) for n, _ in _HUMANTIME_PART.findall(value)]
    return not numbers or all(n == 0 for n in numbers)


def runs_attic(resources: list[Res]) -> bool:
    """Whether the stack runs Attic at all: an atticd workload, a server.toml, or ATTIC_SERVER handed to CI."""
    return (
        bool(_attic_servers(resources))
        or any(True for r in resources if r.type == CONFIG_MAP for _ in _server_tomls(r))
        or any(r.type == GROUP_VARIABLE and r.props.get("key") == "ATTIC_SERVER" for r in resources)
    )


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
    tomls = [(res, doc) for res in resources if res.type == CONFIG_MAP for doc in _server_tomls(res)]
    if not tomls and (gc_jobs or _attic_servers(resources)):
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


# --- secrets out of ConfigMaps ---------------------------------------------------------------------

_PRIVATE_KEY_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_URL_WITH_PASSWORD = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}")
_GITLAB_TOKEN = re.compile(r"\bgl(?:rt|pat|dt|ptt|ft|soat|cbt|imt|agent|oas|ft|rtr)-[A-Za-z0-9_-]{10,}")
_NIX_SECRET_KEY = re.compile(r"^[A-Za-z0-9._+?=-]+:([A-Za-z0-9+/]{86}==)$")
_SECRET_KEY_NAME = re.compile(r"(?i)(secret|password|passwd|private[-_]?key|credential|(^|[-_.])(api[-_]?)?token$)")
# Keys that name where a secret lives rather than holding it (secretName, token-file, password_path, ...).
_SECRET_REFERENCE_NAME = re.compile(r"(?i)(name|ref|file|path|env|[-_]id)$")


def _value_secret_kind(value: str) -> str | None:
    if value == REDACTED:
        return "a value Pulumi holds as secret"
    if _PRIVATE_KEY_PEM.search(value):
        return "a PEM private key"
    if _URL_WITH_PASSWORD.search(value):
        return "a URL with an embedded password"
    if _JWT.search(value):
        return "a JWT (token)"
    if _GITLAB_TOKEN.search(value):
        return "a GitLab token"
    match = _NIX_SECRET_KEY.match(value.strip())
    if match:
        try:
            if len(base64.b64decode(match.group(1))) == 64:
                return "a Nix signing secret key"
        except binascii.Error:
            pass
    return None


def _secret_key(key: str) -> bool:
    return _SECRET_KEY_NAME.search(key) is not None and _SECRET_REFERENCE_NAME.search(key) is None


def _meaningful(value: Any) -> bool:
    """A literal value (not empty, not a shell or template reference such as `$TOKEN` or `{{ .token }}`)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    literal = str(value).strip()
    return literal not in {"", "-"} and not literal.startswith("$") and "{{" not in literal and "$(" not in literal


def secrets_in(value: Any, path: str) -> Iterator[str]:
    """Where ``value`` (a ConfigMap entry, possibly a TOML/YAML/JSON document) carries a secret."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}"
            if _secret_key(str(key)) and _meaningful(item):
                yield f"{child} (a secret-looking key with a value)"
            else:
                yield from secrets_in(item, child)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from secrets_in(item, f"{path}[{index}]")
        return
    if not isinstance(value, str):
        return
    kind = _value_secret_kind(value)
    if kind:
        yield f"{path} ({kind})"
        return
    document = _parse_document(value)
    if document is not None:
        yield from secrets_in(document, path)
        return
    for line in value.splitlines():  # env-file style KEY=value
        key, sep, item = line.partition("=")
        is_assignment = sep and re.fullmatch(r"\s*(export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*", key)
        if is_assignment and _secret_key(key.strip()) and _meaningful(item.strip().strip("\"'")):
            yield f"{path}: {key.strip()} (a secret-looking key with a value)"


def _parse_document(value: str) -> dict[str, Any] | list[Any] | None:
    if "\n" not in value and "=" not in value and ":" not in value:
        return None
    try:
        parsed: Any = tomllib.loads(value)
    except tomllib.TOMLDecodeError:
        try:
            parsed = json.loads(value)
        except ValueError:
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return None
    return parsed if isinstance(parsed, dict | list) and parsed else None


def _validate_attic_secrets_out_of_configmaps(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if res.type != CONFIG_MAP:
        return
    for field in ("data", "binaryData"):
        for key, value in as_dict(res.props.get(field)).items():
            if field == "binaryData" and isinstance(value, str):
                try:
                    value = base64.b64decode(value).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue
            for where in secrets_in(value, f"{field}.{key}"):
                report_violation(
                    f"ConfigMap '{res.display_name}' carries a secret at {where}; ConfigMaps are readable by "
                    "anyone who can read the namespace: move it to a Secret and pass it by env (secretKeyRef)"
                )


# --- CI variables masked ------------------------------------------------------------------------

SENSITIVE_KEY_PATTERN = r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIAL|API_KEY)"


def _validate_ci_token_masked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if res.type not in (GROUP_VARIABLE, PROJECT_VARIABLE):
        return
    key = res.props.get("key")
    if not isinstance(key, str):
        return
    pattern = config_value(args, "keyPattern", SENSITIVE_KEY_PATTERN, str)
    try:
        looks_secret = re.search(pattern, key) is not None
    except re.error:
        looks_secret = re.search(SENSITIVE_KEY_PATTERN, key) is not None
    if not looks_secret:
        return
    missing = [
        flag for flag in ("masked", "hidden") if res.props.get(flag) is not True and res.props.get(flag) is not UNKNOWN
    ]
    if missing:
        report_violation(
            f"{variable_label(res)} looks like a credential but is not {' and '.join(missing)}; "
            "set masked: true and hidden: true (hidden can only be set when the variable is created)"
        )


# --- storage ------------------------------------------------------------------------------------


BUCKET_TYPE = "pulumi-python:dynamic/flywheel:S3Bucket"


def is_bucket(res: Res) -> bool:
    """The external bucket (components/s3_bucket.py), a dynamic resource of its own type."""
    return res.type == BUCKET_TYPE or (
        res.type.startswith(DYNAMIC.rsplit(":", 1)[0])
        and isinstance(res.props.get("bucket"), str)
        and "retainOnDelete" in res.props
    )


def is_seaweedfs(res: Res) -> bool:
    return res.type in WORKLOAD_TYPES and any(
        _image_name(text(c.get("image")) or "") == "seaweedfs" for c in containers(res)
    )


_ALLOWED_LIFECYCLE_ACTIONS = {"AbortIncompleteMultipartUpload", "abortIncompleteMultipartUpload"}


def lifecycle_expirations(rules: Any) -> list[str]:
    """Descriptions of lifecycle rules that delete or transition objects (anything beyond aborting uploads)."""
    found = []
    for index, rule in enumerate(as_list(rules)):
        if not isinstance(rule, dict):
            continue
        if str(rule.get("Status", rule.get("status", "Enabled"))).lower() == "disabled":
            continue
        label = text(rule.get("ID")) or text(rule.get("id")) or f"#{index + 1}"
        actions = sorted(
            key
            for key, value in rule.items()
            if key not in _ALLOWED_LIFECYCLE_ACTIONS
            and re.search(r"(?i)expir|transition|noncurrent", key)
            and value not in (None, {}, [], False)
        )
        if actions:
            found.append(f"rule {label} ({', '.join(actions)})")
    return found


def _bucket_problems(res: Res) -> Iterator[str]:
    name = f"bucket '{res.props.get('bucket')}'"
    settings = as_dict(res.props.get("settings"))
    block = res.props.get("publicAccessBlock", settings.get("publicAccessBlock"))
    if isinstance(block, dict) and any(value is False for value in block.values()):
        off = sorted(key for key, value in block.items() if value is False)
        yield f"{name} leaves public access open ({', '.join(off)} false); block all four public-access settings"
    if res.props.get("blockPublicAccess") is False:
        yield f"{name} does not block public access; Attic serves objects only through its API"
    if res.protect is False:
        yield f"{name} is not protected; `pulumi destroy` would delete the cache's data (storage.protect: true)"
    kept = res.props.get("retainOnDelete")
    if kept is not UNKNOWN and kept is not True:
        yield f"{name} is not retained on delete (retainOnDelete {kept!r}); removing it would drop the cache's data"
    elif res.retain_on_delete is False:
        yield f"{name} is registered without retainOnDelete; a replace or removal would delete the data"
    rules = res.props.get("lifecycleRules", dig(res.props, "lifecycle", "Rules") or dig(settings, "lifecycle", "Rules"))
    for rule in lifecycle_expirations(rules):
        yield (
            f"{name} has a lifecycle {rule} that expires objects Attic's database still references; "
            "only AbortIncompleteMultipartUpload is allowed (Attic's GC owns object lifetimes)"
        )


def _seaweedfs_problems(res: Res, resources: list[Res]) -> Iterator[str]:
    """The in-cluster store: reachable only inside the cluster, its volume kept, buckets not dropped when full."""
    policy = dig(res.props, "spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted")
    if policy == "Delete":
        yield f"{res.kind_name} deletes its data volume with the StatefulSet; set whenDeleted: Retain"
    if res.type != "kubernetes:apps/v1:StatefulSet" and not any(
        dig(v, "persistentVolumeClaim", "claimName") for v in as_list(pod_spec(res).get("volumes"))
    ):
        yield f"{res.kind_name} keeps the object store without a PersistentVolumeClaim; its data would not survive"
    for container in containers(res):
        if "-s3.allowDeleteBucketNotEmpty=true" in _argv(container) or (
            _image_name(text(container.get("image")) or "") == "seaweedfs"
            and "-s3" in _argv(container)
            and "-s3.allowDeleteBucketNotEmpty=false" not in _argv(container)
        ):
            yield (
                f"{res.kind_name} lets S3 clients delete a bucket that still holds objects (SeaweedFS's default); "
                "pass -s3.allowDeleteBucketNotEmpty=false"
            )
    labels = pod_spec_labels(res)
    for service in resources:
        if service.type != SERVICE or service.namespace != res.namespace:
            continue
        selector = as_dict(dig(service.props, "spec", "selector"))
        exposed = dig(service.props, "spec", "type") in {"LoadBalancer", "NodePort"}
        if exposed and selector and all(labels.get(k) == v for k, v in selector.items()):
            yield (
                f"Service '{service.display_name}' exposes the object store outside the cluster "
                f"(type {dig(service.props, 'spec', 'type')}); keep it ClusterIP"
            )


def pod_spec_labels(res: Res) -> dict[str, Any]:
    return as_dict(dig(res.props, "spec", "template", "metadata", "labels"))


def _attic_storage(resources: list[Res]) -> list[tuple[Res, dict[str, Any]]]:
    return [
        (res, as_dict(doc.get("storage")))
        for res in resources
        if res.type == CONFIG_MAP
        for doc in _server_tomls(res)
        if as_dict(doc.get("storage")).get("type") == "s3"
    ]


def _validate_storage_private_and_kept(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args)
    buckets = [r for r in resources if is_bucket(r)]
    stores = [r for r in resources if is_seaweedfs(r)]
    for res in buckets:
        for message in _bucket_problems(res):
            report_violation(message, res.urn)
    for res in stores:
        for message in _seaweedfs_problems(res, resources):
            report_violation(message, res.urn)
    managed = {r.props.get("bucket") for r in buckets}
    for res, storage in _attic_storage(resources):
        bucket = storage.get("bucket")
        if isinstance(bucket, str) and bucket not in managed and not stores:
            report_violation(
                f"Attic's server.toml (ConfigMap '{res.display_name}') stores into bucket '{bucket}', which no "
                "resource of this stack manages; without it nothing keeps the bucket private and protected",
                res.urn,
            )


# --- the greedy CI template --------------------------------------------------------------------------


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it (10x faster)


class _TolerantLoader(_SafeLoader):  # type: ignore[misc]
    """SafeLoader that reads GitLab's custom tags (``!reference [...]``) as plain data."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _any_tag)

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
    return _yaml_documents(content)


@functools.lru_cache(maxsize=16)
def _yaml_documents(content: str) -> list[Any] | None:
    """Parsed once per content (several policies read the same template); callers must not mutate it."""
    try:
        return list(yaml.load_all(content, Loader=_TolerantLoader))
    except yaml.YAMLError:
        return None


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


# --- runner pools: privileged and limits ----------------------------------------------------------------


def _validate_runner_privileged_explicit(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A privileged pool is declared to jobs by its tags: its GitLab runner takes only jobs that ask for them."""
    resources = stack_resources(args)
    for res in resources:
        if not is_runner_release(res):
            continue
        for index, runner in enumerate(runner_config(res).runners):
            kube = as_dict(runner.get("kubernetes"))
            where = f"{release_label(res)}: config.toml {_runner_label(runner, index)}"
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
        missing = [key for key in ("cpu_limit", "memory_limit") if not _meaningful(kube.get(key))]
        if missing:
            report_violation(
                f"{release_label(res)}: config.toml {_runner_label(runner, index)} sets no "
                f"{' or '.join(missing)} for job pods; one job could starve the node; set cpuLimit and memoryLimit"
            )


# --- bazel cache capacity -------------------------------------------------------------------------------

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
    argv = _argv(container)
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


# --- images pinned ----------------------------------------------------------------------------------


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


# --- the pack -----------------------------------------------------------------------------------------


def _resource(
    name: str,
    description: str,
    validate: Callable[[ResourceValidationArgs, ReportViolation], None],
    level: EnforcementLevel,
    properties: dict[str, dict[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    schema = PolicyConfigSchema(properties) if properties else None
    return ResourceValidationPolicy(name, description, validate, level, schema)


def _stack(
    name: str,
    description: str,
    validate: Callable[[StackValidationArgs, ReportViolation], None],
    level: EnforcementLevel,
    properties: dict[str, dict[str, Any]] | None = None,
) -> StackValidationPolicy:
    schema = PolicyConfigSchema(properties) if properties else None
    return StackValidationPolicy(name, description, validate, level, schema)


M, A = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    _resource(
        "runner-cache-contract",
        "Runners inject BAZEL_REMOTE_CACHE (grpc://) and GF_BAZEL_SUBSTRATE_MODE=shared-cache-backed "
        "under [[runners]] environment.",
        _validate_runner_contract,
        M,
    ),
    _stack(
        "contract-not-shadowed",
        "No GitLab group or project variable defines BAZEL_REMOTE_CACHE or GF_BAZEL_SUBSTRATE_MODE.",
        _validate_contract_not_shadowed,
        M,
    ),
    _stack(
        "contract-consistent",
        "Runners' BAZEL_REMOTE_CACHE points at this stack's bazel cache; ATTIC_* agree with the Attic server "
        "and the group variables.",
        _validate_contract_consistent,
        M,
    ),
    _stack(
        "attic-gc-present",
        "Exactly one Attic GC CronJob (garbage-collector-once, concurrencyPolicy Forbid), a non-zero "
        "default-retention-period, and no GC loop beside it.",
        _validate_attic_gc_present,
        M,
    ),
    _resource(
        "attic-secrets-out-of-configmaps",
        "No ConfigMap carries a private key, S3 secret key, database password or token.",
        _validate_attic_secrets_out_of_configmaps,
        M,
    ),
    _resource(
        "ci-token-masked",
        "CI variables whose key looks like a token, secret or password are masked and hidden.",
        _validate_ci_token_masked,
        M,
        {"keyPattern": {"type": "string", "default": SENSITIVE_KEY_PATTERN}},
    ),
    _stack(
        "storage-private-and-kept",
        "The cache bucket blocks public access, is protected and retained on delete, and no lifecycle rule "
        "expires its objects.",
        _validate_storage_private_and_kept,
        M,
    ),
    _resource(
        "greedy-template-shape",
        "The committed CI template starts build jobs at once (needs: []) and bootstraps the attic client "
        "substitution-only (--max-jobs 0).",
        _validate_greedy_template_shape,
        M,
    ),
    _stack(
        "runner-privileged-explicit",
        "Privileged job pods only in runner pools that declare it to jobs (tag-only GitLab runners).",
        _validate_runner_privileged_explicit,
        A,
    ),
    _resource(
        "runner-limits",
        "Every runner pool sets CPU and memory limits for job pods.",
        _validate_runner_limits,
        A,
    ),
    _stack(
        "bazel-cache-capacity",
        "The bazel cache volume holds bazel-remote's max_size with headroom.",
        _validate_bazel_cache_capacity,
        A,
        {"headroom": {"type": "number", "minimum": 1, "default": DEFAULT_BAZEL_HEADROOM}},
    ),
    _resource(
        "images-pinned",
        "No container image uses ':latest' or no tag at all.",
        _validate_images_pinned,
        A,
    ),
]
