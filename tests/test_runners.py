"""Runner fleet: config.toml carries the cache contract in `[[runners]] environment`, RBAC stays in the jobs namespace.

Every config.toml is parsed back with `tomllib`. The fleet runs under the Pulumi mock monitor (tools.mocks)
with a CacheContract of literal strings; manifests are validated against Kubernetes 1.31 (strict).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.config import GitlabConfig, JobsQuota, RunnerFleetConfig, RunnerPoolConfig
from components.contract import CacheContract
from components.runners import (
    EXECUTOR_RULES,
    RunnerFleet,
    chart_values,
    helm_template_safe,
    job_environment,
    pod_security_labels,
    quota_shortfalls,
    release_name,
    render_config_toml,
)
from policies.evaluate import evaluate_resources
from tests.conftest import dev_value, register
from tests.k8s_schema import schema_errors
from tests.test_config import problems_for, with_change
from tools.render import REDACTED, kubernetes_objects

CONTRACT = CacheContract(
    attic_url="https://attic.example.com",
    cache_name="main",
    public_key="main:0cBmWmpVqbQeaHM7q0G8Wq3ZFFkG9Z1b0ES2A7m8Rz4=",
    bazel_remote_cache="grpc://bazel-cache.flywheel.svc.cluster.local:9092",
)
CONTRACT_VARIABLES = {
    "BAZEL_REMOTE_CACHE": "grpc://bazel-cache.flywheel.svc.cluster.local:9092",
    "GF_BAZEL_SUBSTRATE_MODE": "shared-cache-backed",
    "ATTIC_SERVER": "https://attic.example.com",
    "ATTIC_CACHE": "main",
    "ATTIC_PUBLIC_KEY": "main:0cBmWmpVqbQeaHM7q0G8Wq3ZFFkG9Z1b0ES2A7m8Rz4=",
}
GITLAB = GitlabConfig.model_validate(dev_value("gitlab"))
DEV_POOLS = [RunnerPoolConfig.model_validate(pool) for pool in dev_value("runners")]


def environment_of(document: dict[str, Any]) -> dict[str, str]:
    entries = document["runners"][0]["environment"]
    return dict(entry.split("=", 1) for entry in entries)


def pool_named(name: str, **changes: Any) -> RunnerPoolConfig:
    return RunnerPoolConfig.model_validate({"name": name, "tags": [f"flywheel-{name}"], **changes})


# --- pure rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize("pool", DEV_POOLS, ids=lambda p: p.name)
def test_config_toml_parses_with_environment_in_runners_and_contract_values(pool: RunnerPoolConfig) -> None:
    text = render_config_toml(pool, "flywheel-jobs", job_environment(pool, CONTRACT_VARIABLES))
    document = tomllib.loads(text)
    assert len(document["runners"]) == 1
    runner = document["runners"][0]
    kubernetes = runner["kubernetes"]
    assert runner["executor"] == "kubernetes"
    assert kubernetes["namespace"] == "flywheel-jobs"
    assert kubernetes["image"] == pool.image
    assert "environment" not in kubernetes
    environment = environment_of(document)
    assert {k: environment[k] for k in CONTRACT_VARIABLES} == CONTRACT_VARIABLES
    for key, value in pool.environment.items():
        assert environment[key] == value
    assert kubernetes["privileged"] is pool.privileged
    assert kubernetes["allow_privilege_escalation"] is pool.privileged
    assert (kubernetes["cpu_limit"], kubernetes["memory_limit"]) == (pool.cpu_limit, pool.memory_limit)
    assert (kubernetes["cpu_request"], kubernetes["memory_request"]) == (pool.cpu_request, pool.memory_request)
    assert runner["limit"] == pool.concurrent


def test_environment_is_not_swallowed_by_the_kubernetes_table_in_the_text() -> None:
    # the string-template failure mode: `environment = ...` written after the [runners.kubernetes] header
    text = render_config_toml(DEV_POOLS[0], "jobs", job_environment(DEV_POOLS[0], CONTRACT_VARIABLES))
    lines = text.splitlines()
    environment_line = next(i for i, line in enumerate(lines) if line.startswith("environment ="))
    kubernetes_header = lines.index("[runners.kubernetes]")
    assert environment_line < kubernetes_header


def test_privileged_only_where_declared() -> None:
    rendered = {
        pool.name: tomllib.loads(render_config_toml(pool, "jobs", {}))["runners"][0]["kubernetes"]["privileged"]
        for pool in DEV_POOLS
    }
    assert rendered == {"nix": False, "docker": False, "dind": True}


def test_cache_injection_false_gets_no_cache_variables_but_keeps_its_own() -> None:
    pool = pool_named("plain", cacheInjection=False, environment={"FOO": "bar"})
    document = tomllib.loads(render_config_toml(pool, "jobs", job_environment(pool, CONTRACT_VARIABLES)))
    assert environment_of(document) == {"FOO": "bar"}
    assert document["runners"][0]["kubernetes"]["pod_labels"]["flywheel.dev/cache-injection"] == "false"
    cached = tomllib.loads(render_config_toml(DEV_POOLS[0], "jobs", {}))["runners"][0]["kubernetes"]
    assert cached["pod_labels"]["flywheel.dev/cache-injection"] == "true"


def test_without_bazel_cache_the_contract_injects_only_attic() -> None:
    contract = CacheContract(attic_url="https://a", cache_name="c", public_key="c:k", bazel_remote_cache=None)
    environment: dict[str, str] = {}

    async def read() -> None:
        environment.update(await contract.runner_environment().future() or {})

    register(read)
    assert environment == {"ATTIC_SERVER": "https://a", "ATTIC_CACHE": "c", "ATTIC_PUBLIC_KEY": "c:k"}


def test_node_selector_is_a_table_of_the_kubernetes_section() -> None:
    pool = pool_named("gpu", nodeSelector={"nvidia.com/gpu.present": "true", "pool": "gpu"})
    kubernetes = tomllib.loads(render_config_toml(pool, "jobs", {}))["runners"][0]["kubernetes"]
    assert kubernetes["node_selector"] == {"nvidia.com/gpu.present": "true", "pool": "gpu"}
    assert (
        "node_selector"
        not in tomllib.loads(render_config_toml(pool_named("x"), "jobs", {}))["runners"][0]["kubernetes"]
    )


def test_values_that_need_toml_escaping_round_trip() -> None:
    tricky = 'experimental-features = nix-command flakes\nsubstituters = "https://a b"\\'
    pool = pool_named("nix", environment={"NIX_CONFIG": tricky})
    text = render_config_toml(pool, "jobs", job_environment(pool, {}))
    assert environment_of(tomllib.loads(text))["NIX_CONFIG"] == tricky


def test_helm_tpl_escaping_keeps_literal_braces_and_leaves_plain_text_alone() -> None:
    assert helm_template_safe('a = "x"') == 'a = "x"'
    assert helm_template_safe("a = '{{ .Release.Name }}'") == "a = '{{ \"{{\" }} .Release.Name }}'"
    pool = pool_named("t", environment={"TEMPLATE": "{{ x }}"})
    text = render_config_toml(pool, "jobs", job_environment(pool, {}))
    values = chart_values(pool, RunnerFleetConfig(), GITLAB, "runner-t-token", text)
    assert "{{ x }}" in text
    assert '{{ "{{" }} x }}' in values["runners"]["config"]


def test_contract_key_in_pool_environment_is_refused() -> None:
    pool = RunnerPoolConfig.model_construct(
        name="p", tags=["t"], environment={"BAZEL_REMOTE_CACHE": "x"}, cache_injection=True
    )
    with pytest.raises(ValueError, match="BAZEL_REMOTE_CACHE"):
        job_environment(pool, CONTRACT_VARIABLES)


def test_chart_values_carry_no_token_and_pin_the_chart_settings() -> None:
    pool = DEV_POOLS[0]
    values = chart_values(pool, RunnerFleetConfig(check_interval=7), GITLAB, "runner-nix-token", "x = 1\n")
    assert values["runners"] == {"secret": "runner-nix-token", "config": "x = 1\n"}
    assert values["concurrent"] == pool.concurrent
    assert values["checkInterval"] == 7
    assert values["rbac"] == {"create": False}
    assert values["metrics"] == {"enabled": True}
    assert values["unregisterRunners"] is False
    assert values["gitlabUrl"] == "https://gitlab.example.com/"
    assert not {"runnerToken", "runnerRegistrationToken"} & values.keys()
    # register names the runner from RUNNER_NAME (else the pod's hostname); the template's name never wins
    assert values["envVars"] == [{"name": "RUNNER_NAME", "value": f"flywheel-{pool.name}"}]


def test_release_names_fit_helm() -> None:
    assert release_name(pool_named("a" * 46)) == "runner-" + "a" * 46
    with pytest.raises(ValueError, match="at most 53"):  # the config model refuses it earlier; a second guard
        release_name(RunnerPoolConfig.model_construct(name="a" * 47, tags=["t"]))


def test_jobs_namespace_enforces_baseline_pod_security_unless_a_pool_is_privileged() -> None:
    enforce = "pod-security.kubernetes.io/enforce"
    assert pod_security_labels([pool_named("a"), pool_named("b")])[enforce] == "baseline"
    assert pod_security_labels([pool_named("a"), pool_named("b", privileged=True)])[enforce] == "privileged"
    resources, _ = build_fleet([pool_named("a")])
    namespace = next(m for m in kubernetes_objects(resources) if m["kind"] == "Namespace")
    assert namespace["metadata"]["labels"][enforce] == "baseline"


def test_quota_shortfalls_are_reported_per_resource() -> None:
    # per job: build 4 CPU / 8Gi + helper 500m / 256Mi (its default)
    pools = [pool_named("a", concurrent=10, cpuLimit="4", memoryLimit="8Gi")]
    assert quota_shortfalls(pools, JobsQuota(cpu="45", memory="82.5Gi", pods=10)) == []
    problems = quota_shortfalls(pools, JobsQuota(cpu="44", memory="82Gi", pods=9))
    assert [p.split(":")[0] for p in problems] == ["cpu", "memory", "pods"]
    assert "45 cores" in problems[0] and "82.5Gi" in problems[1]


def test_quota_counts_the_service_container_of_privileged_and_sized_pools() -> None:
    dind = pool_named("d", concurrent=2, privileged=True, cpuLimit="4", memoryLimit="8Gi")
    # unsized service of a privileged pool: the LimitRange default (1 CPU, 1Gi)
    assert quota_shortfalls([dind], JobsQuota(cpu="11", memory="18.5Gi", pods=2)) == []
    assert len(quota_shortfalls([dind], JobsQuota(cpu="10.9", memory="18.4Gi", pods=2))) == 2
    sized = pool_named(
        "s", concurrent=2, services={"cpuRequest": "1", "cpuLimit": "3", "memoryRequest": "1Gi", "memoryLimit": "6Gi"}
    )
    assert quota_shortfalls([sized], JobsQuota(cpu="11", memory="20.5Gi", pods=2)) == []
    assert len(quota_shortfalls([sized], JobsQuota(cpu="10.9", memory="20Gi", pods=2))) == 2


def test_config_toml_sizes_helper_and_service_containers_with_the_executor_keys() -> None:
    services = {"cpuRequest": "1", "cpuLimit": "4", "memoryRequest": "2Gi", "memoryLimit": "8Gi"}
    pool = pool_named("d", privileged=True, services=services)
    kubernetes = tomllib.loads(render_config_toml(pool, "jobs", {}))["runners"][0]["kubernetes"]
    assert {
        k: v
        for k, v in kubernetes.items()
        if k.endswith(("_request", "_limit")) and not k.startswith(("cpu", "memory"))
    } == {
        "service_cpu_request": "1",
        "service_cpu_limit": "4",
        "service_memory_request": "2Gi",
        "service_memory_limit": "8Gi",
        "helper_cpu_request": "100m",
        "helper_cpu_limit": "500m",
        "helper_memory_request": "128Mi",
        "helper_memory_limit": "256Mi",
    }
    unsized = tomllib.loads(render_config_toml(pool_named("a"), "jobs", {}))["runners"][0]["kubernetes"]
    assert not any(key.startswith("service_") and key.endswith(("_request", "_limit")) for key in unsized)


# --- the fleet under mocks ------------------------------------------------------------------------


def build_fleet(
    pools: list[RunnerPoolConfig], fleet: RunnerFleetConfig | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    files: dict[str, str] = {}

    async def build() -> None:
        provider = pulumi.ProviderResource("gitlab", "gitlab")
        runner_fleet = RunnerFleet(
            "runners",
            pools,
            fleet or RunnerFleetConfig(),
            GITLAB,
            "flywheel-jobs",
            CONTRACT,
            provider,
            manager_namespace="flywheel",
        )
        for path, content in runner_fleet.rendered_files.items():
            files[path] = await pulumi.Output.from_input(content).future()  # type: ignore[assignment]

    return register(build), files


@pytest.fixture(scope="module")
def dev_fleet() -> tuple[list[dict[str, Any]], dict[str, str]]:
    return build_fleet(DEV_POOLS)


def of_type(resources: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"].endswith(suffix)]


def test_each_pool_is_a_group_runner_with_its_tags_and_no_untagged_jobs(dev_fleet: Any) -> None:
    resources, _ = dev_fleet
    runners = {r["inputs"]["description"]: r["inputs"] for r in of_type(resources, "UserRunner")}
    assert len(runners) == len(DEV_POOLS)
    for pool in DEV_POOLS:
        runner = next(inputs for description, inputs in runners.items() if f"'{pool.name}'" in description)
        assert runner["runnerType"] == "group_type"
        assert runner["groupId"] == GITLAB.group_id
        assert runner["tagLists"] == pool.tags
        assert runner["untagged"] is False


def test_token_goes_into_a_secret_in_the_chart_layout_and_nowhere_else(dev_fleet: Any) -> None:
    resources, files = dev_fleet
    secrets = {m["metadata"]["name"]: m for m in kubernetes_objects(resources) if m["kind"] == "Secret"}
    releases = {r["inputs"]["name"]: r["inputs"] for r in of_type(resources, "helm.sh/v3:Release")}
    assert len(releases) == len(DEV_POOLS)
    for release, inputs in releases.items():
        # a secret anywhere in the values taints the whole map: every leaf would read REDACTED
        assert REDACTED not in json.dumps(inputs["values"])
        secret = secrets[inputs["values"]["runners"]["secret"]]
        assert secret["metadata"]["namespace"] == inputs["namespace"]
        assert "stringData" not in secret  # data only: see components/kube.py secret_data
        assert secret["data"] == {"runner-token": REDACTED, "runner-registration-token": REDACTED}
        assert release.startswith("runner-")
    # the mock's token has the glrt- shape; it must appear in no recorded input nor rendered file
    everything = json.dumps(resources) + json.dumps(files)
    assert "glrt-" not in everything


def test_release_values_pin_the_chart_and_carry_the_rendered_config(dev_fleet: Any) -> None:
    resources, files = dev_fleet
    for release in of_type(resources, "helm.sh/v3:Release"):
        inputs = release["inputs"]
        pool_name = inputs["name"].removeprefix("runner-")
        assert inputs["chart"] == "gitlab-runner"
        assert inputs["version"] == RunnerFleetConfig().chart_version
        assert inputs["repositoryOpts"] == {"repo": "https://charts.gitlab.io"}
        assert inputs["namespace"] == "flywheel"
        assert inputs["values"]["serviceAccount"] == {"create": False, "name": "gitlab-runner"}
        assert inputs["values"]["runners"]["config"] == files[f"runners/{pool_name}/config.toml"]


def test_rendered_files_hold_every_pool_with_the_contract(dev_fleet: Any) -> None:
    _, files = dev_fleet
    assert set(files) == {f"runners/{pool.name}/config.toml" for pool in DEV_POOLS}
    for text in files.values():
        document = tomllib.loads(text)
        assert {k: environment_of(document)[k] for k in CONTRACT_VARIABLES} == CONTRACT_VARIABLES


def test_rbac_is_limited_to_the_jobs_namespace(dev_fleet: Any) -> None:
    resources, _ = dev_fleet
    manifests = kubernetes_objects(resources)
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    roles = [m for m in manifests if m["kind"] == "Role"]
    bindings = [m for m in manifests if m["kind"] == "RoleBinding"]
    assert [r["metadata"]["namespace"] for r in roles + bindings] == ["flywheel-jobs", "flywheel-jobs"]
    rules = {rule["resources"][0]: rule["verbs"] for rule in roles[0]["rules"]}
    assert rules == {resource: list(verbs) for resource, verbs in EXECUTOR_RULES}
    assert all("*" not in verbs for verbs in rules.values())
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": "gitlab-runner", "namespace": "flywheel"}]
    assert bindings[0]["roleRef"]["name"] == roles[0]["metadata"]["name"]
    accounts = {
        (m["metadata"]["namespace"], m["metadata"]["name"]): m for m in manifests if m["kind"] == "ServiceAccount"
    }
    assert accounts[("flywheel-jobs", "ci-job")]["automountServiceAccountToken"] is False
    assert ("flywheel", "gitlab-runner") in accounts


def test_jobs_namespace_has_quota_limit_range_and_network_policies(dev_fleet: Any) -> None:
    resources, _ = dev_fleet
    manifests = kubernetes_objects(resources)
    namespaces = [m for m in manifests if m["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["flywheel-jobs"]
    in_jobs = [m for m in manifests if m["metadata"].get("namespace") == "flywheel-jobs"]
    quota = next(m for m in in_jobs if m["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"] == {
        "limits.cpu": "64",
        "limits.memory": "256Gi",
        "requests.cpu": "64",
        "requests.memory": "256Gi",
        "pods": "200",
    }
    limit_range = next(m for m in in_jobs if m["kind"] == "LimitRange")
    assert limit_range["spec"]["limits"][0]["default"] and limit_range["spec"]["limits"][0]["defaultRequest"]
    policies = {m["metadata"]["name"]: m["spec"] for m in in_jobs if m["kind"] == "NetworkPolicy"}
    ingress = policies["ci-jobs-deny-foreign-ingress"]
    assert ingress["podSelector"] == {} and ingress["policyTypes"] == ["Ingress"]
    # one rule whose only peer is "a pod of this namespace": no namespaceSelector, no ipBlock
    assert ingress["ingress"] == [{"from": [{"podSelector": {}}]}]
    egress = policies["ci-jobs-egress"]
    peers = [peer for rule in egress["egress"] for peer in rule.get("to", [])]
    # no peer allows a whole namespace: in-cluster peers always name their pods
    assert all("podSelector" in peer for peer in peers if "namespaceSelector" in peer)
    blocks = {p["ipBlock"]["cidr"]: p["ipBlock"].get("except", []) for p in peers if "ipBlock" in p}
    assert blocks["0.0.0.0/0"] == ["169.254.169.254/32"]
    assert any(rule.get("ports") and "to" not in rule for rule in egress["egress"])  # DNS


def test_fleet_manifests_are_valid_kubernetes_1_31_with_name_namespace_and_labels(dev_fleet: Any) -> None:
    resources, _ = dev_fleet
    manifests = kubernetes_objects(resources)
    assert schema_errors(manifests) == []
    for manifest in manifests:
        assert manifest["metadata"]["name"]
        assert manifest["kind"] == "Namespace" or manifest["metadata"]["namespace"]
        assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flywheel"


def test_cache_injection_false_pool_in_a_fleet_gets_no_cache_variables() -> None:
    pools = [pool_named("cached"), pool_named("bare", cacheInjection=False)]
    _, files = build_fleet(pools)
    cached = environment_of(tomllib.loads(files["runners/cached/config.toml"]))
    bare = environment_of(tomllib.loads(files["runners/bare/config.toml"]))
    assert cached == CONTRACT_VARIABLES
    assert bare == {}


def test_twenty_pools_register_distinct_runners_releases_and_files() -> None:
    pools = [pool_named(f"pool-{i:02d}", concurrent=1) for i in range(20)]
    resources, files = build_fleet(pools)
    assert len(of_type(resources, "UserRunner")) == 20
    assert len({r["inputs"]["name"] for r in of_type(resources, "helm.sh/v3:Release")}) == 20
    assert len(files) == 20
    assert schema_errors(kubernetes_objects(resources)) == []


# --- the whole program (tests.conftest.render: the dev stack with overrides, under the mocks) ------


def _render_environment(result: Any, pool: str) -> dict[str, str]:
    return environment_of(tomllib.loads(result.files[f"runners/{pool}/config.toml"]))


def _group_values(result: Any) -> dict[str, Any]:
    variables = [r for r in result.resources if r["type"] == "gitlab:index/groupVariable:GroupVariable"]
    return {r["inputs"]["key"]: r["inputs"]["value"] for r in variables}


@pytest.mark.parametrize("count", [1, 20])
def test_pool_lists_of_1_and_20_render_with_the_stack_contract(
    render: Callable[[dict[str, Any]], Any], count: int
) -> None:
    # every pool also carries the dev stack's template tags (the config wants one pool to take the template's jobs)
    pools = [
        {"name": f"pool-{i:02d}", "tags": ["flywheel-nix", f"flywheel-{i:02d}"], "concurrent": 1} for i in range(count)
    ]
    result = render({"runners": pools})
    files = sorted(path for path in result.files if path.startswith("runners/"))
    assert files == [f"runners/pool-{i:02d}/config.toml" for i in range(count)]
    assert len([r for r in result.resources if r["type"] == "gitlab:index/userRunner:UserRunner"]) == count
    group = _group_values(result)
    bazel_service = next(
        m
        for m in kubernetes_objects(result.resources)
        if m["kind"] == "Service" and m["metadata"]["name"] == "bazel-cache"
    )
    for i in range(count):
        env = _render_environment(result, f"pool-{i:02d}")
        # the runners and the group variables agree, and the bazel URL names the bazel Service of this stack
        assert {k: env[k] for k in ("ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY")} == {
            k: group[k] for k in ("ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY")
        }
        assert env["BAZEL_REMOTE_CACHE"] == (
            f"grpc://{bazel_service['metadata']['name']}.{bazel_service['metadata']['namespace']}"
            ".svc.cluster.local:9092"
        )
        assert env["GF_BAZEL_SUBSTRATE_MODE"] == "shared-cache-backed"
    mine = [
        m
        for m in kubernetes_objects(result.resources)
        if m["metadata"].get("namespace") == "flywheel-jobs" or m["kind"] in {"Namespace", "ServiceAccount"}
    ]
    assert schema_errors(mine) == []


def test_cache_injection_false_pool_renders_without_cache_variables(render: Callable[[dict[str, Any]], Any]) -> None:
    result = render(
        {
            "runners": [
                {"name": "cached", "tags": ["flywheel-nix"]},
                {"name": "bare", "tags": ["b"], "cacheInjection": False, "environment": {"FOO": "bar"}},
            ]
        }
    )
    assert set(CONTRACT_VARIABLES) <= _render_environment(result, "cached").keys()
    assert _render_environment(result, "bare") == {"FOO": "bar"}
    # the policy pack sees the opt-out (job pod label) and does not flag the bare pool
    assert evaluate_resources(result.resources) == []


def test_without_the_bazel_cache_runners_inject_only_attic(
    render: Callable[[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config refuses this pairing (it names cacheInjection: false); the fleet still never injects a dead URL."""
    monkeypatch.setattr("components.config._cross_area_problems", lambda config: [])
    result = render({"bazelCache": {"enabled": False}})
    assert not [r for r in result.resources if r["type"] == "flywheel:index:BazelRemoteCache"]
    for pool in DEV_POOLS:
        env = _render_environment(result, pool.name)
        assert not {"BAZEL_REMOTE_CACHE", "GF_BAZEL_SUBSTRATE_MODE"} & env.keys()
        assert {"ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY"} <= env.keys()


def test_pool_name_too_long_for_a_helm_release_is_refused_at_config_time() -> None:
    problems = problems_for(with_change("runners[0].name", "a" * 47))
    assert problems == [
        f"flywheel:runners[0].name: string should have at most 46 characters (got '{'a' * 47}'; "
        "expected Pool name (DNS-1123 label, unique); names the runner and its release)"
    ]
    assert release_name(RunnerPoolConfig.model_validate({"name": "a" * 46, "tags": ["t"]})) == "runner-" + "a" * 46
