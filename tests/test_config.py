"""Stack configuration: the dev stack loads; every rule refuses bad input with key path, value and what's allowed."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigError, PlatformConfig, load_platform_config
from tests.conftest import ROOT, dev_stack

PREFIX = "flywheel:"


@functools.cache
def _dev_raw() -> str:
    raw: dict[str, Any] = {}
    for key, value in dev_stack().values.items():
        if key.startswith(PREFIX):
            try:
                raw[key[len(PREFIX) :]] = json.loads(value)
            except json.JSONDecodeError:
                raw[key[len(PREFIX) :]] = value
    return json.dumps(raw)


def dev_raw() -> dict[str, Any]:
    """The dev stack's flywheel:* values, parsed into Python objects (a fresh copy each call)."""
    return dict(json.loads(_dev_raw()))


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The dev config with one dotted path set (list items as [n]); value DELETE removes the key."""
    raw = dev_raw()
    node: Any = raw
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    if value is DELETE:
        del node[last]
    elif last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return raw


class _Delete:
    """Marks a key to remove; a stable repr keeps test ids identical across xdist workers."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


def problems_for(raw: dict[str, Any], secret_keys: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw, secret_keys or [])
    return caught.value.problems


def test_dev_stack_loads_with_every_area() -> None:
    config = load_platform_config(dev_raw())
    assert isinstance(config, PlatformConfig)
    assert config.namespace == "flywheel"
    assert config.jobs_namespace == "flywheel-jobs"
    assert [pool.name for pool in config.runners] == ["nix", "docker", "dind"]
    assert config.attic.gc.retention_seconds == 30 * 86400
    assert config.gitlab.api_url == "https://gitlab.example.com/api/v4/"


def test_defaults_are_secure() -> None:
    config = load_platform_config(
        {
            "gitlab": {
                "url": "https://gitlab.example.com",
                "groupPath": "g",
                "groupId": 1,
                "templateProject": "g/ci",
            }
        }
    )
    assert config.storage.protect is True
    assert config.attic.public is False
    assert all(not pool.privileged for pool in config.runners)
    assert all(pool.cache_injection for pool in config.runners)
    assert config.attic.replicas >= 2


def test_structured_values_arrive_as_json_strings_like_the_engine_sends_them() -> None:
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in dev_raw().items()}
    assert load_platform_config(raw).attic.cache_name == "main"


# Each case: a change to the dev config, the exact key path reported, and words the message must contain.
RULES = [
    ("namespace", "Flywheel", "namespace", ["not a DNS-1123 label", "got 'Flywheel'"]),
    ("gitlab.url", "gitlab.example.com", "gitlab.url", ["not an http(s) URL", "got 'gitlab.example.com'"]),
    ("gitlab.groupId", "four", "gitlab.groupId", ["not an integer", "got 'four'"]),
    ("gitlab.groupId", 0, "gitlab.groupId", ["out of range", "> 0"]),
    ("gitlab.groupPath", DELETE, "gitlab.groupPath", ["required key is missing"]),
    (
        "gitlab.extraVariables.BAZEL_REMOTE_CACHE",
        "grpc://x:9092",
        "gitlab.extraVariables",
        ["BAZEL_REMOTE_CACHE", "override", "cache contract"],
    ),
    (
        "gitlab.extraVariables.GF_BAZEL_SUBSTRATE_MODE",
        "local",
        "gitlab.extraVariables",
        ["GF_BAZEL_SUBSTRATE_MODE", "break the cache contract"],
    ),
    ("gitlab.extraVariables.ATTIC_TOKEN", "x" * 10, "gitlab.extraVariables", ["set by the platform"]),
    ("gitlab.extraVariables.bad-key", "v", "gitlab.extraVariables.bad-key", ["not a valid GitLab CI/CD variable key"]),
    (
        "gitlab.extraVariables.DEPLOY_TOKEN",
        {"value": "has spaces in it", "masked": True},
        "gitlab.extraVariables.DEPLOY_TOKEN",
        ["cannot be masked by GitLab", "got an object with keys masked, value;", "at least 8 characters"],
    ),
    (
        "gitlab.extraVariables.DEPLOY_TOKEN",
        {"value": "abcdefgh12", "hidden": True},
        "gitlab.extraVariables.DEPLOY_TOKEN.masked",
        ["hidden variables must also be masked"],
    ),
    ("storage.backend", "minio", "storage.backend", ["not an allowed value", "'seaweedfs' or 's3'"]),
    ("storage.bucket", "Flywheel_Cache", "storage.bucket", ["not a valid S3 bucket name", "got 'Flywheel_Cache'"]),
    ("storage.bucket", "ab", "storage.bucket", ["is 2 characters long"]),
    ("storage.bucket", "192.168.1.1", "storage.bucket", ["IP address"]),
    ("storage.bucket", "cache..nix", "storage.bucket", ["contains '..'"]),
    ("storage.bucket", "xn--cache", "storage.bucket", ["reserved prefix"]),
    ("storage.size", DELETE, "storage.size", ["backend 'seaweedfs' needs 'size'"]),
    ("storage.size", "lots", "storage.size", ["not a Kubernetes quantity", "got 'lots'"]),
    ("storage.endpoint", "https://s3.example.com", "storage.endpoint", ["belong to backend 's3'"]),
    ("database.backend", "mysql", "database.backend", ["'cnpg' or 'external'"]),
    ("attic.ingress.tlsSecretName", DELETE, "attic.host", ["https://attic.example.com/", "tlsTerminatedUpstream"]),
    ("attic.listenFamily", "ipv6", "attic.listenFamily", ["'dual-stack' or 'ipv4'"]),
    ("database.backend", "external", "database.url", ["backend 'external' needs 'url'"]),
    ("database.instances", 0, "database.instances", ["out of range", ">= 1"]),
    ("database.url", "postgres://u:p@h/db", "database.url", ["belongs to backend 'external'", "[secret]"]),
    ("attic.gc.retention", "6 monthz", "attic.gc.retention", ["not a duration", "got '6 monthz'", "humantime"]),
    ("attic.gc.retention", "12 hours", "attic.gc.retention", ["shorter than one day", "at least '1 day'"]),
    ("attic.gc.schedule", "daily", "attic.gc.schedule", ["has 1 fields, not 5", "5-field cron"]),
    ("attic.gc.schedule", "61 3 * * *", "attic.gc.schedule", ["invalid minute field '61'"]),
    ("attic.gc.schedule", "0 3 * 13 *", "attic.gc.schedule", ["invalid month field '13'"]),
    ("attic.gc.schedule", "0 3 * * */0", "attic.gc.schedule", ["invalid day of week field"]),
    ("attic.image", "ghcr.io/zhaofengli/attic:latest", "attic.image", ["moving ':latest' tag"]),
    ("attic.image", "ghcr.io/zhaofengli/attic", "attic.image", ["no tag or digest"]),
    ("attic.replicas", 0, "attic.replicas", [">= 1"]),
    ("attic.cacheName", "my cache!", "attic.cacheName", ["not a valid Attic cache name"]),
    ("attic.host", "Attic.Example.COM", "attic.host", ["not a DNS host name"]),
    ("attic.compression.type", "gzip", "attic.compression.type", ["'none', 'brotli', 'zstd' or 'xz'"]),
    ("attic.chunking.minSize", 1048576, "attic.chunking.avgSize", ["chunk sizes are out of order"]),
    # fastcdc's ronomon FastCDC (what atticd chunks with) asserts these bounds; atticd allocates maxSize per read
    ("attic.chunking.minSize", 1, "attic.chunking.minSize", ["out of range", "got 1", ">= 64"]),
    ("attic.chunking.avgSize", 2, "attic.chunking.avgSize", ["got 2", ">= 256"]),
    ("attic.chunking.maxSize", 2**62, "attic.chunking.maxSize", [f"got {2**62}", "<= 1073741824"]),
    ("attic.chunking.minSize", 2**26 + 1, "attic.chunking.minSize", ["<= 67108864"]),
    ("attic.chunking.avgSize", 2**28 + 1, "attic.chunking.avgSize", ["<= 268435456"]),
    ("attic.chunking.maxSize", 1023, "attic.chunking.maxSize", [">= 1024"]),
    ("attic.priority", 2**31, "attic.priority", ["out of range", "got 2147483648", "<= 2147483647"]),
    ("attic.host", "a" * 64 + ".example.com", "attic.host", ["a DNS label is 64 characters long", "at most 63"]),
    ("runners[0].nodeSelector", {"/arch": 1}, 'runners[0].nodeSelector["/arch"]', ["label key", "got '/arch'"]),
    ("database.size", "0", "database.size", ["a volume size of zero", "got '0'", "greater than zero"]),
    ("database.size", 0, "database.size", ["a volume size of zero", "got 0;"]),
    ("storage.size", "0Gi", "storage.size", ["a volume size of zero", "got '0Gi'"]),
    ("bazelCache.storageSize", "0", "bazelCache.storageSize", ["a volume size of zero"]),
    ("storage.protect", False, "storage.protect", ["would be ignored with backend 'seaweedfs'", "got false"]),
    (
        "gitlab.extraVariables.DEPLOY_HOOK",
        {"value": "s3cr3t-hook-value", "protected": "maybe"},
        "gitlab.extraVariables.DEPLOY_HOOK.protected",
        ["got 'maybe'", "true or false"],
    ),
    ("attic.tokenValidity", "7 days", "attic.tokenRotationWindow", ["not shorter than tokenValidity"]),
    ("attic.resources.memoryRequest", "8Gi", "attic.resources.memoryRequest", ["exceeds memoryLimit 1Gi"]),
    ("attic.gcc", {}, "attic.gcc", ["unknown key", "expected one of: image, replicas"]),
    ("bazelCache.maxSizeGiB", 0, "bazelCache.maxSizeGiB", ["> 0"]),
    ("bazelCache.storageSize", "50Gi", "bazelCache.storageSize", ["cannot hold maxSizeGiB 50", "'55Gi'"]),
    ("bazelCache.s3RetentionDays", 0, "bazelCache.s3RetentionDays", [">= 1", "got 0"]),
    ("bazelCache.s3RetentionDays", 256, "bazelCache.s3RetentionDays", ["<= 255", "got 256"]),
    ("bazelCache.s3RetentionDays", 1.5, "bazelCache.s3RetentionDays", ["got 1.5"]),
    ("runners[0].name", "Nix_Pool", "runners[0].name", ["not a DNS-1123 label"]),
    ("runners[1].name", "nix", "runners", ["pool names repeat: nix"]),
    ("runners[0].tags", [], "runners[0].tags", ["too short"]),
    ("runners[0].tags", ["a", "a"], "runners[0].tags", ["non-empty and unique"]),
    ("runners[0].concurrent", 0, "runners[0].concurrent", ["> 0"]),
    ("runners[0].privileged", "maybe", "runners[0].privileged", ["true or false"]),
    ("runners[0].cpuRequest", "8", "runners[0].cpuRequest", ["cpuRequest 8 exceeds cpuLimit 4"]),
    ("runners[0].environment", {"BAZEL_REMOTE_CACHE": "x"}, "runners[0].environment", ["injected from the cache"]),
    ("runnerFleet.jobsNamespace", "flywheel", "runnerFleet.jobsNamespace", ["must not share the cache namespace"]),
    ("ciTemplate.connectTimeoutSeconds", -1, "ciTemplate.connectTimeoutSeconds", ["> 0"]),
    ("attick", {}, "attick", ["unknown key", "expected one of: namespace, gitlab"]),
]


@pytest.mark.parametrize(("path", "value", "reported", "words"), RULES, ids=[f"{r[0]}={r[1]!r}" for r in RULES])
def test_each_rule_reports_key_path_value_and_what_is_allowed(
    path: str, value: Any, reported: str, words: list[str]
) -> None:
    problems = problems_for(with_change(path, value))
    matching = [p for p in problems if p.startswith(f"{PREFIX}{reported}: ")]
    assert matching, f"no problem reported at {reported}: {problems}"
    for word in words:
        assert any(word in p for p in matching), f"{word!r} missing from {matching}"
    assert all("\n" not in p for p in problems)


def test_an_extra_variables_flags_are_shown_but_never_its_value() -> None:
    variable = {"value": "s3cr3t-hook-value", "masked": "sometimes", "environmentScope": ["prod"]}
    problems = problems_for(with_change("gitlab.extraVariables.DEPLOY_HOOK", variable))
    assert any("DEPLOY_HOOK.masked: not true or false (got 'sometimes';" in p for p in problems), problems
    assert not any("s3cr3t-hook-value" in p for p in problems), problems
    (problem,) = problems_for(with_change("gitlab.extraVariables.DEPLOY_HOOK", {"value": ["s3cr3t-hook-value"]}))
    assert problem.startswith("flywheel:gitlab.extraVariables.DEPLOY_HOOK.value: ") and "s3cr3t" not in problem


def test_clients_anywhere_needs_a_store_outside_the_cluster() -> None:
    """atticd redirects single-chunk NARs to its S3 endpoint: SeaweedFS's in-cluster Service cannot serve
    clients outside the cluster, an external S3 endpoint can."""
    [problem] = problems_for(with_change("attic.clients", "anywhere"))
    assert problem.startswith(f"{PREFIX}attic.clients: 'anywhere' cannot work with the store at SeaweedFS")
    assert "expected 'in-cluster', or storage.backend 's3'" in problem
    from tests.test_policies import S3_STORAGE

    raw = with_change("attic.clients", "anywhere")
    raw["storage"] = S3_STORAGE
    assert isinstance(load_platform_config(raw), PlatformConfig)
    for in_cluster in (
        "http://minio.storage.svc.cluster.local:9000",
        "http://minio.storage.svc:9000",
        "http://minio:9000",
    ):
        raw["storage"] = {**S3_STORAGE, "endpoint": in_cluster}
        [problem] = problems_for(raw)
        assert f"'{in_cluster}'" in problem
    raw["storage"] = {**S3_STORAGE, "endpoint": "https://s3.svcprovider.example.com"}  # not a cluster name
    assert isinstance(load_platform_config(raw), PlatformConfig)
    assert problems_for(with_change("attic.clients", "everyone"))[0].startswith(f"{PREFIX}attic.clients: ")


def test_s3_backend_needs_credentials_and_no_size() -> None:
    raw = with_change("storage", {"backend": "s3", "bucket": "flywheel-attic", "size": "10Gi"})
    assert problems_for(raw) == [
        "flywheel:storage.credentials: backend 's3' needs 'credentials' (got null; expected {accessKeyId, "
        "secretAccessKey} set with `pulumi config set --secret`)"
    ]
    raw["storage"]["credentials"] = {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG"}
    # with credentials inside, `pulumi config set --secret --path` makes the whole key secret: nothing is echoed
    assert problems_for(raw, ["storage"]) == [
        "flywheel:storage.size: 'size' belongs to backend 'seaweedfs' (got '[secret]'; "
        "expected no size with backend 's3')"
    ]
    assert problems_for(raw)[0].startswith("flywheel:storage.size: 'size' belongs to backend 'seaweedfs' (got '10Gi';")


def test_s3_endpoint_needs_a_scheme() -> None:
    raw = with_change(
        "storage",
        {
            "backend": "s3",
            "bucket": "flywheel-attic",
            "endpoint": "s3.example.com:9000",
            "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret-value-123"},
        },
    )
    (problem,) = problems_for(raw)
    assert problem.startswith("flywheel:storage.endpoint: not an http(s) URL with a scheme (got 's3.example.com:9000'")


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        (
            "https://key:s3cr3t-pw@s3.example.com",
            ["has credentials in the URL", "got 'https://[secret]@s3.example.com'"],
        ),
        ("https://s3.example.com/attic", ["has a path", "scheme, host and optional port only"]),
    ],
)
def test_s3_endpoint_is_scheme_host_and_port_without_credentials(endpoint: str, words: list[str]) -> None:
    raw = with_change(
        "storage",
        {
            "backend": "s3",
            "bucket": "flywheel-attic",
            "endpoint": endpoint,
            "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret-value-123"},
        },
    )
    (problem,) = problems_for(raw)
    assert problem.startswith("flywheel:storage.endpoint: ")
    assert all(word in problem for word in words), problem
    assert "s3cr3t-pw" not in problem


def test_secret_values_are_never_echoed() -> None:
    secret = "wJalrXUtnFEMI-do-not-print"
    raw = with_change(
        "storage",
        {"backend": "s3", "bucket": "Bad_Bucket", "credentials": {"accessKeyId": 7, "secretAccessKey": secret}},
    )
    problems = problems_for(raw, ["storage"])
    assert problems, "expected problems"
    assert not any(secret in p for p in problems), problems
    raw = with_change("database", {"backend": "external", "url": f"mysql://root:{secret}@db/attic"})
    assert not any(secret in p for p in problems_for(raw, ["database"]))


def test_every_problem_is_reported_at_once() -> None:
    raw = with_change("attic.gc.retention", "soon")
    raw["namespace"] = "Not Valid"
    raw["bazelCache"]["maxSizeGiB"] = -1
    problems = problems_for(raw)
    reported = {p.split(":")[1].split(" ")[0] for p in problems}
    assert reported >= {"attic.gc.retention", "namespace", "bazelCache.maxSizeGiB"}


def test_invalid_json_in_a_structured_key() -> None:
    assert problems_for({"gitlab": "{not json"}) == [
        "flywheel:gitlab: not valid JSON (Expecting property name enclosed in double quotes); expected a structured "
        "object"
    ]


# --- fuzzing: no input produces anything but a PlatformConfig or a ConfigError -----------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**12), st.floats(allow_nan=False), st.text(max_size=30)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_mutations_never_raise_anything_but_config_error(data: st.DataObject) -> None:
    raw = dev_raw()
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(raw)
        path = data.draw(st.sampled_from(paths))
        parent: Any = raw
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = data.draw(json_value)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=10))] = data.draw(json_value)
    as_engine_sends = data.draw(st.booleans())
    if as_engine_sends:
        raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    try:
        load_platform_config(raw)
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.startswith(PREFIX) and "\n" not in problem, problem
            assert "(got " in problem or "expected" in problem, problem


# --- values as `pulumi config set --path` stores them ----------------------------------------------
# The CLI stores `4`, `true` and `false` typed with --path as JSON numbers and booleans
# (sdk/go/common/resource/config/value.go:145-160, object.go:570-595, v3.274.1); `--type float` or a
# hand-edited stack file give floats. The stack file below is what such commands leave behind.

PATH_SET_STACK = """\
config:
  flywheel:runners:
    - name: nix
      tags: [flywheel-nix]
      image: nixos/nix:2.24.9
      cpuRequest: 1
      cpuLimit: 4
      memoryRequest: 1073741824
      memoryLimit: 8Gi
      environment:
        MAX_JOBS: 16
        KEEP_GOING: true
      nodeSelector:
        pool: 2
    - name: small
      tags: [flywheel-small]
      image: alpine:3.20
      cpuRequest: 0.25
      cpuLimit: 0.5
  flywheel:attic:
    gc:
      retention: 2592000
    tokenValidity: 7776000
    ingress:
      tlsSecretName: attic-tls
      annotations:
        nginx.ingress.kubernetes.io/proxy-connect-timeout: 30
  flywheel:gitlab:
    extraVariables:
      ATTIC_PRIORITY: 41
      NIX_REMOTE_ENABLED: false
"""


def path_set_config(tmp_path: Any) -> PlatformConfig:
    from tools.render import read_stack_file

    base = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    changes = yaml.safe_load(PATH_SET_STACK)["config"]
    merged = {**base, **changes}
    merged["flywheel:gitlab"] = {**base["flywheel:gitlab"], **changes["flywheel:gitlab"]}
    merged["flywheel:attic"] = {**base["flywheel:attic"], **changes["flywheel:attic"]}
    merged["flywheel:attic"]["gc"] = {**base["flywheel:attic"]["gc"], **changes["flywheel:attic"]["gc"]}
    stack_file = tmp_path / "Pulumi.pathset.yaml"
    stack_file.write_text(yaml.safe_dump({"config": merged}))
    stack = read_stack_file(stack_file)
    assert '"cpuLimit": 4,' in stack.values["flywheel:runners"]  # a JSON number reaches the program
    raw = {k.removeprefix(PREFIX): v for k, v in stack.values.items() if k.startswith(PREFIX)}
    return load_platform_config(raw)


def test_numbers_the_cli_stores_for_quantities_durations_and_text_are_accepted(tmp_path: Any) -> None:
    config = path_set_config(tmp_path)
    nix, small = config.runners
    assert (nix.cpu_request, nix.cpu_limit, nix.memory_request) == ("1", "4", "1073741824")
    assert (small.cpu_request, small.cpu_limit) == ("0.25", "0.5")
    assert nix.environment == {"MAX_JOBS": "16", "KEEP_GOING": "true"}
    assert nix.node_selector == {"pool": "2"}
    assert config.attic.gc.retention == "2592000s" and config.attic.gc.retention_seconds == 30 * 86400
    assert config.attic.token_validity == "7776000s"
    assert config.attic.ingress.annotations == {"nginx.ingress.kubernetes.io/proxy-connect-timeout": "30"}
    extra = config.gitlab.extra_variables
    assert (extra["ATTIC_PRIORITY"].value, extra["NIX_REMOTE_ENABLED"].value) == ("41", "false")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("runners[0].cpuLimit", True, "flywheel:runners[0].cpuLimit: not a Kubernetes quantity (got true; expected"),
        ("attic.gc.retention", 1.5, "flywheel:attic.gc.retention: not a duration (got 1.5; expected a humantime"),
        ("runners[0].cpuLimit", -2, "flywheel:runners[0].cpuLimit: not a Kubernetes quantity (got -2"),
        ("attic.gc.retention", 3600, "flywheel:attic.gc.retention: "),
    ],
    ids=["bool-quantity", "fraction-of-a-second", "negative-quantity", "retention-below-a-day"],
)
def test_numbers_that_are_not_allowed_are_refused_on_one_line(path: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(with_change(path, value))
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith(expected), problem
    assert "\n" not in problem


def _deep_merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{k: _deep_merge(base.get(k), v) for k, v in change.items()}}
    if isinstance(base, list) and isinstance(change, list):
        return [_deep_merge(b, c) for b, c in zip(base, change, strict=False)] + base[len(change) :]
    return change


def test_config_the_real_cli_stored_with_path_is_accepted() -> None:
    """PULUMI_CONFIG as the real CLI 3.274.1 handed it to a program after `pulumi config set --path`
    (tests/fixtures/config/README.md), merged into the dev stack, as JSON text per key like the engine sends it."""
    captured = json.loads((ROOT / "tests/fixtures/config/path_set_pulumi_config.json").read_text())
    raw = dev_raw()
    for key, text in captured.items():
        name = key.removeprefix(PREFIX)
        raw[name] = json.dumps(_deep_merge(raw.get(name), json.loads(text)))
    assert '"cpuLimit": 4,' in raw["runners"] and '"cpuRequest": "0.5"' in raw["runners"]
    config = load_platform_config(raw)
    assert (config.runners[0].cpu_limit, config.runners[0].cpu_request) == ("4", "0.5")
    assert config.attic.gc.retention == "2592000s" and config.attic.replicas == 3
    assert config.attic.ingress.annotations["x"] == "600"
    assert config.gitlab.extra_variables["FOO"].value == "true"


def test_a_host_behind_an_upstream_tls_terminator_needs_no_certificate_secret() -> None:
    raw = with_change("attic.ingress.tlsSecretName", DELETE)
    raw["attic"]["ingress"]["tlsTerminatedUpstream"] = True
    assert load_platform_config(raw).attic.ingress.tls_terminated_upstream is True


def test_the_templates_tags_must_all_be_on_one_pool() -> None:
    """gitlab-runner takes a job only when the job's tags are a subset of its own; tag-only pools take no other."""
    assert load_platform_config(with_change("ciTemplate.tags", ["flywheel-nix"])).ci_template.tags == ["flywheel-nix"]
    (problem,) = problems_for(with_change("ciTemplate.tags", ["flywheel"]))
    assert problem.startswith("flywheel:ciTemplate.tags: no runner pool carries all of ['flywheel']")
    assert "nix: ['flywheel-nix']" in problem and "e.g. ['flywheel-nix']" in problem
    # tags split over two pools reach neither
    assert problems_for(with_change("ciTemplate.tags", ["flywheel-nix", "flywheel-docker"]))
    # the defaults agree with each other: the default pool carries the default tags
    raw = {key: value for key, value in dev_raw().items() if key not in {"runners", "ciTemplate"}}
    assert load_platform_config(raw).ci_template.tags == ["flywheel"]


@pytest.mark.parametrize(
    ("path", "value"),
    [("runners[0].environment", "GITHUB_TOKEN=ghp_canary3"), ("gitlab.extraVariables", "DEPLOY_TOKEN=glpat-canary4")],
)
def test_a_value_typed_where_a_free_form_map_belongs_is_not_echoed(path: str, value: str) -> None:
    """Its entries may be credentials, so what stands in the map's place may be one too."""
    (problem,) = problems_for(with_change(path, value))
    assert problem.startswith(f"flywheel:{path}:"), problem
    assert value.split("=")[1] not in problem, problem
