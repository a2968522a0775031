"""Who may talk to whom: job pods reach only the cache endpoints they use, platform pods admit only their clients.

Job egress names pods and ports (a namespace-wide rule let jobs reach SeaweedFS's unauthenticated filer,
master and volume ports). Jobs that reach Attic through its Ingress need a rule for the ingress controller's
pods: Cilium applies `ipBlock` to cluster-external addresses only, so the internet rule never covers an
in-cluster controller. Other CNIs do match pod addresses with `ipBlock` 0.0.0.0/0, which is why the platform's
own pods also get ingress policies: SeaweedFS admits S3 (8333) from its namespace and the jobs namespace (atticd
redirects single-chunk NARs to presigned URLs there), its filer's HTTP port from the bucket Job (filer.conf), and
everything from itself; Attic's API and bazel-remote admit their ports from the namespace, the jobs namespace
and (Attic) the ingress controller. The database is left to CloudNativePG (its operator reaches instances on its
own ports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.kube import standard_labels

DNS_PORT = 53
INGRESS_CONTROLLER_PORTS = (80, 443)
# Cloud metadata endpoints hand out node credentials: job pods never reach them.
METADATA_ENDPOINTS = {"0.0.0.0/0": ["169.254.169.254/32"], "::/0": ["fd00:ec2::254/128"]}
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """Pods (by their selector labels, in ``namespace``) and the TCP ports a client may reach on them."""

    name: str
    namespace: str
    selector: Mapping[str, str]
    ports: tuple[int, ...]


@dataclass(frozen=True)
class IngressController:
    """The ingress controller's pods; jobs reach Attic's ingress URL through them."""

    namespace: str
    pod_labels: Mapping[str, str]
    ports: tuple[int, ...] = field(default=INGRESS_CONTROLLER_PORTS)


def _namespace(name: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_LABEL: name})


def _pods_in(namespace: str, labels: Mapping[str, str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=_namespace(namespace),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels)),
    )


def _tcp(ports: Sequence[int]) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


def job_egress_rules(
    endpoints: Sequence[Endpoint], ingress_controller: IngressController | None
) -> list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]:
    """DNS, each cache endpoint's pods and ports, the ingress controller, and the internet minus metadata."""
    dns_ports = [k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=DNS_PORT) for p in ("UDP", "TCP")]
    rules = [k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=dns_ports)]
    for endpoint in endpoints:
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_pods_in(endpoint.namespace, endpoint.selector)], ports=_tcp(endpoint.ports)
            )
        )
    if ingress_controller is not None:
        rules.append(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_pods_in(ingress_controller.namespace, ingress_controller.pod_labels)],
                ports=_tcp(ingress_controller.ports),
            )
        )
    internet = [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr, except_=excluded))
        for cidr, excluded in METADATA_ENDPOINTS.items()
    ]
    rules.append(k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=internet))
    return rules


def endpoint_ingress_rules(
    endpoint: Endpoint, jobs_namespace: str | None, ingress_controller: IngressController | None
) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    """The endpoint's ports from pods of its own namespace, the jobs namespace and the ingress controller."""
    peers = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())]
    if jobs_namespace is not None:
        peers.append(k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=_namespace(jobs_namespace)))
    if ingress_controller is not None:
        peers.append(_pods_in(ingress_controller.namespace, ingress_controller.pod_labels))
    return [k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=_tcp(endpoint.ports))]


def seaweedfs_ingress_rules(
    selector: Mapping[str, str],
    s3_port: int,
    bucket_job: Mapping[str, str],
    filer_port: int,
    jobs_namespace: str | None = None,
) -> list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]:
    """S3 from the namespace's pods (scoped identities) and the jobs namespace (Attic's presigned NAR URLs); the
    filer's HTTP port from the bucket Job (it writes filer.conf); master, volume and filer ports otherwise only
    from itself."""
    s3_peers = [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())]
    if jobs_namespace is not None:
        s3_peers.append(k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=_namespace(jobs_namespace)))
    return [
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(bucket_job))
                )
            ],
            ports=_tcp([filer_port]),
        ),
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=s3_peers, ports=_tcp([s3_port])),
        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector))
                )
            ]
        ),
    ]


@dataclass(frozen=True)
class GuardedPods:
    """One platform workload and the ingress rules its pods get."""

    name: str
    selector: Mapping[str, str]
    rules: list[k8s.networking.v1.NetworkPolicyIngressRuleArgs]


class PlatformIngressPolicies(pulumi.ComponentResource):
    """An ingress NetworkPolicy per guarded platform workload, in the platform namespace."""

    def __init__(
        self, name: str, namespace: str, guarded: Sequence[GuardedPods], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flywheel:index:PlatformIngressPolicies", name, None, opts)
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{pods.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{pods.name}-ingress",
                    namespace=namespace,
                    labels=standard_labels(f"{pods.name}-ingress", "platform-network"),
                ),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pods.selector)),
                    policy_types=["Ingress"],
                    ingress=pods.rules,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for pods in guarded
        ]
        self.register_outputs({"policies": [f"{pods.name}-ingress" for pods in guarded]})
