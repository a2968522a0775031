"""ObjectStorage (components/storage.py): rendered resources for both backends, the SeaweedFS identities
and bucket Job against a real SeaweedFS, and the config errors users see."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from components.config import StorageConfig
from components.s3_bucket import BAZEL_EXPIRY_RULE_ID, bucket_settings
from components.storage import (
    ADMIN,
    ATTIC,
    BAZEL,
    BUCKET_JOB_SCRIPT,
    SEAWEEDFS_CONFIG_DIR,
    seaweedfs_filer_conf,
    seaweedfs_scopes,
)
from tests.conftest import (
    decoded_data,
    dev_stack,
    dev_value,
    require_binary,
    require_tool,
    run_unredacted,
    stack_with,
    unwrap_secrets,
)
from tests.k8s_schema import schema_errors
from tests.test_config import problems_for, with_change
from tools.mocks import mock_outputs
from tools.render import REDACTED, RenderResult, kubernetes_objects, run_under_mocks

if TYPE_CHECKING:  # imported by pytest_plugins below (so its asserts are rewritten)
    from tests.s3_servers import S3Server

pytest_plugins = ["tests.s3_servers"]  # the seaweedfs fixture

S3_KEY_ID = "AKIASTORAGETEST00001"
S3_SECRET = "storage-test-secret-key-do-not-leak-0123"
BAZEL_KEY_ID = "AKIABAZELTEST0000001"
BAZEL_SECRET = "bazel-test-secret-key-do-not-leak-01234"
S3_STORAGE = {
    "backend": "s3",
    "bucket": "acme-attic-cache",
    "region": "eu-central-1",
    "endpoint": "https://objects.example.com",
    "credentials": {"accessKeyId": S3_KEY_ID, "secretAccessKey": S3_SECRET},
}
BUCKET_TYPE = "pulumi-python:dynamic/flywheel:S3Bucket"


BUCKET = "flywheel-attic"  # the dev stack's


def objects_of(result: RenderResult, kind: str) -> list[dict[str, Any]]:
    return [m for m in kubernetes_objects(result.resources) if m["kind"] == kind]


def by_name(result: RenderResult, kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in objects_of(result, kind)}


def storage_manifests(result: RenderResult) -> list[dict[str, Any]]:
    """This component's manifests, as rendered (other components validate their own)."""
    return [
        manifest
        for manifest in kubernetes_objects(result.resources)
        if manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "object-storage"
    ]


def everything_rendered(result: RenderResult) -> str:
    return json.dumps(result.resources) + json.dumps(result.outputs) + "".join(map(str, result.files.values()))


def generated_secrets(result: RenderResult) -> list[str]:
    """Every credential the mocks generate for the storage (what `random` would produce for real)."""
    values = []
    for resource in result.resources:
        if resource["type"].startswith("random:") and resource["name"].startswith("storage-"):
            outs = unwrap_secrets(mock_outputs(resource["type"], resource["name"], resource["inputs"]))
            values.append(outs["result"])
    return values


# --- seaweedfs backend (the dev stack) -------------------------------------------------------------


def test_seaweedfs_manifests_validate_against_kubernetes_1_31(dev_render: RenderResult) -> None:
    kinds = sorted(m["kind"] for m in kubernetes_objects(dev_render.resources) if "seaweedfs" in str(m["metadata"]))
    # the NetworkPolicy guarding SeaweedFS's pods is components/network_policies.py's
    assert kinds == ["Job", "NetworkPolicy", "Secret", "Service", "Service", "StatefulSet"]
    manifests = storage_manifests(dev_render)
    assert len(manifests) == 8  # StatefulSet, 2 Services, Job, identities + 3 credential Secrets
    assert schema_errors(manifests) == []
    secrets = by_name(dev_render, "Secret")
    assert secrets["seaweedfs-s3-identities"]["data"] == {"s3.json": REDACTED}
    assert secrets["attic-s3-credentials"]["data"] == dict.fromkeys(
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], REDACTED
    )


def test_seaweedfs_statefulset_serves_s3_from_a_pvc_of_the_configured_size(dev_render: RenderResult) -> None:
    statefulset = by_name(dev_render, "StatefulSet")["seaweedfs"]
    spec = statefulset["spec"]
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == dev_value("storage")["size"] == "100Gi"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "chrislusf/seaweedfs:4.48"
    assert f"-s3.config={SEAWEEDFS_CONFIG_DIR}/s3.json" in container["args"]
    assert "-s3.allowDeleteBucketNotEmpty=false" in container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"data": "/data", "identities": SEAWEEDFS_CONFIG_DIR}
    volume = spec["template"]["spec"]["volumes"][0]
    assert volume["secret"]["secretName"] == "seaweedfs-s3-identities"
    assert statefulset["metadata"]["namespace"] == "flywheel"
    services = by_name(dev_render, "Service")
    assert services["seaweedfs-s3"]["spec"]["ports"][0]["port"] == 8333
    assert services["seaweedfs"]["spec"]["clusterIP"] == "None"


def test_the_same_weed_flags_start_a_real_seaweedfs() -> None:
    """The container's flags (minus pod-specific ones) are accepted by the pinned version's binary."""
    from components.storage import seaweedfs_server_args

    weed = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "weed"
    require_binary(weed)  # skips locally, fails under CI=true
    version = subprocess.run([str(weed), "version"], capture_output=True, text=True, check=True).stdout
    assert " 4.48 " in version  # the image pin and the tested binary are the same release
    help_text = subprocess.run([str(weed), "server", "-h"], capture_output=True, text=True, check=False)
    flags = {arg.split("=")[0] for arg in seaweedfs_server_args("/x") if arg.startswith("-")}
    listed = help_text.stdout + help_text.stderr
    assert sorted(flag for flag in flags if f"  {flag} " not in listed and f"  {flag}\n" not in listed) == []


def test_bucket_job_runs_the_repo_script_with_the_admin_identity(dev_render: RenderResult) -> None:
    job = by_name(dev_render, "Job")["seaweedfs-create-bucket"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["/bin/sh", "-c", BUCKET_JOB_SCRIPT.read_text()]
    env = {e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["S3_ENDPOINT"] == "http://seaweedfs-s3.flywheel.svc.cluster.local:8333"
    assert env["BUCKET"] == "flywheel-attic"
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "admin-s3-credentials", "key": "AWS_ACCESS_KEY_ID"}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"name": "admin-s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    job_urn = next(r for r in dev_render.resources if r["name"] == "storage-create-bucket")
    assert any(urn.endswith("StatefulSet::storage-seaweedfs") for urn in job_urn["options"]["dependsOn"])


def test_seaweedfs_identities_secret_holds_three_scoped_identities_matching_the_consumer_secrets() -> None:
    inputs, outputs = run_unredacted(dev_stack())
    document = json.loads(decoded_data(inputs["storage-seaweedfs-identities"])["s3.json"])
    identities = {i["name"]: i for i in document["identities"]}
    assert identities.keys() == {ADMIN, ATTIC, BAZEL}
    assert {n: i["actions"] for n, i in identities.items()} == seaweedfs_scopes("flywheel-attic", "bazel/")
    for consumer in (ADMIN, ATTIC, BAZEL):
        secret = decoded_data(inputs[f"storage-{consumer}-credentials"])
        credential = identities[consumer]["credentials"][0]
        assert secret == {
            "AWS_ACCESS_KEY_ID": credential["accessKey"],
            "AWS_SECRET_ACCESS_KEY": credential["secretKey"],
        }
    keys = [i["credentials"][0]["accessKey"] for i in identities.values()]
    assert len(set(keys)) == 3
    assert outputs["storage_endpoint"] == "http://seaweedfs-s3.flywheel.svc.cluster.local:8333"
    assert outputs["storage_bucket"] == "flywheel-attic"
    assert outputs["storage_region"] == "us-east-1"


def test_no_generated_credential_appears_in_any_rendered_resource_or_file(dev_render: RenderResult) -> None:
    secrets = generated_secrets(dev_render)
    assert len(secrets) == 6  # an access key id and a secret key for admin, attic and bazel-remote
    rendered = everything_rendered(dev_render)
    assert [s for s in secrets if s in rendered] == []  # ConfigMaps included: every resource's inputs are searched


def test_seaweedfs_publishes_the_scopes_without_keys(dev_render: RenderResult) -> None:
    scopes = json.loads(str(dev_render.files["storage/seaweedfs-s3-scopes.json"]))
    assert scopes["identities"] == seaweedfs_scopes("flywheel-attic", "bazel/")
    assert "accessKey" not in json.dumps(scopes)


def test_consumers_get_their_own_credential_secrets() -> None:
    inputs, _ = run_unredacted(dev_stack())
    attic = inputs["storage-attic-credentials"]
    bazel = inputs["storage-bazel-remote-credentials"]
    assert attic["metadata"]["name"] == "attic-s3-credentials"
    assert bazel["metadata"]["name"] == "bazel-remote-s3-credentials"
    assert decoded_data(attic) != decoded_data(bazel)


@pytest.mark.parametrize("backend", ["seaweedfs", "s3"])
def test_each_consumer_target_carries_its_own_identity_and_only_bazel_gets_the_prefix(backend: str) -> None:
    import pulumi

    from components.storage import ObjectStorage

    config = StorageConfig.model_validate(dev_value("storage") if backend == "seaweedfs" else S3_STORAGE)
    seen: dict[str, Any] = {}

    async def main() -> None:
        storage = ObjectStorage("storage", config, "flywheel")
        for consumer, target in {"attic": storage.attic_target, "bazel": storage.bazel_target}.items():
            endpoint = await pulumi.Output.from_input(target.endpoint).future()
            seen[consumer] = (endpoint, target.region, target.bucket, target.access.secret_name, target.prefix)

    run_under_mocks(main)
    endpoint = (
        "http://seaweedfs-s3.flywheel.svc.cluster.local:8333" if backend == "seaweedfs" else S3_STORAGE["endpoint"]
    )
    assert seen == {
        "attic": (endpoint, config.region, config.bucket, "attic-s3-credentials", ""),
        "bazel": (endpoint, config.region, config.bucket, "bazel-remote-s3-credentials", "bazel/"),
    }


# --- s3 backend ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_render() -> RenderResult:
    from tests.conftest import render_stack

    return render_stack(stack_with({"storage": S3_STORAGE}))


def test_s3_bucket_is_a_protected_retained_dynamic_resource(s3_render: RenderResult) -> None:
    (bucket,) = [r for r in s3_render.resources if r["type"] == BUCKET_TYPE]
    assert bucket["options"]["protect"] is True
    assert bucket["options"]["retainOnDelete"] is True
    inputs = bucket["inputs"]
    assert inputs["bucket"] == "acme-attic-cache"
    assert inputs["endpoint"] == "https://objects.example.com"
    assert inputs["region"] == "eu-central-1"
    assert inputs["retainOnDelete"] is True
    assert inputs["accessKeyId"] == REDACTED and inputs["secretAccessKey"] == REDACTED
    assert not [r for r in s3_render.resources if "seaweedfs" in r["name"]]


def test_s3_bucket_protection_follows_storage_protect(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    result = render({"storage": {**S3_STORAGE, "protect": False}})
    (bucket,) = [r for r in result.resources if r["type"] == BUCKET_TYPE]
    assert bucket["options"] == {**bucket["options"], "protect": False, "retainOnDelete": False}
    assert bucket["inputs"]["retainOnDelete"] is False


def test_s3_manifests_validate_and_leak_no_credential(s3_render: RenderResult) -> None:
    assert schema_errors(storage_manifests(s3_render)) == []
    rendered = everything_rendered(s3_render)
    assert S3_SECRET not in rendered and S3_KEY_ID not in rendered
    secrets = sorted(name for name in by_name(s3_render, "Secret") if name.endswith("-s3-credentials"))
    assert secrets == ["attic-s3-credentials", "bazel-remote-s3-credentials"]
    summary = json.loads(str(s3_render.files["storage/s3-bucket.json"]))
    assert summary["settings"]["lifecycle"]["Rules"][0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # the dev stack tiers bazel-remote onto the bucket: only its prefix expires, never Attic's objects
    expiring = [rule for rule in summary["settings"]["lifecycle"]["Rules"] if "Expiration" in rule]
    assert expiring == [
        {"ID": BAZEL_EXPIRY_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": "bazel/"}, "Expiration": {"Days": 30}}
    ]
    assert summary["bazelIdentity"] == "shared with attic"


def bucket_job_env(result: RenderResult) -> dict[str, str]:
    (job,) = [m for m in storage_manifests(result) if m["kind"] == "Job"]
    return {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(
    ("bazel", "expected_rules", "filer_locations"),
    [
        (
            {"s3Tier": True, "s3RetentionDays": 7},
            2,
            [{"locationPrefix": "/buckets/flywheel-attic/bazel/", "ttl": "7d"}],
        ),
        ({"s3Tier": False, "s3RetentionDays": 7}, 1, []),
    ],
)
def test_the_bazel_prefix_expires_only_when_bazel_remote_tiers_onto_the_store(
    render: Callable[[dict[str, Any]], RenderResult],
    bazel: dict[str, Any],
    expected_rules: int,
    filer_locations: list[dict[str, str]],
) -> None:
    s3 = render({"storage": S3_STORAGE, "bazelCache": {**dev_value("bazelCache"), **bazel}})
    (bucket,) = [r for r in s3.resources if r["type"] == BUCKET_TYPE]
    rendered_rules = json.loads(str(s3.files["storage/s3-bucket.json"]))["settings"]["lifecycle"]["Rules"]
    assert len(rendered_rules) == expected_rules
    # what the provider applies is derived from the registered inputs: the same rules
    expiry = (
        (bucket["inputs"]["bazelPrefix"], bucket["inputs"]["bazelExpiryDays"])
        if "bazelPrefix" in bucket["inputs"]
        else None
    )
    assert bucket_settings({}, 7, expiry)["lifecycle"]["Rules"] == rendered_rules
    if expected_rules == 2:
        assert bucket["inputs"]["bazelExpiryDays"] == 7 and bucket["inputs"]["bazelPrefix"] == "bazel/"
    seaweedfs = render({"bazelCache": {**dev_value("bazelCache"), **bazel}})
    env = bucket_job_env(seaweedfs)
    assert json.loads(env["FILER_CONF"]) == {"version": 1, "locations": filer_locations}
    assert env["FILER_URL"] == "http://seaweedfs.flywheel.svc.cluster.local:8888"


def test_s3_consumers_share_the_identity_unless_bazel_credentials_are_set() -> None:
    shared, outputs = run_unredacted(stack_with({"storage": S3_STORAGE}))
    expected = {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    assert decoded_data(shared["storage-attic-credentials"]) == expected
    assert decoded_data(shared["storage-bazel-remote-credentials"]) == expected
    assert outputs["storage_endpoint"] == "https://objects.example.com"

    own = {"accessKeyId": BAZEL_KEY_ID, "secretAccessKey": BAZEL_SECRET}
    separate, _ = run_unredacted(stack_with({"storage": {**S3_STORAGE, "bazelCredentials": own}}))
    assert decoded_data(separate["storage-attic-credentials"]) == expected
    assert decoded_data(separate["storage-bazel-remote-credentials"]) == {
        "AWS_ACCESS_KEY_ID": BAZEL_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": BAZEL_SECRET,
    }


def test_s3_without_endpoint_uses_the_aws_regional_endpoint() -> None:
    storage = {k: v for k, v in S3_STORAGE.items() if k != "endpoint"}
    inputs, outputs = run_unredacted(stack_with({"storage": storage}))
    assert outputs["storage_endpoint"] == "https://s3.eu-central-1.amazonaws.com"
    assert inputs["storage-bucket"]["endpoint"] == "https://s3.eu-central-1.amazonaws.com"


# --- against a real SeaweedFS ----------------------------------------------------------------------------


@pytest.mark.slow
def test_rendered_identities_are_scoped_on_a_real_seaweedfs(seaweedfs: S3Server) -> None:
    """The fixture loads seaweedfs_identities(seaweedfs_scopes(...)): Attic owns the bucket, bazel only bazel/."""
    bucket = seaweedfs.bucket
    seaweedfs.client(ADMIN).create_bucket(Bucket=bucket)
    attic, bazel = seaweedfs.client(ATTIC), seaweedfs.client(BAZEL)

    attic.put_object(Bucket=bucket, Key="0b1c.chunk", Body=b"chunk")
    attic.list_objects_v2(Bucket=bucket)
    bazel.put_object(Bucket=bucket, Key="bazel/cas/ab12", Body=b"blob")
    assert bazel.get_object(Bucket=bucket, Key="bazel/cas/ab12")["Body"].read() == b"blob"
    bazel.list_objects_v2(Bucket=bucket, Prefix="bazel/")

    refused = {
        "attic creates another bucket": lambda: attic.create_bucket(Bucket="flywheel-other"),
        "bazel writes outside bazel/": lambda: bazel.put_object(Bucket=bucket, Key="x.chunk", Body=b"x"),
        "bazel reads Attic's chunks": lambda: bazel.get_object(Bucket=bucket, Key="0b1c.chunk"),
        "bazel deletes Attic's chunks": lambda: bazel.delete_object(Bucket=bucket, Key="0b1c.chunk"),
        "bazel lists the whole bucket": lambda: bazel.list_objects_v2(Bucket=bucket),
        "bazel writes to a look-alike prefix": lambda: bazel.put_object(Bucket=bucket, Key="bazelx/y", Body=b"y"),
    }
    outcomes = {}
    for label, call in refused.items():
        try:
            call()
            outcomes[label] = "allowed"
        except ClientError as err:
            outcomes[label] = err.response["Error"]["Code"]
    assert outcomes == dict.fromkeys(refused, "AccessDenied")


def run_bucket_script(
    server: S3Server, bucket: str, secret: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    key_id, key_secret = server.keys[ADMIN]
    return subprocess.run(
        [require_tool("sh"), str(BUCKET_JOB_SCRIPT)],
        env={
            "PATH": "/usr/bin:/bin",
            "S3_ENDPOINT": server.endpoint,
            "BUCKET": bucket,
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret or key_secret,
            "FILER_URL": server.filer or "http://127.0.0.1:9",
            "FILER_CONF": seaweedfs_filer_conf(bucket, None),
            "RETRY_SECONDS": "0.2",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_bucket_job_script_creates_the_bucket_and_is_safe_to_run_again(seaweedfs: S3Server) -> None:
    require_tool("curl")
    bucket = "flywheel-job-bucket"
    first = run_bucket_script(seaweedfs, bucket)
    assert first.returncode == 0, first.stderr
    assert f"bucket '{bucket}' created" in first.stdout
    seaweedfs.client().head_bucket(Bucket=bucket)
    seaweedfs.client().put_object(Bucket=bucket, Key="keep.chunk", Body=b"kept")

    again = run_bucket_script(seaweedfs, bucket)
    assert again.returncode == 0, again.stderr
    assert f"bucket '{bucket}' exists" in again.stdout
    assert seaweedfs.client().get_object(Bucket=bucket, Key="keep.chunk")["Body"].read() == b"kept"
    admin_secret = seaweedfs.keys[ADMIN][1]
    assert admin_secret not in first.stdout + first.stderr + again.stdout + again.stderr


def filer_ttl_seconds(server: S3Server, bucket: str, key: str) -> int:
    """The TTL SeaweedFS's filer stamped on an object (its entry metadata, over the filer's HTTP API)."""
    import urllib.request

    assert server.filer is not None
    with urllib.request.urlopen(f"{server.filer}/buckets/{bucket}/{key}?metadata=true", timeout=5) as answer:
        return int(json.loads(answer.read())["TtlSec"])


@pytest.mark.slow
def test_bucket_job_script_sets_the_bazel_prefix_ttl_on_the_real_seaweedfs(seaweedfs: S3Server) -> None:
    """bazel-remote never deletes from its S3 tier: the filer.conf the Job writes makes SeaweedFS stamp a TTL on
    what lands under bazel/ (and on nothing else); written again without the retention, the rule is gone."""
    require_tool("curl")
    bucket = seaweedfs.bucket  # the bucket the scoped identities may use
    configured = run_bucket_script(seaweedfs, bucket, FILER_CONF=seaweedfs_filer_conf(bucket, 7))
    assert configured.returncode == 0, configured.stderr
    assert "filer.conf written" in configured.stdout
    seaweedfs.client(BAZEL).put_object(Bucket=bucket, Key="bazel/cas/ttl-probe", Body=b"action output")
    seaweedfs.client(ATTIC).put_object(Bucket=bucket, Key="nar/ttl-probe.nar", Body=b"a nar")
    assert filer_ttl_seconds(seaweedfs, bucket, "bazel/cas/ttl-probe") == 7 * 86400
    assert filer_ttl_seconds(seaweedfs, bucket, "nar/ttl-probe.nar") == 0  # Attic's GC owns its objects

    cleared = run_bucket_script(seaweedfs, bucket)  # retention off: filer.conf without a path rule
    assert cleared.returncode == 0, cleared.stderr
    seaweedfs.client(BAZEL).put_object(Bucket=bucket, Key="bazel/cas/ttl-probe-2", Body=b"action output")
    assert filer_ttl_seconds(seaweedfs, bucket, "bazel/cas/ttl-probe-2") == 0


@pytest.mark.slow
def test_an_object_under_a_ttl_prefix_is_gone_once_the_ttl_has_passed(seaweedfs: S3Server) -> None:
    """The bound itself, on the real SeaweedFS: with the shortest TTL it takes (1m), the object under the prefix
    is no longer served after the minute; Attic's object written beside it stays."""
    require_tool("curl")
    bucket = seaweedfs.bucket
    prefix = "bazel/expiry-probe/"
    conf = json.dumps({"version": 1, "locations": [{"locationPrefix": f"/buckets/{bucket}/{prefix}", "ttl": "1m"}]})
    try:
        assert run_bucket_script(seaweedfs, bucket, FILER_CONF=conf).returncode == 0
        seaweedfs.client(BAZEL).put_object(Bucket=bucket, Key=f"{prefix}blob", Body=b"expires")
        seaweedfs.client(ATTIC).put_object(Bucket=bucket, Key="nar/kept-beside.nar", Body=b"kept")
        written = time.monotonic()
        gone = None
        while time.monotonic() - written < 120:
            try:
                seaweedfs.client(BAZEL).get_object(Bucket=bucket, Key=f"{prefix}blob")
            except ClientError as err:
                assert err.response["Error"]["Code"] == "NoSuchKey"
                gone = time.monotonic() - written
                break
            time.sleep(2)
        assert gone is not None and gone >= 55, gone  # not before its TTL, and within a minute after it
        assert seaweedfs.client(ATTIC).get_object(Bucket=bucket, Key="nar/kept-beside.nar")["Body"].read() == b"kept"
    finally:
        run_bucket_script(seaweedfs, bucket)  # no path rule again


@pytest.mark.slow
def test_the_bucket_script_waits_for_an_unreachable_filer_then_exits_2(seaweedfs: S3Server) -> None:
    require_tool("curl")
    from tests.s3_servers import free_ports

    nobody = f"http://127.0.0.1:{free_ports(1)[0]}"
    result = run_bucket_script(seaweedfs, seaweedfs.bucket, FILER_URL=nobody, ATTEMPTS="2")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{nobody} did not answer writing filer.conf after 2 attempts" in result.stderr


@pytest.mark.slow
def test_a_presigned_nar_url_works_without_credentials_and_nothing_else_does(seaweedfs: S3Server) -> None:
    """What a job pod gets from atticd for a single-chunk NAR: a 307 to a URL presigned with Attic's identity for
    600 s (attic server/src/storage/s3.rs get_download). On the real SeaweedFS the URL alone fetches the object;
    the same request unsigned, or for another key, is refused: the S3 port the jobs reach serves nothing else."""
    import urllib.error
    import urllib.request

    import boto3
    from botocore.config import Config

    bucket = seaweedfs.bucket
    attic = seaweedfs.client(ATTIC)
    key_id, key_secret = seaweedfs.keys[ATTIC]
    # SigV4 query signing, as atticd's aws-sdk-s3 `presigned()` does (X-Amz-Algorithm=AWS4-HMAC-SHA256)
    signer = boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=key_secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    if not _bucket_exists(seaweedfs, bucket):
        seaweedfs.client().create_bucket(Bucket=bucket)
    attic.put_object(Bucket=bucket, Key="nar/presign-probe.nar", Body=b"a single-chunk nar")
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "nar/presign-probe.nar"}, ExpiresIn=600
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.read() == b"a single-chunk nar"

    def status(target: str) -> int:
        try:
            with urllib.request.urlopen(target, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as err:
            return err.code

    assert status(url.split("?", 1)[0]) == 403  # anonymous
    assert status(url.replace("presign-probe.nar", "other.nar")) == 403  # the signature covers the key


def _bucket_exists(server: S3Server, bucket: str) -> bool:
    try:
        server.client().head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True


@pytest.mark.slow
def test_bucket_job_script_fails_clearly_on_wrong_credentials_and_unreachable_store(seaweedfs: S3Server) -> None:
    require_tool("curl")
    from tests.s3_servers import free_ports

    wrong = run_bucket_script(seaweedfs, "flywheel-denied", secret="wrong-secret-0123456789")
    assert wrong.returncode == 1
    assert "refused the credentials for bucket 'flywheel-denied' (HTTP 403)" in wrong.stderr
    assert "wrong-secret" not in wrong.stdout + wrong.stderr

    refused = run_bucket_script(seaweedfs, "flywheel-attic", secret="wrong-but-irrelevant", ATTEMPTS="1")
    assert refused.returncode == 1  # a refusal is final, never retried

    endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"
    started = time.monotonic()
    down = run_bucket_script(seaweedfs, "flywheel-attic", S3_ENDPOINT=endpoint, ATTEMPTS="3", RETRY_SECONDS="0.1")
    assert down.returncode == 2
    assert f"{endpoint} did not answer for bucket 'flywheel-attic' after 3 attempts" in down.stderr
    assert down.stdout.count("waiting for") == 2
    assert time.monotonic() - started < 15


def test_bucket_job_script_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, "-s", "sh", str(BUCKET_JOB_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        (
            {"bucket": "Attic_Cache", "size": "10Gi"},
            "flywheel:storage.bucket: not a valid S3 bucket name: has characters or ends that S3 does not allow "
            "(got 'Attic_Cache'; expected 3-63 characters of lowercase letters, digits, '.' and '-', starting and "
            "ending with a letter or digit, not an IP address, no '..', no 'xn--'/'sthree-' prefix or "
            "'-s3alias'/'--ol-s3' suffix)",
        ),
        (
            {**S3_STORAGE, "endpoint": "s3.example.com"},
            "flywheel:storage.endpoint: not an http(s) URL with a scheme (got 's3.example.com'; expected a URL such "
            "as 'https://s3.example.com' or 'http://10.0.0.5:9000')",
        ),
        (
            {"backend": "s3", "bucket": "acme-attic"},
            "flywheel:storage.credentials: backend 's3' needs 'credentials' (got null; expected {accessKeyId, "
            "secretAccessKey} set with `pulumi config set --secret`)",
        ),
        (
            {"backend": "seaweedfs"},
            "flywheel:storage.size: backend 'seaweedfs' needs 'size' (its volume size) (got null; expected a "
            "quantity like '100Gi')",
        ),
        (
            {**S3_STORAGE, "size": "10Gi"},
            "flywheel:storage.size: 'size' belongs to backend 'seaweedfs' (got '10Gi'; expected no size with "
            "backend 's3')",
        ),
        (
            {"size": "10Gi", "bazelCredentials": {"accessKeyId": "a", "secretAccessKey": "b"}},
            "flywheel:storage.bazelCredentials: 'endpoint', 'credentials' and 'bazelCredentials' belong to backend "
            "'s3' (got an object with keys accessKeyId, secretAccessKey; expected none of them with backend "
            "'seaweedfs' (the program generates its identities))",
        ),
    ],
    ids=[
        "bucket-name",
        "endpoint-without-scheme",
        "s3-without-credentials",
        "seaweedfs-without-size",
        "size-with-s3",
        "bazel-credentials-with-seaweedfs",
    ],
)
def test_bad_storage_config_is_refused_with_the_key_path(storage: dict[str, Any], expected: str) -> None:
    assert problems_for(with_change("storage", storage)) == [expected]


def test_credential_errors_never_echo_the_secret() -> None:
    credentials = {"accessKeyId": S3_KEY_ID, "secretAccessKey": 5}
    problems = problems_for(with_change("storage", {**S3_STORAGE, "credentials": credentials}))
    assert problems and all(S3_KEY_ID not in p for p in problems)
