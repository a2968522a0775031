"""The stack configuration: one typed, validated object read from the ``flywheel:`` namespace.

Every key name here is public contract (stack files outside this repo write them).
``load_platform_config`` validates the whole namespace before any resource is
registered and reports every problem as one line:

    flywheel:attic.gc.retention: not a duration (got '6 monthz'; expected a humantime duration ...)
"""

from __future__ import annotations

import difflib
import json
import math
import re
import types
import typing
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pulumi.errors import RunError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.config_types import (
    GO_TIME_STRING,
    TOML_INT_MAX,
    AtticCacheName,
    BucketName,
    CliText,
    CronSchedule,
    DnsLabel,
    EndpointUrl,
    GitlabVariableKey,
    Hostname,
    HttpUrl,
    Humantime,
    Image,
    LabelKey,
    LabelValue,
    Namespace,
    Quantity,
    Timeout,
    VolumeSize,
    check_maskable,
    config_problem,
    parse_humantime,
    parse_quantity,
)
from components.secure_config import locate_secure_values, stack_file_config

NAMESPACE = "flywheel"
SUBSTRATE_MODE = "shared-cache-backed"
# Keys the runners inject; a group or project variable with one of these names would override it.
CONTRACT_RUNNER_KEYS = frozenset({"BAZEL_REMOTE_CACHE", "GF_BAZEL_SUBSTRATE_MODE"})
# Keys the platform itself sets as group variables.
PLATFORM_GROUP_KEYS = frozenset({"ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY", "ATTIC_TOKEN"})
DAY_SECONDS = 86400
DNS_LABEL_MAX = 63
MAX_RETENTION_SECONDS = 2**32 - 1  # Attic keeps a cache's retention period as u32 seconds


class ConfigError(RunError):
    """The stack configuration is invalid; ``problems`` holds one user-facing line each.

    A RunError (like the SDK's own ConfigMissingError): Pulumi prints its message, one line per
    problem, and no traceback.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("invalid stack configuration:\n" + "\n".join(problems))
        self.problems = list(problems)


class Model(BaseModel):
    """Base for every config object: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_types(cls, data: Any) -> Any:
        """YAML values that pass pydantic's coercion but are not what the author meant: a boolean for a number,
        a number for a boolean, an unquoted date (the CLI hands it over as Go's time text)."""
        if not isinstance(data, Mapping):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key not in data or _inner_model(field.annotation) is not None:
                continue  # absent, or a config object that checks its own values
            value, kinds = data[key], _scalar_kinds(field.annotation)
            if isinstance(value, bool) and "int" in kinds and "bool" not in kinds:
                raise config_problem("a boolean where a number belongs", "a whole number, not true/false", key)
            if isinstance(value, int | float) and not isinstance(value, bool) and kinds == {"bool"}:
                raise config_problem("a number where true/false belongs", "true or false", key)
            dated = _first_go_time(value)
            if dated is not None:
                where, text = dated
                raise config_problem(
                    f"an unquoted YAML date (the Pulumi CLI passes it on as {text!r})",
                    "the value in quotes if it is text (e.g. '2024-01-01'), else a value of the key's own type",
                    (key, *where),
                )
        return data


def _scalar_kinds(annotation: Any) -> set[str]:
    """'int'/'bool' for the scalar types an annotation admits (through Optional, Annotated and unions)."""
    if annotation is bool:
        return {"bool"}
    if annotation is int:
        return {"int"}
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_scalar_kinds(arg) for arg in typing.get_args(annotation)))
    return set()


def _first_go_time(value: Any, where: tuple[str | int, ...] = ()) -> tuple[tuple[str | int, ...], str] | None:
    """The path below ``value`` of the first Go time text in it (an unquoted YAML date), and that text."""
    if isinstance(value, str):
        return (where, value) if GO_TIME_STRING.match(value) else None
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _first_go_time(item, (*where, key))
        if found is not None:
            return found
    return None


# --- gitlab -------------------------------------------------------------------------------------


class ExtraVariable(Model):
    value: CliText = Field(description="The variable's value.")
    masked: bool = Field(False, description="Mask the value in job logs (GitLab's masking rules are checked).")
    hidden: bool = Field(False, description="Also hide the value in the UI (implies masked).")
    protected: bool = Field(False, description="Only expose the variable on protected branches and tags.")
    raw: bool = Field(True, description="Do not expand `$` references in the value.")
    description: str | None = Field(None, description="Shown in GitLab's variable list.")
    # set by the loader when the value came from secure config: it then stays a secret Output
    _secret: bool = PrivateAttr(False)

    @property
    def secret(self) -> bool:
        return self._secret

    @model_validator(mode="after")
    def _maskable(self) -> ExtraVariable:
        if self.hidden and not self.masked:
            raise config_problem(
                "hidden variables must also be masked", "masked: true alongside hidden: true", "masked"
            )
        if self.masked:
            check_maskable(self.value)
        return self


class GitlabConfig(Model):
    url: HttpUrl = Field(description="Base URL of the GitLab instance, e.g. `https://gitlab.example.com`.")
    group_path: str = Field(min_length=1, description="Full path of the group that gets the runners and variables.")
    group_id: int = Field(
        gt=0, le=TOML_INT_MAX, description="Numeric ID of that group (runners are registered with it)."
    )
    template_project: str = Field(
        min_length=1, description="Full path of the project that receives the CI/CD component file."
    )
    template_ref: str = Field("main", min_length=1, description="Branch the CI/CD component is committed to.")
    extra_variables: dict[GitlabVariableKey, ExtraVariable] = Field(
        default_factory=dict,
        description="Extra group CI/CD variables: `KEY: value` or `KEY: {value, masked, hidden, protected, raw}`.",
    )

    @field_validator("extra_variables", mode="before")
    @classmethod
    def _plain_values(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: {"value": v} if isinstance(v, str | int | float) else v for k, v in value.items()}
        return value

    @field_validator("extra_variables", mode="after")
    @classmethod
    def _not_reserved(cls, value: dict[str, ExtraVariable]) -> dict[str, ExtraVariable]:
        for key in value:
            if key in CONTRACT_RUNNER_KEYS:
                raise config_problem(
                    f"'{key}' would override the value the runners inject and break the cache contract",
                    "any key except BAZEL_REMOTE_CACHE and GF_BAZEL_SUBSTRATE_MODE",
                )
            if key in PLATFORM_GROUP_KEYS:
                raise config_problem(
                    f"'{key}' is set by the platform from the Attic server's outputs",
                    "any key except " + ", ".join(sorted(PLATFORM_GROUP_KEYS)),
                )
        return value

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        # the API path is added by api_url; a URL copied from API docs must not get it twice
        return value.removesuffix("/api/v4").rstrip("/")

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4/"


# --- storage ------------------------------------------------------------------------------------


class S3Credentials(Model):
    access_key_id: SecretStr = Field(description="Access key ID (secret config).")
    secret_access_key: SecretStr = Field(description="Secret access key (secret config).")


class StorageConfig(Model):
    backend: Literal["seaweedfs", "s3"] = Field(
        "seaweedfs", description="`seaweedfs` (in-cluster, S3 gateway) or `s3` (any external S3-compatible store)."
    )
    bucket: BucketName = Field("flywheel-attic", description="Bucket for Attic's NARs and chunks (S3 naming rules).")
    region: str = Field("us-east-1", min_length=1, description="S3 region (any value for SeaweedFS).")
    endpoint: EndpointUrl | None = Field(
        None, description="`s3` only: endpoint URL with scheme; omit for AWS S3's default endpoint."
    )
    size: VolumeSize | None = Field(None, description="`seaweedfs` only (required): volume size, e.g. `100Gi`.")
    storage_class: str | None = Field(None, description="`seaweedfs` only: StorageClass of the volume.")
    image: Image = Field(
        "chrislusf/seaweedfs:4.48", description="`seaweedfs` only: SeaweedFS image (pinned; tests run this version)."
    )
    credentials: S3Credentials | None = Field(
        None,
        description="`s3` only (required): `{accessKeyId, secretAccessKey}`; set with `pulumi config set --secret`.",
    )
    bazel_credentials: S3Credentials | None = Field(
        None,
        description="`s3` only (optional): a second identity for bazel-remote (scope it to `<bucket>/bazel/`); "
        "without it bazel-remote shares `credentials`.",
    )
    protect: bool = Field(
        True,
        description="`s3`: protect the bucket from `pulumi destroy` and retain it on delete. `seaweedfs` always keeps "
        "its volume, so `false` is refused there.",
    )

    @model_validator(mode="after")
    def _backend_fields(self) -> StorageConfig:
        if self.backend == "seaweedfs":
            if self.size is None:
                raise config_problem(
                    "backend 'seaweedfs' needs 'size' (its volume size)", "a quantity like '100Gi'", "size"
                )
            misplaced = [
                key
                for key, value in (
                    ("endpoint", self.endpoint),
                    ("credentials", self.credentials),
                    ("bazelCredentials", self.bazel_credentials),
                )
                if value is not None
            ]
            if misplaced:
                raise config_problem(
                    "'endpoint', 'credentials' and 'bazelCredentials' belong to backend 's3'",
                    "none of them with backend 'seaweedfs' (the program generates its identities)",
                    misplaced[0],
                )
            if not self.protect:
                # storage.py keeps SeaweedFS's data whatever protect says: the StatefulSet retains its PVC
                # (persistentVolumeClaimRetentionPolicy Retain) and the namespace is retained on delete
                raise config_problem(
                    "'protect: false' would be ignored with backend 'seaweedfs': its volume is always kept (the "
                    "StatefulSet retains its PVC)",
                    "protect: false only with backend 's3'; to drop SeaweedFS's data, delete its PVC by hand",
                    "protect",
                )
        else:
            if self.credentials is None:
                raise config_problem(
                    "backend 's3' needs 'credentials'",
                    "{accessKeyId, secretAccessKey} set with `pulumi config set --secret`",
                    "credentials",
                )
            if self.size is not None:
                raise config_problem("'size' belongs to backend 'seaweedfs'", "no size with backend 's3'", "size")
            seaweedfs_only = sorted(self.model_fields_set & SEAWEEDFS_ONLY_FIELDS)
            if seaweedfs_only:
                key = to_camel(seaweedfs_only[0])
                raise config_problem(
                    f"'{key}' belongs to backend 'seaweedfs' and would be ignored", "no such key with backend 's3'", key
                )
        return self


# --- database -----------------------------------------------------------------------------------


CNPG_ONLY_FIELDS = frozenset(
    {
        "instances",
        "size",
        "storage_class",
        "postgres_image",
        "install_operator",
        "operator_chart_version",
        "operator_chart_repository",
        "ready_timeout",
    }
)
SEAWEEDFS_ONLY_FIELDS = frozenset({"storage_class", "image"})


class DatabaseConfig(Model):
    backend: Literal["cnpg", "external"] = Field(
        "cnpg", description="`cnpg` (CloudNativePG `Cluster`) or `external` (a PostgreSQL DSN)."
    )
    instances: int = Field(2, ge=1, le=9, description="`cnpg`: PostgreSQL instances (1 primary + replicas).")
    size: VolumeSize = Field("10Gi", description="`cnpg`: volume size per instance.")
    storage_class: str | None = Field(None, description="`cnpg`: StorageClass of the volumes.")
    postgres_image: Image = Field(
        "ghcr.io/cloudnative-pg/postgresql:16.6", description="`cnpg`: PostgreSQL image (pinned)."
    )
    install_operator: bool = Field(True, description="`cnpg`: install the CloudNativePG operator (Helm, pinned).")
    operator_chart_version: str = Field("0.23.0", description="`cnpg`: `cloudnative-pg` chart version.")
    operator_chart_repository: HttpUrl = Field(
        "https://cloudnative-pg.github.io/charts",
        description="`cnpg`: Helm repository of `cloudnative-pg` (mirror it for air-gapped sites).",
    )
    url: SecretStr | None = Field(
        None, description="`external` only (required): `postgres://...` DSN, set with `pulumi config set --secret`."
    )
    ready_timeout: Timeout = Field(
        "15m", description="`cnpg`: how long `pulumi up` waits for the `Cluster` to be Ready before Attic starts."
    )

    @model_validator(mode="after")
    def _backend_fields(self) -> DatabaseConfig:
        if self.backend == "external":
            if self.url is None:
                raise config_problem("backend 'external' needs 'url'", "a postgres:// DSN set as secret config", "url")
            if not self.url.get_secret_value().startswith(("postgres://", "postgresql://")):
                raise config_problem("'url' is not a PostgreSQL DSN", "a postgres:// or postgresql:// DSN", "url")
            cnpg_only = sorted(self.model_fields_set & CNPG_ONLY_FIELDS)
            if cnpg_only:
                key = to_camel(cnpg_only[0])
                raise config_problem(
                    f"'{key}' belongs to backend 'cnpg' and would be ignored",
                    "with backend 'external' only 'url' (remove the CloudNativePG keys)",
                    key,
                )
        elif self.url is not None:
            raise config_problem("'url' belongs to backend 'external'", "no url with backend 'cnpg'", "url")
        return self


# --- attic --------------------------------------------------------------------------------------


# atticd hands the chunk sizes to fastcdc's ronomon FastCDC (attic attic/src/chunking/mod.rs `FastCDC::with_eof`;
# server/src/chunking/mod.rs in older trees, where fastcdc 1.x's top-level FastCDC is the same code), whose bounds are
# fastcdc-rs src/ronomon/mod.rs MINIMUM_MIN/MINIMUM_MAX, AVERAGE_MIN/AVERAGE_MAX, MAXIMUM_MIN/MAXIMUM_MAX (the same in
# every release); `chunk_stream` also allocates max_size bytes per read buffer.
CHUNK_MIN_SIZE = (64, 67_108_864)
CHUNK_AVG_SIZE = (256, 268_435_456)
CHUNK_MAX_SIZE = (1024, 1_073_741_824)
I32_MAX = 2**31 - 1


class Chunking(Model):
    nar_size_threshold: int = Field(
        65536, ge=0, le=TOML_INT_MAX, description="NARs at least this large are chunked (0 disables)."
    )
    min_size: int = Field(
        16384, ge=CHUNK_MIN_SIZE[0], le=CHUNK_MIN_SIZE[1], description="Minimum chunk size in bytes (64 to 64 MiB)."
    )
    avg_size: int = Field(
        65536, ge=CHUNK_AVG_SIZE[0], le=CHUNK_AVG_SIZE[1], description="Average chunk size in bytes (256 to 256 MiB)."
    )
    max_size: int = Field(
        262144, ge=CHUNK_MAX_SIZE[0], le=CHUNK_MAX_SIZE[1], description="Maximum chunk size in bytes (1 KiB to 1 GiB)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Chunking:
        if not self.min_size <= self.avg_size <= self.max_size:
            raise config_problem(
                f"chunk sizes are out of order (min {self.min_size}, avg {self.avg_size}, max {self.max_size})",
                "minSize <= avgSize <= maxSize",
                "avgSize",
            )
        return self


class Compression(Model):
    type: Literal["none", "brotli", "zstd", "xz"] = Field("zstd", description="NAR compression.")
    level: int | None = Field(None, ge=0, le=22, description="Compression level (algorithm default if unset).")


class GarbageCollection(Model):
    schedule: CronSchedule = Field("15 3 * * *", description="When the GC CronJob runs (5-field cron, UTC).")
    retention: Humantime = Field("30 days", description="Paths unused this long are collected (at least 1 day).")

    @field_validator("retention")
    @classmethod
    def _at_least_a_day(cls, value: str) -> str:
        if parse_humantime(value) < DAY_SECONDS:
            raise config_problem("retention is shorter than one day", "a humantime duration of at least '1 day'")
        if parse_humantime(value) > MAX_RETENTION_SECONDS:
            raise config_problem("retention is longer than Attic can store", "at most '136 years' (2^32-1 seconds)")
        return value

    @property
    def retention_seconds(self) -> int:
        return int(parse_humantime(self.retention))


class Resources(Model):
    cpu_request: Quantity = Field("100m", description="CPU request.")
    memory_request: Quantity = Field("256Mi", description="Memory request.")
    cpu_limit: Quantity | None = Field("2", description="CPU limit (null for none).")
    memory_limit: Quantity = Field("1Gi", description="Memory limit.")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        _check_within("cpuRequest", self.cpu_request, "cpuLimit", self.cpu_limit)
        _check_within("memoryRequest", self.memory_request, "memoryLimit", self.memory_limit)
        return self

    def to_kubernetes(self) -> dict[str, dict[str, str]]:
        limits = {"memory": self.memory_limit} | ({"cpu": self.cpu_limit} if self.cpu_limit else {})
        return {"requests": {"cpu": self.cpu_request, "memory": self.memory_request}, "limits": limits}


def _check_within(request_key: str, request: str, limit_key: str, limit: str | None) -> None:
    if limit is not None and parse_quantity(request) > parse_quantity(limit):
        raise config_problem(
            f"{request_key} {request} exceeds {limit_key} {limit}", f"{request_key} <= {limit_key}", request_key
        )


class AtticIngress(Model):
    class_name: str | None = Field(None, description="IngressClass name (cluster default if unset).")
    annotations: dict[LabelKey, CliText] = Field(
        default_factory=dict, description="Extra annotations, e.g. cert-manager's issuer for TLS."
    )
    tls_secret_name: str | None = Field(None, description="Secret holding the TLS certificate (enables TLS).")
    tls_terminated_upstream: bool = Field(
        False, description="A TLS terminator in front of the ingress serves `https://<host>` (no `tlsSecretName`)."
    )
    max_body_size: str = Field("4g", description="Upload body-size limit (ingress-nginx `proxy-body-size`).")
    controller_namespace: DnsLabel = Field(
        "ingress-nginx", description="Namespace of the ingress controller's pods (job egress and Attic's ingress)."
    )
    controller_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "ingress-nginx"},
        min_length=1,
        description="Labels selecting the ingress controller's pods.",
    )


class AtticConfig(Model):
    image: Image = Field(
        "ghcr.io/zhaofengli/attic:9eda345a743f50999de04f59a170806c3e029eea",
        description="atticd image, pinned to an upstream commit tag (Attic has no releases).",
    )
    replicas: int = Field(2, ge=1, le=20, description="`api-server` replicas.")
    listen_family: Literal["dual-stack", "ipv4"] = Field(
        "dual-stack",
        description="atticd's listen address: `[::]` (IPv6 and IPv4) or `0.0.0.0` for nodes with IPv6 disabled.",
    )
    host: Hostname | None = Field(None, description="External host name; creates an Ingress when set.")
    ingress: AtticIngress = Field(default_factory=AtticIngress, description="Ingress settings (with `host`).")
    cache_name: AtticCacheName = Field("main", description="Name of the Attic cache CI pushes to.")
    public: bool = Field(False, description="Let anyone pull from the cache without a token.")
    priority: int = Field(  # attic attic/src/api/v1/cache_config.rs CreateCacheRequest.priority is an i32
        41, ge=0, le=I32_MAX, description="Substituter priority (cache.nixos.org is 40; lower wins)."
    )
    chunking: Chunking = Field(default_factory=Chunking, description="atticd `[chunking]` (fix before first use).")
    compression: Compression = Field(default_factory=Compression, description="atticd `[compression]`.")
    gc: GarbageCollection = Field(default_factory=GarbageCollection, description="`{schedule, retention}` of GC.")
    token_validity: Humantime = Field("90 days", description="Lifetime of the CI push token.")
    token_rotation_window: Humantime = Field(
        "14 days", description="Re-mint the CI token when it expires within this window."
    )
    resources: Resources = Field(default_factory=Resources, description="api-server resources.")
    bootstrap_image: Image = Field(
        "buildpack-deps:bookworm-curl", description="Image of the cache bootstrap Job (needs bash and curl)."
    )
    clients: Literal["in-cluster", "anywhere"] = Field(
        "in-cluster",
        description="Who substitutes from the cache: `in-cluster` (CI job pods) or `anywhere` (also outside the "
        "cluster; needs storage.backend `s3` with an endpoint outside the cluster: atticd redirects NAR downloads "
        "to the store).",
    )
    migrations_timeout: Timeout = Field(
        "30m", description="Deadline of the `db-migrations` Job; `pulumi up` waits as long (a failed Job re-runs)."
    )
    cache_init_timeout: Timeout = Field(
        "10m", description="Deadline of the cache bootstrap Job; `pulumi up` waits as long (a failed Job re-runs)."
    )

    @model_validator(mode="after")
    def _https_host_has_a_certificate(self) -> AtticConfig:
        # the published URL is https://<host>/: without a certificate the ingress serves its fake one
        if self.host and not (self.ingress.tls_secret_name or self.ingress.tls_terminated_upstream):
            raise config_problem(
                f"host '{self.host}' is published as https://{self.host}/ but no certificate serves it",
                "ingress.tlsSecretName, or ingress.tlsTerminatedUpstream: true for a TLS terminator in front",
                "host",
            )
        return self

    @model_validator(mode="after")
    def _rotation_inside_validity(self) -> AtticConfig:
        if parse_humantime(self.token_rotation_window) >= parse_humantime(self.token_validity):
            raise config_problem(
                f"tokenRotationWindow '{self.token_rotation_window}' is not shorter than "
                f"tokenValidity '{self.token_validity}'",
                "tokenRotationWindow < tokenValidity",
                "tokenRotationWindow",
            )
        return self


# --- bazel cache --------------------------------------------------------------------------------

BAZEL_DISK_HEADROOM_PERCENT = 10  # bazel-remote's max_size must fit the volume with 10 % to spare


class BazelCacheConfig(Model):
    enabled: bool = Field(True, description="Deploy bazel-remote and inject `BAZEL_REMOTE_CACHE`.")
    image: Image = Field(
        "buchgr/bazel-remote-cache:v2.6.1", description="bazel-remote image (pinned; the lab runs this version)."
    )
    max_size_gib: int = Field(50, gt=0, le=2**33, alias="maxSizeGiB", description="bazel-remote `--max_size` in GiB.")
    storage_size: VolumeSize = Field("60Gi", description="Volume size; must hold maxSizeGiB with 10% headroom.")
    storage_class: str | None = Field(None, description="StorageClass of the volume.")
    s3_tier: bool = Field(False, description="Use the object store (prefix `bazel/`) as a second tier.")
    s3_retention_days: int = Field(
        30,
        ge=1,
        le=255,
        description="With `s3Tier`: the store deletes what bazel-remote wrote under `bazel/` this many days after "
        "writing it (S3 lifecycle expiry; SeaweedFS path TTL, at most 255 days).",
    )
    resources: Resources = Field(default_factory=Resources, description="bazel-remote resources.")

    @property
    def min_storage_gib(self) -> int:
        """Smallest volume (GiB) that holds max_size with the headroom."""
        return math.ceil(self.max_size_gib * (100 + BAZEL_DISK_HEADROOM_PERCENT) / 100)

    @model_validator(mode="after")
    def _volume_holds_cache(self) -> BazelCacheConfig:
        needed_gib = self.min_storage_gib
        if parse_quantity(self.storage_size) < needed_gib * 2**30:
            raise config_problem(
                f"storageSize '{self.storage_size}' cannot hold maxSizeGiB {self.max_size_gib} with 10% headroom "
                "(bazel-remote would be evicted when the cache fills)",
                f"storageSize of at least '{needed_gib}Gi'",
                "storageSize",
            )
        return self


# --- runners ------------------------------------------------------------------------------------


class RunnerPoolConfig(Model):
    name: DnsLabel = Field(
        # the Helm release is `runner-<name>`, and Helm release names have at most 53 characters
        max_length=46,
        description="Pool name (DNS-1123 label, unique); names the runner and its release.",
    )
    tags: list[str] = Field(min_length=1, description="Job tags this pool's runner picks up (untagged jobs: off).")
    concurrent: int = Field(4, gt=0, le=200, description="Jobs the pool runs at once.")
    image: Image = Field("alpine:3.20", description="Default job image.")
    privileged: bool = Field(False, description="Privileged job pods (e.g. docker-in-docker). Off unless declared.")
    cpu_request: Quantity = Field("500m", description="Job pod CPU request.")
    cpu_limit: Quantity = Field("2", description="Job pod CPU limit.")
    memory_request: Quantity = Field("1Gi", description="Job pod memory request.")
    memory_limit: Quantity = Field("4Gi", description="Job pod memory limit.")
    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Node selector for job pods.")
    environment: dict[GitlabVariableKey, CliText] = Field(
        default_factory=dict, description="Extra job environment, e.g. `NIX_CONFIG` for Nix pools."
    )
    cache_injection: bool = Field(True, description="Inject the cache contract variables into jobs.")
    services: Resources | None = Field(
        None,
        description="Each service container's requests/limits (`docker:dind` is where a dind build runs); "
        "unset: the jobs LimitRange default (1 CPU, 1Gi). Privileged pools should set it.",
    )
    helper: Resources = Field(
        default_factory=lambda: Resources(
            cpu_request="100m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi"
        ),
        description="The helper container's requests/limits (clone, artifacts, cache).",
    )

    @field_validator("tags")
    @classmethod
    def _tags_unique(cls, value: list[str]) -> list[str]:
        if any(not tag for tag in value) or len(set(value)) != len(value):
            raise config_problem("tags must be non-empty and unique", "a list of distinct, non-empty tag names")
        return value

    @field_validator("environment")
    @classmethod
    def _environment_not_contract(cls, value: dict[str, str]) -> dict[str, str]:
        owned = CONTRACT_RUNNER_KEYS | (PLATFORM_GROUP_KEYS - {"ATTIC_TOKEN"})
        clash = sorted(owned & value.keys())
        if clash:
            raise config_problem(
                f"{', '.join(clash)} is injected from the cache contract",
                "keys other than " + ", ".join(sorted(owned)),
            )
        return value

    @model_validator(mode="after")
    def _requests_within_limits(self) -> RunnerPoolConfig:
        _check_within("cpuRequest", self.cpu_request, "cpuLimit", self.cpu_limit)
        _check_within("memoryRequest", self.memory_request, "memoryLimit", self.memory_limit)
        return self


class JobsQuota(Model):
    cpu: Quantity = Field("64", description="Total CPU limits of all job pods.")
    memory: Quantity = Field("256Gi", description="Total memory limits of all job pods.")
    pods: int = Field(200, gt=0, le=2**31 - 1, description="Job pods at once.")


class RunnerFleetConfig(Model):
    chart_repository: HttpUrl = Field(
        "https://charts.gitlab.io", description="Helm repository of `gitlab-runner` (mirror it for air-gapped sites)."
    )
    chart_version: str = Field("0.71.0", min_length=1, description="`gitlab-runner` chart version (pinned).")
    jobs_namespace: Namespace | None = Field(None, description="Namespace of job pods (default `<namespace>-jobs`).")
    check_interval: int = Field(3, gt=0, le=3600, description="Seconds between the runner's job polls.")
    jobs_quota: JobsQuota = Field(default_factory=JobsQuota, description="ResourceQuota of the jobs namespace.")


# --- CI template --------------------------------------------------------------------------------


class CiTemplateConfig(Model):
    attic_client_ref: str = Field(
        "github:NixOS/nixpkgs/nixos-24.11#attic-client",
        min_length=1,
        description="First ref the bootstrap substitutes the attic client from (`--max-jobs 0`): a flake ref, or "
        "the client's store path for your system (nothing to fetch or evaluate; fastest).",
    )
    fallback_client_ref: str = Field(
        ".#attic-client", min_length=1, description="Second ref, tried with the Attic cache as a substituter."
    )
    release_version: str | None = Field(
        "1.0.0",
        pattern=r"^\d+\.\d+\.\d+$",
        description="Release (tag) of the template project consumers pin (`@1.0.0`); bump it to publish a change. "
        "null: no release, consumers follow `gitlab.templateRef`.",
    )
    tags: list[str] = Field(
        default_factory=lambda: ["flywheel"],
        min_length=1,
        description="Default of the `tags` input: runner tags every job of the template carries. Pools are tag-only "
        "and take a job only when they have all its tags, so one pool must carry all of these.",
    )
    job_timeout_minutes: int = Field(
        60, ge=10, le=10080, description="`timeout` of the build jobs; the script gets it minus the teardown's share."
    )
    connect_timeout_seconds: int = Field(
        5, gt=0, le=120, description="Nix `connect-timeout` of the cache's own commands (never of the build)."
    )
    stalled_download_timeout_seconds: int = Field(
        5, gt=0, le=600, description="Nix `stalled-download-timeout` of the cache's own commands."
    )
    client_fetch_timeout_seconds: int = Field(
        90, gt=0, le=1800, description="Outer bound on each client fetch attempt."
    )
    substitute_timeout_seconds: int = Field(
        600, gt=0, le=7200, description="Outer bound on the build's substitution pre-pass from Attic."
    )
    push_timeout_seconds: int = Field(
        120, gt=0, le=3600, description="Bound on each push of the job's new store paths (end of script, after_script)."
    )

    @field_validator("tags")
    @classmethod
    def _tags_unique(cls, value: list[str]) -> list[str]:
        if any(not tag.strip() for tag in value) or len(set(value)) != len(value):
            raise config_problem("tags must be non-empty and unique", "a list of distinct, non-empty tag names")
        return value


# --- the whole stack ----------------------------------------------------------------------------


def _default_pools() -> list[RunnerPoolConfig]:
    return [RunnerPoolConfig(name="default", tags=["flywheel"])]


class PlatformConfig(Model):
    namespace: Namespace = Field("flywheel", description="Namespace of the cache services.")
    gitlab: GitlabConfig = Field(description="GitLab instance, group and template project (required).")
    storage: StorageConfig = Field(
        default_factory=lambda: StorageConfig(size="50Gi"),
        description="Object storage for Attic (and bazel-remote); omitted: SeaweedFS with a 50Gi volume.",
    )
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="PostgreSQL for Attic.")
    attic: AtticConfig = Field(default_factory=AtticConfig, description="The Attic server, cache and GC.")
    bazel_cache: BazelCacheConfig = Field(default_factory=BazelCacheConfig, description="bazel-remote.")
    runners: list[RunnerPoolConfig] = Field(
        default_factory=_default_pools, min_length=1, description="Runner pools (at least one)."
    )
    runner_fleet: RunnerFleetConfig = Field(default_factory=RunnerFleetConfig, description="Runner chart and jobs.")
    ci_template: CiTemplateConfig = Field(default_factory=CiTemplateConfig, description="The greedy CI template.")

    @field_validator("runners")
    @classmethod
    def _pool_names_unique(cls, value: list[RunnerPoolConfig]) -> list[RunnerPoolConfig]:
        names = [pool.name for pool in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise config_problem(f"pool names repeat: {', '.join(duplicates)}", "a unique name per pool")
        return value

    @property
    def jobs_namespace(self) -> str:
        return self.runner_fleet.jobs_namespace or f"{self.namespace}-jobs"


def cluster_dns_name(url: str) -> bool:
    """True when ``url``'s host is a name only cluster DNS resolves: one label (`minio`), or under `.svc`
    (`minio.storage.svc`, `minio.storage.svc.cluster.local`). A `<service>.<namespace>` short name cannot be told
    from a public two-label name, so it is not caught."""
    host = (urllib.parse.urlsplit(url).hostname or "").rstrip(".")
    labels = host.split(".")
    return len(labels) == 1 or "svc" in labels[1:]


def _cross_area_problems(config: PlatformConfig) -> list[str]:
    """Rules that span two areas (pydantic validates one object at a time)."""
    problems = []
    if config.jobs_namespace == config.namespace:
        problems.append(
            f"{NAMESPACE}:runnerFleet.jobsNamespace: job pods must not share the cache namespace "
            f"(got {config.jobs_namespace!r}; expected a namespace other than {config.namespace!r})"
        )
    if config.runner_fleet.jobs_namespace is None and len(config.jobs_namespace) > DNS_LABEL_MAX:
        problems.append(
            f"{NAMESPACE}:namespace: too long for the derived jobs namespace {config.jobs_namespace!r} "
            f"({len(config.jobs_namespace)} characters; expected at most {DNS_LABEL_MAX - len('-jobs')} characters, "
            "or set runnerFleet.jobsNamespace)"
        )
    # atticd answers a single-chunk NAR with a 307 to a URL presigned on its S3 endpoint (attic
    # server/src/api/binary_cache.rs, storage/s3.rs): a client must reach the store by that name.
    if config.attic.clients == "anywhere":
        endpoint = config.storage.endpoint or ""
        if config.storage.backend == "seaweedfs" or (endpoint and cluster_dns_name(endpoint)):
            where = "SeaweedFS's in-cluster S3 Service" if config.storage.backend == "seaweedfs" else repr(endpoint)
            problems.append(
                f"{NAMESPACE}:attic.clients: 'anywhere' cannot work with the store at {where}: atticd redirects NAR "
                "downloads to the store's address, which clients outside the cluster cannot reach (got 'anywhere'; "
                "expected 'in-cluster', or storage.backend 's3' with an endpoint outside the cluster)"
            )
    # A runner takes a job only if the job's tags are a subset of its own (gitlab-runner: a tag-only runner with
    # untagged=false), so the template's default tags must all be on one pool, or no flywheel runner takes its jobs.
    wanted = set(config.ci_template.tags)
    if not any(wanted <= set(pool.tags) for pool in config.runners):
        pools = "; ".join(f"{pool.name}: {pool.tags}" for pool in config.runners)
        problems.append(
            f"{NAMESPACE}:ciTemplate.tags: no runner pool carries all of {config.ci_template.tags}, so no flywheel "
            f"runner would take the template's jobs (pools: {pools}; expected the tags, or a subset of the tags, "
            f"of one pool, e.g. {config.runners[0].tags})"
        )
    if not config.bazel_cache.enabled:
        problems += [
            f"{NAMESPACE}:runners[{index}].cacheInjection: bazelCache.enabled is false, so pool {pool.name!r} "
            "cannot get BAZEL_REMOTE_CACHE and the runner-cache-contract policy would refuse it "
            "(got true; expected cacheInjection: false on the pool, or bazelCache.enabled: true)"
            for index, pool in enumerate(config.runners)
            if pool.cache_injection
        ]
    return problems


# --- loading and error reporting ----------------------------------------------------------------

STRUCTURED_KEYS = {"gitlab", "storage", "database", "attic", "bazelCache", "runners", "runnerFleet", "ciTemplate"}
SecretPath = tuple[str, ...]
# Paths (camelCase, within the flywheel namespace) that hold secrets: never echoed, kept secret Outputs.
SECRET_PATHS: set[SecretPath] = {("storage", "credentials"), ("storage", "bazelCredentials"), ("database", "url")}
# Free-form values that may be credentials although not secure: never echoed in errors (nor what is inside them).
# An extra variable's own fields beside its value (protected, masked, raw, ...) are shown.
FREE_FORM_VALUES = (("gitlab", "extraVariables", "*"), ("runners", "*", "environment", "*"))
# Other config namespaces the program reads or its providers take.
KNOWN_NAMESPACES = frozenset({NAMESPACE, "gitlab", "kubernetes", "pulumi", "random", "tls"})

URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s'\"]+@")

_EXPECTED_BY_TYPE = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "an object of key: value pairs",
    "model_type": "an object of key: value pairs",
    "model_attributes_type": "an object of key: value pairs",
    "list_type": "a list",
    "too_short": "at least {min_length} item(s)",
    "string_too_short": "at least {min_length} character(s)",
}


@dataclass(frozen=True)
class CheckedConfig:
    """A valid configuration and what is worth saying about it (e.g. credentials in plain text)."""

    config: PlatformConfig
    warnings: list[str]


def load_platform_config(raw: Mapping[str, Any], secret_keys: Sequence[str | SecretPath] = ()) -> PlatformConfig:
    """Validate the raw ``flywheel:*`` config (keys without the prefix, values as Pulumi gives them).

    ``secret_keys`` names what holds secure values: top-level keys (all the engine tells a program:
    config/map.go:105 ``SecureKeys``) or, when known (the offline render reads the stack file), exact paths.
    Raises ``ConfigError`` listing every problem; never registers anything.
    """
    return check_platform_config(raw, secret_keys).config


def check_platform_config(raw: Mapping[str, Any], secret_keys: Sequence[str | SecretPath] = ()) -> CheckedConfig:
    """``load_platform_config``, also returning the warnings."""
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key in STRUCTURED_KEYS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                problems.append(f"{NAMESPACE}:{key}: not valid JSON ({err.msg}); expected a structured object")
                continue
        data[key] = value
    secure = {_as_path(key) for key in secret_keys}
    problems += [_misplaced_secret(path) for path in sorted(secure) if not _may_hold_secret(path)]
    if problems:
        raise ConfigError(problems)
    hidden = secure | SECRET_PATHS
    try:
        config = PlatformConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(sorted({_describe(error, hidden) for error in err.errors()})) from None
    problems = _cross_area_problems(config)
    if problems:
        raise ConfigError(problems)
    for key, variable in config.gitlab.extra_variables.items():
        variable._secret = any(_covers(path, ("gitlab", "extraVariables", key, "value")) for path in secure)
    return CheckedConfig(config, _warnings(config, secure))


def _as_path(key: str | SecretPath) -> SecretPath:
    return tuple(key.split(".")) if isinstance(key, str) else tuple(str(part) for part in key)


def _covers(secret: SecretPath, path: SecretPath) -> bool:
    """Whether a secure value at ``secret`` may be (part of) the value at ``path``."""
    return path[: len(secret)] == secret or secret[: len(path)] == path


def _may_hold_secret(path: SecretPath) -> bool:
    """Secure values are kept secret only where the program treats them as such; elsewhere they would leak."""
    if len(path) == 1:  # the engine names the top-level key only: the secret may sit where one belongs
        return path[0] in {"storage", "database", "gitlab"}
    if path[:2] == ("gitlab", "extraVariables"):
        return len(path) == 3 or (len(path) == 4 and path[3] == "value")
    return any(path[: len(secret)] == secret for secret in SECRET_PATHS)


def _misplaced_secret(path: SecretPath) -> str:
    loc: list[str | int] = [int(part) if part.isdigit() else part for part in path]
    return (
        f"{NAMESPACE}:{_dotted_path(loc)}: holds a secure value where the program cannot keep it secret "
        "(it would reach Helm values, config.toml or state in plain text; expected secure values only in "
        "storage.credentials, storage.bazelCredentials, database.url and gitlab.extraVariables.<KEY>, e.g. a job "
        "secret as a masked gitlab.extraVariables entry)"
    )


def _warnings(config: PlatformConfig, secure: set[SecretPath]) -> list[str]:
    """Credentials given in plain text: they work, but sit readable in the stack file."""
    plain = []
    for area, secret in (
        ("credentials", config.storage.credentials),
        ("bazelCredentials", config.storage.bazel_credentials),
    ):
        for key in ("accessKeyId", "secretAccessKey"):
            if secret is not None and not any(_covers(p, ("storage", area, key)) for p in secure):
                plain.append(f"storage.{area}.{key}")
    url = config.database.url
    if (
        url is not None
        and URL_CREDENTIALS.match(url.get_secret_value())
        and not any(_covers(p, ("database", "url")) for p in secure)
    ):
        plain.append("database.url")
    warnings = [
        f"{NAMESPACE}:{key} is plain text in the stack file; set it with "
        f"`pulumi config set --secret --path {NAMESPACE}:{key} ...`"
        for key in plain
    ]
    if config.storage.backend == "s3" and not config.storage.protect:  # seaweedfs refuses protect: false
        warnings.append(
            f"{NAMESPACE}:storage.protect is false: the mandatory storage-private-and-kept policy refuses an "
            "unprotected bucket unless the policy pack config lowers it (e.g. "
            '{"storage-private-and-kept": "advisory"} with --policy-pack-config / --policy-config)'
        )
    return warnings


def namespace_values(
    values: Mapping[str, Any], secret_keys: Iterable[str | SecretPath]
) -> tuple[dict[str, Any], list[str | SecretPath]]:
    """The ``flywheel:*`` entries of a whole stack config (prefix removed), and which of them hold secrets."""
    prefix = f"{NAMESPACE}:"
    raw = {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}
    secret: list[str | SecretPath] = []
    for key in secret_keys:
        first = key if isinstance(key, str) else key[0]
        if first.startswith(prefix):
            secret.append(
                first.removeprefix(prefix) if isinstance(key, str) else (first.removeprefix(prefix), *key[1:])
            )
    return raw, sorted(secret, key=str)


def namespace_problems(keys: Iterable[str]) -> list[str]:
    """Config keys in a namespace that looks like a typo of ``flywheel`` (the program would never read them)."""
    problems = []
    for key in sorted(keys):
        namespace, colon, _ = key.partition(":")
        if colon and namespace not in KNOWN_NAMESPACES and difflib.get_close_matches(namespace, [NAMESPACE], 1, 0.75):
            meant = f"{NAMESPACE}:{key.partition(':')[2]}"
            problems.append(f"{key}: unknown config namespace {namespace!r}, never read (expected {meant})")
    return problems


def load_from_pulumi() -> PlatformConfig:
    """Read the ``flywheel:`` namespace from the running Pulumi program's config."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    # The language host passes config in PULUMI_CONFIG; mocks and the automation API set it in-process.
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys: set[str | SecretPath] = {
        *runtime_config.get_config_secret_keys_env(),
        *runtime_config._SECRET_KEYS.get(),
    }
    problems = namespace_problems(everything)
    if problems:
        raise ConfigError(problems)
    if not _run_by_offline_render():
        secret_keys = exact_secret_paths(everything, secret_keys, PROJECT_DIR / f"Pulumi.{pulumi.get_stack()}.yaml")
    checked = check_platform_config(*namespace_values(everything, secret_keys))
    for warning in checked.warnings:
        pulumi.log.warn(warning)
    return checked.config


PROJECT_DIR = Path(__file__).resolve().parent.parent  # where Pulumi.yaml and the Pulumi.<stack>.yaml files are


def _run_by_offline_render() -> bool:
    """Under the SDK's mocks the program deploys nothing: the offline render checked the exact secure paths of the
    stack file it read before running it (tools/render.py ``validate_config``), and redacts secrets it writes."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import SETTINGS

    return isinstance(SETTINGS.monitor, MockMonitor)


def exact_secret_paths(
    values: Mapping[str, Any], secret_keys: Iterable[str | SecretPath], stack_file: Path
) -> set[str | SecretPath]:
    """The engine's top-level secret keys of the ``flywheel`` namespace turned into the exact secure paths the stack
    file shows, so a deployment refuses a misplaced secure value as the offline render does.

    Where the file does not show what the engine sent (no file, an ESC environment, another config file), the
    program cannot tell which value is the secret. A text value where the program keeps secrets
    (``_may_hold_secret``) is then kept a secret Output; any other text value is refused: marking every resource
    that may hold a region or a group path secret would be guesswork, and a guess that misses leaks the secret.
    """
    prefix = f"{NAMESPACE}:"
    ours = sorted(str(k) for k in secret_keys if isinstance(k, str) and k.startswith(prefix))
    located = locate_secure_values(values, ours, stack_file_config(stack_file, NAMESPACE))
    exact: set[str | SecretPath] = {k for k in secret_keys if k not in ours}
    exact |= set(located.secure)
    unknown: dict[str, list[str]] = {}
    for path in located.unproven:
        area = (path[0].removeprefix(prefix), *path[1:])
        if len(area) > 1 and _may_hold_secret(area):
            exact.add(path)  # kept a secret Output whether or not it is the secure value
        else:
            loc: list[str | int] = [int(part) if part.isdigit() else part for part in area]
            unknown.setdefault(path[0], []).append(_dotted_path(loc))
    problems = [
        f"{key}: holds a secure value, and {stack_file.name} does not show where (these values are not in it as the "
        f"engine sent them: {', '.join(paths)}; set in an ESC environment or another config file?), so the program "
        "cannot tell whether one of them is the secret and would write it in plain text (expected these values in "
        f"{stack_file.name}, with secure values only in storage.credentials, storage.bazelCredentials, database.url "
        "and gitlab.extraVariables.<KEY>)"
        for key, paths in sorted(unknown.items())
    ]
    if problems:
        raise ConfigError(problems)
    return exact


def _describe(error: Any, hidden: set[SecretPath]) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    key = context.get("key") if kind == "flywheel" else None
    if key is not None:  # a model-level check: point at the field (or a path below it), show only its value
        parts, value = (key if isinstance(key, tuple) else (key,)), error["input"]
        for part in parts:
            listed = isinstance(value, list) and isinstance(part, int)
            value = value.get(part) if isinstance(value, Mapping) else value[part] if listed else None
        error = {**error, "loc": (*error["loc"], *parts), "input": value}
    path = _dotted_path(error["loc"])
    shown = _shown_value(error, hidden)
    if kind == "missing":
        return f"{NAMESPACE}:{path}: required key is missing (expected {_meaning_of(error['loc'])})"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(error["loc"][:-1])
        return f"{NAMESPACE}:{path}: unknown key (got {shown}; expected one of: {', '.join(allowed)})"
    if kind == "flywheel":
        message, expected = error["msg"], context.get("expected", "")
    elif kind == "literal_error":
        message, expected = "not an allowed value", f"one of {context['expected']}"
    elif kind in _EXPECTED_BY_TYPE:
        expected = _EXPECTED_BY_TYPE[kind].format(**context)
        message = "too short" if kind in {"too_short", "string_too_short"} else f"not {expected}"
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bound = next(iter(context.values()))
        relation = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        message, expected = "out of range", f"a number {relation} {bound}"
    else:
        message, expected = error["msg"][0].lower() + error["msg"][1:], _meaning_of(error["loc"])
    return f"{NAMESPACE}:{path}: {message} (got {shown}; expected {expected})"


def _dotted_path(loc: Sequence[str | int]) -> str:
    """('attic', 'gc', 'retention') -> 'attic.gc.retention'; list indexes as [n]."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for a dict key's own error
            continue
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += ("." if text else "") + part
        else:  # a key no YAML author would type plainly: quote it so the line stays one line
            text += f"[{json.dumps(part)}]"
    return text


def _shown_value(error: Mapping[str, Any], hidden: set[SecretPath]) -> str:
    """The offending value as an error may show it: never a secret, never the values of an object or list
    (one of them may be a secret, or a credential in a free-form map), only their keys or length."""
    loc = tuple(str(p) for p in error["loc"])
    is_key_name = loc[-1:] == ("[key]",)
    value = error.get("input")
    if is_key_name:
        text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    elif value is not None and not isinstance(value, Mapping | list | tuple) and _is_hidden(loc, hidden):
        text = repr(REDACTED_TEXT)  # an object or a list shows only its keys or length, below
    elif isinstance(value, Mapping):
        keys = ", ".join(_key_shown(str(k)) for k in sorted(value, key=str))
        text = f"an object with keys {keys}" if keys else "an empty object"
    elif isinstance(value, list | tuple):
        text = f"a list of {len(value)} item(s)"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value, default=str)
    text = URL_CREDENTIALS.sub(r"\1[secret]@", text)  # a URL's user:password@ is never echoed
    return text if len(text) <= 80 else text[:77] + "..."


REDACTED_TEXT = "[secret]"


def _key_shown(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_./-]+", key) else json.dumps(key)


def _is_hidden(loc: tuple[str, ...], hidden: set[SecretPath]) -> bool:
    keys = tuple(part for part in loc if part != "[key]")
    for free in FREE_FORM_VALUES:
        # the map itself too: a value typed where the map belongs (`environment: GITHUB_TOKEN=...`) may be one
        if len(keys) >= len(free) - 1 and all(f in ("*", k) for f, k in zip(free, keys, strict=False)):
            variable_field = keys[len(free) :][:1] if free[:2] == ("gitlab", "extraVariables") else ()
            if variable_field in ((), ("value",)):
                return True
    return any(_covers(secret, keys) for secret in hidden)


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The config model that owns the object at ``loc`` (None for leaves and unknown paths)."""
    model: type[BaseModel] | None = PlatformConfig
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            # dict entries (e.g. extraVariables.KEY) keep the value model of the dict
            continue
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(loc: Sequence[str | int]) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _meaning_of(loc: Sequence[str | int]) -> str:
    parent = _model_at(loc[:-1])
    if parent is not None:
        for name, field in parent.model_fields.items():
            if loc[-1] in (name, field.alias) and field.description:
                return field.description.rstrip(".")
    return "a valid value"
