"""AtticServer: server.toml, keys, the migrations Job, the api-server Deployment, Service/Ingress, cache bootstrap.

The component runs under the Pulumi mocks with stand-in storage and database values (the
real ObjectStorage/AtticDatabase are tested on their own); its manifests are validated
strictly against Kubernetes 1.31.
"""

from __future__ import annotations

import base64
import json
import tomllib
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

from components.attic import (
    CONFIG_CHECKSUM_ANNOTATION,
    AtticEndpoints,
    AtticServer,
    configure_cache_request,
    create_cache_request,
    render_server_toml,
    server_config,
)
from components.attic_gc import AtticGarbageCollector
from components.config import AtticConfig
from components.kube import S3Access, S3Target, SecretKeyRef
from components.nix_keys import PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, split_key
from tests.k8s_schema import schema_errors
from tools.mocks import Registration
from tools.render import REDACTED, kubernetes_objects, registered_resources, run_under_mocks

NAMESPACE = "flywheel"
S3_ENDPOINT = "http://seaweedfs-s3.flywheel.svc.cluster.local:8333"  # stand-in for ObjectStorage.endpoint
DATABASE_URL = SecretKeyRef("attic-db-app", "uri")  # stand-in for AtticDatabase.url
# stand-in for ObjectStorage.attic_target
S3_TARGET = S3Target(S3_ENDPOINT, "us-east-1", "flywheel-attic", S3Access("attic-s3-credentials"))

# Top-level keys atticd's Config accepts (server/src/config.rs, deny_unknown_fields).
ATTICD_TOP_LEVEL_KEYS = {
    "listen",
    "allowed-hosts",
    "api-endpoint",
    "substituter-endpoint",
    "soft-delete-caches",
    "require-proof-of-possession",
    "max-nar-info-size",
    "database",
    "storage",
    "chunking",
    "compression",
    "garbage-collection",
    "jwt",
}
ATTICD_REQUIRED_TABLES = {"database", "storage", "chunking"}
DEV_ATTIC = {
    "replicas": 2,
    "host": "attic.example.com",
    "cacheName": "main",
    "ingress": {
        "className": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "tlsSecretName": "attic-tls",
    },
    "gc": {"schedule": "15 3 * * *", "retention": "30 days"},
}


@dataclass
class AtticRun:
    resources: list[dict[str, Any]]
    manifests: list[dict[str, Any]]
    values: dict[str, Any]
    secret: dict[str, bool]
    secret_data: dict[str, dict[str, str]]
    server: AtticServer
    registrations: list[Registration]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = self.all(kind, component)
        assert len(found) == 1, f"expected one {kind} ({component}), got {len(found)}"
        return found[0]

    def all(self, kind: str, component: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.manifests
            if m["kind"] == kind
            and (component is None or m["metadata"]["labels"]["app.kubernetes.io/component"] == component)
        ]

    def resource(self, name: str, type_suffix: str = "") -> dict[str, Any]:
        found = [r for r in self.resources if r["name"] == name and r["type"].endswith(type_suffix)]
        assert len(found) == 1, f"{len(found)} resources named {name!r} ({type_suffix})"
        return found[0]

    def secret_values(self) -> list[str]:
        """Every secret value the component handled (what must never appear in plain objects)."""
        values = [v for data in self.secret_data.values() for k, v in data.items() if k != "public-key"]
        return [*values, self.values["ci_token"], self.values["jwt_private_key"], self.values["nix_secret_key"]]


def decoded(data: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64decode(value, validate=True).decode() for key, value in data.items()}


def run_attic(overrides: dict[str, Any] | None = None, *, with_gc: bool = True) -> AtticRun:
    """Build AtticServer (and the GC worker) under the mocks; collect manifests and resolved values."""
    config = AtticConfig.model_validate({**DEV_ATTIC, **(overrides or {})})
    values: dict[str, Any] = {}
    secret: dict[str, bool] = {}
    secret_data: dict[str, dict[str, str]] = {}
    built: dict[str, AtticServer] = {}

    async def main() -> None:
        server = AtticServer(
            "attic",
            config,
            NAMESPACE,
            s3=S3_TARGET,
            database_url=DATABASE_URL,
        )
        if with_gc:
            AtticGarbageCollector("attic-gc", config, NAMESPACE, server)
        built["server"] = server
        outputs = {
            "server_toml": server.server_toml,
            "public_key": server.public_key,
            "ci_token": server.ci_token,
            "jwt_private_key": server.jwt_signing_key.private_key_pem,
            "nix_secret_key": server.nix_key_secret.data.apply(lambda d: base64.b64decode(d["secret-key"]).decode()),
            "rendered_server_toml": pulumi.Output.from_input(server.rendered_files["attic/server.toml"]),
        }
        for key, output in outputs.items():
            values[key] = await output.future()
            secret[key] = await output.is_secret()
        for resource in (server.server_secret, server.nix_key_secret):
            secret_data[await resource.metadata.name.future()] = decoded(await resource.data.future())
        secret_data["attic-cache-init"] = decoded(await server.cache_init_secret.data.future())

    monitor = run_under_mocks(main, "unit")
    resources = registered_resources(monitor)
    return AtticRun(
        resources, kubernetes_objects(resources), values, secret, secret_data, built["server"], monitor.registrations
    )


@pytest.fixture(scope="module")
def dev() -> AtticRun:
    return run_attic()


# --- server.toml ---------------------------------------------------------------------------------


def test_server_toml_has_only_keys_atticd_knows_and_every_required_table(dev: AtticRun) -> None:
    server = tomllib.loads(dev.values["server_toml"])
    assert set(server) <= ATTICD_TOP_LEVEL_KEYS
    assert set(server) >= ATTICD_REQUIRED_TABLES
    assert server["chunking"] == {
        "nar-size-threshold": 65536,
        "min-size": 16384,
        "avg-size": 65536,
        "max-size": 262144,
    }
    assert server["api-endpoint"] == "https://attic.example.com/"
    assert server["storage"] == {
        "type": "s3",
        "region": "us-east-1",
        "bucket": "flywheel-attic",
        "endpoint": S3_ENDPOINT,
    }
    assert server["garbage-collection"] == {"interval": "0s", "default-retention-period": "30 days"}
    assert server["compression"] == {"type": "zstd"}
    assert server["database"] == {"heartbeat": True}  # the URL comes from ATTIC_SERVER_DATABASE_URL
    assert server["allowed-hosts"] == ["attic.example.com", "attic.flywheel.svc.cluster.local:8080"]
    assert dev.values["rendered_server_toml"] == dev.values["server_toml"]
    assert not dev.secret["server_toml"]


def test_server_toml_holds_no_secret_material(dev: AtticRun) -> None:
    text = dev.values["server_toml"]
    server = tomllib.loads(text)
    assert "jwt" not in server
    assert "credentials" not in server["storage"]
    assert "url" not in server["database"]
    for value in dev.secret_values():
        assert value not in text
    assert "PRIVATE KEY" not in text


def test_server_toml_follows_config_and_endpoints() -> None:
    config = AtticConfig.model_validate(
        {
            "chunking": {"narSizeThreshold": 1, "minSize": 8192, "avgSize": 32768, "maxSize": 131072},
            "compression": {"type": "xz", "level": 3},
            "gc": {"retention": "2 weeks"},
        }
    )
    endpoints = AtticEndpoints(service="cache", namespace="ci")
    server = tomllib.loads(
        render_server_toml(server_config(config, endpoints, s3_endpoint=None, s3_region="eu-west-1", s3_bucket="b"))
    )
    assert server["api-endpoint"] == "http://cache.ci.svc.cluster.local:8080/"
    assert server["allowed-hosts"] == ["cache.ci.svc.cluster.local:8080"]
    assert "endpoint" not in server["storage"]  # AWS: the SDK's default endpoint
    assert server["chunking"]["nar-size-threshold"] == 1 and server["chunking"]["max-size"] == 131072
    assert server["compression"] == {"type": "xz", "level": 3}
    assert server["garbage-collection"]["default-retention-period"] == "2 weeks"


def test_render_refuses_an_api_endpoint_without_trailing_slash() -> None:
    config = server_config(AtticConfig(), AtticEndpoints("attic", "ns"), s3_endpoint=None, s3_region="r", s3_bucket="b")
    with pytest.raises(ValueError, match="must end with '/'"):
        render_server_toml({**config, "api-endpoint": "https://attic.example.com"})


# --- manifests -----------------------------------------------------------------------------------


def test_every_manifest_validates_strictly(dev: AtticRun) -> None:
    assert len(dev.manifests) >= 12
    assert schema_errors(dev.manifests) == []


def test_every_object_is_named_namespaced_and_labelled(dev: AtticRun) -> None:
    for manifest in dev.manifests:
        metadata = manifest["metadata"]
        assert metadata["name"] and metadata["namespace"] == NAMESPACE
        assert metadata["labels"]["app.kubernetes.io/part-of"] == "flywheel"
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "pulumi"
        assert metadata["labels"]["app.kubernetes.io/name"] == "attic"


def atticd_containers(run: AtticRun) -> list[dict[str, Any]]:
    containers = []
    for manifest in run.manifests:
        spec = manifest.get("spec") or {}
        template = (spec.get("jobTemplate", {}).get("spec") or spec).get("template")
        if template:
            containers += [c for c in template["spec"]["containers"] if c["name"] == "atticd"]
    return containers


def test_atticd_never_runs_monolithic(dev: AtticRun) -> None:
    modes = sorted(c["args"][c["args"].index("--mode") + 1] for c in atticd_containers(dev))
    assert modes == ["api-server", "db-migrations", "garbage-collector-once"]


def test_secrets_reach_atticd_only_by_env_from_secrets(dev: AtticRun) -> None:
    for container in atticd_containers(dev):
        env = {e["name"]: e for e in container["env"]}
        assert env["ATTIC_SERVER_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "attic-db-app", "key": "uri"}
        assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "attic-s3-credentials"
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "attic-s3-credentials"
        signing = env["ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"]["valueFrom"]["secretKeyRef"]
        assert signing == {"name": "attic-server", "key": "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"}
        assert all("value" not in e or e["name"] == "RUST_LOG" for e in container["env"])


def test_the_signing_key_secret_is_base64_of_the_pkcs1_pem(dev: AtticRun) -> None:
    encoded = dev.secret_data["attic-server"]["ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"]
    assert base64.b64decode(encoded).decode() == dev.values["jwt_private_key"]
    assert dev.values["jwt_private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert dev.resource("attic-jwt-signing-key")["inputs"]["algorithm"] == "RSA"


def test_no_secret_value_appears_outside_secrets(dev: AtticRun) -> None:
    plain = json.dumps([r for r in dev.resources if r["type"] != "kubernetes:core/v1:Secret"])
    for value in dev.secret_values():
        assert value not in plain
        assert base64.b64encode(value.encode()).decode() not in plain
    for manifest in dev.all("Secret"):
        # the render keeps a secret mapping's keys (not secret) and redacts every value
        assert "stringData" not in manifest  # data only: a plan must not hold stringData (kube.secret_data)
        assert manifest["data"] and set(manifest["data"].values()) == {REDACTED}
    # nor does a secret Output: the render shows it redacted, but the cluster would get it in plain text
    for manifest in dev.manifests:
        if manifest["kind"] != "Secret":
            assert REDACTED not in json.dumps(manifest), manifest["metadata"]["name"]


def test_configmap_carries_the_toml_and_pods_carry_its_checksum(dev: AtticRun) -> None:
    config_map = next(m for m in dev.all("ConfigMap") if m["metadata"]["name"] == "attic-config")
    assert config_map["data"] == {"server.toml": dev.values["server_toml"]}
    deployment = dev.one("Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    cron = dev.one("CronJob")
    gc_annotations = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CONFIG_CHECKSUM_ANNOTATION] == gc_annotations[CONFIG_CHECKSUM_ANNOTATION]
    changed = run_attic({"chunking": {"narSizeThreshold": 131072}}, with_gc=False)
    new = changed.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert new[CONFIG_CHECKSUM_ANNOTATION] != annotations[CONFIG_CHECKSUM_ANNOTATION]


def test_deployment_runs_api_server_replicas_after_the_migrations_job(dev: AtticRun) -> None:
    deployment = dev.one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    migrations = dev.resource("attic-db-migrations")
    assert migrations["urn"] in dev.resource("attic", "Deployment")["options"]["dependsOn"]
    job = dev.one("Job", "db-migrations")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_the_migrations_job_is_re_created_when_the_image_changes(dev: AtticRun) -> None:
    name = dev.one("Job", "db-migrations")["metadata"]["name"]
    same = run_attic({"replicas": 3}, with_gc=False).one("Job", "db-migrations")["metadata"]["name"]
    image = "ghcr.io/zhaofengli/attic:0000000000000000000000000000000000000000"
    other = run_attic({"image": image}, with_gc=False).one("Job", "db-migrations")["metadata"]["name"]
    assert name == same
    assert other != name and other.startswith("attic-db-migrations-")


def test_only_the_migrations_job_sets_delete_before_replace(dev: AtticRun) -> None:
    """As sent to the engine (deleteBeforeReplaceDefined): an explicit false would override the Kubernetes
    provider's delete-first for a same-named replacement, e.g. a cache-init Job whose template changed."""
    defined = {r.name: r.delete_before_replace for r in dev.registrations if r.delete_before_replace is not None}
    assert defined == {"attic-db-migrations": True}
    assert "attic-cache-init" in {r.name for r in dev.registrations}


def test_probes_pass_allowed_hosts(dev: AtticRun) -> None:
    container = next(c for c in atticd_containers(dev) if "api-server" in c["args"])
    readiness = container["readinessProbe"]["httpGet"]
    host = {h["name"]: h["value"] for h in readiness["httpHeaders"]}["Host"]
    assert host in tomllib.loads(dev.values["server_toml"])["allowed-hosts"]
    assert readiness["port"] == "http" and readiness["path"] == "/"
    assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}


def test_pods_run_non_root_with_a_read_only_root(dev: AtticRun) -> None:
    for manifest in dev.all("Deployment") + dev.all("Job") + dev.all("CronJob"):
        spec = manifest["spec"]
        pod = (spec.get("jobTemplate", {}).get("spec") or spec)["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]["memory"]


def test_service_gives_the_published_internal_url(dev: AtticRun) -> None:
    service = dev.one("Service")
    assert service["metadata"]["name"] == "attic"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == dev.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert dev.server.internal_url == "http://attic.flywheel.svc.cluster.local:8080/"
    assert dev.server.external_url == "https://attic.example.com/"
    assert dev.server.url == dev.server.external_url


def test_pdb_only_with_more_than_one_replica(dev: AtticRun) -> None:
    assert dev.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert run_attic({"replicas": 1}, with_gc=False).all("PodDisruptionBudget") == []


def test_ingress_raises_the_body_limit_and_keeps_site_annotations(dev: AtticRun) -> None:
    ingress = dev.one("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "4g"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["attic.example.com"], "secretName": "attic-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "attic", "port": {"number": 8080}}


def test_without_a_host_there_is_no_ingress_and_clients_get_the_internal_url() -> None:
    run = run_attic({"host": None, "ingress": {}}, with_gc=False)
    assert run.all("Ingress") == []
    assert run.server.external_url is None
    assert run.server.url == run.server.internal_url == "http://attic.flywheel.svc.cluster.local:8080/"
    assert tomllib.loads(run.values["server_toml"])["api-endpoint"] == run.server.internal_url
    assert schema_errors(run.manifests) == []


# --- keys, tokens, bootstrap ----------------------------------------------------------------------


def test_public_key_is_plain_and_matches_the_secret_key(dev: AtticRun) -> None:
    assert not dev.secret["public_key"]
    assert dev.secret["ci_token"] and dev.secret["nix_secret_key"]
    name, public = split_key(dev.values["public_key"], PUBLIC_KEY_BYTES)
    secret_name, secret = split_key(dev.values["nix_secret_key"], SECRET_KEY_BYTES)
    assert name == secret_name == "attic.example.com-main-1"
    assert secret[32:] == public
    assert dev.resource("attic-nix-signing-key", "PrivateKey")["inputs"]["algorithm"] == "ED25519"


def test_tokens_grant_push_to_ci_and_bootstrap_rights_to_the_init_job(dev: AtticRun) -> None:
    ci = dev.resource("attic-ci-push-token")["inputs"]
    init = dev.resource("attic-cache-init-token")["inputs"]
    assert ci["claims"]["caches"] == {"main": {"r": 1, "w": 1}}
    assert init["claims"]["caches"] == {"main": {"r": 1, "cc": 1, "cr": 1, "cq": 1}}
    assert ci["validity_seconds"] == 90 * 86400 and ci["rotation_window_seconds"] == 14 * 86400
    assert ci["signing_key"] == REDACTED
    assert dev.values["ci_token"].count(".") == 2


def test_cache_bootstrap_requests_use_the_keypair_upstream_keys_and_retention(dev: AtticRun) -> None:
    data = dev.secret_data["attic-cache-init"]
    create = json.loads(data["create-cache.json"])
    configure = json.loads(data["configure-cache.json"])
    assert create == {
        "keypair": {"Keypair": dev.values["nix_secret_key"]},
        "is_public": False,
        "store_dir": "/nix/store",
        "priority": 41,
        "upstream_cache_key_names": ["cache.nixos.org-1"],
    }
    assert configure == create | {"retention_period": {"Period": 30 * 86400}}
    assert data["token"].count(".") == 2


def test_cache_requests_follow_config() -> None:
    config = AtticConfig.model_validate({"public": True, "priority": 30, "gc": {"retention": "1 week"}})
    assert create_cache_request(config, "k:x")["is_public"] is True
    assert configure_cache_request(config, "k:x")["retention_period"] == {"Period": 7 * 86400}
    assert configure_cache_request(config, "k:x")["priority"] == 30


def test_cache_init_job_runs_the_script_after_the_api_is_up(dev: AtticRun) -> None:
    job = dev.one("Job", "cache-init")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ATTIC_ENDPOINT"] == dev.server.internal_url
    assert env["ATTIC_CACHE"] == "main"
    assert env["EXPECTED_PUBLIC_KEY"] == dev.values["public_key"]
    assert container["command"] == ["bash", "/opt/flywheel/attic-cache-init.sh"]
    secret_volume = next(v for v in pod["volumes"] if "secret" in v)
    assert secret_volume["secret"]["secretName"] == "attic-cache-init"
    script = next(m for m in dev.all("ConfigMap") if m["metadata"]["name"] == "attic-cache-init-script")
    assert "cache-config" in script["data"]["attic-cache-init.sh"]
    depends = dev.resource("attic-cache-init", "Job")["options"]["dependsOn"]
    assert dev.resource("attic", "Deployment")["urn"] in depends
    assert dev.resource("attic", "Service")["urn"] in depends
    # a new retention re-runs the bootstrap (new Job name); an unrelated change does not
    retention = run_attic({"gc": {"retention": "60 days"}}, with_gc=False).one("Job", "cache-init")
    replicas = run_attic({"replicas": 3}, with_gc=False).one("Job", "cache-init")
    assert retention["metadata"]["name"] != job["metadata"]["name"]
    assert replicas["metadata"]["name"] == job["metadata"]["name"]


def test_register_outputs_expose_the_contract_values(dev: AtticRun) -> None:
    assert dev.server.cache_name == "main"
    assert isinstance(dev.server.public_key, pulumi.Output)
    assert dev.server.rendered_files.keys() == {"attic/server.toml"}


def test_retention_beyond_attics_u32_seconds_is_refused_with_the_key_path() -> None:
    from components.config import ConfigError, load_platform_config

    gitlab = {"url": "https://gitlab.example.com", "groupPath": "g", "groupId": 1, "templateProject": "g/t"}
    with pytest.raises(ConfigError) as error:
        load_platform_config({"gitlab": gitlab, "attic": {"gc": {"retention": "200 years"}}})
    (line,) = error.value.problems
    assert line.startswith("flywheel:attic.gc.retention: retention is longer than Attic can store")
    assert "'200 years'" in line


@pytest.mark.parametrize(("family", "listen"), [("dual-stack", "[::]:8080"), ("ipv4", "0.0.0.0:8080")])
def test_atticd_listens_per_the_configured_address_family(family: str, listen: str) -> None:
    config = AtticConfig.model_validate({"listenFamily": family})
    document = server_config(config, AtticEndpoints("attic", "ns"), s3_endpoint=None, s3_region="r", s3_bucket="b")
    assert tomllib.loads(render_server_toml(document))["listen"] == listen
