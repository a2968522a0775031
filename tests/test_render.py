"""The offline render: as a user runs it, deterministic, secret-free, with the documented exit codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, dev_stack, dev_value, stack_with
from tools import render as render_tool
from tools.mocks import FlywheelMocks, RecordingMonitor
from tools.render import RenderConfigError, StackConfig, run_program, write_output

# Secret config a real stack would set with `pulumi config set --secret`; none may appear in the output.
CONFIG_SECRETS = {
    "s3_access_key": "AKIAFLYWHEELTESTKEY01",
    "s3_secret_key": "s3-secret-key-value-do-not-leak-7f3a",
    "db_password": "db-password-do-not-leak-91c2",
    "gitlab_token": "glpat-gitlab-token-do-not-leak-55e1",
    "masked_variable": "masked-variable-do-not-leak-0b8d",
}


def _run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.render", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_render_as_a_user_runs_it_is_byte_identical_twice(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        result = _run_cli("--stack", "dev", "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert "flywheel render: stack 'dev'" in result.stdout
        assert "Traceback" not in result.stderr
    assert _tree(first) == _tree(second)
    names = set(_tree(first))
    assert {"resources.json", "outputs.json", "policy-report.json"} <= names
    assert any(name.startswith("manifests/") for name in names)
    resources = json.loads((first / "resources.json").read_text())
    assert resources == sorted(resources, key=lambda r: r["urn"])
    for resource in resources:
        assert set(resource) == {"urn", "type", "name", "parent", "custom", "inputs", "options"}
        assert set(resource["options"]) == {"protect", "retainOnDelete", "dependsOn"}
        assert "::pulumi:pulumi:Stack$" not in resource["urn"]


def test_numbers_are_written_as_ints_when_integral() -> None:
    assert render_tool._plain({"replicas": 2.0, "ratio": 0.5, "nested": [3.0]}) == {
        "replicas": 2,
        "ratio": 0.5,
        "nested": [3],
    }


def test_invalid_config_exits_2_with_one_line_per_problem_and_writes_nothing(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.broken.yaml"
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["flywheel:attic"]["gc"]["retention"] = "6 monthz"
    document["config"]["flywheel:namespace"] = "Bad Namespace"
    stack_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = _run_cli("--stack", "broken", "--stack-file", str(stack_file), "--out", str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert lines == [
        "flywheel:attic.gc.retention: not a duration (got '6 monthz'; expected a humantime duration such as "
        "'30 days', '12h' or '1week 2days' (units s, m, h, d, w, M, y), or a whole number of seconds)",
        "flywheel:namespace: not a DNS-1123 label (got 'Bad Namespace'; expected lowercase letters, digits and '-', "
        "starting and ending with a letter or digit, at most 63 characters)",
    ]
    assert not out.exists()


def test_the_program_itself_registers_nothing_on_invalid_config() -> None:
    """Even without the render's own pre-check, __main__ stops before the first resource."""
    monitor = RecordingMonitor(FlywheelMocks())
    with pytest.raises(RenderConfigError) as caught:
        run_program("dev", stack_with({"attic": {"replicas": 0}}), monitor=monitor)
    assert caught.value.problems == ["flywheel:attic.replicas: out of range (got 0; expected a number >= 1)"]
    assert monitor.registrations == []


def test_mandatory_violation_exits_1_and_advisory_exits_0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def violations(level: str) -> list[dict[str, Any]]:
        return [{"policyName": "seeded", "enforcementLevel": level, "urn": "urn:x", "message": "seeded violation"}]

    monkeypatch.setattr(render_tool, "evaluate_policies", lambda resources, config=None: violations("mandatory"))
    assert render_tool.render("dev", tmp_path / "mandatory") == render_tool.EXIT_POLICY
    report = json.loads((tmp_path / "mandatory" / "policy-report.json").read_text())
    assert report["violations"][0]["policyName"] == "seeded"
    monkeypatch.setattr(render_tool, "evaluate_policies", lambda resources, config=None: violations("advisory"))
    assert render_tool.render("dev", tmp_path / "advisory") == render_tool.EXIT_OK


def test_a_missing_stack_file_is_a_config_error(tmp_path: Path) -> None:
    result = _run_cli("--stack", "nope", "--stack-file", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "cannot read stack file" in result.stderr
    assert "Traceback" not in result.stderr


def _stack_with_config_secrets() -> StackConfig:
    gitlab = dev_value("gitlab")
    gitlab["extraVariables"]["DEPLOY_KEY"] = {"value": CONFIG_SECRETS["masked_variable"], "masked": True}
    stack = stack_with(
        {
            "storage": {
                "backend": "s3",
                "bucket": "flywheel-attic",
                "region": "eu-west-1",
                "endpoint": "https://s3.example.com",
                "credentials": {
                    "accessKeyId": CONFIG_SECRETS["s3_access_key"],
                    "secretAccessKey": CONFIG_SECRETS["s3_secret_key"],
                },
            },
            "database": {
                "backend": "external",
                "url": f"postgres://attic:{CONFIG_SECRETS['db_password']}@db.example.com:5432/attic",
            },
            "gitlab": gitlab,
            "gitlab:token": CONFIG_SECRETS["gitlab_token"],
        }
    )
    stack.secret_keys = ["flywheel:storage", "flywheel:database", "flywheel:gitlab", "gitlab:token"]
    return stack


def _forms(secret: str) -> set[str]:
    """A secret and the encodings a leak would most likely take."""
    forms = {secret, base64.b64encode(secret.encode()).decode()}
    # every full line of a PEM body is distinctive on its own
    forms |= {line for line in secret.splitlines() if len(line) >= 40 and "-----" not in line}
    return forms


@pytest.mark.parametrize("stack_name", ["dev", "config-secrets"])
def test_no_secret_reaches_any_rendered_output(stack_name: str, tmp_path: Path) -> None:
    stack = dev_stack() if stack_name == "dev" else _stack_with_config_secrets()
    monitor = RecordingMonitor(FlywheelMocks())
    result = run_program(stack_name, stack, monitor=monitor)
    write_output(tmp_path, result, [])
    secrets = list(monitor.mocks.issued_secrets)
    if stack_name != "dev":
        secrets += list(CONFIG_SECRETS.values())
    assert secrets, "the render issued no secret at all: the check below would prove nothing"
    leaks = []
    for path, content in _tree(tmp_path).items():
        text = content.decode()
        leaks += [f"{path}: {form[:12]}..." for secret in secrets for form in _forms(secret) if form in text]
    assert not leaks, leaks
    # the secret inputs are still recorded, as the redaction marker
    assert render_tool.REDACTED in (tmp_path / "resources.json").read_text()


def test_the_program_sets_delete_before_replace_only_where_it_means_it() -> None:
    """deleteBeforeReplaceDefined as the engine receives it; unset leaves the choice to each provider."""
    monitor = RecordingMonitor(FlywheelMocks())
    run_program("dev", dev_stack(), monitor=monitor)
    defined = {r.name: r.delete_before_replace for r in monitor.registrations if r.delete_before_replace is not None}
    assert defined == {"attic-db-migrations": True}


def test_a_failed_program_leaves_no_unretrieved_future_noise(caplog: pytest.LogCaptureFixture) -> None:
    """The failure reaches the caller once; the SDK's copies of it in other futures are not logged again at
    garbage collection ("Future exception was never retrieved" after pytest's summary)."""
    import gc

    import pulumi

    from tests.conftest import register

    def build() -> None:
        failing = pulumi.Output.from_input("x").apply(lambda _: (_ for _ in ()).throw(ValueError("seeded failure")))
        pulumi.CustomResource("test:index:Thing", "thing", {"value": failing})

    with caplog.at_level("ERROR", logger="asyncio"):
        with pytest.raises(Exception, match="seeded failure"):
            register(build)
        register(lambda: None)  # the next run neither inherits the failure nor leaves its copies to be logged
        for _ in range(3):
            register(lambda: None)
            gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_each_config_warning_is_printed_once(tmp_path: Path) -> None:
    """The render validates the config and then runs the program, which says the same warnings through the
    engine: the user reads each once, and what the program logs under the mocks is not printed raw."""
    import yaml

    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["flywheel:storage"] = {
        "backend": "s3",
        "bucket": "flywheel-attic",
        "region": "eu-west-1",
        "endpoint": "https://s3.example.com",
        "protect": False,
        "credentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "example-secret-key"},
    }
    stack_file = tmp_path / "Pulumi.unprotected.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    result = _run_cli("--stack", "dev", "--stack-file", str(stack_file), "--out", str(tmp_path / "out"))
    assert result.returncode == 1  # the mandatory storage policy refuses the unprotected bucket
    lines = result.stderr.splitlines()
    assert sum("storage.protect is false" in line for line in lines) == 1, result.stderr
    assert sum("storage.credentials.accessKeyId is plain text" in line for line in lines) == 1
    assert all(line.startswith(("flywheel:", "  ")) for line in lines if line.strip()), result.stderr
