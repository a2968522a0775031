"""The greedy build component: pure rendering, the GitLab CI schema, shellcheck, the embedded shell, wiring.

Real tools: check-jsonschema with GitLab's vendored CI schema, shellcheck, bash/sh. The Pulumi wiring is
checked through the offline render of the dev stack (mock monitor).
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import ci_template
from components.ci_template import (
    BOOTSTRAP,
    COMPONENT_FILE,
    CONTRACT_CHECK,
    HEREDOC_MARKERS,
    NIX_BUILD,
    TEARDOWN,
    after_script_timeout_seconds,
    ci_server_fqdn,
    component_reference,
    component_version,
    render_component,
    render_readme,
    script_timeout_seconds,
    teardown_bound_seconds,
)
from components.config import CONTRACT_RUNNER_KEYS, PLATFORM_GROUP_KEYS, CiTemplateConfig, GitlabConfig
from tests.conftest import ROOT, dev_stack, dev_value, require_tool
from tools.render import RenderResult, evaluate_policies

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"
STANDIN = ROOT / "lab" / "attic" / "attic-client.sh"
CUSTOM = CiTemplateConfig(
    attic_client_ref="github:acme/nix-tools/v2#attic",
    fallback_client_ref=".#packages.x86_64-linux.attic",
    connect_timeout_seconds=7,
    stalled_download_timeout_seconds=11,
    client_fetch_timeout_seconds=45,
    substitute_timeout_seconds=300,
    push_timeout_seconds=90,
    tags=["nix", "flywheel-large"],
    job_timeout_minutes=90,
)


def documents(config: CiTemplateConfig = CUSTOM) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(render_component(config)))


def jobs(config: CiTemplateConfig = CUSTOM) -> dict[str, Any]:
    return documents(config)[1]


def heredoc_body(item: str, marker: str) -> str:
    """The script text embedded in a ``<shell> -c "$(cat <<'MARKER' ... MARKER\n)" name </dev/null`` item."""
    lines = item.splitlines()
    assert re.fullmatch(rf"(GREEDY_ATTIC_PHASE=script )?(bash|sh) -c \"\$\(cat <<'{marker}'", lines[0]), lines[0]
    assert lines[-2] == marker
    assert re.fullmatch(r'\)" [\w-]+ </dev/null( \|\| (echo ".*"|greedy_build_exit=\$\?))?', lines[-1]), lines[-1]
    return "\n".join(lines[1:-2]) + "\n"


def interpolated(document: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """``document`` as GitLab sees it after input interpolation: a value that is only ``$[[ inputs.x ]]``
    takes the input's typed value (array, boolean), any other string gets the value's text."""
    reference = re.compile(r"\$\[\[ inputs\.([\w-]+) \]\]")

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):
            whole = reference.fullmatch(value)
            if whole:
                return inputs[whole.group(1)]
            return reference.sub(
                lambda m: (
                    str(inputs[m.group(1)]).lower() if isinstance(inputs[m.group(1)], bool) else str(inputs[m.group(1)])
                ),
                value,
            )
        return value

    return walk(document)


def defaults(config: CiTemplateConfig = CUSTOM) -> dict[str, Any]:
    return {name: spec["default"] for name, spec in documents(config)[0]["spec"]["inputs"].items()}


# --- shape --------------------------------------------------------------------------------------------


def test_component_is_a_spec_header_then_the_jobs() -> None:
    header, body = documents()
    assert set(header) == {"spec"}
    assert set(body) == {".greedy-attic", "greedy:nix-build", "greedy:bazel-build"}
    assert render_component(CUSTOM).count("\n---\n") == 1


def test_inputs_and_defaults_come_from_the_config() -> None:
    inputs = documents()[0]["spec"]["inputs"]
    assert inputs["attic-client-ref"]["default"] == "github:acme/nix-tools/v2#attic"
    assert inputs["fallback-client-ref"]["default"] == ".#packages.x86_64-linux.attic"
    assert inputs["bazel-command"]["default"] == "just bazel-build-cached"
    assert inputs["contract-check-command"]["default"] == "just cache-contract-strict"
    assert inputs["stage"]["default"] == "build"
    assert inputs["installable"]["default"] == ".#default"
    assert inputs["bazel-build"] == {"type": "boolean", "default": True, "description": "Run greedy:bazel-build."}
    assert inputs["nix-build"]["type"] == "boolean"
    assert all(spec.get("description") for spec in inputs.values())
    assert inputs["tags"] == {
        "type": "array",
        "default": ["nix", "flywheel-large"],
        "description": "Runner tags of every job (flywheel's runners take tagged jobs only).",
    }
    assert inputs["interruptible"]["type"] == "boolean" and inputs["interruptible"]["default"] is True
    variables = jobs()[".greedy-attic"]["variables"]
    assert variables["GREEDY_ATTIC_CONNECT_TIMEOUT"] == "7"
    assert variables["GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT"] == "11"
    assert variables["GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT"] == "45"
    assert variables["GREEDY_ATTIC_SUBSTITUTE_TIMEOUT"] == "300"
    assert variables["GREEDY_ATTIC_PUSH_TIMEOUT"] == "90"
    assert variables["GREEDY_ATTIC_CLIENT_REF"] == "$[[ inputs.attic-client-ref ]]"
    assert variables["GREEDY_ATTIC_FALLBACK_CLIENT_REF"] == "$[[ inputs.fallback-client-ref ]]"


def test_every_input_is_used_and_every_reference_is_declared() -> None:
    text = render_component(CUSTOM)
    declared = set(documents()[0]["spec"]["inputs"])
    referenced = set(re.findall(r"\$\[\[ inputs\.([\w-]+) \]\]", text))
    assert referenced == declared


def test_build_jobs_start_at_once_and_the_nix_job_carries_the_attic_bootstrap() -> None:
    body = jobs()
    nix, bazel, attic = body["greedy:nix-build"], body["greedy:bazel-build"], body[".greedy-attic"]
    assert nix["needs"] == [] and bazel["needs"] == []
    assert nix["stage"] == bazel["stage"] == "$[[ inputs.stage ]]"
    assert nix["extends"] == ".greedy-attic"
    assert nix["rules"] == [{"if": '"$[[ inputs.nix-build ]]" == "true"'}]
    assert bazel["rules"] == [{"if": '"$[[ inputs.bazel-build ]]" == "true"'}]
    assert len(attic["before_script"]) == 1 and len(attic["after_script"]) == 1
    script = nix["script"]
    assert script[0] == "greedy_build_exit=0"
    assert heredoc_body(script[1], "GREEDY_NIX_BUILD") == NIX_BUILD.read_text()
    assert script[1].splitlines()[-1].endswith("|| greedy_build_exit=$?")
    assert heredoc_body(script[2], "GREEDY_ATTIC_TEARDOWN") == TEARDOWN.read_text()
    assert script[2].startswith("GREEDY_ATTIC_PHASE=script bash -c")
    assert script[3] == 'exit "$greedy_build_exit"', "the build's exit code is the job's"
    assert nix["variables"] == {"GREEDY_NIX_INSTALLABLE": "$[[ inputs.installable ]]"}


def test_every_job_carries_the_tags_interruptible_and_timeout() -> None:
    """flywheel's pools register tag-only (untagged=false): a job without tags never reaches them."""
    body = interpolated(jobs(), defaults())
    nix, bazel = body["greedy:nix-build"], body["greedy:bazel-build"]
    for job in (body[".greedy-attic"], bazel):
        assert job["tags"] == ["nix", "flywheel-large"]
        assert job["interruptible"] is True
        assert job["timeout"] == "90 minutes"
    assert "tags" not in nix and nix["extends"] == ".greedy-attic", "inherited"
    off = interpolated(jobs(), {**defaults(), "interruptible": False, "tags": ["other"]})
    assert off["greedy:bazel-build"]["interruptible"] is False and off["greedy:bazel-build"]["tags"] == ["other"]


def test_bazel_job_checks_the_contract_before_anything_else() -> None:
    script = jobs()["greedy:bazel-build"]["script"]
    assert heredoc_body(script[0], "GREEDY_CACHE_CONTRACT") == CONTRACT_CHECK.read_text()
    assert script[1:] == ["$[[ inputs.contract-check-command ]]", "$[[ inputs.bazel-command ]]"]
    assert jobs()["greedy:bazel-build"]["variables"] == {"GREEDY_EXPECTED_SUBSTRATE_MODE": "shared-cache-backed"}


def test_every_embedded_script_starts_with_set_plus_x() -> None:
    """A consumer's `set -x` (or CI_DEBUG_TRACE) must not trace the lines that handle the token."""
    assert set(HEREDOC_MARKERS) >= {BOOTSTRAP, TEARDOWN, NIX_BUILD, CONTRACT_CHECK}, "every embedded script"
    for script in HEREDOC_MARKERS:
        lines = [line for line in script.read_text().splitlines() if line and not line.startswith("#")]
        assert lines[0] == "set +x", script.name


def test_embedded_shell_is_the_real_files_in_readable_blocks() -> None:
    attic = jobs()[".greedy-attic"]
    assert heredoc_body(attic["before_script"][0], "GREEDY_ATTIC_BOOTSTRAP") == BOOTSTRAP.read_text()
    assert heredoc_body(attic["after_script"][0], "GREEDY_ATTIC_TEARDOWN") == TEARDOWN.read_text()
    text = render_component(CUSTOM)
    assert "\n  - |\n    bash -c \"$(cat <<'GREEDY_ATTIC_BOOTSTRAP'\n" in text, "a literal block, not a quoted string"
    for script in (BOOTSTRAP, TEARDOWN):
        assert textwrap.indent(script.read_text(), "    ") in text, f"{script.name} reads as it is in the file"


def test_template_never_sets_contract_or_platform_variables() -> None:
    """Those come from the runners and the group; a template value would override or shadow them."""
    body = jobs()
    reserved = CONTRACT_RUNNER_KEYS | PLATFORM_GROUP_KEYS
    for name, job in body.items():
        assert not reserved & set(job.get("variables", {})), name
    assert "variables" not in body


def test_script_and_after_script_timeouts_fit_in_the_job_timeout() -> None:
    """GitLab runs after_script after a script timeout only if both fit in the job timeout."""
    for config in (CiTemplateConfig(), CUSTOM, CiTemplateConfig(push_timeout_seconds=3600, job_timeout_minutes=70)):
        job = jobs(config)[".greedy-attic"]
        after, script = job["variables"]["RUNNER_AFTER_SCRIPT_TIMEOUT"], job["variables"]["RUNNER_SCRIPT_TIMEOUT"]
        assert re.fullmatch(r"\d+s", after) and re.fullmatch(r"\d+s", script)
        assert int(after[:-1]) == after_script_timeout_seconds(config) > teardown_bound_seconds(config)
        assert int(script[:-1]) == script_timeout_seconds(config) > 0
        assert job["timeout"] == f"{config.job_timeout_minutes} minutes"
        assert int(script[:-1]) + int(after[:-1]) < config.job_timeout_minutes * 60
    assert teardown_bound_seconds(CiTemplateConfig()) == (5 + 5 + 2) + 1 + (120 + 2)


def test_the_rendering_is_deterministic() -> None:
    assert render_component(CUSTOM) == render_component(CUSTOM)
    assert render_component(CUSTOM) != render_component(CiTemplateConfig())


@pytest.mark.parametrize("poison", ["GREEDY_ATTIC_BOOTSTRAP", "echo $[[ inputs.stage ]]"])
def test_shell_that_would_break_the_embedding_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poison: str
) -> None:
    script = tmp_path / "attic-bootstrap.sh"
    script.write_text(f"#!/usr/bin/env bash\necho hi\n{poison}\n")
    monkeypatch.setattr(ci_template, "BOOTSTRAP", script)
    monkeypatch.setitem(ci_template.HEREDOC_MARKERS, script, "GREEDY_ATTIC_BOOTSTRAP")
    with pytest.raises(ValueError, match=r"heredoc marker|input reference"):
        render_component(CUSTOM)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://gitlab.example.com", "gitlab.example.com"),
        ("https://gitlab.example.com/", "gitlab.example.com"),
        ("https://GitLab.Example.com:443", "gitlab.example.com"),
        ("https://gitlab.example.com:8443", "gitlab.example.com:8443"),
        ("http://gitlab.example.com:80/", "gitlab.example.com"),
        ("https://example.com/gitlab", "example.com/gitlab"),
        ("https://example.com:8443/tools/gitlab/", "example.com:8443/tools/gitlab"),
    ],
)
def test_component_reference(url: str, expected: str) -> None:
    """Host, a non-default port and the relative URL root: what GitLab's component FQDN holds."""
    gitlab = GitlabConfig(url=url, group_path="acme", group_id=1, template_project="acme/platform/ci")
    assert component_reference(gitlab) == f"{expected}/acme/platform/ci/greedy-build"
    assert ci_server_fqdn(gitlab) == expected


@pytest.mark.parametrize(
    ("url", "gitlab_fqdn"),
    [
        ("https://gitlab.example.com", "gitlab.example.com"),
        # GitLab config/settings.rb build_ci_server_fqdn: host, a non-standard port, the relative URL root
        ("https://example.com:8443/gitlab", "example.com:8443/gitlab"),
    ],
)
def test_template_readme_include_resolves_to_the_component(url: str, gitlab_fqdn: str) -> None:
    """The README's ``$CI_SERVER_FQDN/...`` include, with the variable as GitLab sets it (written out here, not
    computed by the code under test), is the component's address; its example carries the tags."""
    gitlab = GitlabConfig(url=url, group_path="acme", group_id=1, template_project="acme/platform/ci")
    config = CiTemplateConfig(tags=["flywheel-nix"])
    block = re.search(r"```yaml\n(.*?)```", render_readme(gitlab, config), re.S)
    assert block is not None
    (include,) = yaml.safe_load(block.group(1))["include"]
    expanded = include["component"].replace("$CI_SERVER_FQDN", gitlab_fqdn)
    assert expanded == f"{gitlab_fqdn}/acme/platform/ci/greedy-build@1.0.0"
    assert expanded == f"{component_reference(gitlab)}@1.0.0"  # and the stack output ci_component says the same
    assert include["inputs"]["tags"] == ["flywheel-nix"]


# --- real tools ---------------------------------------------------------------------------------------


def _schema_errors(path: Path) -> str:
    tool = ROOT / ".venv" / "bin" / "check-jsonschema"
    command = [str(tool), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_rendered_component_validates_against_the_gitlab_ci_schema(tmp_path: Path) -> None:
    """The header as written; the jobs as GitLab validates them, after interpolating the inputs' defaults."""
    for index, config in enumerate((CiTemplateConfig(), CUSTOM)):
        header, body = documents(config)
        for part, document in (("header", header), ("jobs", interpolated(body, defaults(config)))):
            path = tmp_path / f"{part}-{index}.yml"
            path.write_text(yaml.safe_dump(document))
            assert _schema_errors(path) == "", path.read_text()[:500]


def test_schema_check_catches_a_broken_document(tmp_path: Path) -> None:
    """The control for the test above: the same check rejects a job with a malformed needs."""
    broken = jobs()
    broken["greedy:nix-build"]["needs"] = "everything"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert "needs" in _schema_errors(path)


CONSUMER_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.gitlab-ci.yml"))


@pytest.mark.parametrize("fixture", CONSUMER_FIXTURES)
def test_consumer_fixtures_validate_against_the_gitlab_ci_schema(fixture: str) -> None:
    assert _schema_errors(FIXTURES / fixture) == ""


@pytest.mark.parametrize("fixture", CONSUMER_FIXTURES)
def test_consumer_fixtures_include_the_dev_stacks_component_as_rendered(fixture: str) -> None:
    """The schema does not resolve includes: hold each fixture to the component the dev stack commits.

    Its include names that component (or, for gitlab-ci-local, the rendered file), passes only declared
    inputs with their declared types, and its ``needs`` name jobs that exist and are enabled by those inputs.
    """
    consumer = yaml.safe_load((FIXTURES / fixture).read_text())
    gitlab = GitlabConfig.model_validate(dev_value("gitlab"))
    header, component_jobs = documents(CiTemplateConfig.model_validate(dev_value("ciTemplate")))
    declared = header["spec"]["inputs"]
    (include,) = consumer["include"]
    if "component" in include:
        version = component_version(gitlab, CiTemplateConfig.model_validate(dev_value("ciTemplate")))
        expanded = include["component"].replace("$CI_SERVER_FQDN", ci_server_fqdn(gitlab))
        assert expanded == f"{component_reference(gitlab)}@{version}"
    elif "project" in include:
        version = component_version(gitlab, CiTemplateConfig.model_validate(dev_value("ciTemplate")))
        assert (include["project"], include["file"], str(include["ref"])) == (
            gitlab.template_project,
            COMPONENT_FILE,
            version,
        )
    else:
        assert include["local"] == COMPONENT_FILE
    inputs = include["inputs"]
    assert set(inputs) <= set(declared), f"undeclared inputs: {set(inputs) - set(declared)}"
    for name, value in inputs.items():
        assert isinstance(value, bool) == (declared[name].get("type") == "boolean"), f"{name}: {value!r}"
    enabled = {job for job in component_jobs if not job.startswith(".")}
    enabled -= {f"greedy:{name}" for name in ("nix-build", "bazel-build") if inputs.get(name) is False}
    for name, job in consumer.items():
        if isinstance(job, dict) and "needs" in job:
            # a need on a job a toggle can switch off is `optional: true`, else GitLab refuses the pipeline
            required = {need for need in job["needs"] if isinstance(need, str)}
            optional = {need["job"] for need in job["needs"] if isinstance(need, dict) and need.get("optional")}
            assert required <= enabled | set(consumer), f"{name} needs {required}; enabled: {enabled}"
            assert not required & {"greedy:nix-build", "greedy:bazel-build"}, f"{name}: make its greedy needs optional"
            assert optional <= set(component_jobs), optional


def test_shell_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck")
    scripts = ((BOOTSTRAP, "bash"), (TEARDOWN, "bash"), (NIX_BUILD, "bash"), (CONTRACT_CHECK, "sh"), (STANDIN, "bash"))
    for script, shell in scripts:
        result = subprocess.run([shellcheck, "--shell", shell, str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}:\n{result.stdout}"


def test_embedded_before_and_after_script_run_under_the_runners_errexit(tmp_path: Path) -> None:
    """GitLab runs the items in a `set -eo pipefail` bash; the bootstrap's skip must not end the job."""
    require_tool("bash")
    attic = jobs(CiTemplateConfig())[".greedy-attic"]
    state = tmp_path / "state"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GREEDY_ATTIC_STATE_DIR": str(state)}
    job = "\n".join([*attic["before_script"], 'printf "NIX_CONFIG=%s\\n" "${NIX_CONFIG:-}"', "echo the build ran"])
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", job], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stdout.splitlines() if "cache publication skipped" in line]
    assert len(skipped) == 1 and "ATTIC_SERVER ATTIC_CACHE ATTIC_PUBLIC_KEY not set" in skipped[0]
    assert "NIX_CONFIG=\n" in result.stdout, "the job's Nix settings are untouched"
    assert "the build ran" in result.stdout
    teardown = subprocess.run(["bash", "-c", attic["after_script"][0]], env=env, capture_output=True, text=True)
    assert teardown.returncode == 0 and "greedy-attic: nothing to publish (skipped: ATTIC_SERVER" in teardown.stdout


@pytest.mark.parametrize(
    ("environment", "exit_code", "named"),
    [
        ({}, 1, ["BAZEL_REMOTE_CACHE is not set", "GF_BAZEL_SUBSTRATE_MODE is '<unset>'"]),
        ({"BAZEL_REMOTE_CACHE": "grpc://c:9092", "GF_BAZEL_SUBSTRATE_MODE": "local"}, 1, ["is 'local'"]),
        ({"BAZEL_REMOTE_CACHE": "grpc://c:9092", "GF_BAZEL_SUBSTRATE_MODE": "shared-cache-backed"}, 0, []),
    ],
)
def test_embedded_contract_check(environment: dict[str, str], exit_code: int, named: list[str]) -> None:
    item = jobs()["greedy:bazel-build"]["script"][0]
    env = {"PATH": "/usr/bin:/bin", "GREEDY_EXPECTED_SUBSTRATE_MODE": "shared-cache-backed", **environment}
    result = subprocess.run(["sh", "-c", item], env=env, capture_output=True, text=True)
    assert result.returncode == exit_code
    for text in named:
        assert text in result.stderr
    if exit_code == 0:
        assert "cache contract: BAZEL_REMOTE_CACHE=grpc://c:9092" in result.stdout


# --- wiring (offline render of the dev stack) -----------------------------------------------------------


def _component_file(render: RenderResult) -> dict[str, Any]:
    (resource,) = [
        r
        for r in render.resources
        if r["type"] == "gitlab:index/repositoryFile:RepositoryFile" and r["inputs"]["filePath"] == COMPONENT_FILE
    ]
    return resource


def _release(render: RenderResult) -> dict[str, Any]:
    (resource,) = [r for r in render.resources if r["type"] == "gitlab:index/release:Release"]
    return resource


def test_platform_commits_the_component_to_the_template_project(dev_render: RenderResult) -> None:
    resource = _component_file(dev_render)
    assert resource["name"] == "ci-template-greedy-build"
    assert "flywheel:index:GreedyCiTemplate" in resource["parent"]
    inputs = resource["inputs"]
    assert inputs["project"] == "acme/platform/ci-templates"
    assert inputs["branch"] == "main"
    assert inputs["filePath"] == COMPONENT_FILE == "templates/greedy-build.yml"
    assert inputs["encoding"] == "text"
    config = CiTemplateConfig.model_validate_json(dev_stack().values["flywheel:ciTemplate"])
    assert inputs["content"] == render_component(config)
    assert dev_render.files["ci-template/templates/greedy-build.yml"] == inputs["content"]
    assert dev_render.files["ci-template/attic-bootstrap.sh"] == BOOTSTRAP.read_text()
    assert dev_render.files["ci-template/attic-teardown.sh"] == TEARDOWN.read_text()
    assert dev_render.files["ci-template/nix-build.sh"] == NIX_BUILD.read_text()
    assert dev_render.outputs["ci_component"] == "gitlab.example.com/acme/platform/ci-templates/greedy-build@1.0.0"


def test_platform_commits_a_readme_and_releases_the_component(dev_render: RenderResult) -> None:
    gitlab = GitlabConfig.model_validate(dev_value("gitlab"))
    config = CiTemplateConfig.model_validate(dev_value("ciTemplate"))
    (readme,) = [
        r
        for r in dev_render.resources
        if r["type"] == "gitlab:index/repositoryFile:RepositoryFile" and r["inputs"]["filePath"] == "README.md"
    ]
    assert readme["inputs"]["content"] == render_readme(gitlab, config)
    assert "greedy-build@1.0.0" in readme["inputs"]["content"] and "| `tags` | array |" in readme["inputs"]["content"]
    release = _release(dev_render)
    assert release["inputs"]["tagName"] == "1.0.0" and release["inputs"]["ref"] == "main"
    assert release["inputs"]["project"] == "acme/platform/ci-templates"
    # tagged after both files are committed, and kept in GitLab when the version moves on
    assert set(release["options"]["dependsOn"]) >= {readme["urn"], _component_file(dev_render)["urn"]}
    assert release["options"]["retainOnDelete"] is True


def test_template_ref_and_project_follow_the_gitlab_config(render: Any) -> None:
    gitlab = yaml.safe_load(dev_stack().values["flywheel:gitlab"])
    result = render({"gitlab": {**gitlab, "templateProject": "acme/tools/ci", "templateRef": "stable"}})
    inputs = _component_file(result)["inputs"]
    assert (inputs["project"], inputs["branch"]) == ("acme/tools/ci", "stable")
    assert result.outputs["ci_component"] == "gitlab.example.com/acme/tools/ci/greedy-build@1.0.0"
    unreleased = render({"ciTemplate": {"releaseVersion": None, "tags": ["flywheel-nix"]}})
    assert not [r for r in unreleased.resources if r["type"] == "gitlab:index/release:Release"]
    assert unreleased.outputs["ci_component"].endswith("greedy-build@main")


def test_policy_pack_accepts_the_rendered_component(dev_render: RenderResult) -> None:
    urn = _component_file(dev_render)["urn"]
    assert [v for v in evaluate_policies(dev_render.resources) if v["urn"] == urn] == []
