"""The Attic server: server.toml, signing keys, migrations Job, api-server Deployment, cache bootstrap, tokens.

Pure rendering (server.toml, cache-config request bodies, endpoints) is separate from the
``AtticServer`` component, which only wires Kubernetes objects. atticd runs in three modes only:
``db-migrations`` (one Job per image), ``api-server`` (the replicated Deployment) and, from
``components.attic_gc``, ``garbage-collector-once``. Never ``monolithic``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls
import tomli_w

from components.attic_token import CACHE_BOOTSTRAP, CI_PUSH, AtticToken
from components.config import AtticConfig
from components.config_types import parse_humantime
from components.kube import (
    S3Target,
    SecretKeyRef,
    checksum,
    rerun_when_failed,
    restricted_container_security,
    restricted_pod_security,
    secret_data,
    selector_labels,
    standard_labels,
)
from components.nix_keys import check_key_name, keypair_from_pem, public_key_from_pem

AtticdMode = Literal["api-server", "db-migrations", "garbage-collector-once"]

PORT = 8080
LISTEN_ADDRESSES = {"dual-stack": "[::]", "ipv4": "0.0.0.0"}  # noqa: S104 (a server listens on all)
CONFIG_DIR = "/etc/attic"
CONFIG_FILE = "server.toml"
STORE_DIR = "/nix/store"
# Paths cache.nixos.org already signs are not re-uploaded by `attic push` / `watch-store`.
UPSTREAM_CACHE_KEY_NAMES = ("cache.nixos.org-1",)
CONFIG_CHECKSUM_ANNOTATION = "flywheel.dev/config-checksum"
# A per-pod emptyDir, not the node's /tmp: the root filesystem is read-only.
SCRATCH_DIR = "/tmp"  # noqa: S108
# The upstream image runs as root unless told otherwise; atticd needs no identity of its own.
RUN_AS = 10001
CACHE_INIT_SCRIPT = Path(__file__).parent / "templates" / "attic-cache-init.sh"
CACHE_INIT_DIR = "/run/attic-cache-init"
CACHE_INIT_SCRIPT_DIR = "/opt/flywheel"
# ingress-nginx defaults (1m body, 60 s timeouts) break NAR uploads; streaming avoids buffering to disk.
INGRESS_UPLOAD_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "600",
    "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
}


# --- pure rendering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtticEndpoints:
    """Where atticd is reached: the Service in the cluster and, with ``host``, the Ingress."""

    service: str
    namespace: str
    host: str | None = None
    port: int = PORT

    @property
    def internal_host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"

    @property
    def internal_url(self) -> str:
        return f"http://{self.internal_host}:{self.port}/"

    @property
    def external_url(self) -> str | None:
        return f"https://{self.host}/" if self.host else None

    @property
    def url(self) -> str:
        """What clients are given: the ingress URL when there is one."""
        return self.external_url or self.internal_url

    @property
    def allowed_hosts(self) -> list[str]:
        """Host headers atticd accepts (exact match, port included): the ingress host and the Service."""
        return ([self.host] if self.host else []) + [f"{self.internal_host}:{self.port}"]

    @property
    def probe_host(self) -> str:
        return f"{self.internal_host}:{self.port}"


def nix_key_name(endpoints: AtticEndpoints, cache_name: str) -> str:
    """Name of the cache's Nix signing key, unique per site: ``attic.example.com-main-1``."""
    return check_key_name(f"{endpoints.host or endpoints.internal_host}-{cache_name}-1")


def server_config(
    config: AtticConfig, endpoints: AtticEndpoints, *, s3_endpoint: str | None, s3_region: str, s3_bucket: str
) -> dict[str, Any]:
    """server.toml as data. Secrets (database URL, S3 keys, JWT key) come from the environment."""
    storage: dict[str, Any] = {"type": "s3", "region": s3_region, "bucket": s3_bucket}
    if s3_endpoint:
        storage["endpoint"] = s3_endpoint
    compression: dict[str, Any] = {"type": config.compression.type}
    if config.compression.level is not None:
        compression["level"] = config.compression.level
    return {
        # binding [::] fails where the kernel has IPv6 disabled
        "listen": f"{LISTEN_ADDRESSES[config.listen_family]}:{endpoints.port}",
        "allowed-hosts": endpoints.allowed_hosts,
        "api-endpoint": endpoints.url,
        # url from ATTIC_SERVER_DATABASE_URL; the table itself is required.
        "database": {"heartbeat": True},
        "storage": storage,
        "chunking": {
            "nar-size-threshold": config.chunking.nar_size_threshold,
            "min-size": config.chunking.min_size,
            "avg-size": config.chunking.avg_size,
            "max-size": config.chunking.max_size,
        },
        "compression": compression,
        "garbage-collection": {
            # No GC loop in any process (api-server never runs it; the CronJob runs one pass).
            "interval": "0s",
            "default-retention-period": config.gc.retention,
        },
    }


def render_server_toml(server: Mapping[str, Any]) -> str:
    text = tomli_w.dumps(dict(server))
    if not server["api-endpoint"].endswith("/"):
        raise ValueError(f"api-endpoint must end with '/' (got {server['api-endpoint']!r})")
    return text


def create_cache_request(config: AtticConfig, nix_secret_key: str) -> dict[str, Any]:
    """Body of ``POST /_api/v1/cache-config/{cache}`` (Attic's CreateCacheRequest)."""
    return {
        "keypair": {"Keypair": nix_secret_key},
        "is_public": config.public,
        "store_dir": STORE_DIR,
        "priority": config.priority,
        "upstream_cache_key_names": list(UPSTREAM_CACHE_KEY_NAMES),
    }


def configure_cache_request(config: AtticConfig, nix_secret_key: str) -> dict[str, Any]:
    """Body of ``PATCH /_api/v1/cache-config/{cache}``: converges an existing cache, retention included."""
    return create_cache_request(config, nix_secret_key) | {
        "retention_period": {"Period": config.gc.retention_seconds},
    }


def cache_init_fingerprint(config: AtticConfig, endpoints: AtticEndpoints, image: str, public_key: str) -> str:
    """Changes whenever the bootstrap must run again (names the Job, whose spec is immutable)."""
    settings = create_cache_request(config, "-") | {
        "retention": config.gc.retention_seconds,
        "cache": config.cache_name,
        "endpoint": endpoints.internal_url,
        "image": image,
        "public_key": public_key,
        "script": CACHE_INIT_SCRIPT.read_text(),
    }
    return checksum(json.dumps(settings, sort_keys=True))[:10]


def _depends(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    depends = opts.depends_on if opts else None
    if isinstance(depends, pulumi.Resource):
        return [depends]
    if isinstance(depends, Sequence):
        return [d for d in depends if isinstance(d, pulumi.Resource)]
    return []


# --- the component -------------------------------------------------------------------------------


class AtticServer(pulumi.ComponentResource):
    """atticd on Kubernetes with platform-generated keys, the cache bootstrapped, and a CI push token."""

    internal_url: str
    external_url: str | None
    url: str
    cache_name: str
    public_key: pulumi.Output[str]
    ci_token: pulumi.Output[str]
    rendered_files: dict[str, pulumi.Input[str]]

    def __init__(
        self,
        name: str,
        config: AtticConfig,
        namespace: str,
        *,
        s3: S3Target,
        database_url: SecretKeyRef,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flywheel:index:AtticServer", name, None, opts)
        self.name = name
        self.config = config
        self.namespace = namespace
        self.endpoints = AtticEndpoints(service=name, namespace=namespace, host=config.host)
        self.internal_url = self.endpoints.internal_url
        self.external_url = self.endpoints.external_url
        self.url = self.endpoints.url
        self.cache_name = config.cache_name
        self._s3_access = s3.access
        self._database_url = database_url
        self._upstream = _depends(opts)
        validity = int(parse_humantime(config.token_validity))
        rotation_window = int(parse_humantime(config.token_rotation_window))

        # --- server.toml ---
        self.server_toml: pulumi.Output[str] = pulumi.Output.from_input(s3.endpoint).apply(
            lambda endpoint: render_server_toml(
                server_config(config, self.endpoints, s3_endpoint=endpoint, s3_region=s3.region, s3_bucket=s3.bucket)
            )
        )
        self.rendered_files = {f"attic/{CONFIG_FILE}": self.server_toml}
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=self._metadata(f"{name}-config", "api-server"),
            data={CONFIG_FILE: self.server_toml},
            opts=self._child(),
        )

        # --- keys: JWT signing (RS256) and the cache's Nix signing key (Ed25519) ---
        self.jwt_signing_key = tls.PrivateKey(
            f"{name}-jwt-signing-key", algorithm="RSA", rsa_bits=4096, opts=pulumi.ResourceOptions(parent=self)
        )
        self.server_secret = k8s.core.v1.Secret(
            f"{name}-server",
            metadata=self._metadata(f"{name}-server", "api-server"),
            type="Opaque",
            data=secret_data(
                {
                    # atticd wants base64 of the PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"), which tls gives for RSA.
                    "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64": self.jwt_signing_key.private_key_pem.apply(
                        lambda pem: base64.b64encode(pem.encode()).decode()
                    ),
                }
            ),
            opts=self._child(),
        )
        key_name = nix_key_name(self.endpoints, config.cache_name)
        self.nix_signing_key = tls.PrivateKey(
            f"{name}-nix-signing-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self)
        )
        nix_secret_key = pulumi.Output.secret(
            self.nix_signing_key.private_key_pem.apply(lambda pem: keypair_from_pem(key_name, pem).secret_key)
        )
        # Derived from the public half only, and published: runners and CI trust it as plain text.
        self.public_key = pulumi.Output.unsecret(
            self.nix_signing_key.public_key_pem.apply(lambda pem: public_key_from_pem(key_name, pem))
        )
        self.nix_key_secret = k8s.core.v1.Secret(
            f"{name}-nix-signing-key",
            metadata=self._metadata(f"{name}-nix-signing-key", "cache-init"),
            type="Opaque",
            data=secret_data({"secret-key": nix_secret_key, "public-key": self.public_key}),
            opts=self._child(),
        )

        # --- tokens ---
        def token(holder: str, permissions: Sequence[str]) -> AtticToken:
            """A token for ``holder`` on this server's cache, signed with its JWT key and rotated before expiry."""
            return AtticToken(
                f"{name}-{holder}-token",
                subject=f"flywheel/{namespace}/{holder}",
                grants={config.cache_name: permissions},
                signing_key=self.jwt_signing_key.private_key_pem,
                validity_seconds=validity,
                rotation_window_seconds=rotation_window,
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.ci_push_token = token("ci-push", CI_PUSH)
        self.ci_token = pulumi.Output.secret(self.ci_push_token.token)
        self.bootstrap_token = token("cache-init", CACHE_BOOTSTRAP)

        # --- migrations, then the API ---
        self.atticd_dependencies: list[pulumi.Resource] = [self.config_map, self.server_secret]
        migrations_name = f"{name}-db-migrations-{checksum(config.image)[:10]}"
        self.migrations = self._job(
            f"{name}-db-migrations",
            migrations_name,
            "db-migrations",
            self.atticd_pod_spec(self.atticd_container("db-migrations"), restart_policy="Never"),
            # Retries with back-off also cover a database that is still starting.
            backoff_limit=6,
            deadline_seconds=int(parse_humantime(config.migrations_timeout)),
            opts=self._child(*self.atticd_dependencies, delete_before_replace=True),
        )
        self.deployment = self._api_deployment()
        self.service = k8s.core.v1.Service(
            name,
            metadata=self._metadata(name, "api-server"),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector_labels(name, "api-server"),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=PORT, target_port="http", protocol="TCP")],
            ),
            opts=self._child(),
        )
        self.disruption_budget = (
            k8s.policy.v1.PodDisruptionBudget(
                name,
                metadata=self._metadata(name, "api-server"),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(name, "api-server")),
                ),
                opts=self._child(),
            )
            if config.replicas > 1
            else None
        )
        self.ingress = self._ingress() if config.host else None

        # --- the cache itself ---
        self.cache_init = self._cache_init(nix_secret_key)

        self.register_outputs(
            {
                "internal_url": self.internal_url,
                "external_url": self.external_url,
                "url": self.url,
                "cache_name": self.cache_name,
                "public_key": self.public_key,
                "ci_token": self.ci_token,
            }
        )

    # --- what the GC worker reuses -------------------------------------------------------------

    def atticd_env(self) -> list[k8s.core.v1.EnvVarArgs]:
        """Secrets atticd reads from its environment (every mode parses the whole config)."""
        signing = SecretKeyRef(f"{self.name}-server", "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64")
        return [
            self._database_url.env("ATTIC_SERVER_DATABASE_URL"),
            *self._s3_access.env(),
            signing.env("ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"),
            k8s.core.v1.EnvVarArgs(name="RUST_LOG", value="info"),
        ]

    def atticd_container(self, mode: AtticdMode, **extra: Any) -> k8s.core.v1.ContainerArgs:
        """The atticd container in ``mode`` with this server's config, secrets and resources."""
        return k8s.core.v1.ContainerArgs(
            name="atticd",
            image=self.config.image,
            args=["-f", f"{CONFIG_DIR}/{CONFIG_FILE}", "--mode", mode],
            env=self.atticd_env(),
            resources=k8s.core.v1.ResourceRequirementsArgs(**self.config.resources.to_kubernetes()),
            security_context=restricted_container_security(run_as_non_root=True),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=SCRATCH_DIR),
            ],
            **extra,
        )

    def atticd_pod_spec(self, container: k8s.core.v1.ContainerArgs, *, restart_policy: str) -> k8s.core.v1.PodSpecArgs:
        return self._pod_spec(
            container,
            restart_policy=restart_policy,
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="config",
                    config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{self.name}-config"),
                ),
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
            ],
        )

    @property
    def config_annotations(self) -> dict[str, pulumi.Output[str]]:
        """Pod annotations that roll pods when server.toml changes."""
        return {CONFIG_CHECKSUM_ANNOTATION: self.server_toml.apply(checksum)}

    # --- wiring helpers ---------------------------------------------------------------------------

    def _child(self, *depends_on: pulumi.Resource, delete_before_replace: bool | None = None) -> pulumi.ResourceOptions:
        # None leaves the choice to the provider: an explicit False overrides the Kubernetes provider's
        # delete-first for a same-named replacement (pkg/v3 resource/deploy/step_generator.go:2142-2144).
        return pulumi.ResourceOptions(
            parent=self, depends_on=[*self._upstream, *depends_on], delete_before_replace=delete_before_replace
        )

    def _metadata(self, object_name: pulumi.Input[str], component: str, **extra: Any) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=object_name, namespace=self.namespace, labels=standard_labels(self.name, component), **extra
        )

    @staticmethod
    def _pod_spec(
        container: k8s.core.v1.ContainerArgs, *, restart_policy: str, volumes: list[k8s.core.v1.VolumeArgs]
    ) -> k8s.core.v1.PodSpecArgs:
        """Every pod of this server: one container, no API token, no service-link variables, running as RUN_AS."""
        return k8s.core.v1.PodSpecArgs(
            containers=[container],
            restart_policy=restart_policy,
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=restricted_pod_security(RUN_AS),
            volumes=volumes,
        )

    def _job(
        self,
        resource_name: str,
        object_name: pulumi.Input[str],
        component: str,
        pod_spec: k8s.core.v1.PodSpecArgs,
        *,
        backoff_limit: int,
        deadline_seconds: int,
        opts: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.Job:
        """A one-shot Job of this server (re-run on the next up if it failed); its pod has ``component``'s labels."""
        annotations, await_options = rerun_when_failed(deadline_seconds)
        return k8s.batch.v1.Job(
            resource_name,
            metadata=self._metadata(object_name, component, annotations=annotations),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=backoff_limit,
                active_deadline_seconds=deadline_seconds,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=standard_labels(self.name, component)),
                    spec=pod_spec,
                ),
            ),
            opts=pulumi.ResourceOptions.merge(opts, await_options),
        )

    def _api_deployment(self) -> k8s.apps.v1.Deployment:
        probe_headers = [k8s.core.v1.HTTPHeaderArgs(name="Host", value=self.endpoints.probe_host)]
        container = self.atticd_container(
            "api-server",
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT, protocol="TCP")],
            # allowed-hosts applies to every route: the probe sends the Service's Host header.
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/", port="http", http_headers=probe_headers),
                period_seconds=10,
                timeout_seconds=3,
                failure_threshold=3,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"),
                initial_delay_seconds=10,
                period_seconds=20,
                timeout_seconds=3,
                failure_threshold=3,
            ),
        )
        return k8s.apps.v1.Deployment(
            self.name,
            metadata=self._metadata(self.name, "api-server"),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=self.config.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(self.name, "api-server")),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=standard_labels(self.name, "api-server"), annotations=self.config_annotations
                    ),
                    spec=self.atticd_pod_spec(container, restart_policy="Always"),
                ),
            ),
            opts=self._child(self.migrations, *self.atticd_dependencies),
        )

    def _ingress(self) -> k8s.networking.v1.Ingress:
        ingress = self.config.ingress
        annotations = {
            "nginx.ingress.kubernetes.io/proxy-body-size": ingress.max_body_size,
            **INGRESS_UPLOAD_ANNOTATIONS,
            **ingress.annotations,
        }
        return k8s.networking.v1.Ingress(
            self.name,
            metadata=self._metadata(self.name, "api-server", annotations=annotations),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress.class_name,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[self.config.host], secret_name=ingress.tls_secret_name)]
                if ingress.tls_secret_name
                else None,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=self.config.host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path="/",
                                    path_type="Prefix",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=self.name,
                                            port=k8s.networking.v1.ServiceBackendPortArgs(number=PORT),
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            opts=self._child(self.service),
        )

    def _cache_init(self, nix_secret_key: pulumi.Output[str]) -> k8s.batch.v1.Job:
        """The idempotent bootstrap Job: create the cache (or accept it exists), then PATCH its settings."""
        name, config = self.name, self.config
        self.cache_init_secret = secret = k8s.core.v1.Secret(
            f"{name}-cache-init",
            metadata=self._metadata(f"{name}-cache-init", "cache-init"),
            type="Opaque",
            data=secret_data(
                {
                    "token": self.bootstrap_token.token,
                    "create-cache.json": nix_secret_key.apply(
                        lambda key: json.dumps(create_cache_request(config, key))
                    ),
                    "configure-cache.json": nix_secret_key.apply(
                        lambda key: json.dumps(configure_cache_request(config, key))
                    ),
                }
            ),
            opts=self._child(),
        )
        script = k8s.core.v1.ConfigMap(
            f"{name}-cache-init-script",
            metadata=self._metadata(f"{name}-cache-init-script", "cache-init"),
            data={CACHE_INIT_SCRIPT.name: CACHE_INIT_SCRIPT.read_text()},
            opts=self._child(),
        )
        job_name = self.public_key.apply(
            lambda key: (
                f"{name}-cache-init-{cache_init_fingerprint(config, self.endpoints, config.bootstrap_image, key)}"
            )
        )
        env = {
            "ATTIC_ENDPOINT": self.internal_url,
            "ATTIC_CACHE": config.cache_name,
            "ATTIC_INIT_DIR": CACHE_INIT_DIR,
            "EXPECTED_PUBLIC_KEY": self.public_key,
            "HOME": SCRATCH_DIR,
        }
        container = k8s.core.v1.ContainerArgs(
            name="cache-init",
            image=config.bootstrap_image,
            command=["bash", f"{CACHE_INIT_SCRIPT_DIR}/{CACHE_INIT_SCRIPT.name}"],
            env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in env.items()],
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "10m", "memory": "32Mi"}, limits={"cpu": "200m", "memory": "64Mi"}
            ),
            security_context=restricted_container_security(run_as_non_root=True),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="script", mount_path=CACHE_INIT_SCRIPT_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="request", mount_path=CACHE_INIT_DIR, read_only=True),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=SCRATCH_DIR),
            ],
        )
        volumes = [
            k8s.core.v1.VolumeArgs(
                name="script",
                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=f"{name}-cache-init-script"),
            ),
            k8s.core.v1.VolumeArgs(
                name="request",
                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=f"{name}-cache-init", default_mode=0o440),
            ),
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="16Mi")),
        ]
        return self._job(
            f"{name}-cache-init",
            job_name,
            "cache-init",
            self._pod_spec(container, restart_policy="Never", volumes=volumes),
            backoff_limit=4,
            deadline_seconds=int(parse_humantime(config.cache_init_timeout)),
            opts=self._child(self.deployment, self.service, secret, script),
        )
