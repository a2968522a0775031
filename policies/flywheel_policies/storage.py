"""The cache's object storage: the bucket or in-cluster SeaweedFS is private, kept on delete, and Attic's objects
never expire (only bazel-remote's prefix may: bazel-remote never deletes from its S3 tier)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .attic import server_tomls
from .common import (
    CONFIG_MAP,
    DYNAMIC,
    SERVICE,
    UNKNOWN,
    WORKLOAD_TYPES,
    Res,
    as_dict,
    as_list,
    dig,
    stack_resources,
    text,
)
from .workloads import container_argv, containers, image_name, pod_spec, pod_spec_labels

BUCKET_TYPE = "pulumi-python:dynamic/flywheel:S3Bucket"


def is_bucket(res: Res) -> bool:
    """The external bucket (components/s3_bucket.py), a dynamic resource of its own type."""
    return res.type == BUCKET_TYPE or (
        res.type.startswith(DYNAMIC.rsplit(":", 1)[0])
        and isinstance(res.props.get("bucket"), str)
        and "retainOnDelete" in res.props
    )


def is_seaweedfs(res: Res) -> bool:
    return res.type in WORKLOAD_TYPES and any(
        image_name(text(c.get("image")) or "") == "seaweedfs" for c in containers(res)
    )


_ALLOWED_LIFECYCLE_ACTIONS = {"AbortIncompleteMultipartUpload", "abortIncompleteMultipartUpload"}
# bazel-remote's prefix of the bucket (components/storage.py BAZEL_PREFIX): the one place objects may expire.
BAZEL_PREFIX = "bazel/"


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    prefix = dig(rule, "Filter", "Prefix")
    if prefix is None:
        prefix = dig(rule, "filter", "prefix")
    if prefix is None:
        prefix = rule.get("Prefix", rule.get("prefix"))
    return prefix if isinstance(prefix, str) else None


def lifecycle_expirations(rules: Any) -> list[str]:
    """Descriptions of lifecycle rules that delete or transition objects (anything beyond aborting uploads)."""
    found = []
    for index, rule in enumerate(as_list(rules)):
        if not isinstance(rule, dict):
            continue
        if str(rule.get("Status", rule.get("status", "Enabled"))).lower() == "disabled":
            continue
        if _rule_prefix(rule) == BAZEL_PREFIX:
            continue  # bazel-remote's own objects: expiring them is the tier's bound
        label = text(rule.get("ID")) or text(rule.get("id")) or f"#{index + 1}"
        actions = sorted(
            key
            for key, value in rule.items()
            if key not in _ALLOWED_LIFECYCLE_ACTIONS
            and re.search(r"(?i)expir|transition|noncurrent", key)
            and value not in (None, {}, [], False)
        )
        if actions:
            found.append(f"rule {label} ({', '.join(actions)})")
    return found


def _bucket_problems(res: Res) -> Iterator[str]:
    name = f"bucket '{res.props.get('bucket')}'"
    settings = as_dict(res.props.get("settings"))
    block = res.props.get("publicAccessBlock", settings.get("publicAccessBlock"))
    if isinstance(block, dict) and any(value is False for value in block.values()):
        off = sorted(key for key, value in block.items() if value is False)
        yield f"{name} leaves public access open ({', '.join(off)} false); block all four public-access settings"
    if res.props.get("blockPublicAccess") is False:
        yield f"{name} does not block public access; Attic serves objects only through its API"
    if res.protect is False:
        yield f"{name} is not protected; `pulumi destroy` would delete the cache's data (storage.protect: true)"
    kept = res.props.get("retainOnDelete")
    if kept is not UNKNOWN and kept is not True:
        yield f"{name} is not retained on delete (retainOnDelete {kept!r}); removing it would drop the cache's data"
    elif res.retain_on_delete is False:
        yield f"{name} is registered without retainOnDelete; a replace or removal would delete the data"
    rules = res.props.get("lifecycleRules", dig(res.props, "lifecycle", "Rules") or dig(settings, "lifecycle", "Rules"))
    for rule in lifecycle_expirations(rules):
        yield (
            f"{name} has a lifecycle {rule} that expires objects Attic's database still references; "
            f"only AbortIncompleteMultipartUpload is allowed, and expiry only under '{BAZEL_PREFIX}' "
            "(Attic's GC owns object lifetimes)"
        )
    # components/s3_bucket.py: the provider turns these into an Expiration rule on that prefix
    prefix, days = res.props.get("bazelPrefix"), res.props.get("bazelExpiryDays")
    if days not in (None, UNKNOWN) and prefix is not UNKNOWN and prefix != BAZEL_PREFIX:
        yield (
            f"{name} expires objects under prefix {prefix!r} after {days} days; only bazel-remote's "
            f"'{BAZEL_PREFIX}' may expire (Attic's objects there would be deleted while its database references them)"
        )


def _seaweedfs_problems(res: Res, resources: list[Res]) -> Iterator[str]:
    """The in-cluster store: reachable only inside the cluster, its volume kept, buckets not dropped when full."""
    policy = dig(res.props, "spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted")
    if policy == "Delete":
        yield f"{res.kind_name} deletes its data volume with the StatefulSet; set whenDeleted: Retain"
    if res.type != "kubernetes:apps/v1:StatefulSet" and not any(
        dig(v, "persistentVolumeClaim", "claimName") for v in as_list(pod_spec(res).get("volumes"))
    ):
        yield f"{res.kind_name} keeps the object store without a PersistentVolumeClaim; its data would not survive"
    for container in containers(res):
        if "-s3.allowDeleteBucketNotEmpty=true" in container_argv(container) or (
            image_name(text(container.get("image")) or "") == "seaweedfs"
            and "-s3" in container_argv(container)
            and "-s3.allowDeleteBucketNotEmpty=false" not in container_argv(container)
        ):
            yield (
                f"{res.kind_name} lets S3 clients delete a bucket that still holds objects (SeaweedFS's default); "
                "pass -s3.allowDeleteBucketNotEmpty=false"
            )
    labels = pod_spec_labels(res)
    for service in resources:
        if service.type != SERVICE or service.namespace != res.namespace:
            continue
        selector = as_dict(dig(service.props, "spec", "selector"))
        exposed = dig(service.props, "spec", "type") in {"LoadBalancer", "NodePort"}
        if exposed and selector and all(labels.get(k) == v for k, v in selector.items()):
            yield (
                f"Service '{service.display_name}' exposes the object store outside the cluster "
                f"(type {dig(service.props, 'spec', 'type')}); keep it ClusterIP"
            )


def _attic_storage(resources: list[Res]) -> list[tuple[Res, dict[str, Any]]]:
    return [
        (res, as_dict(doc.get("storage")))
        for res in resources
        if res.type == CONFIG_MAP
        for doc in server_tomls(res)
        if as_dict(doc.get("storage")).get("type") == "s3"
    ]


def _validate_storage_private_and_kept(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = stack_resources(args)
    buckets = [r for r in resources if is_bucket(r)]
    stores = [r for r in resources if is_seaweedfs(r)]
    for res in buckets:
        for message in _bucket_problems(res):
            report_violation(message, res.urn)
    for res in stores:
        for message in _seaweedfs_problems(res, resources):
            report_violation(message, res.urn)
    managed = {r.props.get("bucket") for r in buckets}
    for res, storage in _attic_storage(resources):
        bucket = storage.get("bucket")
        if isinstance(bucket, str) and bucket not in managed and not stores:
            report_violation(
                f"Attic's server.toml (ConfigMap '{res.display_name}') stores into bucket '{bucket}', which no "
                "resource of this stack manages; without it nothing keeps the bucket private and protected",
                res.urn,
            )


STORAGE_PRIVATE_AND_KEPT = StackValidationPolicy(
    "storage-private-and-kept",
    "The cache bucket blocks public access, is protected and retained on delete, and no lifecycle rule "
    "expires its objects outside bazel-remote's 'bazel/' prefix.",
    _validate_storage_private_and_kept,
    EnforcementLevel.MANDATORY,
)
