"""The pack as a whole: __main__ assembly, robustness on odd input, the CLI, render's exit code, the real host.

`test_policy_host_*` start the real pulumi_policy analyzer host (`python -m pulumi.policy`, what the
Pulumi CLI launches for `--policy-pack policies`) and drive it over its gRPC protocol the way the CLI
does. The CLI itself cannot be installed here, so the host is driven by this test instead of the engine.
"""

from __future__ import annotations

import copy
import json
import os
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policies.flywheel_policies as flywheel_policies
from policies.evaluate import UNKNOWN_TEXT, engine_values, evaluate_resources
from tests.conftest import ROOT, stack_with
from tools import check_policies
from tools.render import RenderResult
from tools.render import render as render_to_folder

PACK = ROOT / "policies"
TYPES = [
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Service",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:CronJob",
    "gitlab:index/groupVariable:GroupVariable",
    "gitlab:index/projectVariable:ProjectVariable",
    "gitlab:index/userRunner:UserRunner",
    "gitlab:index/repositoryFile:RepositoryFile",
    "pulumi-python:dynamic/flywheel:S3Bucket",
]
ODD_VALUES: list[Any] = [None, UNKNOWN_TEXT, "[secret]", 7, -1.5, True, "", "x", [], {}, [None], {"a": None}]


# --- __main__ only assembles the pack -------------------------------------------------------------------


def test_main_builds_the_pack_from_exactly_the_module_policy_list() -> None:
    """Run policies/__main__.py as the host does (folder on sys.path), with PolicyPack patched out.

    The host imports the package as top-level ``flywheel_policies``; sys.modules and sys.path are restored
    afterwards, so neither the package nor its submodules outlive this test.
    """
    with (
        mock.patch.dict(sys.modules),
        mock.patch.object(sys, "path", list(sys.path)),
        mock.patch("pulumi_policy.PolicyPack") as pack,
    ):
        for name in [m for m in sys.modules if m.partition(".")[0] == "flywheel_policies"]:
            del sys.modules[name]  # import it fresh from the folder, as the host does
        runpy.run_path(str(PACK), run_name="__main__")
        loaded = sys.modules["flywheel_policies"]
    pack.assert_called_once()
    kwargs = pack.call_args.kwargs
    assert kwargs["policies"] is loaded.POLICIES  # the list itself, nothing added or dropped
    assert Path(loaded.__file__).resolve() == Path(flywheel_policies.__file__).resolve()
    assert [p.name for p in kwargs["policies"]] == [p.name for p in flywheel_policies.POLICIES]
    assert kwargs["name"] == "flywheel-cache-policies"


def test_policy_names_are_unique_and_described() -> None:
    names = [p.name for p in flywheel_policies.POLICIES]
    assert len(names) == len(set(names)) == 15
    assert all(p.description.endswith(".") for p in flywheel_policies.POLICIES)


def test_pack_restates_the_programs_facts_unchanged() -> None:
    """The policy host runs the pack in its own venv without components/ or tools/, so the pack restates
    a few of their facts; a change on one side only would make a policy judge the wrong thing silently."""
    from components import config, runners, s3_bucket
    from policies.flywheel_policies import bazel, common, storage
    from policies.flywheel_policies import runners as runner_policies
    from tools import render

    assert common.SUBSTRATE_MODE == config.SUBSTRATE_MODE
    assert runner_policies.CACHE_INJECTION_LABEL == runners.CACHE_INJECTION_LABEL
    assert f"pulumi-python:{s3_bucket.S3Bucket._resource_type_name}" == storage.BUCKET_TYPE
    assert pytest.approx(1 + config.BAZEL_DISK_HEADROOM_PERCENT / 100) == bazel.DEFAULT_BAZEL_HEADROOM
    assert common.REDACTED == render.REDACTED
    assert UNKNOWN_TEXT == render.UNKNOWN_TEXT


# --- robustness: missing, unknown and odd properties -----------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 4) -> Iterator[tuple[Any, ...]]:
    if depth == 0:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key), depth - 1)
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index), depth - 1)


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    value = copy.deepcopy(value)
    target = value
    for step in path[:-1]:
        target = target[step]
    if new is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return value


def _no_crash(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = evaluate_resources(resources)
    crashes = [v for v in found if " failed: " in v["message"]]
    assert not crashes, crashes
    return found


def test_policies_tolerate_missing_and_unknown_properties(dev_render: RenderResult) -> None:
    """Each input path (4 levels deep) of one resource per judged type: deleted, unknown, or of the wrong type."""
    resources = dev_render.resources
    first_of_type = {r["type"]: i for i, r in reversed(list(enumerate(resources))) if r["type"] in TYPES}
    replacements = [KeyError, UNKNOWN_TEXT, 7, None]
    cases = 0
    for index in sorted(first_of_type.values()):
        resource = resources[index]
        for path in _paths(resource["inputs"]):
            mutated = list(resources)
            new = replacements[cases % len(replacements)]
            mutated[index] = {**resource, "inputs": _replace(resource["inputs"], path, new)}
            _no_crash(mutated)
            cases += 1
    assert cases > 100


def test_policies_tolerate_bare_records(dev_render: RenderResult) -> None:
    bare = [{"urn": r["urn"], "type": r["type"]} for r in dev_render.resources]
    _no_crash(bare)
    _no_crash([])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typ=st.sampled_from(TYPES), inputs=st.dictionaries(st.text(max_size=16), json_values, max_size=6))
def test_policies_tolerate_arbitrary_inputs(dev_render: RenderResult, typ: str, inputs: dict[str, Any]) -> None:
    odd = {"urn": f"urn:pulumi:dev::flywheel::{typ}::odd", "type": typ, "name": "odd", "inputs": inputs}
    _no_crash([*dev_render.resources, odd])


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_policies_tolerate_odd_values_in_known_shapes(dev_render: RenderResult, value: Any) -> None:
    """Odd values where the policies look hardest: config.toml, server.toml, template content, variables."""
    shapes: list[dict[str, Any]] = [
        {
            "type": "kubernetes:helm.sh/v3:Release",
            "inputs": {"chart": "gitlab-runner", "values": {"runners": {"config": value}}},
        },
        {"type": "kubernetes:core/v1:ConfigMap", "inputs": {"data": {"server.toml": value}}},
        {"type": "gitlab:index/repositoryFile:RepositoryFile", "inputs": {"filePath": "t.yml", "content": value}},
        {"type": "gitlab:index/groupVariable:GroupVariable", "inputs": {"key": value, "masked": value}},
        {"type": "kubernetes:batch/v1:CronJob", "inputs": {"spec": {"jobTemplate": value}}},
        {"type": "pulumi-python:dynamic/flywheel:S3Bucket", "inputs": {"bucket": "b", "lifecycleRules": value}},
    ]
    extra = [dict(shape, urn=f"urn:odd{i}", name=f"odd{i}") for i, shape in enumerate(shapes)]
    _no_crash([*dev_render.resources, *extra])


# --- tools.check_policies ---------------------------------------------------------------------------------


def _run_check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.check_policies", str(path), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_policies_passes_the_dev_render(tmp_path: Path, dev_render: RenderResult) -> None:
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(dev_render.resources))
    result = _run_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(dev_render.resources)} resources checked: 0 violation(s), 0 mandatory" in result.stdout


def test_check_policies_exits_1_on_a_hand_edited_mandatory_violation(tmp_path: Path, dev_render: RenderResult) -> None:
    resources = copy.deepcopy(dev_render.resources)
    resources.append(
        {
            "urn": "urn:pulumi:dev::flywheel::gitlab:index/groupVariable:GroupVariable::by-hand",
            "type": "gitlab:index/groupVariable:GroupVariable",
            "inputs": {"key": "GF_BAZEL_SUBSTRATE_MODE", "value": "local"},
        }
    )
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(resources))
    result = _run_check(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MANDATORY contract-not-shadowed: urn:pulumi:dev::flywheel::gitlab:index/groupVariable" in result.stdout
    assert "GF_BAZEL_SUBSTRATE_MODE" in result.stdout and "the stack would be refused" in result.stdout
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"contract-not-shadowed": "advisory"}))
    relaxed = _run_check(path, "--config", str(config), "--json")
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    assert [v["enforcementLevel"] for v in json.loads(relaxed.stdout)["violations"]] == ["advisory"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON (line 1"),
        ('{"a": 1}', "expected a JSON list of resources"),
        ('[{"type": "x"}]', "resource #0: 'urn' must be a non-empty string"),
        ('[{"urn": "u", "type": "t", "inputs": []}]', "'inputs' must be an object"),
        ("[1]", "resource #0: expected an object"),
    ],
    ids=["missing", "not-json", "not-a-list", "no-urn", "bad-inputs", "not-an-object"],
)
def test_check_policies_exits_2_on_unreadable_input(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "resources.json"
    if content is not None:
        path.write_text(content)
    result = check_policies.main([str(path)])
    assert result == 2
    process = _run_check(path)
    assert process.returncode == 2 and fragment in process.stderr, process.stderr
    assert "Traceback" not in process.stderr + process.stdout


def test_check_policies_exits_2_on_a_bad_policy_config(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    path.write_text("[]")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"no-such-policy": "advisory"}))
    result = _run_check(path, "--config", str(config))
    assert result.returncode == 2 and "unknown policy name(s) in policy config: no-such-policy" in result.stderr


# --- tools.render wiring ---------------------------------------------------------------------------------------


def test_render_exits_1_and_names_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack file whose bazel cache is off: runners cannot inject the contract, render refuses it (the config
    check, which refuses it first with exit 2, is bypassed to reach the policy)."""
    monkeypatch.setattr("components.config._cross_area_problems", lambda config: [])
    stack = stack_with({"bazelCache": {"enabled": False}})
    stack_file = tmp_path / "Pulumi.nobazel.yaml"
    config = {k: json.loads(v) if v[:1] in "[{" else v for k, v in stack.values.items()}
    stack_file.write_text(json.dumps({"config": config}))
    code = render_to_folder("nobazel", tmp_path / "out", stack_file)
    out = capsys.readouterr().out
    assert code == 1
    assert "policy MANDATORY runner-cache-contract:" in out and "does not inject BAZEL_REMOTE_CACHE" in out
    report = json.loads((tmp_path / "out" / "policy-report.json").read_text())
    assert {v["policyName"] for v in report["violations"]} >= {"runner-cache-contract"}


# --- the real policy host, over gRPC ---------------------------------------------------------------------------


@pytest.fixture
def policy_host() -> Iterator[Any]:
    """`python -m pulumi.policy <engine> .` in policies/, as the CLI launches a local Python pack."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PULUMI_CONFIG"}}
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), (
            f"policy host did not print its port: {port!r} {process.stderr.read() if process.stderr else ''}"
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=30)


def _analyzer_resource(record: dict[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    properties = json_format.ParseDict(engine_values(record.get("inputs", {})), struct_pb2.Struct())
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(record.get("options", {}).get("protect")), parent=record.get("parent", "")
    )
    return analyzer_pb2.AnalyzerResource(
        type=record["type"],
        properties=properties,
        urn=record["urn"],
        name=record["name"],
        options=options,
        parent=record.get("parent", ""),
    )


def _host_violations(stub: Any, resources: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    from pulumi.runtime.proto import analyzer_pb2

    found = []
    stack = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[_analyzer_resource(r) for r in resources]))
    found += [(d.policyName, d.urn, d.enforcementLevel) for d in stack.diagnostics]
    for record in resources:
        resource = _analyzer_resource(record)
        response = stub.Analyze(
            analyzer_pb2.AnalyzeRequest(
                type=resource.type,
                properties=resource.properties,
                urn=resource.urn,
                name=resource.name,
                options=resource.options,
            )
        )
        found += [(d.policyName, d.urn or record["urn"], d.enforcementLevel) for d in response.diagnostics]
    return sorted(found)


def test_policy_host_describes_the_pack(policy_host: Any) -> None:
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = policy_host.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "flywheel-cache-policies"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels == {
        p.name: analyzer_pb2.MANDATORY if p.enforcement_level.value == "mandatory" else analyzer_pb2.ADVISORY
        for p in flywheel_policies.POLICIES
    }
    schema = {p.name: dict(p.configSchema.properties) for p in info.policies}
    assert "headroom" in schema["bazel-cache-capacity"] and "keyPattern" in schema["ci-token-masked"]


def test_policy_host_judges_recorded_resources_like_evaluate(policy_host: Any, dev_render: RenderResult) -> None:
    """Same verdicts from the real analyzer as from policies.evaluate, on the dev render and a seeded one."""
    from pulumi.runtime.proto import analyzer_pb2

    assert _host_violations(policy_host, dev_render.resources) == []
    seeded = [r for r in dev_render.resources if "garbage-collector-once" not in str(r)]
    seeded.append(
        {
            "urn": "urn:pulumi:dev::flywheel::gitlab:index/groupVariable:GroupVariable::shadow",
            "type": "gitlab:index/groupVariable:GroupVariable",
            "name": "shadow",
            "inputs": {"key": "BAZEL_REMOTE_CACHE", "value": "grpc://x:9092"},
        }
    )
    expected = sorted((v["policyName"], v["urn"], analyzer_pb2.MANDATORY) for v in evaluate_resources(seeded))
    assert {name for name, _, _ in expected} == {"attic-gc-present", "contract-not-shadowed"}
    assert _host_violations(policy_host, seeded) == expected

    # pack config as the CLI sends it (`--policy-pack-config`): the level drops to advisory
    policy_host.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={"attic-gc-present": analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.ADVISORY)}
        )
    )
    relaxed = _host_violations(policy_host, seeded)
    assert ("attic-gc-present", "", analyzer_pb2.ADVISORY) in relaxed
