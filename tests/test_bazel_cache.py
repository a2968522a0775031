"""bazel-remote: Service `bazel-cache`, a volume that holds max_size, the S3 tier from a parsed endpoint URL.

Pure helpers are tested directly; the component runs under the Pulumi mock monitor (tools.mocks) and its
manifests are validated against the official Kubernetes 1.31 schemas (strict).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from components.bazel_cache import (
    S3_TIER_KEYS,
    BazelRemoteCache,
    grpc_url,
    parse_s3_endpoint,
    s3_tier_environment,
)
from components.config import BazelCacheConfig
from components.config_types import parse_quantity
from components.kube import S3Access, S3Target
from tests.conftest import register
from tests.k8s_schema import schema_errors
from tests.test_config import problems_for, with_change
from tools.render import kubernetes_objects


def build_cache(
    config: BazelCacheConfig, endpoint: str = "http://seaweedfs-s3.flywheel.svc.cluster.local:8333"
) -> tuple[BazelRemoteCache, dict[tuple[str, str], dict[str, Any]]]:
    built: dict[str, BazelRemoteCache] = {}

    def build() -> None:
        built["cache"] = BazelRemoteCache(
            "bazel",
            config,
            "flywheel",
            s3=S3Target(
                pulumi.Output.from_input(endpoint),
                "us-east-1",
                "flywheel-attic",
                S3Access("bazel-remote-s3"),
                prefix="bazel/",
            ),
        )

    resources = register(build)
    return built["cache"], {(m["kind"], m["metadata"]["name"]): m for m in kubernetes_objects(resources)}


def container_env(manifests: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    container = manifests[("Deployment", "bazel-cache")]["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host_port", "disable_ssl"),
    [
        ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", False),
        ("http://seaweedfs-s3.flywheel.svc.cluster.local:8333", "seaweedfs-s3.flywheel.svc.cluster.local:8333", True),
        ("https://minio.example.com:9000/", "minio.example.com:9000", False),
        ("http://10.0.0.5:9000", "10.0.0.5:9000", True),
    ],
)
def test_s3_endpoint_is_parsed_into_host_port_without_scheme(url: str, host_port: str, disable_ssl: bool) -> None:
    endpoint = parse_s3_endpoint(url)
    assert endpoint.host_port == host_port
    assert endpoint.disable_ssl is disable_ssl
    assert "://" not in endpoint.host_port


@pytest.mark.parametrize("url", ["s3.example.com:9000", "ftp://s3.example.com", "https://s3.example.com/bucket"])
def test_s3_endpoint_that_bazel_remote_cannot_take_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="S3 endpoint"):
        parse_s3_endpoint(url)


def test_grpc_url_format() -> None:
    assert grpc_url("bazel-cache", "build-caches") == "grpc://bazel-cache.build-caches.svc.cluster.local:9092"


def test_s3_tier_settings_use_the_bazel_prefix_and_path_style() -> None:
    env = s3_tier_environment(parse_s3_endpoint("https://s3.example.com"), "eu-west-1", "bucket-a", "bazel/")
    assert tuple(env) == S3_TIER_KEYS
    assert env["BAZEL_REMOTE_S3_PREFIX"] == "bazel"  # bazel-remote path.Joins it: objects land under bazel/
    assert env["BAZEL_REMOTE_S3_ENDPOINT"] == "s3.example.com"
    assert env["BAZEL_REMOTE_S3_DISABLE_SSL"] == "false"
    assert env["BAZEL_REMOTE_S3_AUTH_METHOD"] == "access_key"
    assert env["BAZEL_REMOTE_S3_BUCKET_LOOKUP_TYPE"] == "path"
    assert env["BAZEL_REMOTE_S3_REGION"] == "eu-west-1"


def test_volume_smaller_than_max_size_with_headroom_is_refused_with_key_path() -> None:
    problems = problems_for(with_change("bazelCache", {"maxSizeGiB": 100, "storageSize": "100Gi"}))
    assert len(problems) == 1
    assert problems[0].startswith("flywheel:bazelCache.storageSize: storageSize '100Gi' cannot hold maxSizeGiB 100")
    assert "expected storageSize of at least '110Gi'" in problems[0]
    with pytest.raises(ValidationError):
        BazelCacheConfig.model_validate({"maxSizeGiB": 10, "storageSize": "10Gi"})


# --- the component under mocks --------------------------------------------------------------------


def test_service_is_bazel_cache_and_grpc_url_is_built_from_it() -> None:
    cache, manifests = build_cache(BazelCacheConfig(s3_tier=True))
    services = [m for (kind, _), m in manifests.items() if kind == "Service"]
    assert [s["metadata"]["name"] for s in services] == ["bazel-cache"]
    assert not any(name == "bazel-remote" for _, name in manifests)
    service = services[0]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"http": 8080, "grpc": 9092}
    assert cache.grpc_url == (
        f"grpc://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{ports['grpc']}"
    )
    pod = manifests[("Deployment", "bazel-cache")]["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    assert (
        service["spec"]["selector"].items()
        <= manifests[("Deployment", "bazel-cache")]["spec"]["template"]["metadata"]["labels"].items()
    )


@pytest.mark.parametrize(("max_size", "storage"), [(50, "60Gi"), (100, "110Gi"), (7, "8Gi"), (500, "1Ti")])
def test_pvc_holds_max_size_with_headroom(max_size: int, storage: str) -> None:
    config = BazelCacheConfig.model_validate({"maxSizeGiB": max_size, "storageSize": storage})
    _, manifests = build_cache(config)
    pvc = manifests[("PersistentVolumeClaim", "bazel-cache-data")]
    size = parse_quantity(pvc["spec"]["resources"]["requests"]["storage"])
    assert size * 10 >= max_size * 11 * 2**30  # 10 % headroom, in integers
    assert size >= config.min_storage_gib * 2**30
    env = container_env(manifests)
    assert env["BAZEL_REMOTE_MAX_SIZE"] == str(max_size)
    pod = manifests[("Deployment", "bazel-cache")]["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [pvc["metadata"]["name"]]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert env["BAZEL_REMOTE_DIR"] == mounts["data"]


def test_probes_ports_and_non_root() -> None:
    _, manifests = build_cache(BazelCacheConfig())
    deployment = manifests[("Deployment", "bazel-cache")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "grpc": 9092}
    assert container["readinessProbe"]["httpGet"] == {"path": "/status", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/status"
    assert container["livenessProbe"]["grpc"] == {"port": 9092}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    env = container_env(manifests)
    assert env["BAZEL_REMOTE_GRPC_ADDRESS"].endswith(":9092")
    assert env["BAZEL_REMOTE_HTTP_ADDRESS"].endswith(":8080")


def test_s3_tier_reads_endpoint_from_url_and_credentials_from_the_secret() -> None:
    _, manifests = build_cache(BazelCacheConfig(s3_tier=True), endpoint="https://s3.example.com:9443")
    env = container_env(manifests)
    assert env["BAZEL_REMOTE_S3_ENDPOINT"] == "s3.example.com:9443"
    assert env["BAZEL_REMOTE_S3_DISABLE_SSL"] == "false"
    assert env["BAZEL_REMOTE_S3_BUCKET"] == "flywheel-attic"
    assert env["BAZEL_REMOTE_S3_PREFIX"] == "bazel"
    assert env["BAZEL_REMOTE_S3_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "bazel-remote-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert env["BAZEL_REMOTE_S3_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "bazel-remote-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }


def test_without_s3_tier_no_s3_setting_is_passed() -> None:
    _, manifests = build_cache(BazelCacheConfig(s3_tier=False))
    assert not [key for key in container_env(manifests) if key.startswith("BAZEL_REMOTE_S3_")]


def test_manifests_are_valid_kubernetes_1_31_and_labelled() -> None:
    _, manifests = build_cache(BazelCacheConfig(s3_tier=True, storage_class="fast-ssd"))
    assert set(manifests) == {
        ("Deployment", "bazel-cache"),
        ("Service", "bazel-cache"),
        ("PersistentVolumeClaim", "bazel-cache-data"),
    }
    assert schema_errors(list(manifests.values())) == []
    for manifest in manifests.values():
        assert manifest["metadata"]["namespace"] == "flywheel"
        assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flywheel"
        assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pulumi"
    assert manifests[("PersistentVolumeClaim", "bazel-cache-data")]["spec"]["storageClassName"] == "fast-ssd"


def test_dev_stack_wires_the_s3_tier_to_the_object_storage(dev_render: Any) -> None:
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in kubernetes_objects(dev_render.resources)}
    env = container_env(manifests)
    assert env["BAZEL_REMOTE_S3_PREFIX"] == "bazel"
    assert "://" not in env["BAZEL_REMOTE_S3_ENDPOINT"]
    secret_name = env["BAZEL_REMOTE_S3_ACCESS_KEY_ID"]["secretKeyRef"]["name"]
    assert ("Secret", secret_name) in manifests  # the storage component's scoped bazel-remote identity
    assert schema_errors([manifests[key] for key in manifests if key[1].startswith("bazel-cache")]) == []
