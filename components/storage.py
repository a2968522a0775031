"""Object storage for Attic (and bazel-remote's S3 tier): in-cluster SeaweedFS or an external S3 store.

`seaweedfs`: a one-pod SeaweedFS StatefulSet (master, volume, filer and S3 gateway in one `weed server`)
on a PVC, three generated S3 identities (admin for the bucket Job, Attic limited to the bucket,
bazel-remote limited to `<bucket>/bazel/`) kept in Secrets, and an idempotent Job creating the bucket.
`s3`: the bucket as a dynamic resource (components/s3_bucket.py), protected and retained by default;
the configured credentials go to the consumers' Secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import StorageConfig
from components.kube import (
    S3Access,
    S3Target,
    checksum,
    rerun_when_failed,
    restricted_container_security,
    restricted_pod_security,
    secret_data,
    selector_labels,
    standard_labels,
)
from components.s3_bucket import ABORT_INCOMPLETE_UPLOADS_DAYS, S3Bucket, bucket_settings

BAZEL_PREFIX = "bazel/"
SEAWEEDFS = "seaweedfs"
SEAWEEDFS_S3_SERVICE = "seaweedfs-s3"
SEAWEEDFS_BUCKET_JOB = "seaweedfs-create-bucket"
SEAWEEDFS_IDENTITIES = "seaweedfs-s3-identities"  # the Secret holding SeaweedFS's s3.json
SEAWEEDFS_S3_PORT = 8333
# The filer's HTTP port (`weed server` default -filer.port). Only the bucket Job reaches it from outside the pod:
# it writes /etc/seaweedfs/filer.conf, SeaweedFS's path-specific configuration, there.
SEAWEEDFS_FILER_PORT = 8888
SEAWEEDFS_CONFIG_DIR = "/etc/seaweedfs"
SEAWEEDFS_VOLUME_SIZE_LIMIT_MB = 1024
# The image's entrypoint drops root to `seaweed` (uid/gid 1000) before weed runs (docker/entrypoint.sh):
# run as that user from the start and give it the mounted volumes, so it can read s3.json (mode 0440).
SEAWEEDFS_USER = 1000  # small volumes so a modest PVC still holds many of them
BUCKET_JOB_IMAGE = "curlimages/curl:8.17.0"
BUCKET_JOB_DEADLINE_SECONDS = 900
BUCKET_JOB_USER = 100  # curl_user in curlimages/curl
BUCKET_JOB_SCRIPT = Path(__file__).parent / "templates" / "seaweedfs-create-bucket.sh"
COMPONENT = "object-storage"
ADMIN, ATTIC, BAZEL = "admin", "attic", "bazel-remote"
TAGS = {"part-of": "flywheel", "purpose": "attic-nix-cache", "managed-by": "pulumi"}


# --- pure rendering ---------------------------------------------------------------------------


def seaweedfs_scopes(bucket: str, bazel_prefix: str = BAZEL_PREFIX) -> dict[str, list[str]]:
    """SeaweedFS S3 actions per identity: admin creates buckets, Attic owns the bucket, bazel its prefix."""
    prefix = f"{bucket}/{bazel_prefix.strip('/')}/*"
    return {
        ADMIN: ["Admin", "List", "Read", "Tagging", "Write"],
        ATTIC: [f"List:{bucket}", f"Read:{bucket}", f"Tagging:{bucket}", f"Write:{bucket}"],
        BAZEL: [f"List:{prefix}", f"Read:{prefix}", f"Write:{prefix}"],
    }


def seaweedfs_identities(scopes: dict[str, list[str]], keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """SeaweedFS's `-s3.config` document; ``keys`` maps identity name -> (access key id, secret key)."""
    return {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": keys[name][0], "secretKey": keys[name][1]}],
                "actions": actions,
            }
            for name, actions in sorted(scopes.items())
        ]
    }


def seaweedfs_server_args(s3_config_path: str) -> list[str]:
    """`weed server` arguments: one process with master, volume, filer and the S3 gateway."""
    return [
        "server",
        "-dir=/data",
        "-ip=$(POD_IP)",
        "-ip.bind=0.0.0.0",
        f"-master.volumeSizeLimitMB={SEAWEEDFS_VOLUME_SIZE_LIMIT_MB}",
        "-volume.max=0",  # as many volumes as the disk holds
        "-s3",
        f"-s3.port={SEAWEEDFS_S3_PORT}",
        f"-s3.config={s3_config_path}",
        "-s3.allowDeleteBucketNotEmpty=false",  # a bucket holding cache data cannot be dropped by accident
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-iam=false",
    ]


def seaweedfs_filer_conf(bucket: str, bazel_retention_days: int | None, bazel_prefix: str = BAZEL_PREFIX) -> str:
    """SeaweedFS's filer.conf: a TTL on bazel-remote's prefix of the bucket, or no path rule at all.

    bazel-remote never deletes from its S3 tier; the filer stamps every entry written under a location prefix with
    its TTL and stops serving it once the TTL has passed (seen with the real 4.48 binary:
    tests/test_workloads_lab.py). A TTL is a count of at most 255 of one unit, so days fit up to 255. This program
    owns the file: the bucket Job writes the whole of it on every run, so a retention turned off is removed.
    """
    locations = (
        [{"locationPrefix": f"/buckets/{bucket}/{bazel_prefix}", "ttl": f"{bazel_retention_days}d"}]
        if bazel_retention_days is not None
        else []
    )
    return json.dumps({"version": 1, "locations": locations}, sort_keys=True)


def in_cluster_url(service: str, namespace: str, port: int) -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{port}"


def aws_endpoint(region: str) -> str:
    return f"https://s3.{region}.amazonaws.com"


def bucket_job_script() -> str:
    return BUCKET_JOB_SCRIPT.read_text()


def rendered_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# --- the component ----------------------------------------------------------------------------


class ObjectStorage(pulumi.ComponentResource):
    """The bucket Attic stores NARs and chunks in, and per-consumer credentials for it."""

    endpoint: pulumi.Output[str]
    region: str
    bucket: str
    bazel_prefix: str
    attic_access: S3Access
    bazel_access: S3Access
    rendered_files: dict[str, pulumi.Input[str]]
    ready: list[pulumi.Resource]
    """Resources consumers should depend on: the bucket exists once they are done."""

    def __init__(
        self,
        name: str,
        config: StorageConfig,
        namespace: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        bazel_retention_days: int | None = None,
    ) -> None:
        """``bazel_retention_days``: when bazel-remote tiers onto the bucket, how long the store keeps what it
        wrote under its prefix (None: bazel-remote does not use the bucket)."""
        super().__init__("flywheel:index:ObjectStorage", name, None, opts)
        self._name = name
        self._bazel_retention_days = bazel_retention_days
        self._namespace = namespace
        self.region = config.region
        self.bucket = config.bucket
        self.bazel_prefix = BAZEL_PREFIX
        if config.backend == "seaweedfs":
            self._seaweedfs(config)
        else:
            self._external_s3(config)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "region": self.region,
                "bucket": self.bucket,
                "atticSecret": self.attic_access.secret_name,
                "bazelSecret": self.bazel_access.secret_name,
            }
        )

    @property
    def attic_target(self) -> S3Target:
        """Attic's view of the store: the whole bucket, with Attic's identity."""
        return S3Target(self.endpoint, self.region, self.bucket, self.attic_access)

    @property
    def bazel_target(self) -> S3Target:
        """bazel-remote's view of the store: its prefix of the bucket, with its own identity."""
        return S3Target(self.endpoint, self.region, self.bucket, self.bazel_access, prefix=self.bazel_prefix)

    @property
    def _bazel_expiry(self) -> tuple[str, int] | None:
        days = self._bazel_retention_days
        return (BAZEL_PREFIX, days) if days is not None else None

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _metadata(self, name: str, app: str = SEAWEEDFS) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=name, namespace=self._namespace, labels=standard_labels(app, COMPONENT))

    def _access_secret(self, consumer: str, key_id: pulumi.Input[str], secret: pulumi.Input[str]) -> S3Access:
        secret_name = f"{consumer}-s3-credentials"
        k8s.core.v1.Secret(
            f"{self._name}-{consumer}-credentials",
            metadata=self._metadata(secret_name, consumer),
            type="Opaque",
            data=secret_data({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}),
            opts=self._child(),
        )
        return S3Access(secret_name)

    # --- backend: s3 -------------------------------------------------------------------------

    def _external_s3(self, config: StorageConfig) -> None:
        assert config.credentials is not None  # config.py refuses backend s3 without them
        endpoint = config.endpoint or aws_endpoint(config.region)
        self.endpoint = pulumi.Output.from_input(endpoint)
        key_id = config.credentials.access_key_id.get_secret_value()
        secret = config.credentials.secret_access_key.get_secret_value()
        bucket = S3Bucket(
            f"{self._name}-bucket",
            endpoint=endpoint,
            region=config.region,
            bucket=config.bucket,
            access_key_id=pulumi.Output.secret(key_id),
            secret_access_key=pulumi.Output.secret(secret),
            tags=TAGS,
            retain_on_delete=config.protect,
            bazel_expiry=self._bazel_expiry,
            opts=self._child(protect=config.protect, retain_on_delete=config.protect),
        )
        self.ready = [bucket]
        self.attic_access = self._access_secret(ATTIC, key_id, secret)
        bazel = config.bazel_credentials or config.credentials
        self.bazel_access = self._access_secret(
            BAZEL, bazel.access_key_id.get_secret_value(), bazel.secret_access_key.get_secret_value()
        )
        self.rendered_files = {
            "storage/s3-bucket.json": rendered_text(
                {
                    "endpoint": endpoint,
                    "region": config.region,
                    "bucket": config.bucket,
                    "protect": config.protect,
                    "bazelIdentity": "own" if config.bazel_credentials else "shared with attic",
                    "settings": bucket_settings(TAGS, ABORT_INCOMPLETE_UPLOADS_DAYS, self._bazel_expiry),
                }
            )
        }

    # --- backend: seaweedfs ------------------------------------------------------------------

    def _seaweedfs(self, config: StorageConfig) -> None:
        assert config.size is not None  # config.py refuses seaweedfs without a size
        self.endpoint = pulumi.Output.from_input(
            in_cluster_url(SEAWEEDFS_S3_SERVICE, self._namespace, SEAWEEDFS_S3_PORT)
        )
        scopes = seaweedfs_scopes(config.bucket, BAZEL_PREFIX)
        keys = {identity: self._generated_key(identity) for identity in scopes}
        document = pulumi.Output.all(*(part for pair in keys.values() for part in pair)).apply(
            lambda parts: rendered_text(
                seaweedfs_identities(scopes, {n: (parts[2 * i], parts[2 * i + 1]) for i, n in enumerate(keys)})
            )
        )
        identities = k8s.core.v1.Secret(
            f"{self._name}-seaweedfs-identities",
            metadata=self._metadata(SEAWEEDFS_IDENTITIES),
            type="Opaque",
            data=secret_data({"s3.json": document}),
            opts=self._child(),
        )
        admin = self._access_secret(ADMIN, *keys[ADMIN])
        self.attic_access = self._access_secret(ATTIC, *keys[ATTIC])
        self.bazel_access = self._access_secret(BAZEL, *keys[BAZEL])
        scopes_text = rendered_text({"bucket": config.bucket, "bazelPrefix": BAZEL_PREFIX, "identities": scopes})
        server = self._seaweedfs_server(config, identities, checksum(scopes_text))
        job = self._bucket_job(config, admin, depends_on=[server])
        self.ready = [job]
        self.rendered_files = {"storage/seaweedfs-s3-scopes.json": scopes_text}

    def _generated_key(self, identity: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        # RandomPassword, not RandomString: the random provider uses a RandomString's result as its ID, and the
        # engine never encrypts IDs, so the key ID would sit in plain text in the state (a RandomPassword's ID is
        # "none"). Seen with the real CLI: `pulumi stack export` showed the RandomString's ID.
        key_id = random.RandomPassword(
            f"{self._name}-{identity}-access-key-id",
            length=20,
            upper=True,
            lower=False,
            numeric=True,
            special=False,
            opts=self._child(),
        )
        secret = random.RandomPassword(
            f"{self._name}-{identity}-secret-key", length=40, special=False, opts=self._child()
        )
        return pulumi.Output.secret(key_id.result), pulumi.Output.secret(secret.result)

    def _seaweedfs_server(
        self, config: StorageConfig, identities: k8s.core.v1.Secret, scopes_checksum: str
    ) -> k8s.apps.v1.StatefulSet:
        labels = standard_labels(SEAWEEDFS, COMPONENT)
        selector = selector_labels(SEAWEEDFS, COMPONENT)
        s3_port = k8s.core.v1.ServicePortArgs(name="s3", port=SEAWEEDFS_S3_PORT, target_port="s3")
        headless = k8s.core.v1.Service(
            f"{self._name}-seaweedfs-headless",
            metadata=self._metadata(SEAWEEDFS),
            spec=k8s.core.v1.ServiceSpecArgs(cluster_ip="None", selector=selector, ports=[s3_port]),
            opts=self._child(),
        )
        k8s.core.v1.Service(
            f"{self._name}-seaweedfs-s3",
            metadata=self._metadata(SEAWEEDFS_S3_SERVICE),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=selector, ports=[s3_port]),
            opts=self._child(),
        )
        probe = k8s.core.v1.ProbeArgs(
            tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="s3"), period_seconds=10, failure_threshold=6
        )
        container = k8s.core.v1.ContainerArgs(
            name=SEAWEEDFS,
            image=config.image,
            args=seaweedfs_server_args(f"{SEAWEEDFS_CONFIG_DIR}/s3.json"),
            env=[
                k8s.core.v1.EnvVarArgs(
                    name="POD_IP",
                    value_from=k8s.core.v1.EnvVarSourceArgs(
                        field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="status.podIP")
                    ),
                )
            ],
            ports=[k8s.core.v1.ContainerPortArgs(name="s3", container_port=SEAWEEDFS_S3_PORT)],
            readiness_probe=probe,
            liveness_probe=k8s.core.v1.ProbeArgs(
                tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="s3"),
                initial_delay_seconds=30,
                period_seconds=20,
                failure_threshold=6,
            ),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "2Gi"}
            ),
            security_context=k8s.core.v1.SecurityContextArgs(allow_privilege_escalation=False),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data"),
                k8s.core.v1.VolumeMountArgs(name="identities", mount_path=SEAWEEDFS_CONFIG_DIR, read_only=True),
            ],
        )
        claim = k8s.core.v1.PersistentVolumeClaimArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(name="data", labels=labels),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteOnce"],
                storage_class_name=config.storage_class,
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": config.size}),
            ),
        )
        return k8s.apps.v1.StatefulSet(
            f"{self._name}-seaweedfs",
            metadata=self._metadata(SEAWEEDFS),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=SEAWEEDFS,
                replicas=1,  # one `weed server`: master, volume, filer and S3 gateway share the PVC
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                    when_deleted="Retain", when_scaled="Retain"
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels,
                        # scopes are not secret; a scope change restarts the gateway, which reads s3.json at start
                        annotations={"checksum/s3-scopes": scopes_checksum},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        containers=[container],
                        security_context=restricted_pod_security(SEAWEEDFS_USER),
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="identities",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(
                                    secret_name=SEAWEEDFS_IDENTITIES, default_mode=0o440
                                ),
                            )
                        ],
                    ),
                ),
                volume_claim_templates=[claim],
            ),
            opts=self._child(depends_on=[identities, headless]),
        )

    def _bucket_job(
        self, config: StorageConfig, admin: S3Access, depends_on: list[pulumi.Resource]
    ) -> k8s.batch.v1.Job:
        labels = standard_labels(SEAWEEDFS_BUCKET_JOB, COMPONENT)
        env = [
            k8s.core.v1.EnvVarArgs(
                name="S3_ENDPOINT", value=in_cluster_url(SEAWEEDFS_S3_SERVICE, self._namespace, SEAWEEDFS_S3_PORT)
            ),
            k8s.core.v1.EnvVarArgs(name="BUCKET", value=config.bucket),
            k8s.core.v1.EnvVarArgs(name="REGION", value=config.region),
            k8s.core.v1.EnvVarArgs(
                name="FILER_URL", value=in_cluster_url(SEAWEEDFS, self._namespace, SEAWEEDFS_FILER_PORT)
            ),
            k8s.core.v1.EnvVarArgs(
                name="FILER_CONF", value=seaweedfs_filer_conf(config.bucket, self._bazel_retention_days)
            ),
            *admin.env(),
        ]
        annotations, await_options = rerun_when_failed(BUCKET_JOB_DEADLINE_SECONDS)
        return k8s.batch.v1.Job(
            f"{self._name}-create-bucket",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SEAWEEDFS_BUCKET_JOB, namespace=self._namespace, labels=labels, annotations=annotations
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=4,
                active_deadline_seconds=BUCKET_JOB_DEADLINE_SECONDS,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="OnFailure",
                        automount_service_account_token=False,
                        security_context=restricted_pod_security(BUCKET_JOB_USER, own_group=False),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="create-bucket",
                                image=BUCKET_JOB_IMAGE,
                                command=["/bin/sh", "-c", bucket_job_script()],
                                env=env,
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "10m", "memory": "16Mi"}, limits={"memory": "64Mi"}
                                ),
                                security_context=restricted_container_security(),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(self._child(depends_on=depends_on), await_options),
        )
