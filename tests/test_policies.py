"""The policy pack over the dev stack's real render: clean as rendered, and each policy refuses a seeded violation.

Violations are seeded by mutating the dev config (rendered again through the real program under mocks)
or by editing the recorded resources, the way someone would hand-edit a resources.json.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from typing import Any

import pytest
import tomli_w
import yaml

from policies.evaluate import evaluate_resources
from policies.flywheel_policies import POLICIES
from tests.conftest import dev_value
from tools.render import RenderResult

Resources = list[dict[str, Any]]

RELEASE = "kubernetes:helm.sh/v3:Release"
GROUP_VARIABLE = "gitlab:index/groupVariable:GroupVariable"


# --- helpers over recorded resources -------------------------------------------------------------


def records(render: RenderResult) -> Resources:
    return copy.deepcopy(render.resources)


def of_type(resources: Resources, typ: str) -> Resources:
    return [r for r in resources if r["type"] == typ]


def one(resources: Resources, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    found = [r for r in resources if predicate(r)]
    assert len(found) == 1, [r["urn"] for r in found]
    return found[0]


def runner_release(resources: Resources, pool: str) -> dict[str, Any]:
    return one(resources, lambda r: r["type"] == RELEASE and r["inputs"].get("name") == f"runner-{pool}")


def edit_config_toml(release: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    document = tomllib.loads(release["inputs"]["values"]["runners"]["config"])
    edit(document)
    release["inputs"]["values"]["runners"]["config"] = tomli_w.dumps(document)


def set_env(document: dict[str, Any], key: str, value: str | None) -> None:
    runner = document["runners"][0]
    env = [item for item in runner["environment"] if not item.startswith(f"{key}=")]
    runner["environment"] = env + ([f"{key}={value}"] if value is not None else [])


def group_variable(resources: Resources, key: str) -> dict[str, Any]:
    return one(resources, lambda r: r["type"] == GROUP_VARIABLE and r["inputs"].get("key") == key)


def gc_cronjob(resources: Resources) -> dict[str, Any]:
    return one(resources, lambda r: r["type"] == "kubernetes:batch/v1:CronJob" and "garbage-collector-once" in str(r))


def server_toml_configmap(resources: Resources) -> dict[str, Any]:
    return one(
        resources,
        lambda r: r["type"] == "kubernetes:core/v1:ConfigMap" and "server.toml" in r["inputs"].get("data", {}),
    )


def edit_server_toml(resources: Resources, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    configmap = server_toml_configmap(resources)
    document = tomllib.loads(configmap["inputs"]["data"]["server.toml"])
    edit(document)
    configmap["inputs"]["data"]["server.toml"] = tomli_w.dumps(document)
    return configmap


def template_file(resources: Resources) -> dict[str, Any]:
    return one(
        resources,
        lambda r: (
            r["type"] == "gitlab:index/repositoryFile:RepositoryFile" and r["inputs"]["filePath"].endswith(".yml")
        ),
    )


def violations(resources: Resources, policy: str, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    found = evaluate_resources(resources, config)
    crashes = [v for v in found if "failed:" in v["message"]]
    assert not crashes, crashes
    return [v for v in found if v["policyName"] == policy]


def messages(found: list[dict[str, Any]]) -> str:
    return "\n".join(v["message"] for v in found)


def assert_refused(resources: Resources, policy: str, *fragments: str, urn: str | None = None) -> None:
    found = violations(resources, policy)
    assert found, f"{policy} did not refuse the seeded violation"
    assert all(v["enforcementLevel"] == "mandatory" for v in found) or policy in ADVISORY, found
    text = messages(found)
    for fragment in fragments:
        assert fragment in text, text
    if urn is not None:
        assert urn in {v["urn"] for v in found}, found


ADVISORY = {
    "runner-privileged-explicit",
    "runner-limits",
    "runner-service-sizes",
    "bazel-cache-capacity",
    "images-pinned",
}


# --- the dev stack --------------------------------------------------------------------------------


def test_dev_render_passes_every_policy(dev_render: RenderResult) -> None:
    assert evaluate_resources(dev_render.resources) == []


def test_dev_render_holds_what_every_policy_judges(dev_render: RenderResult) -> None:
    """Passing on dev means something only if each policy's subject is in the render."""
    types = {r["type"] for r in dev_render.resources}
    releases = [r for r in of_type(dev_render.resources, RELEASE) if r["inputs"].get("chart") == "gitlab-runner"]
    assert {r["inputs"]["name"] for r in releases} == {"runner-nix", "runner-docker", "runner-dind"}
    keys = {r["inputs"]["key"] for r in of_type(dev_render.resources, GROUP_VARIABLE)}
    assert {"ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY", "ATTIC_TOKEN"} <= keys
    gc_cronjob(dev_render.resources)
    server_toml_configmap(dev_render.resources)
    template_file(dev_render.resources)
    assert "kubernetes:core/v1:Service" in types and "kubernetes:core/v1:PersistentVolumeClaim" in types
    assert any("seaweedfs" in str(r["inputs"]) for r in of_type(dev_render.resources, "kubernetes:apps/v1:StatefulSet"))


def test_policy_names_and_default_levels() -> None:
    levels = {p.name: p.enforcement_level.value for p in POLICIES}
    assert levels == {
        "runner-cache-contract": "mandatory",
        "contract-not-shadowed": "mandatory",
        "contract-consistent": "mandatory",
        "attic-gc-present": "mandatory",
        "attic-secrets-out-of-configmaps": "mandatory",
        "ci-token-masked": "mandatory",
        "storage-private-and-kept": "mandatory",
        "greedy-template-shape": "mandatory",
        "mounted-files-readable": "mandatory",
        "network-least-access": "mandatory",
        "runner-privileged-explicit": "advisory",
        "runner-limits": "advisory",
        "runner-service-sizes": "advisory",
        "bazel-cache-capacity": "advisory",
        "images-pinned": "advisory",
    }


# --- runner-cache-contract -----------------------------------------------------------------------


def test_runner_cache_contract_refuses_a_missing_bazel_endpoint(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    release = runner_release(resources, "docker")
    edit_config_toml(release, lambda doc: set_env(doc, "BAZEL_REMOTE_CACHE", None))
    assert_refused(
        resources, "runner-cache-contract", "runner-docker", "does not inject BAZEL_REMOTE_CACHE", urn=release["urn"]
    )


def test_runner_cache_contract_refuses_environment_under_runners_kubernetes(dev_render: RenderResult) -> None:
    resources = records(dev_render)

    def misplace(doc: dict[str, Any]) -> None:
        runner = doc["runners"][0]
        runner["kubernetes"]["environment"] = runner.pop("environment")

    edit_config_toml(runner_release(resources, "nix"), misplace)
    assert_refused(
        resources,
        "runner-cache-contract",
        "'environment' sits under [runners.kubernetes]",
        "does not inject BAZEL_REMOTE_CACHE",
        "GF_BAZEL_SUBSTRATE_MODE is missing",
    )


def test_runner_cache_contract_refuses_a_non_grpc_url_and_a_wrong_mode(dev_render: RenderResult) -> None:
    resources = records(dev_render)

    def break_contract(doc: dict[str, Any]) -> None:
        set_env(doc, "BAZEL_REMOTE_CACHE", "http://bazel-cache.flywheel.svc.cluster.local:8080")
        set_env(doc, "GF_BAZEL_SUBSTRATE_MODE", "local")

    edit_config_toml(runner_release(resources, "dind"), break_contract)
    assert_refused(
        resources, "runner-cache-contract", "not a grpc:// or grpcs:// URL", "GF_BAZEL_SUBSTRATE_MODE is 'local'"
    )


def test_runner_cache_contract_refuses_a_stack_without_the_bazel_cache(
    render: Callable[[dict[str, Any]], RenderResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Config mutation: with the bazel cache disabled no runner can inject the contract. The config check
    refuses this first; bypassed here, the policy is the second line (for states the config never saw)."""
    monkeypatch.setattr("components.config._cross_area_problems", lambda config: [])
    bazel = dev_value("bazelCache") | {"enabled": False}
    resources = render({"bazelCache": bazel}).resources
    releases = {r["urn"] for r in of_type(resources, RELEASE) if r["inputs"].get("chart") == "gitlab-runner"}
    found = violations(resources, "runner-cache-contract")
    assert len(releases) == 3 and {v["urn"] for v in found} == releases
    assert all("does not inject BAZEL_REMOTE_CACHE" in v["message"] for v in found if "BAZEL_REMOTE" in v["message"])


def test_runner_cache_contract_accepts_a_declared_opt_out(dev_render: RenderResult) -> None:
    resources = records(dev_render)

    def opt_out(doc: dict[str, Any]) -> None:
        runner = doc["runners"][0]
        runner["environment"] = [e for e in runner["environment"] if not e.startswith(("BAZEL", "GF_", "ATTIC"))]
        runner["kubernetes"].setdefault("pod_labels", {})["flywheel.dev/cache-injection"] = "false"

    edit_config_toml(runner_release(resources, "docker"), opt_out)
    assert violations(resources, "runner-cache-contract") == []
    assert violations(resources, "contract-consistent") == []


def test_runner_cache_contract_accepts_an_opt_out_from_config(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    """Config mutation: a pool with cacheInjection: false is labelled so by the runners and passes."""
    pools = dev_value("runners")
    pools[1]["cacheInjection"] = False
    resources = render({"runners": pools}).resources
    assert evaluate_resources(resources) == []
    unlabelled = records(RenderResult(resources, {}, {}))
    edit_config_toml(
        runner_release(unlabelled, pools[1]["name"]),
        lambda doc: doc["runners"][0]["kubernetes"]["pod_labels"].pop("flywheel.dev/cache-injection"),
    )
    assert_refused(unlabelled, "runner-cache-contract", "does not inject BAZEL_REMOTE_CACHE")


def test_runner_cache_contract_reports_unreadable_config_toml(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    runner_release(resources, "nix")["inputs"]["values"]["runners"]["config"] = "[[runners]\nbroken"
    assert_refused(resources, "runner-cache-contract", "is not valid TOML")


# --- contract-not-shadowed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "key"),
    [
        (GROUP_VARIABLE, "BAZEL_REMOTE_CACHE"),
        ("gitlab:index/projectVariable:ProjectVariable", "GF_BAZEL_SUBSTRATE_MODE"),
    ],
)
def test_contract_not_shadowed_refuses_a_hand_added_variable(dev_render: RenderResult, typ: str, key: str) -> None:
    resources = records(dev_render)
    urn = f"urn:pulumi:dev::flywheel::{typ}::shadow"
    resources.append(
        {"urn": urn, "type": typ, "name": "shadow", "custom": True, "inputs": {"key": key, "value": "x"}, "options": {}}
    )
    assert_refused(resources, "contract-not-shadowed", key, "override the value every runner injects", urn=urn)


# --- contract-consistent ---------------------------------------------------------------------------


def test_contract_consistent_refuses_a_bazel_url_of_another_stack(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    edit_config_toml(
        runner_release(resources, "nix"),
        lambda doc: set_env(doc, "BAZEL_REMOTE_CACHE", "grpc://bazel-cache.elsewhere.svc.cluster.local:9092"),
    )
    assert_refused(
        resources,
        "contract-consistent",
        "points at no bazel cache Service of this stack",
        "grpc://bazel-cache.flywheel.svc.cluster.local:9092",
    )


def test_contract_consistent_notices_a_missing_bazel_service(dev_render: RenderResult) -> None:
    resources = [
        r
        for r in records(dev_render)
        if not (r["type"] == "kubernetes:core/v1:Service" and r["inputs"]["metadata"]["name"] == "bazel-cache")
    ]
    assert_refused(resources, "contract-consistent", "points at no bazel cache Service of this stack")


def test_contract_consistent_refuses_disagreeing_attic_variables(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    group_variable(resources, "ATTIC_CACHE")["inputs"]["value"] = "other-cache"
    assert_refused(
        resources, "contract-consistent", "ATTIC_CACHE is 'main' but group variable ATTIC_CACHE is 'other-cache'"
    )


def test_contract_consistent_refuses_an_attic_server_other_than_the_api_endpoint(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    variable = group_variable(resources, "ATTIC_SERVER")
    variable["inputs"]["value"] = "https://attic.elsewhere.example/"
    assert_refused(resources, "contract-consistent", "api-endpoint", urn=variable["urn"])


def test_contract_consistent_notices_a_missing_group_variable(dev_render: RenderResult) -> None:
    resources = [r for r in records(dev_render) if r["inputs"].get("key") != "ATTIC_PUBLIC_KEY"]
    assert_refused(resources, "contract-consistent", "no group variable ATTIC_PUBLIC_KEY")


# --- attic-gc-present ----------------------------------------------------------------------------------


def test_attic_gc_present_notices_a_missing_cronjob(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    resources.remove(gc_cronjob(resources))
    assert_refused(resources, "attic-gc-present", "no CronJob runs atticd --mode garbage-collector-once")


def test_attic_gc_present_refuses_overlapping_passes(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    cronjob = gc_cronjob(resources)
    cronjob["inputs"]["spec"]["concurrencyPolicy"] = "Allow"
    twin = copy.deepcopy(cronjob)
    twin["urn"] += "-twin"
    twin["inputs"]["metadata"]["name"] += "-twin"
    resources.append(twin)
    assert_refused(resources, "attic-gc-present", "concurrencyPolicy Allow", "keep exactly one", urn=twin["urn"])


def test_attic_gc_present_refuses_a_monolithic_server(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    deployment = one(resources, lambda r: r["type"] == "kubernetes:apps/v1:Deployment" and "api-server" in str(r))
    container = deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [a for a in container["args"] if a not in {"--mode", "api-server"}]
    assert_refused(resources, "attic-gc-present", "'monolithic' mode", urn=deployment["urn"])


def test_attic_gc_present_refuses_a_zero_retention(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    configmap = edit_server_toml(
        resources, lambda doc: doc["garbage-collection"].update({"default-retention-period": "0s"})
    )
    assert_refused(resources, "attic-gc-present", "default-retention-period is '0s'", urn=configmap["urn"])
    edit_server_toml(resources, lambda doc: doc.pop("garbage-collection"))
    assert_refused(resources, "attic-gc-present", "default-retention-period is missing")


# --- attic-secrets-out-of-configmaps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda doc: (
                doc["storage"]
                .setdefault("credentials", {})
                .update({"access_key_id": "AKIAEXAMPLE", "secret_access_key": "c2VjcmV0LWtleS1leGFtcGxl"})
            ),
            "storage.credentials.secret_access_key",
        ),
        (lambda doc: doc["database"].update({"url": "postgresql://attic:hunter22@db:5432/attic"}), "embedded password"),
        (
            lambda doc: doc.update({"jwt": {"signing": {"token-rs256-secret-base64": "TUlJRXBBSUJBQUtDQVFFQXZ"}}}),
            "token-rs256-secret-base64",
        ),
    ],
    ids=["s3-secret-key", "database-password", "jwt-signing-key"],
)
def test_secrets_out_of_configmaps_refuses_secrets_in_server_toml(
    dev_render: RenderResult, edit: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    resources = records(dev_render)
    configmap = edit_server_toml(resources, edit)
    assert_refused(resources, "attic-secrets-out-of-configmaps", fragment, "move it to a Secret", urn=configmap["urn"])


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n", "PEM private key"),
        ("[secret]", "a value Pulumi holds as secret"),
        ("ATTIC_TOKEN=abcdefgh12345678\nOTHER=1\n", "ATTIC_TOKEN"),
        ("glrt-" + "a1b2c3d4e5f6g7h8i9j0", "GitLab token"),
        ("glffct-" + "a1b2c3d4e5f6g7h8i9j0", "GitLab token"),
    ],
    ids=["pem", "pulumi-secret", "env-file-token", "runner-token", "feature-flags-client-token"],
)
def test_secrets_out_of_configmaps_refuses_a_hand_added_entry(
    dev_render: RenderResult, value: str, fragment: str
) -> None:
    resources = records(dev_render)
    server_toml_configmap(resources)["inputs"]["data"]["extra"] = value
    assert_refused(resources, "attic-secrets-out-of-configmaps", fragment)


# --- ci-token-masked ------------------------------------------------------------------------------------


def test_ci_token_masked_refuses_an_unmasked_token_from_config(
    render: Callable[[dict[str, Any]], RenderResult],
) -> None:
    """Config mutation: an extra group variable named like a token, left unmasked."""
    gitlab = dev_value("gitlab")
    gitlab["extraVariables"] = {**gitlab["extraVariables"], "DEPLOY_TOKEN": "abcdefgh12345678"}
    found = violations(render({"gitlab": gitlab}).resources, "ci-token-masked")
    assert len(found) == 1 and found[0]["enforcementLevel"] == "mandatory"
    assert "group variable DEPLOY_TOKEN" in found[0]["message"] and "not masked and hidden" in found[0]["message"]


def test_ci_token_masked_refuses_a_visible_attic_token(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    variable = group_variable(resources, "ATTIC_TOKEN")
    variable["inputs"]["hidden"] = False
    assert_refused(resources, "ci-token-masked", "ATTIC_TOKEN", "is not hidden", urn=variable["urn"])


def test_ci_token_masked_key_pattern_is_configurable(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    group_variable(resources, "ATTIC_SERVER")["inputs"]["masked"] = False
    assert violations(resources, "ci-token-masked") == []
    found = violations(resources, "ci-token-masked", {"ci-token-masked": {"keyPattern": "^ATTIC_SERVER$"}})
    assert len(found) == 1 and "ATTIC_SERVER" in found[0]["message"]


# --- storage-private-and-kept ------------------------------------------------------------------------------

S3_STORAGE = {
    "backend": "s3",
    "bucket": "flywheel-attic",
    "region": "eu-west-1",
    "endpoint": "https://s3.example.com",
    "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "example-secret-key"},
}


def test_storage_external_bucket_passes_when_protected(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    resources = render({"storage": S3_STORAGE}).resources
    assert any(r["type"] == "pulumi-python:dynamic/flywheel:S3Bucket" for r in resources)
    assert violations(resources, "storage-private-and-kept") == []


def test_storage_refuses_an_unprotected_bucket(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    """Config mutation: `storage.protect: false` leaves the bucket deletable."""
    resources = render({"storage": S3_STORAGE | {"protect": False}}).resources
    assert_refused(resources, "storage-private-and-kept", "is not protected", "is not retained on delete")


def test_storage_refuses_expiry_rules_and_open_access(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    resources = records(render({"storage": S3_STORAGE}))
    bucket = one(resources, lambda r: r["type"] == "pulumi-python:dynamic/flywheel:S3Bucket")
    bucket["inputs"]["lifecycleRules"] = [{"ID": "expire-nars", "Status": "Enabled", "Expiration": {"Days": 90}}]
    bucket["inputs"]["publicAccessBlock"] = {"BlockPublicAcls": True, "RestrictPublicBuckets": False}
    assert_refused(
        resources,
        "storage-private-and-kept",
        "rule expire-nars (Expiration)",
        "RestrictPublicBuckets",
        urn=bucket["urn"],
    )


def test_storage_allows_expiry_only_under_the_bazel_prefix(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    """The dev stack tiers bazel-remote onto the bucket: the rendered bucket expires bazel/ and passes; the same
    expiry on another prefix, or a lifecycle rule expiring bazel/-looking keys elsewhere, is refused."""
    resources = records(render({"storage": S3_STORAGE}))
    bucket = one(resources, lambda r: r["type"] == "pulumi-python:dynamic/flywheel:S3Bucket")
    assert (bucket["inputs"]["bazelPrefix"], bucket["inputs"]["bazelExpiryDays"]) == ("bazel/", 30)
    assert violations(resources, "storage-private-and-kept") == []
    bucket["inputs"]["lifecycleRules"] = [
        {"ID": "bazel-ok", "Status": "Enabled", "Filter": {"Prefix": "bazel/"}, "Expiration": {"Days": 9}},
        {"ID": "bazelx", "Status": "Enabled", "Filter": {"Prefix": "bazelx/"}, "Expiration": {"Days": 9}},
    ]
    bucket["inputs"]["bazelPrefix"] = ""
    assert_refused(
        resources,
        "storage-private-and-kept",
        "rule bazelx (Expiration)",
        "under prefix '' after 30 days",
        urn=bucket["urn"],
    )
    assert "bazel-ok" not in " ".join(v["message"] for v in violations(resources, "storage-private-and-kept"))


def test_storage_notices_a_missing_bucket(render: Callable[[dict[str, Any]], RenderResult]) -> None:
    resources = [
        r for r in records(render({"storage": S3_STORAGE})) if r["type"] != "pulumi-python:dynamic/flywheel:S3Bucket"
    ]
    assert_refused(
        resources, "storage-private-and-kept", "bucket 'flywheel-attic', which no resource of this stack manages"
    )


def test_storage_refuses_a_seaweedfs_that_drops_its_volume_or_is_exposed(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    store = one(resources, lambda r: r["type"] == "kubernetes:apps/v1:StatefulSet" and "seaweedfs" in str(r["inputs"]))
    store["inputs"]["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] = "Delete"
    container = store["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [a for a in container["args"] if not a.startswith("-s3.allowDeleteBucketNotEmpty")]
    service = one(resources, lambda r: r["type"] == "kubernetes:core/v1:Service" and r["name"].endswith("seaweedfs-s3"))
    service["inputs"]["spec"]["type"] = "LoadBalancer"
    assert_refused(
        resources, "storage-private-and-kept", "whenDeleted: Retain", "allowDeleteBucketNotEmpty", "keep it ClusterIP"
    )


# --- greedy-template-shape ---------------------------------------------------------------------------------


def _edit_template(resources: Resources, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    file = template_file(resources)
    header, jobs = yaml.safe_load_all(file["inputs"]["content"])
    edit(jobs)
    file["inputs"]["content"] = yaml.safe_dump(header) + "---\n" + yaml.safe_dump(jobs)
    return file


def test_greedy_template_refuses_a_build_job_that_waits(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    file = _edit_template(resources, lambda jobs: jobs["greedy:nix-build"].pop("needs"))
    assert_refused(resources, "greedy-template-shape", "build job 'greedy:nix-build' has no needs", urn=file["urn"])
    _edit_template(resources, lambda jobs: jobs["greedy:bazel-build"].update({"needs": ["validate"]}))
    assert_refused(resources, "greedy-template-shape", "'greedy:bazel-build' has needs: [\"validate\"]")


def test_greedy_template_refuses_a_bootstrap_that_may_compile(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    file = template_file(resources)
    file["inputs"]["content"] = file["inputs"]["content"].replace("--max-jobs 0", "--max-jobs 4")
    assert "--max-jobs 0" not in file["inputs"]["content"]
    assert_refused(resources, "greedy-template-shape", "no substitution-only bootstrap")


def test_greedy_template_reads_base64_content_and_refuses_garbage(dev_render: RenderResult) -> None:
    import base64

    resources = records(dev_render)
    file = template_file(resources)
    file["inputs"]["content"] = base64.b64encode(file["inputs"]["content"].encode()).decode()
    file["inputs"]["encoding"] = "base64"
    assert violations(resources, "greedy-template-shape") == []
    file["inputs"]["content"] = base64.b64encode(b"jobs: [unclosed").decode()
    assert_refused(resources, "greedy-template-shape", "not readable YAML")


# --- advisory policies ------------------------------------------------------------------------------------------


def test_runner_privileged_explicit_refuses_a_privileged_pool_taking_untagged_jobs(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    release = runner_release(resources, "dind")
    gitlab_runner = one(
        resources, lambda r: r["type"] == "gitlab:index/userRunner:UserRunner" and r["parent"] == release["parent"]
    )
    gitlab_runner["inputs"]["untagged"] = True
    found = violations(resources, "runner-privileged-explicit")
    assert [v["enforcementLevel"] for v in found] == ["advisory"]
    assert "takes untagged jobs" in found[0]["message"] and found[0]["urn"] == release["urn"]


def test_runner_privileged_explicit_refuses_escalation_without_privileged(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    edit_config_toml(
        runner_release(resources, "docker"),
        lambda doc: doc["runners"][0]["kubernetes"].update({"allow_privilege_escalation": True}),
    )
    assert_refused(resources, "runner-privileged-explicit", "allows privilege escalation")


def test_runner_limits_refuses_a_pool_without_limits(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    edit_config_toml(runner_release(resources, "nix"), lambda doc: doc["runners"][0]["kubernetes"].pop("cpu_limit"))
    found = violations(resources, "runner-limits")
    assert [v["enforcementLevel"] for v in found] == ["advisory"] and "sets no cpu_limit" in found[0]["message"]


def test_runner_service_sizes_refuses_a_privileged_pool_with_unsized_services(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    edit_config_toml(
        runner_release(resources, "dind"), lambda doc: doc["runners"][0]["kubernetes"].pop("service_memory_limit")
    )
    found = violations(resources, "runner-service-sizes")
    assert [v["enforcementLevel"] for v in found] == ["advisory"]
    assert "sets no service_memory_limit" in found[0]["message"]


def test_mounted_files_readable_refuses_a_0440_secret_without_fsgroup(dev_render: RenderResult) -> None:
    """SeaweedFS's spec before issue 14: root-owned 0440 s3.json, no fsGroup (the workload lab crashes it)."""
    resources = records(dev_render)
    statefulset = one(resources, lambda r: r["type"] == "kubernetes:apps/v1:StatefulSet" and "seaweedfs" in r["urn"])
    statefulset["inputs"]["spec"]["template"]["spec"]["securityContext"].pop("fsGroup")
    assert_refused(resources, "mounted-files-readable", "mode 0o440", "/etc/seaweedfs", "no fsGroup")


def test_mounted_files_readable_accepts_world_readable_files_and_explicit_root(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    statefulset = one(resources, lambda r: r["type"] == "kubernetes:apps/v1:StatefulSet" and "seaweedfs" in r["urn"])
    pod = statefulset["inputs"]["spec"]["template"]["spec"]
    pod["securityContext"].pop("fsGroup")
    pod["volumes"][0]["secret"]["defaultMode"] = 0o444
    assert violations(resources, "mounted-files-readable") == []
    pod["volumes"][0]["secret"]["defaultMode"] = 0o400
    pod["securityContext"]["runAsUser"] = 0
    assert violations(resources, "mounted-files-readable") == []


def test_network_least_access_refuses_namespace_wide_job_egress(dev_render: RenderResult) -> None:
    """The egress rule before issue 14: the whole platform namespace on every port."""
    resources = records(dev_render)
    egress = one(resources, lambda r: r["type"].endswith("NetworkPolicy") and "ci-jobs-egress" in str(r["inputs"]))
    rules = egress["inputs"]["spec"]["egress"]
    rules.append({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flywheel"}}}]})
    assert_refused(resources, "network-least-access", "allows whole namespaces", "list the ports", urn=egress["urn"])


def test_network_least_access_refuses_seaweedfs_without_an_ingress_policy(dev_render: RenderResult) -> None:
    resources = [r for r in records(dev_render) if "seaweedfs-ingress" not in str(r["inputs"].get("metadata"))]
    assert_refused(resources, "network-least-access", "serves seaweedfs but no ingress NetworkPolicy")


def test_bazel_cache_capacity_refuses_a_small_volume(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    claim = one(resources, lambda r: r["type"] == "kubernetes:core/v1:PersistentVolumeClaim" and "bazel" in r["urn"])
    claim["inputs"]["spec"]["resources"]["requests"]["storage"] = "10Gi"
    found = violations(resources, "bazel-cache-capacity")
    assert [v["enforcementLevel"] for v in found] == ["advisory"]
    assert "max_size 50 GiB does not fit" in found[0]["message"] and "at least 55Gi" in found[0]["message"]


def test_bazel_cache_capacity_headroom_is_configurable(dev_render: RenderResult) -> None:
    resources = records(dev_render)  # 50 GiB on 60Gi: fits 10 % headroom, not 50 %
    assert violations(resources, "bazel-cache-capacity") == []
    found = violations(resources, "bazel-cache-capacity", {"bazel-cache-capacity": {"headroom": 1.5}})
    assert len(found) == 1 and "at least 75Gi" in found[0]["message"]


def test_images_pinned_refuses_latest_and_untagged(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    gc = gc_cronjob(resources)
    gc["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "ghcr.io/zhaofengli/attic:latest"
    )
    edit_config_toml(
        runner_release(resources, "docker"), lambda doc: doc["runners"][0]["kubernetes"].update({"image": "alpine"})
    )
    found = violations(resources, "images-pinned")
    assert {v["enforcementLevel"] for v in found} == {"advisory"}
    assert "uses the moving ':latest' tag" in messages(found) and "'alpine'" in messages(found)
    assert gc["urn"] in {v["urn"] for v in found}


# --- enforcement levels --------------------------------------------------------------------------------------


def _seeded(dev_render: RenderResult) -> Resources:
    resources = records(dev_render)
    resources.remove(gc_cronjob(resources))
    return resources


def test_enforcement_level_override_per_policy(dev_render: RenderResult) -> None:
    resources = _seeded(dev_render)
    assert {v["enforcementLevel"] for v in violations(resources, "attic-gc-present")} == {"mandatory"}
    relaxed = violations(resources, "attic-gc-present", {"attic-gc-present": "advisory"})
    assert relaxed and {v["enforcementLevel"] for v in relaxed} == {"advisory"}
    assert violations(resources, "attic-gc-present", {"attic-gc-present": {"enforcementLevel": "disabled"}}) == []


def test_enforcement_level_all_then_per_policy(dev_render: RenderResult) -> None:
    resources = _seeded(dev_render)
    config = {"all": "disabled", "attic-gc-present": "mandatory"}
    found = evaluate_resources(resources, config)
    assert found and {(v["policyName"], v["enforcementLevel"]) for v in found} == {("attic-gc-present", "mandatory")}


def test_enforcement_level_raises_an_advisory_policy(dev_render: RenderResult) -> None:
    resources = records(dev_render)
    edit_config_toml(runner_release(resources, "nix"), lambda doc: doc["runners"][0]["kubernetes"].pop("memory_limit"))
    found = violations(resources, "runner-limits", {"runner-limits": "mandatory"})
    assert [v["enforcementLevel"] for v in found] == ["mandatory"]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [({"no-such-policy": "advisory"}, "unknown policy name"), ({"runner-limits": "loud"}, "is not one of")],
)
def test_enforcement_config_errors_are_reported(config: dict[str, Any], fragment: str) -> None:
    from policies.evaluate import PolicyConfigError

    with pytest.raises(PolicyConfigError, match=fragment):
        evaluate_resources([], config)
