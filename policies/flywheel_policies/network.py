"""Network access is least privilege: egress into another namespace names pods and ports, and the cache
services' own pods (SeaweedFS, Attic's API, bazel-remote) sit behind an ingress NetworkPolicy.

A namespace-wide egress rule let CI jobs reach SeaweedFS's filer, master and volume ports, which serve
without authentication (GET and DELETE under /buckets/ past the scoped S3 identities). And `ipBlock` 0.0.0.0/0
matches pod addresses on some CNIs (not on Cilium), so egress rules alone do not guard the services.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .common import UNKNOWN, WORKLOAD_TYPES, Res, as_dict, as_list, dig, stack_resources
from .workloads import containers, image_name

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
GUARDED_IMAGES = {"seaweedfs", "bazel-remote-cache", "attic"}
SERVER_TYPES = {t for t in WORKLOAD_TYPES if t.startswith("kubernetes:apps/")}


def _egress_problems(policy: Res) -> list[str]:
    problems = []
    for index, rule in enumerate(map(as_dict, as_list(dig(policy.props, "spec", "egress")))):
        peers = [as_dict(peer) for peer in as_list(rule.get("to"))]
        wide = [peer for peer in peers if "namespaceSelector" in peer and "podSelector" not in peer]
        if wide:
            problems.append(
                f"{policy.kind_name} egress rule #{index + 1} allows whole namespaces "
                f"({as_dict(wide[0]['namespaceSelector']).get('matchLabels')}); name the pods with a podSelector"
            )
        if any("namespaceSelector" in peer or "podSelector" in peer for peer in peers) and not rule.get("ports"):
            problems.append(
                f"{policy.kind_name} egress rule #{index + 1} allows every port of in-cluster pods; list the ports"
            )
    return problems


def _selects(policy: Res, workload: Res) -> bool:
    if policy.namespace != workload.namespace or "Ingress" not in as_list(dig(policy.props, "spec", "policyTypes")):
        return False
    wanted = as_dict(dig(policy.props, "spec", "podSelector", "matchLabels"))
    labels = as_dict(dig(workload.props, "spec", "template", "metadata", "labels"))
    return all(labels.get(key) == value for key, value in wanted.items())


def _guarded_image(workload: Res) -> str | None:
    for container in containers(workload):
        image = container.get("image")
        if isinstance(image, str) and image is not UNKNOWN and image_name(image) in GUARDED_IMAGES:
            return image_name(image)
    return None


def check_network(resources: list[Res]) -> list[tuple[str, str]]:
    """(message, urn) for every violation."""
    policies = [r for r in resources if r.type == NETWORK_POLICY]
    found: list[tuple[str, str]] = [(message, p.urn) for p in policies for message in _egress_problems(p)]
    for workload in resources:
        if workload.type not in SERVER_TYPES:  # Jobs and CronJobs serve nothing
            continue
        image = _guarded_image(workload)
        if image is None or dig(workload.props, "spec", "template") is None:
            continue
        if not any(_selects(policy, workload) for policy in policies):
            found.append(
                (
                    f"{workload.kind_name} serves {image} but no ingress NetworkPolicy in namespace "
                    f"'{workload.namespace}' selects its pods; admit only its clients and ports",
                    workload.urn,
                )
            )
    return found


def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for message, urn in check_network(stack_resources(args)):
        report_violation(message, urn)


NETWORK_LEAST_ACCESS = StackValidationPolicy(
    "network-least-access",
    "Egress into other namespaces names pods and ports; SeaweedFS, Attic and bazel-remote pods have ingress policies.",
    _validate,
    EnforcementLevel.MANDATORY,
)

__all__ = ["NETWORK_LEAST_ACCESS", "check_network"]
