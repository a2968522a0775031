"""The shared Bazel remote cache: bazel-remote on a volume that holds its `max_size`, optionally tiered onto S3.

Its Service is named `bazel-cache`, never `bazel-remote`: Kubernetes would inject service-link variables
such as `BAZEL_REMOTE_PORT=tcp://...` that bazel-remote parses as its own settings (service links are
also switched off). Jobs reach it at `grpc_url`, which the CacheContract hands to the runners.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from components.config import BazelCacheConfig
from components.kube import (
    S3Target,
    restricted_container_security,
    restricted_pod_security,
    selector_labels,
    standard_labels,
)

SERVICE_NAME = "bazel-cache"
COMPONENT = "bazel-cache"
HTTP_PORT = 8080
GRPC_PORT = 9092
DATA_DIR = "/data"
# The image's own non-root user (distroless `nonroot`).
RUN_AS_USER = 65532
S3_TIER_KEYS = (
    "BAZEL_REMOTE_S3_ENDPOINT",
    "BAZEL_REMOTE_S3_DISABLE_SSL",
    "BAZEL_REMOTE_S3_BUCKET",
    "BAZEL_REMOTE_S3_PREFIX",
    "BAZEL_REMOTE_S3_REGION",
    "BAZEL_REMOTE_S3_AUTH_METHOD",
    "BAZEL_REMOTE_S3_BUCKET_LOOKUP_TYPE",
)


@dataclass(frozen=True)
class S3Endpoint:
    """bazel-remote's view of an S3 endpoint: `host[:port]` without scheme, and whether TLS is off."""

    host_port: str
    disable_ssl: bool


def parse_s3_endpoint(url: str) -> S3Endpoint:
    """`https://s3.example.com` -> `s3.example.com`; `http://seaweedfs.ns.svc:8333` -> `...:8333`, TLS off."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"S3 endpoint {url!r} is not an http(s) URL with a host")
    if parts.path.strip("/") or parts.query or parts.username:
        raise ValueError(f"S3 endpoint {url!r} must be scheme://host[:port] only (bazel-remote takes host:port)")
    host_port = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return S3Endpoint(host_port=host_port, disable_ssl=parts.scheme == "http")


def grpc_url(service_name: str, namespace: str, port: int = GRPC_PORT) -> str:
    """The in-cluster gRPC URL Bazel takes as `--remote_cache`."""
    return f"grpc://{service_name}.{namespace}.svc.cluster.local:{port}"


def cache_environment(config: BazelCacheConfig) -> dict[str, str]:
    """bazel-remote's own settings (environment form), without the S3 tier."""
    return {
        "BAZEL_REMOTE_DIR": DATA_DIR,
        "BAZEL_REMOTE_MAX_SIZE": str(config.max_size_gib),
        "BAZEL_REMOTE_HTTP_ADDRESS": f"0.0.0.0:{HTTP_PORT}",
        "BAZEL_REMOTE_GRPC_ADDRESS": f"0.0.0.0:{GRPC_PORT}",
    }


def s3_tier_environment(endpoint: S3Endpoint, region: str, bucket: str, prefix: str) -> dict[str, str]:
    """Settings of the S3 proxy tier (credentials come separately, from the consumer's Secret).

    Its keys are exactly S3_TIER_KEYS (the component needs them before the endpoint Output resolves).
    """
    return {
        "BAZEL_REMOTE_S3_ENDPOINT": endpoint.host_port,
        "BAZEL_REMOTE_S3_DISABLE_SSL": "true" if endpoint.disable_ssl else "false",
        "BAZEL_REMOTE_S3_BUCKET": bucket,
        # bazel-remote joins prefix and key with path.Join: 'bazel' puts objects under 'bazel/'
        "BAZEL_REMOTE_S3_PREFIX": prefix.strip("/"),
        "BAZEL_REMOTE_S3_REGION": region,
        "BAZEL_REMOTE_S3_AUTH_METHOD": "access_key",
        # SeaweedFS and most self-hosted stores only do path-style addressing
        "BAZEL_REMOTE_S3_BUCKET_LOOKUP_TYPE": "path",
    }


class BazelRemoteCache(pulumi.ComponentResource):
    """bazel-remote Deployment + PVC + Service `bazel-cache`; `grpc_url` is what runners inject."""

    grpc_url: str

    def __init__(
        self,
        name: str,
        config: BazelCacheConfig,
        namespace: str,
        *,
        s3: S3Target,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flywheel:index:BazelRemoteCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = standard_labels(SERVICE_NAME, COMPONENT)
        selector = selector_labels(SERVICE_NAME, COMPONENT)

        def metadata(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels)

        claim_name = f"{SERVICE_NAME}-data"
        self.volume = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata=metadata(claim_name),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=config.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": config.storage_size}),
            ),
            # the cache is rebuildable, but losing it on every replace would cost a cold start
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        environment = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in cache_environment(config).items()]
        if config.s3_tier:
            tier = pulumi.Output.from_input(s3.endpoint).apply(
                lambda url: s3_tier_environment(parse_s3_endpoint(url), s3.region, s3.bucket, s3.prefix)
            )
            environment += [k8s.core.v1.EnvVarArgs(name=key, value=tier[key]) for key in S3_TIER_KEYS]
            environment += [
                s3.access.access_key_id.env("BAZEL_REMOTE_S3_ACCESS_KEY_ID"),
                s3.access.secret_access_key.env("BAZEL_REMOTE_S3_SECRET_ACCESS_KEY"),
            ]

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(SERVICE_NAME),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                # one ReadWriteOnce volume: the old pod must release it before the new one starts
                strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=self._pod_spec(config, environment, claim_name),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.volume]),
        )

        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(SERVICE_NAME),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="http", port=HTTP_PORT, target_port="http"),
                    k8s.core.v1.ServicePortArgs(name="grpc", port=GRPC_PORT, target_port="grpc", app_protocol="grpc"),
                ],
            ),
            opts=child,
        )
        self.grpc_url = grpc_url(SERVICE_NAME, namespace, GRPC_PORT)
        self.register_outputs({"grpc_url": self.grpc_url})

    @staticmethod
    def _pod_spec(
        config: BazelCacheConfig, environment: list[k8s.core.v1.EnvVarArgs], claim_name: str
    ) -> k8s.core.v1.PodSpecArgs:
        http_status = k8s.core.v1.HTTPGetActionArgs(path="/status", port="http")
        return k8s.core.v1.PodSpecArgs(
            # service-link variables named BAZEL_REMOTE_* would be read as bazel-remote settings
            enable_service_links=False,
            automount_service_account_token=False,
            security_context=restricted_pod_security(RUN_AS_USER),
            containers=[
                k8s.core.v1.ContainerArgs(
                    name="bazel-remote",
                    image=config.image,
                    env=environment,
                    ports=[
                        k8s.core.v1.ContainerPortArgs(name="http", container_port=HTTP_PORT),
                        k8s.core.v1.ContainerPortArgs(name="grpc", container_port=GRPC_PORT),
                    ],
                    resources=k8s.core.v1.ResourceRequirementsArgs(**config.resources.to_kubernetes()),
                    # bazel-remote indexes the whole cache directory before it serves: allow 10 minutes
                    startup_probe=k8s.core.v1.ProbeArgs(http_get=http_status, period_seconds=10, failure_threshold=60),
                    readiness_probe=k8s.core.v1.ProbeArgs(http_get=http_status, period_seconds=10, timeout_seconds=5),
                    liveness_probe=k8s.core.v1.ProbeArgs(
                        grpc=k8s.core.v1.GRPCActionArgs(port=GRPC_PORT),
                        period_seconds=20,
                        timeout_seconds=5,
                        failure_threshold=3,
                    ),
                    security_context=restricted_container_security(),
                    volume_mounts=[
                        k8s.core.v1.VolumeMountArgs(name="data", mount_path=DATA_DIR),
                        k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108 (its own emptyDir)
                    ],
                )
            ],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="data",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim_name),
                ),
                # the root filesystem is read-only; Go's temporary files go here
                k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
            ],
        )
