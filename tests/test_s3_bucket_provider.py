"""The boto3 dynamic provider (components/s3_bucket.py), called directly against real S3 servers.

Under Pulumi mocks the provider is never called, so these tests drive it against a real SeaweedFS
on loopback (which lacks PublicAccessBlock) and against moto_server, an emulator of the full API.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from components.s3_bucket import BAZEL_EXPIRY_RULE_ID, LIFECYCLE_RULE_ID, S3BucketError, S3BucketProvider
from tests.conftest import ROOT

if TYPE_CHECKING:  # imported by pytest_plugins below (so its asserts are rewritten)
    from tests.s3_servers import S3Server

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.s3_servers"]  # the seaweedfs and moto_emulator fixtures
ERROR_BUDGET_SECONDS = 15


@pytest.fixture(autouse=True)
def _restore_tracebacklimit() -> Iterator[None]:
    # the provider sets sys.tracebacklimit = 0 before a user-facing error (see s3_bucket._clean)
    before = getattr(sys, "tracebacklimit", None)
    yield
    if before is None:
        if hasattr(sys, "tracebacklimit"):
            del sys.tracebacklimit
    else:
        sys.tracebacklimit = before


class Warnings(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


def unique_bucket(label: str) -> str:
    return f"flywheel-{label}-{uuid.uuid4().hex[:10]}"


def lifecycle_rules(server: S3Server, bucket: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = server.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return rules


def tags_of(server: S3Server, bucket: str) -> dict[str, str]:
    tag_set = server.client().get_bucket_tagging(Bucket=bucket)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tag_set}


# --- real SeaweedFS -------------------------------------------------------------------------------


def test_create_makes_the_bucket_with_tags_and_only_an_abort_uploads_rule(seaweedfs: S3Server) -> None:
    warnings = Warnings()
    bucket = unique_bucket("new")
    result = S3BucketProvider(warnings).create(seaweedfs.props(bucket, tags={"part-of": "flywheel", "env": "test"}))

    assert result.id == bucket
    assert result.outs is not None
    assert result.outs["adopted"] is False
    seaweedfs.client().head_bucket(Bucket=bucket)
    assert tags_of(seaweedfs, bucket) == {"part-of": "flywheel", "env": "test"}
    rules = lifecycle_rules(seaweedfs, bucket)
    assert [rule["ID"] for rule in rules] == [LIFECYCLE_RULE_ID]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert not any("Expiration" in rule or "NoncurrentVersionExpiration" in rule for rule in rules)


def test_public_access_block_missing_on_seaweedfs_is_a_warning_not_a_crash(seaweedfs: S3Server) -> None:
    warnings = Warnings()
    bucket = unique_bucket("pab")
    result = S3BucketProvider(warnings).create(seaweedfs.props(bucket))

    assert result.outs is not None
    assert result.outs["unsupported"] == ["PublicAccessBlock"]
    assert len(warnings) == 1
    assert "does not implement the PublicAccessBlock API" in warnings[0]
    assert seaweedfs.endpoint in warnings[0] and bucket in warnings[0]
    with pytest.raises(ClientError):  # really absent on this store, not silently faked
        seaweedfs.client().get_public_access_block(Bucket=bucket)


def test_create_adopts_a_bucket_the_credentials_already_own_and_keeps_its_objects(seaweedfs: S3Server) -> None:
    bucket = unique_bucket("adopt")
    admin = seaweedfs.client()
    admin.create_bucket(Bucket=bucket)
    admin.put_object(Bucket=bucket, Key="existing.chunk", Body=b"cached data")
    admin.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [{"ID": "expire-90d", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 90}}]
        },
    )
    warnings = Warnings()

    result = S3BucketProvider(warnings).create(seaweedfs.props(bucket))

    assert result.outs is not None and result.outs["adopted"] is True
    assert admin.get_object(Bucket=bucket, Key="existing.chunk")["Body"].read() == b"cached data"
    # the expiry rule would delete objects Attic's database references: replaced, and said so
    assert [rule["ID"] for rule in lifecycle_rules(seaweedfs, bucket)] == [LIFECYCLE_RULE_ID]
    assert any("expire-90d" in warning for warning in warnings)


def test_read_returns_live_tags_and_reports_a_vanished_bucket(seaweedfs: S3Server) -> None:
    provider = S3BucketProvider(Warnings())
    bucket = unique_bucket("read")
    props = seaweedfs.props(bucket)
    provider.create(props)
    seaweedfs.client().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "drift", "Value": "yes"}]})

    read = provider.read(bucket, props)
    assert read.id == bucket
    assert read.outs is not None and read.outs["tags"] == {"drift": "yes"}

    seaweedfs.client().delete_bucket(Bucket=bucket)
    gone = provider.read(bucket, props)
    assert not gone.id


def test_update_sets_new_tags(seaweedfs: S3Server) -> None:
    provider = S3BucketProvider(Warnings())
    bucket = unique_bucket("tags")
    olds = seaweedfs.props(bucket, tags={"part-of": "flywheel"})
    created = provider.create(olds)
    assert created.outs is not None
    news = seaweedfs.props(bucket, tags={"part-of": "flywheel", "owner": "platform-team"})

    diff = provider.diff(bucket, created.outs, news)
    assert diff.changes and not diff.replaces
    updated = provider.update(bucket, created.outs, news)

    assert tags_of(seaweedfs, bucket) == {"part-of": "flywheel", "owner": "platform-team"}
    assert updated.outs is not None and updated.outs["tags"] == news["tags"]


def test_delete_with_retain_keeps_the_bucket_and_its_objects(seaweedfs: S3Server) -> None:
    provider = S3BucketProvider(Warnings())
    bucket = unique_bucket("retain")
    props = seaweedfs.props(bucket, retainOnDelete=True)
    provider.create(props)
    seaweedfs.client().put_object(Bucket=bucket, Key="nar/x.nar", Body=b"x")

    provider.delete(bucket, props)

    seaweedfs.client().head_bucket(Bucket=bucket)
    assert seaweedfs.client().get_object(Bucket=bucket, Key="nar/x.nar")["Body"].read() == b"x"


def test_delete_without_retain_never_deletes_objects(seaweedfs: S3Server) -> None:
    provider = S3BucketProvider(Warnings())
    bucket = unique_bucket("drop")
    props = seaweedfs.props(bucket, retainOnDelete=False)
    provider.create(props)
    seaweedfs.client().put_object(Bucket=bucket, Key="x.chunk", Body=b"x")

    with pytest.raises(S3BucketError, match="still holds objects"):
        provider.delete(bucket, props)
    seaweedfs.client().head_bucket(Bucket=bucket)

    seaweedfs.client().delete_object(Bucket=bucket, Key="x.chunk")
    provider.delete(bucket, props)
    with pytest.raises(ClientError):
        seaweedfs.client().head_bucket(Bucket=bucket)


def test_a_bucket_name_the_store_refuses_is_a_clear_error(seaweedfs: S3Server) -> None:
    with pytest.raises(S3BucketError) as caught:
        S3BucketProvider(Warnings()).create(seaweedfs.props("ab"))  # SeaweedFS wants 3+ characters

    message = str(caught.value)
    assert "refused the bucket name" in message and "InvalidBucketName" in message
    assert seaweedfs.endpoint in message and "'ab'" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_wrong_credentials_fail_fast_naming_endpoint_and_bucket(seaweedfs: S3Server) -> None:
    wrong_secret = "definitely-not-the-secret-key-0123456789"
    props = seaweedfs.props(unique_bucket("creds"), secretAccessKey=wrong_secret)
    started = time.monotonic()
    with pytest.raises(S3BucketError) as caught:
        S3BucketProvider(Warnings()).create(props)

    assert time.monotonic() - started < ERROR_BUDGET_SECONDS
    message = str(caught.value)
    assert "refused the credentials" in message and "SignatureDoesNotMatch" in message
    assert seaweedfs.endpoint in message and props["bucket"] in message
    assert wrong_secret not in message


def test_scoped_identity_cannot_create_the_bucket(seaweedfs: S3Server) -> None:
    # bazel-remote's identity is limited to <bucket>/bazel/*: creating buckets is refused, clearly
    with pytest.raises(S3BucketError, match=r"refused the credentials.*AccessDenied"):
        S3BucketProvider(Warnings()).create(seaweedfs.props(unique_bucket("scoped"), identity="bazel-remote"))


# --- unreachable endpoints ------------------------------------------------------------------------


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung store)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("kind", ["refused", "hung"])
def test_unreachable_endpoint_fails_within_budget_naming_endpoint_and_bucket(
    kind: str, seaweedfs: S3Server, silent_listener: str
) -> None:
    from tests.s3_servers import free_ports

    endpoint = silent_listener if kind == "hung" else f"http://127.0.0.1:{free_ports(1)[0]}"
    props = seaweedfs.props("flywheel-unreachable", endpoint=endpoint)
    started = time.monotonic()
    with pytest.raises(S3BucketError) as caught:
        S3BucketProvider(Warnings()).create(props)
    elapsed = time.monotonic() - started

    assert elapsed < ERROR_BUDGET_SECONDS, f"took {elapsed:.1f} s"
    message = str(caught.value)
    assert message.startswith(f"cannot reach S3 endpoint {endpoint} (bucket 'flywheel-unreachable')")
    assert props["secretAccessKey"] not in message


def test_engine_sees_one_line_without_traceback(seaweedfs: S3Server) -> None:
    """Run the SDK's real dynamic-provider host process and call Create over gRPC, as the engine does."""
    import asyncio
    import subprocess

    import grpc
    from pulumi.dynamic.dynamic import PROVIDER_KEY, serialize_provider
    from pulumi.runtime import rpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    props = seaweedfs.props(unique_bucket("engine"), secretAccessKey="wrong-secret-for-the-engine-test-000")
    props[PROVIDER_KEY] = serialize_provider(S3BucketProvider())
    struct = asyncio.run(rpc.serialize_properties(props, {}))
    host = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Create(provider_pb2.CreateRequest(urn="urn:pulumi:t::p::x::y", properties=struct), timeout=60)
    finally:
        host.kill()
        host.wait()

    details = caught.value.details()  # type: ignore[attr-defined]
    assert "Traceback" not in details
    assert details.startswith("components.s3_bucket.S3BucketError: S3 endpoint ")
    assert seaweedfs.endpoint in details and props["bucket"] in details
    assert "wrong-secret" not in details
    assert details.strip().count("\n") == 0


# --- moto_server: an emulator of the full bucket API -------------------------------------------------


def test_full_bucket_api_against_moto_emulator(moto_emulator: S3Server) -> None:
    warnings = Warnings()
    provider = S3BucketProvider(warnings)
    bucket = unique_bucket("moto")
    props = moto_emulator.props(bucket, region="eu-west-1", retainOnDelete=False)

    created = provider.create(props)

    assert created.outs is not None
    assert created.outs["unsupported"] == [] and not warnings
    client = moto_emulator.client()
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert [rule["ID"] for rule in lifecycle_rules(moto_emulator, bucket)] == [LIFECYCLE_RULE_ID]
    assert tags_of(moto_emulator, bucket) == {"part-of": "flywheel"}

    again = provider.create(props)  # adopting works on the emulator too
    assert again.outs is not None and again.outs["adopted"] is True

    news = {**props, "tags": {"part-of": "flywheel", "tier": "cache"}}
    provider.update(bucket, created.outs, news)
    assert provider.read(bucket, news).outs["tags"] == {"part-of": "flywheel", "tier": "cache"}  # type: ignore[index]

    provider.delete(bucket, news)
    assert not provider.read(bucket, news).id


@pytest.mark.parametrize("store", ["seaweedfs", "moto_emulator"])
def test_the_bazel_prefix_gets_an_expiry_rule_and_turning_it_off_removes_it(
    store: str, request: pytest.FixtureRequest
) -> None:
    """bazel-remote never deletes from its S3 tier: the store expires what it wrote under bazel/ (real SeaweedFS
    4.48 stores the rule; moto implements the whole API). Attic's objects get no expiry."""
    server: S3Server = request.getfixturevalue(store)
    provider = S3BucketProvider(Warnings())
    bucket = unique_bucket("expiry")
    # as the engine sends it: the days arrive as a double
    props = server.props(bucket, bazelPrefix="bazel/", bazelExpiryDays=30.0)
    created = provider.create(props)
    assert created.outs is not None
    rules = {rule["ID"]: rule for rule in lifecycle_rules(server, bucket)}
    assert set(rules) == {LIFECYCLE_RULE_ID, BAZEL_EXPIRY_RULE_ID}
    assert rules[BAZEL_EXPIRY_RULE_ID]["Expiration"] == {"Days": 30}
    assert rules[BAZEL_EXPIRY_RULE_ID]["Filter"] == {"Prefix": "bazel/"}
    assert "Expiration" not in rules[LIFECYCLE_RULE_ID]

    off = {k: v for k, v in props.items() if k not in ("bazelPrefix", "bazelExpiryDays")}
    assert provider.diff(bucket, created.outs, off).changes
    provider.update(bucket, created.outs, off)
    assert [rule["ID"] for rule in lifecycle_rules(server, bucket)] == [LIFECYCLE_RULE_ID]


# --- pure parts -------------------------------------------------------------------------------------


def test_diff_replaces_on_identity_changes_and_updates_settings_in_place() -> None:
    provider = S3BucketProvider(Warnings())
    olds = {
        "endpoint": "https://s3.example.com",
        "region": "us-east-1",
        "bucket": "flywheel-attic",
        "tags": {"a": "1"},
        "abortIncompleteUploadsDays": 7,
        "retainOnDelete": True,
        "accessKeyId": "A",
        "secretAccessKey": "S",
    }
    assert not provider.diff("id", olds, dict(olds)).changes
    renamed = provider.diff("id", olds, {**olds, "bucket": "flywheel-other"})
    assert renamed.changes and renamed.replaces == ["bucket"]
    moved = provider.diff("id", olds, {**olds, "endpoint": "https://r2.example.com", "region": "auto"})
    assert moved.replaces == ["endpoint", "region"]
    retagged = provider.diff("id", olds, {**olds, "tags": {"a": "2"}})
    assert retagged.changes and retagged.replaces == []
    rotated = provider.diff("id", olds, {**olds, "secretAccessKey": "S2"})
    assert rotated.changes and rotated.replaces == []


def test_check_refuses_bad_bucket_names_and_endpoints_without_scheme() -> None:
    provider = S3BucketProvider(Warnings())
    good = {"bucket": "flywheel-attic", "endpoint": "https://s3.example.com"}
    assert provider.check({}, good).failures == []
    failures = provider.check({}, {"bucket": "Bad_Bucket", "endpoint": "s3.example.com"}).failures
    assert sorted(f.property for f in failures) == ["bucket", "endpoint"]
    assert any("not a valid S3 bucket name" in f.reason for f in failures)
    assert any("not an http(s) URL with a scheme" in f.reason for f in failures)
