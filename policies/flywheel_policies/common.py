"""What every policy shares: resource-type facts, plain data from props, UNKNOWN, document parsing.

Props may be the analyzer's unknown-checking proxies: ``known()`` turns them into plain data first, and a
value unknown during preview becomes ``UNKNOWN`` ("cannot judge yet"; the analyzer runs again on ``pulumi up``).
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pulumi_policy import ResourceValidationArgs, StackValidationArgs
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


# --- props as plain data ------------------------------------------------------------------------

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


# --- values and documents ---------------------------------------------------------------------


def meaningful(value: Any) -> bool:
    """A literal value (not empty, not a shell or template reference such as `$TOKEN` or `{{ .token }}`)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    literal = str(value).strip()
    return literal not in {"", "-"} and not literal.startswith("$") and "{{" not in literal and "$(" not in literal


def parse_document(value: str) -> dict[str, Any] | list[Any] | None:
    """A non-empty TOML, JSON or YAML document held in a string (a ConfigMap entry), else None."""
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


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it (10x faster)


class _TolerantLoader(_SafeLoader):
    """SafeLoader that reads GitLab's custom tags (``!reference [...]``) as plain data."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _any_tag)


@functools.lru_cache(maxsize=16)
def yaml_documents(content: str) -> list[Any] | None:
    """Parsed once per content (several policies read the same template); callers must not mutate it."""
    try:
        return list(yaml.load_all(content, Loader=_TolerantLoader))
    except yaml.YAMLError:
        return None
