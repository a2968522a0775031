"""An S3 bucket on any S3-compatible store, managed by a Pulumi dynamic provider written with boto3.

The provider creates the bucket (adopting one the credentials already own), blocks public access,
sets lifecycle rules (abort incomplete multipart uploads; when bazel-remote tiers onto the bucket, expire
its objects under `bazel/`; never expiry of Attic's objects: Attic's GC owns them), and sets tags. An API
the store does not implement is logged as "unsupported here" and skipped. Errors name the endpoint and
the bucket and carry no traceback. Credentials are secret inputs; they are never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pulumi
import pulumi.dynamic

from components import provider_host
from components.provider_host import ProviderError, engine_call

ABORT_INCOMPLETE_UPLOADS_DAYS = 7
LIFECYCLE_RULE_ID = "flywheel-abort-incomplete-multipart-uploads"
BAZEL_EXPIRY_RULE_ID = "flywheel-bazel-remote-expiry"
OWN_RULE_IDS = frozenset({LIFECYCLE_RULE_ID, BAZEL_EXPIRY_RULE_ID})
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 2  # total tries per call: unreachable stores fail in well under 15 s
# Error codes (and HTTP statuses) with which a store says it does not implement an API.
UNSUPPORTED_CODES = frozenset({"NotImplemented", "NotImplementedError", "UnsupportedOperation", "XNotImplemented"})
UNSUPPORTED_STATUSES = frozenset({501})
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "403"}
)
SECRET_PROPERTIES = ("accessKeyId", "secretAccessKey")


class S3BucketError(ProviderError):
    """A user-facing failure: one line naming the endpoint and the bucket."""


def _warn(message: str) -> None:
    provider_host.warn(message)


def bucket_settings(
    tags: dict[str, str],
    abort_days: int = ABORT_INCOMPLETE_UPLOADS_DAYS,
    bazel_expiry: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The desired bucket configuration (no secrets): what the provider applies and the render shows.

    ``bazel_expiry`` is (prefix, days): bazel-remote never deletes from its S3 tier, so the store expires what it
    wrote that many days after writing it. Attic's objects never expire here (its GC owns them).
    """
    rules: list[dict[str, Any]] = [
        {
            "ID": LIFECYCLE_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_days},
        }
    ]
    if bazel_expiry is not None:
        prefix, days = bazel_expiry
        rules.append(
            {
                "ID": BAZEL_EXPIRY_RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": prefix},
                "Expiration": {"Days": days},
            }
        )
    return {
        "publicAccessBlock": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        "lifecycle": {"Rules": rules},
        "tags": {"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
    }


class S3BucketProvider(pulumi.dynamic.ResourceProvider):
    """CRUD for one bucket. Properties (camelCase, as Pulumi passes them):

    endpoint, region, bucket, tags, abortIncompleteUploadsDays, retainOnDelete, accessKeyId,
    secretAccessKey. Outputs add `adopted` (the bucket existed already) and `unsupported`
    (bucket APIs the store does not implement).
    """

    serialize_as_secret_always = True

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._warn = warn if warn is not None else _warn

    # --- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _client(props: dict[str, Any]) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=props["endpoint"],
            region_name=props["region"],
            aws_access_key_id=props["accessKeyId"],
            aws_secret_access_key=props["secretAccessKey"],
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            ),
        )

    @staticmethod
    @contextmanager
    def _errors(props: dict[str, Any], action: str) -> Iterator[None]:
        """Turn boto errors into one-line S3BucketErrors that name the endpoint and the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"S3 endpoint {props.get('endpoint')} (bucket '{props.get('bucket')}')"
        try:
            yield
        except ClientError as err:
            code, message, status = _error_parts(err)
            if code in CREDENTIAL_CODES or status == 403:
                problem = f"{where} refused the credentials while trying to {action} ({code}: {message})"
                hint = "check flywheel:storage.credentials and the identity's permissions on the bucket"
            elif code == "InvalidBucketName":
                problem = f"{where} refused the bucket name while trying to {action} ({code}: {message})"
                hint = "choose another flywheel:storage.bucket"
            elif code == "BucketAlreadyExists":
                problem = f"{where}: the bucket name is taken by another account ({code})"
                hint = "choose another flywheel:storage.bucket"
            else:
                problem = f"{where} failed to {action} ({code}: {message})"
                hint = "see the store's logs"
            raise S3BucketError(f"{problem}; {hint}") from None
        except BotoCoreError as err:
            raise S3BucketError(f"cannot reach {where} to {action}: {err}") from None

    def _apply_settings(self, client: Any, props: dict[str, Any]) -> list[str]:
        """Put public-access block, lifecycle and tags; return the APIs the store does not implement."""
        settings = bucket_settings(
            dict(props.get("tags") or {}), int(props["abortIncompleteUploadsDays"]), _bazel_expiry(props)
        )
        bucket = props["bucket"]
        unsupported: list[str] = []
        steps: list[tuple[str, Callable[[], Any]]] = [
            (
                "PublicAccessBlock",
                lambda: client.put_public_access_block(
                    Bucket=bucket, PublicAccessBlockConfiguration=settings["publicAccessBlock"]
                ),
            ),
            ("Lifecycle", lambda: self._put_lifecycle(client, props, settings["lifecycle"])),
            ("Tagging", lambda: client.put_bucket_tagging(Bucket=bucket, Tagging=settings["tags"])),
        ]
        for api, step in steps:
            if not self._attempt(props, api, step):
                unsupported.append(api)
        return unsupported

    def _attempt(self, props: dict[str, Any], api: str, step: Callable[[], Any]) -> bool:
        """Run one settings call; False (with a warning) when the store does not implement the API."""
        from botocore.exceptions import ClientError

        with self._errors(props, f"set {api}"):
            try:
                step()
            except ClientError as err:
                code, _, status = _error_parts(err)
                if code not in UNSUPPORTED_CODES and status not in UNSUPPORTED_STATUSES:
                    raise
                self._warn(
                    f"S3 endpoint {props['endpoint']} does not implement the {api} API "
                    f"(bucket '{props['bucket']}'): unsupported here, skipped"
                )
                return False
        return True

    def _put_lifecycle(self, client: Any, props: dict[str, Any], lifecycle: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        try:
            existing = client.get_bucket_lifecycle_configuration(Bucket=props["bucket"]).get("Rules", [])
        except ClientError as err:
            code, _, status = _error_parts(err)
            if code in UNSUPPORTED_CODES or status in UNSUPPORTED_STATUSES:
                raise
            existing = []  # NoSuchLifecycleConfiguration
        dropped = sorted(str(rule.get("ID", "?")) for rule in existing if rule.get("ID") not in OWN_RULE_IDS)
        if dropped:
            # Expiry rules would delete objects Attic's database still references.
            self._warn(
                f"bucket '{props['bucket']}' on {props['endpoint']}: replacing its lifecycle rules "
                f"{', '.join(dropped)} with flywheel's own (abort incomplete uploads; bazel/ expiry only)"
            )
        client.put_bucket_lifecycle_configuration(Bucket=props["bucket"], LifecycleConfiguration=lifecycle)

    # --- the provider interface ------------------------------------------------------------

    @engine_call
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        from components.config_types import check_bucket_name, check_http_url

        failures = []
        for key, checker in (("bucket", check_bucket_name), ("endpoint", check_http_url)):
            value = news.get(key)
            if isinstance(value, str):  # an Unknown in preview is checked once known
                try:
                    checker(value)
                except Exception as err:  # noqa: BLE001 (pydantic's custom error type)
                    failures.append(pulumi.dynamic.CheckFailure(key, f"{value!r}: {err}"))
        return pulumi.dynamic.CheckResult(news, failures)

    @engine_call
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        client = self._client(props)
        bucket = props["bucket"]
        adopted = False
        from botocore.exceptions import ClientError

        with self._errors(props, "create the bucket"):
            try:
                kwargs: dict[str, Any] = {"Bucket": bucket}
                if props["region"] != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": props["region"]}
                client.create_bucket(**kwargs)
            except ClientError as err:
                code = _error_parts(err)[0]
                if code == "BucketAlreadyOwnedByYou":
                    adopted = True
                elif code == "BucketAlreadyExists" and self._owned(client, bucket):
                    adopted = True  # some stores answer this way for their own buckets
                else:
                    raise
        if adopted:
            provider_host.info(f"bucket '{bucket}' already exists on {props['endpoint']}: adopted, its objects kept")
        unsupported = self._apply_settings(client, props)
        return pulumi.dynamic.CreateResult(bucket, {**props, "adopted": adopted, "unsupported": unsupported})

    @staticmethod
    def _owned(client: Any, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            client.head_bucket(Bucket=bucket)
        except ClientError:
            return False
        return True

    @engine_call
    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        from botocore.exceptions import ClientError

        props = {**props, "bucket": props.get("bucket") or id_}
        client = self._client(props)
        with self._errors(props, "read the bucket"):
            try:
                client.head_bucket(Bucket=props["bucket"])
            except ClientError as err:
                if _error_parts(err)[0] in {"404", "NoSuchBucket", "NotFound"}:
                    return pulumi.dynamic.ReadResult("", {})
                raise
            tags = self._read_tags(client, props)
        return pulumi.dynamic.ReadResult(id_, {**props, "tags": tags})

    @staticmethod
    def _read_tags(client: Any, props: dict[str, Any]) -> dict[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            tag_set = client.get_bucket_tagging(Bucket=props["bucket"]).get("TagSet", [])
        except ClientError as err:
            code, _, status = _error_parts(err)
            if code == "NoSuchTagSet":
                return {}
            if code in UNSUPPORTED_CODES or status in UNSUPPORTED_STATUSES:
                return props.get("tags")
            raise
        return {tag["Key"]: tag["Value"] for tag in tag_set}

    @engine_call
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [key for key in ("bucket", "endpoint", "region") if olds.get(key) != news.get(key)]
        watched = ("tags", "abortIncompleteUploadsDays", *BAZEL_EXPIRY_PROPERTIES, "retainOnDelete", *SECRET_PROPERTIES)
        changed = replaces + [key for key in watched if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed),
            replaces=replaces,
            stables=["bucket"] if not replaces else [],
            delete_before_replace=False,
        )

    @engine_call
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        client = self._client(news)
        with self._errors(news, "read the bucket"):
            client.head_bucket(Bucket=news["bucket"])
        unsupported = self._apply_settings(client, news)
        return pulumi.dynamic.UpdateResult({**news, "adopted": olds.get("adopted", False), "unsupported": unsupported})

    @engine_call
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("retainOnDelete", True):
            provider_host.info(f"bucket '{props['bucket']}' on {props['endpoint']} is retained (retainOnDelete)")
            return
        client = self._client(props)
        with self._errors(props, "delete the bucket"):
            listing = client.list_objects_v2(Bucket=props["bucket"], MaxKeys=1)
            if listing.get("KeyCount", 0):
                raise S3BucketError(
                    f"S3 endpoint {props['endpoint']} (bucket '{props['bucket']}'): the bucket still holds "
                    "objects; this program never deletes cache data, empty it yourself first"
                )
            client.delete_bucket(Bucket=props["bucket"])


BAZEL_EXPIRY_PROPERTIES = ("bazelPrefix", "bazelExpiryDays")


def _bazel_expiry(props: dict[str, Any]) -> tuple[str, int] | None:
    """(prefix, days) from the properties; the engine sends the days as a double."""
    days, prefix = props.get("bazelExpiryDays"), props.get("bazelPrefix")
    if days is None or not prefix:
        return None
    return str(prefix), int(days)


def _error_parts(err: Any) -> tuple[str, str, int]:
    error = err.response.get("Error", {})
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return str(error.get("Code") or status), str(error.get("Message") or "no message"), status


class S3Bucket(pulumi.dynamic.Resource):
    """The bucket as a Pulumi resource (type `pulumi-python:dynamic/flywheel:S3Bucket`)."""

    bucket: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    region: pulumi.Output[str]
    adopted: pulumi.Output[bool]
    unsupported: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        endpoint: str,
        region: str,
        bucket: str,
        access_key_id: pulumi.Input[str],
        secret_access_key: pulumi.Input[str],
        tags: dict[str, str],
        retain_on_delete: bool,
        abort_incomplete_uploads_days: int = ABORT_INCOMPLETE_UPLOADS_DAYS,
        bazel_expiry: tuple[str, int] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "endpoint": endpoint,
            "region": region,
            "bucket": bucket,
            "tags": tags,
            "abortIncompleteUploadsDays": abort_incomplete_uploads_days,
            "retainOnDelete": retain_on_delete,
            "accessKeyId": pulumi.Output.secret(access_key_id),
            "secretAccessKey": pulumi.Output.secret(secret_access_key),
            "adopted": None,
            "unsupported": None,
        }
        if bazel_expiry is not None:
            props["bazelPrefix"], props["bazelExpiryDays"] = bazel_expiry
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_PROPERTIES))
        super().__init__(S3BucketProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_outputs))


# What `class S3Bucket(Resource, module="flywheel", name="S3Bucket")` would set, spelled out for the type checker.
S3Bucket._resource_type_name = "dynamic/flywheel:S3Bucket"
