"""Network access of the dev render: job egress names the cache pods and their ports, the ingress controller
is reached by pod selector (Cilium ignores ipBlock for in-cluster peers), and the platform's own pods admit
only their clients. The rules are read from the rendered manifests, as the API server would receive them."""

from __future__ import annotations

from typing import Any

from tests.conftest import dev_value, render_stack, stack_with
from tests.k8s_schema import schema_errors
from tools.render import RenderResult, kubernetes_objects

ATTIC = {"app.kubernetes.io/name": "attic", "app.kubernetes.io/component": "api-server"}
BAZEL = {"app.kubernetes.io/name": "bazel-cache", "app.kubernetes.io/component": "bazel-cache"}
SEAWEEDFS = {"app.kubernetes.io/name": "seaweedfs", "app.kubernetes.io/component": "object-storage"}


def policy(render: RenderResult, name: str) -> dict[str, Any]:
    found = [m for m in kubernetes_objects(render.resources) if m["kind"] == "NetworkPolicy"]
    spec: dict[str, Any] = next(m["spec"] for m in found if m["metadata"]["name"] == name)
    return spec


def in_cluster_egress(spec: dict[str, Any]) -> dict[tuple[str, str], list[int]]:
    """(namespace, pod labels) -> TCP ports, for every egress peer that is a pod selector."""
    reached = {}
    for rule in spec["egress"]:
        for peer in rule.get("to", []):
            if "podSelector" in peer:
                namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                labels = str(sorted(peer["podSelector"]["matchLabels"].items()))
                reached[(namespace, labels)] = sorted(p["port"] for p in rule["ports"])
    return reached


def test_jobs_reach_attic_bazel_the_store_and_the_ingress_controller_on_their_ports_only(
    dev_render: RenderResult,
) -> None:
    reached = in_cluster_egress(policy(dev_render, "ci-jobs-egress"))
    assert reached == {
        ("flywheel", str(sorted(ATTIC.items()))): [8080],
        ("flywheel", str(sorted(BAZEL.items()))): [9092],
        # atticd redirects single-chunk NARs to a presigned URL on SeaweedFS's S3 port (never its other ports)
        ("flywheel", str(sorted(SEAWEEDFS.items()))): [8333],
        ("ingress-nginx", str(sorted({"app.kubernetes.io/name": "ingress-nginx"}.items()))): [80, 443],
    }


def test_without_an_attic_host_jobs_get_no_ingress_controller_rule() -> None:
    attic = dict(dev_value("attic"))
    attic.pop("host")
    attic.pop("ingress")
    reached = in_cluster_egress(policy(render_stack(stack_with({"attic": attic})), "ci-jobs-egress"))
    assert {namespace for namespace, _labels in reached} == {"flywheel"}


def test_seaweedfs_admits_s3_from_its_namespace_and_the_jobs_the_filer_from_the_bucket_job_and_the_rest_from_itself(
    dev_render: RenderResult,
) -> None:
    spec = policy(dev_render, "seaweedfs-ingress")
    assert spec["podSelector"] == {"matchLabels": SEAWEEDFS} and spec["policyTypes"] == ["Ingress"]
    filer, s3, internal = spec["ingress"]
    bucket_job = {"app.kubernetes.io/name": "seaweedfs-create-bucket", "app.kubernetes.io/component": "object-storage"}
    assert filer == {
        "from": [{"podSelector": {"matchLabels": bucket_job}}],
        "ports": [{"protocol": "TCP", "port": 8888}],
    }
    jobs = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flywheel-jobs"}}}
    assert s3 == {"from": [{"podSelector": {}}, jobs], "ports": [{"protocol": "TCP", "port": 8333}]}
    assert internal == {"from": [{"podSelector": {"matchLabels": SEAWEEDFS}}]}


def test_attic_and_bazel_admit_their_ports_from_the_namespace_and_the_jobs(dev_render: RenderResult) -> None:
    attic = policy(dev_render, "attic-ingress")
    assert attic["podSelector"] == {"matchLabels": ATTIC}
    (rule,) = attic["ingress"]
    assert [p["port"] for p in rule["ports"]] == [8080]
    jobs = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flywheel-jobs"}}}
    assert {"podSelector": {}} in rule["from"] and jobs in rule["from"]
    controller = [p for p in rule["from"] if "podSelector" in p and "namespaceSelector" in p]
    assert controller[0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    bazel = policy(dev_render, "bazel-cache-ingress")
    (rule,) = bazel["ingress"]
    assert [p["port"] for p in rule["ports"]] == [9092, 8080] and jobs in rule["from"]


def test_network_policies_validate_against_kubernetes_1_31(dev_render: RenderResult) -> None:
    found = [m for m in kubernetes_objects(dev_render.resources) if m["kind"] == "NetworkPolicy"]
    assert len(found) == 5
    assert schema_errors(found) == []
