"""Self-hosted GitLab runners: one group runner + `gitlab-runner` Helm release per pool, jobs in their own namespace.

Where things run, and why:
- Runner managers (the chart's Deployments, their token Secrets and ServiceAccount) live in the cache
  namespace; job pods live in the jobs namespace. Untrusted job pods (some privileged) then share a
  namespace with nothing but other jobs, the ResourceQuota counts only jobs, and the deny-ingress policy
  can select every pod of the namespace.
- RBAC is ours, not the chart's (`rbac.create: false`): one Role in the jobs namespace with the verbs the
  Kubernetes executor needs, bound to the managers' ServiceAccount. No ClusterRole, nothing in the cache
  namespace, and the rules are visible to the policy pack.
- Job pods run as the `ci-job` ServiceAccount, which mounts no API token.

The runner's job environment (`[[runners]] environment`) carries the CacheContract, so every job on these
runners gets `BAZEL_REMOTE_CACHE`, `GF_BAZEL_SUBSTRATE_MODE=shared-cache-backed` and the Attic settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_gitlab
import pulumi_kubernetes as k8s
import tomli_w

from components.config import GitlabConfig, JobsQuota, Resources, RunnerFleetConfig, RunnerPoolConfig
from components.config_types import parse_quantity
from components.contract import CacheContract
from components.kube import secret_data, standard_labels
from components.network_policies import Endpoint, IngressController, job_egress_rules

CHART = "gitlab-runner"
MANAGER_SERVICE_ACCOUNT = "gitlab-runner"
EXECUTOR_ROLE = "gitlab-runner-executor"
JOB_SERVICE_ACCOUNT = "ci-job"
# Keys of the token Secret the chart reads (`runners.secret`). Some chart versions only register an
# authentication token (glrt-...) when it is under both keys, so it goes under both.
TOKEN_KEYS = ("runner-token", "runner-registration-token")
# What the Kubernetes executor needs in the jobs namespace (GitLab Runner docs, "Configure runner API
# permissions", attach strategy, without namespace-per-job).
EXECUTOR_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("events", ("list", "watch")),
    ("pods", ("create", "delete", "get", "list", "watch")),
    ("pods/attach", ("create", "delete", "get", "patch")),
    ("pods/exec", ("create", "delete", "get", "patch")),
    ("pods/log", ("get", "list")),
    ("secrets", ("create", "delete", "get", "update")),
    ("serviceaccounts", ("get",)),
    ("services", ("create", "get")),
)
# Containers the runner adds beside the build container (helper, services) get these unless they say otherwise.
HELPER_DEFAULT_LIMITS = {"cpu": "1", "memory": "1Gi"}
HELPER_DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
HELM_RELEASE_NAME_MAX = 53
CACHE_INJECTION_LABEL = "flywheel.dev/cache-injection"


# --- pure rendering -----------------------------------------------------------------------------


def release_name(pool: RunnerPoolConfig) -> str:
    name = f"runner-{pool.name}"
    if len(name) > HELM_RELEASE_NAME_MAX:
        raise ValueError(
            f"runner pool name '{pool.name}' is too long for a Helm release "
            f"(got {len(name)} characters in '{name}'; expected at most {HELM_RELEASE_NAME_MAX})"
        )
    return name


def runner_name(pool: RunnerPoolConfig) -> str:
    return f"flywheel-{pool.name}"


def job_pod_labels(pool: RunnerPoolConfig) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "ci-job",
        "app.kubernetes.io/component": "ci-job",
        "app.kubernetes.io/instance": pool.name,
        "app.kubernetes.io/part-of": "flywheel",
        # tells the policy pack (and anyone reading a pod) whether this pool promises the cache contract
        CACHE_INJECTION_LABEL: "true" if pool.cache_injection else "false",
    }


def job_environment(pool: RunnerPoolConfig, contract_environment: Mapping[str, str]) -> dict[str, str]:
    """The pool's `[[runners]] environment`: the contract's variables (unless opted out), then the pool's own."""
    injected = dict(contract_environment) if pool.cache_injection else {}
    clash = sorted(injected.keys() & pool.environment.keys())
    if clash:  # the config model refuses these; a second guard because a clash would silently break the contract
        raise ValueError(f"pool '{pool.name}' environment redefines contract variables: {', '.join(clash)}")
    return {**injected, **dict(sorted(pool.environment.items()))}


def runner_config(pool: RunnerPoolConfig, jobs_namespace: str, environment: Mapping[str, str]) -> dict[str, Any]:
    """config.toml as data. The chart's registration adds url and token to this `[[runners]]` entry."""
    kubernetes: dict[str, Any] = {
        "namespace": jobs_namespace,
        "image": pool.image,
        "privileged": pool.privileged,
        "allow_privilege_escalation": pool.privileged,
        "service_account": JOB_SERVICE_ACCOUNT,
        "cpu_request": pool.cpu_request,
        "cpu_limit": pool.cpu_limit,
        "memory_request": pool.memory_request,
        "memory_limit": pool.memory_limit,
        "pod_labels": job_pod_labels(pool),
        **container_size("helper", pool.helper),
    }
    if pool.services is not None:
        kubernetes |= container_size("service", pool.services)
    if pool.node_selector:
        kubernetes["node_selector"] = dict(sorted(pool.node_selector.items()))
    entry: dict[str, Any] = {
        "name": runner_name(pool),
        "executor": "kubernetes",
        "limit": pool.concurrent,
        # `environment` belongs to [[runners]] itself; [runners.kubernetes] has no such key
        "environment": [f"{key}={value}" for key, value in environment.items()],
        "kubernetes": kubernetes,
    }
    return {"runners": [entry]}


def container_size(prefix: str, size: Resources) -> dict[str, str]:
    """The executor's `<prefix>_{cpu,memory}_{request,limit}` keys for the helper or service containers."""
    keys = {
        f"{prefix}_cpu_request": size.cpu_request,
        f"{prefix}_cpu_limit": size.cpu_limit,
        f"{prefix}_memory_request": size.memory_request,
        f"{prefix}_memory_limit": size.memory_limit,
    }
    return {key: value for key, value in keys.items() if value is not None}


def render_config_toml(pool: RunnerPoolConfig, jobs_namespace: str, environment: Mapping[str, str]) -> str:
    return tomli_w.dumps(runner_config(pool, jobs_namespace, environment))


def helm_template_safe(text: str) -> str:
    """The chart passes `runners.config` through Helm's `tpl`: keep a literal `{{` literal."""
    return text.replace("{{", '{{ "{{" }}')


def chart_values(
    pool: RunnerPoolConfig,
    fleet: RunnerFleetConfig,
    gitlab_config: GitlabConfig,
    token_secret_name: str,
    config_toml: str,
) -> dict[str, Any]:
    """Values of one pool's `gitlab-runner` release. The token is not here: the chart reads the Secret."""
    return {
        "fullnameOverride": release_name(pool),
        "gitlabUrl": f"{gitlab_config.url}/",
        "replicas": 1,  # one manager per authentication token
        # top-level config.toml keys are not merged from runners.config: they are chart values
        "concurrent": pool.concurrent,
        "checkInterval": fleet.check_interval,
        # unregistering with an authentication token deletes the runner in GitLab (it is a Pulumi resource)
        "unregisterRunners": False,
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": MANAGER_SERVICE_ACCOUNT},
        "metrics": {"enabled": True},
        "runners": {"secret": token_secret_name, "config": helm_template_safe(config_toml)},
        # `register` names the runner from RUNNER_NAME or the pod's hostname and merges the template's
        # [[runners]] without overriding set fields (gitlab-runner commands/register.go getHostname, mergo.Merge)
        "envVars": [{"name": "RUNNER_NAME", "value": runner_name(pool)}],
    }


def pod_security_labels(pools: Sequence[RunnerPoolConfig]) -> dict[str, str]:
    """Pod Security Admission for job pods: `baseline`, unless a pool declares privileged pods."""
    enforce = "privileged" if any(pool.privileged for pool in pools) else "baseline"
    return {
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/warn": "baseline",
        "pod-security.kubernetes.io/audit": "baseline",
    }


def executor_rules() -> list[k8s.rbac.v1.PolicyRuleArgs]:
    return [
        k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=[resource], verbs=list(verbs))
        for resource, verbs in EXECUTOR_RULES
    ]


def job_limits(pool: RunnerPoolConfig) -> tuple[float, float]:
    """(CPU cores, memory bytes) of limits one job pod holds: build + helper + one service container.

    A service is counted when the pool sizes it or is privileged (dind runs the build in `docker:dind`); a limit
    left unset is filled by the jobs LimitRange default, as the API server does.
    """
    sizes: list[tuple[str | None, str]] = [
        (pool.cpu_limit, pool.memory_limit),
        (pool.helper.cpu_limit, pool.helper.memory_limit),
    ]
    if pool.services is not None:
        sizes.append((pool.services.cpu_limit, pool.services.memory_limit))
    elif pool.privileged:
        sizes.append((HELPER_DEFAULT_LIMITS["cpu"], HELPER_DEFAULT_LIMITS["memory"]))
    cpu = sum(parse_quantity(c or HELPER_DEFAULT_LIMITS["cpu"]) for c, _m in sizes)
    return cpu, sum(parse_quantity(m) for _c, m in sizes)


def quota_shortfalls(pools: Sequence[RunnerPoolConfig], quota: JobsQuota) -> list[str]:
    """Where the pools at full concurrency need more than the jobs quota (their jobs would wait as Pending)."""
    demand_cpu = sum(pool.concurrent * job_limits(pool)[0] for pool in pools)
    demand_memory = sum(pool.concurrent * job_limits(pool)[1] for pool in pools)
    demand_pods = sum(pool.concurrent for pool in pools)
    problems = []
    if demand_cpu > parse_quantity(quota.cpu):
        problems.append(f"cpu: pools need {demand_cpu:g} cores of limits at full concurrency, quota is {quota.cpu}")
    if demand_memory > parse_quantity(quota.memory):
        problems.append(
            f"memory: pools need {demand_memory / 2**30:g}Gi of limits at full concurrency, quota is {quota.memory}"
        )
    if demand_pods > quota.pods:
        problems.append(f"pods: pools run {demand_pods} jobs at once, quota is {quota.pods}")
    return problems


# --- resources ----------------------------------------------------------------------------------


class RunnerPool(pulumi.ComponentResource):
    """One pool: its GitLab group runner, the runner's token Secret, and its `gitlab-runner` release."""

    def __init__(
        self,
        name: str,
        pool: RunnerPoolConfig,
        fleet: RunnerFleetConfig,
        gitlab_config: GitlabConfig,
        *,
        jobs_namespace: str,
        manager_namespace: str,
        contract: CacheContract,
        gitlab_provider: pulumi.ProviderResource,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flywheel:index:RunnerPool", name, None, opts)
        release = release_name(pool)
        labels = standard_labels(release, "runner")

        self.runner = pulumi_gitlab.UserRunner(
            f"{name}-runner",
            runner_type="group_type",
            group_id=gitlab_config.group_id,
            tag_lists=list(pool.tags),
            untagged=False,
            access_level="not_protected",
            description=f"flywheel runner pool '{pool.name}' (Kubernetes, managed by Pulumi)",
            opts=pulumi.ResourceOptions(parent=self, provider=gitlab_provider),
        )
        token = pulumi.Output.secret(self.runner.token)
        self.token_secret = k8s.core.v1.Secret(
            f"{name}-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{release}-token", namespace=manager_namespace, labels=labels),
            type="Opaque",
            data=secret_data(dict.fromkeys(TOKEN_KEYS, token)),
            opts=pulumi.ResourceOptions(parent=self),
        )

        contract_environment: pulumi.Output[dict[str, str]] = (
            contract.runner_environment() if pool.cache_injection else pulumi.Output.from_input({})
        )
        self.config_toml: pulumi.Output[str] = contract_environment.apply(
            lambda env: render_config_toml(pool, jobs_namespace, job_environment(pool, env))
        )
        values = self.config_toml.apply(lambda text: chart_values(pool, fleet, gitlab_config, f"{release}-token", text))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=release,
            namespace=manager_namespace,
            chart=CHART,
            version=fleet.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=fleet.chart_repository),
            values=values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.token_secret, *depends_on]),
        )
        self.register_outputs({"release": release, "config_toml": self.config_toml})


class RunnerFleet(pulumi.ComponentResource):
    """The jobs namespace with its guard rails, the executor's RBAC, and one RunnerPool per configured pool."""

    def __init__(
        self,
        name: str,
        pools: list[RunnerPoolConfig],
        fleet: RunnerFleetConfig,
        gitlab: GitlabConfig,
        jobs_namespace: str,
        contract: CacheContract,
        gitlab_provider: pulumi.ProviderResource,
        opts: pulumi.ResourceOptions | None = None,
        *,
        manager_namespace: str,
        job_endpoints: Sequence[Endpoint] = (),
        ingress_controller: IngressController | None = None,
    ) -> None:
        super().__init__("flywheel:index:RunnerFleet", name, None, opts)
        if manager_namespace == jobs_namespace:
            raise ValueError(f"runner managers and job pods must not share namespace '{jobs_namespace}'")
        for problem in quota_shortfalls(pools, fleet.jobs_quota):
            pulumi.log.warn(f"flywheel:runnerFleet.jobsQuota: {problem}; jobs beyond it wait as Pending", self)
        child = pulumi.ResourceOptions(parent=self)

        def metadata(object_name: str, namespace: str, component: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=namespace, labels=standard_labels(object_name, component)
            )

        self.jobs_namespace = k8s.core.v1.Namespace(
            f"{name}-jobs",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=jobs_namespace,
                labels={**standard_labels(jobs_namespace, "ci-jobs-namespace"), **pod_security_labels(pools)},
            ),
            opts=child,
        )
        in_jobs = pulumi.ResourceOptions(parent=self, depends_on=[self.jobs_namespace])
        quota = fleet.jobs_quota
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=metadata("ci-jobs", jobs_namespace, "ci-jobs-quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "limits.cpu": quota.cpu,
                    "limits.memory": quota.memory,
                    "requests.cpu": quota.cpu,
                    "requests.memory": quota.memory,
                    "pods": str(quota.pods),
                }
            ),
            opts=in_jobs,
        )
        self.limit_range = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=metadata("ci-jobs", jobs_namespace, "ci-jobs-limits"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container", default=HELPER_DEFAULT_LIMITS, default_request=HELPER_DEFAULT_REQUESTS
                    )
                ]
            ),
            opts=in_jobs,
        )
        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-deny-foreign-ingress",
                metadata=metadata("ci-jobs-deny-foreign-ingress", jobs_namespace, "ci-jobs-network"),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                    policy_types=["Ingress"],
                    # only pods of this namespace; nothing from outside reaches a job pod
                    ingress=[
                        k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                            from_=[
                                k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())
                            ]
                        )
                    ],
                ),
                opts=in_jobs,
            ),
            k8s.networking.v1.NetworkPolicy(
                f"{name}-egress",
                metadata=metadata("ci-jobs-egress", jobs_namespace, "ci-jobs-network"),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                    policy_types=["Egress"],
                    egress=job_egress_rules(job_endpoints, ingress_controller),
                ),
                opts=in_jobs,
            ),
        ]
        self.job_service_account = k8s.core.v1.ServiceAccount(
            f"{name}-job-sa",
            metadata=metadata(JOB_SERVICE_ACCOUNT, jobs_namespace, "ci-job"),
            automount_service_account_token=False,
            opts=in_jobs,
        )
        self.manager_service_account = k8s.core.v1.ServiceAccount(
            f"{name}-manager-sa",
            metadata=metadata(MANAGER_SERVICE_ACCOUNT, manager_namespace, "runner"),
            opts=child,
        )
        self.role = k8s.rbac.v1.Role(
            f"{name}-executor-role",
            metadata=metadata(EXECUTOR_ROLE, jobs_namespace, "runner"),
            rules=executor_rules(),
            opts=in_jobs,
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-executor-binding",
            metadata=metadata(EXECUTOR_ROLE, jobs_namespace, "runner"),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=EXECUTOR_ROLE),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=MANAGER_SERVICE_ACCOUNT, namespace=manager_namespace
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role, self.manager_service_account]),
        )

        ready = [self.role_binding, self.job_service_account, self.quota, self.limit_range]
        self.pools: dict[str, RunnerPool] = {
            pool.name: RunnerPool(
                f"{name}-{pool.name}",
                pool,
                fleet,
                gitlab,
                jobs_namespace=jobs_namespace,
                manager_namespace=manager_namespace,
                contract=contract,
                gitlab_provider=gitlab_provider,
                depends_on=ready,
                opts=child,
            )
            for pool in pools
        }
        self.rendered_files: dict[str, pulumi.Input[str]] = {
            f"runners/{pool_name}/config.toml": runner_pool.config_toml for pool_name, runner_pool in self.pools.items()
        }
        self.register_outputs({"pools": sorted(self.pools), "jobs_namespace": jobs_namespace})
