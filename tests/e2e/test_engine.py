"""The program through the real Pulumi engine (CLI 3.274.1, pulumi-kubernetes, the policy analyzer) against a real
kube-apiserver, in the order a platform engineer meets it: preview with the policy pack, a refused violation,
up, a second up that changes nothing, a config change reviewed through the MR note, destroy.

Real: the Pulumi CLI and engine, the pulumi-kubernetes provider, etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok. Stand-ins (lab/README.md): the Python language host, the gitlab/random/tls provider plugins,
the GitLab API, the gitlab-runner and cloudnative-pg charts, a volume provisioner, an ingress controller and the
CloudNativePG operator.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.e2e.session import Lab
from tools.render import REDACTED

STACK = "dev"
RENDER_SALT = secrets.token_hex(16)
# Resources the engine itself adds: the stack and the default providers the program never registers.
ENGINE_OWN = ("pulumi:pulumi:Stack", "pulumi:providers:")


def urn_type(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def program_urns(urns: set[str]) -> set[str]:
    return {
        urn
        for urn in urns
        if not urn_type(urn).startswith(ENGINE_OWN) or not urn.rsplit("::", 1)[1].startswith("default")
        if urn_type(urn) != "pulumi:pulumi:Stack"
    }


def preview_steps(output: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(output).get("steps", [])
    return steps


def render(lab: Lab, stack: str, out: Path) -> dict[str, Any]:
    """The offline render of the same stack file, in the same project copy."""
    assert lab.project is not None
    done = subprocess.run(
        [sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out)],
        cwd=lab.project.dir,
        capture_output=True,
        text=True,
        check=False,
        # as the preview job sets it: render_diff then sees which Secret values changed (keyed digests)
        env={**os.environ, "FLYWHEEL_RENDER_SALT": RENDER_SALT},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {
        "out": out,
        "resources": json.loads((out / "resources.json").read_text()),
        "outputs": json.loads((out / "outputs.json").read_text()),
        "manifests": [yaml.safe_load(p.read_text()) for p in sorted((out / "manifests").rglob("*.yaml"))],
    }


@pytest.fixture(scope="module")
def dev(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    lab.init_stack(STACK)
    return render(lab, STACK, tmp_path_factory.mktemp("render"))


def pulumi(lab: Lab, *args: str) -> Any:
    assert lab.project is not None
    return lab.project.pulumi(*args, "--stack", STACK)


def test_preview_with_the_policy_pack_plans_exactly_what_the_render_registers(lab: Lab, dev: dict[str, Any]) -> None:
    preview = pulumi(lab, "preview", "--policy-pack", "policies", "--json").check()
    planned = {step["urn"] for step in preview_steps(preview.stdout) if step["op"] == "create"}
    rendered = {resource["urn"] for resource in dev["resources"]}
    engine = program_urns(planned)
    assert (sorted(engine - rendered), sorted(rendered - engine)) == ([], [])


def test_a_seeded_mandatory_violation_fails_preview_naming_the_policy(lab: Lab, dev: dict[str, Any]) -> None:
    """An external bucket with storage.protect: false is valid config (it warns) that the mandatory
    storage-private-and-kept policy refuses."""
    assert lab.project is not None
    values = lab.stack_values()
    values["flywheel:storage"] = {
        "backend": "s3",
        "bucket": "flywheel-attic",
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:9",
        "protect": False,
    }
    lab.init_stack("violation", values_override=values)
    for key, value in (("accessKeyId", "AKIALABVIOLATION0001"), ("secretAccessKey", "lab-violation-secret-key-0001")):
        lab.project.pulumi(
            "config", "set", "--stack", "violation", "--secret", "--path", f"flywheel:storage.credentials.{key}", value
        ).check()
    preview = lab.project.pulumi("preview", "--stack", "violation", "--policy-pack", "policies", "--diff")
    assert preview.returncode != 0, preview.stdout[-3000:]
    output = preview.stdout + preview.stderr
    assert "storage-private-and-kept" in output and "mandatory" in output, output[-3000:]
    lab.project.pulumi("stack", "rm", "--yes", "--force", "violation").check()


def is_subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `expected` (what the render sets) is not in `actual` (the live object)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, found {type(actual).__name__}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += is_subset(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, found {actual!r:.200}"]
        return [
            p for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for p in is_subset(e, a, f"{path}[{i}]")
        ]
    if expected == REDACTED or expected == "[unknown]":
        return []
    if str(expected) != str(actual):
        return [f"{path}: render {expected!r:.120}, live {actual!r:.120}"]
    return []


def state_names(lab: Lab) -> dict[str, tuple[str, str | None]]:
    """URN -> (name, namespace) of every Kubernetes object in the stack's state, as the provider created it."""
    exported = json.loads(pulumi(lab, "stack", "export").check().stdout)
    names = {}
    for resource in exported["deployment"]["resources"]:
        metadata = (resource.get("outputs") or {}).get("metadata")
        if resource["type"].startswith("kubernetes:") and isinstance(metadata, dict) and "name" in metadata:
            names[resource["urn"]] = (metadata["name"], metadata.get("namespace"))
    return names


def generated_values(lab: Lab, dev: dict[str, Any]) -> dict[str, str]:
    """Render value -> engine value of each stack output the providers generate (the Nix cache's public key): the
    render's come from mock keys, so objects carrying them legitimately differ by exactly that text."""
    engine = pulumi(lab, "stack", "output", "--json").check().json()
    return {
        rendered: engine[key]
        for key, rendered in dev["outputs"].items()
        if isinstance(rendered, str)
        and isinstance(engine.get(key), str)
        and rendered != engine[key]
        and rendered not in (REDACTED, "[unknown]")
    }


def substitute(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
    return value


def test_up_creates_every_object_the_render_declares(lab: Lab, dev: dict[str, Any]) -> None:
    pulumi(lab, "up", "--yes", "--skip-preview", "--policy-pack", "policies").check()
    assert lab.kube is not None
    names = state_names(lab)
    generated = generated_values(lab, dev)
    problems = []
    for resource in dev["resources"]:
        inputs = resource["inputs"]
        if not resource["type"].startswith("kubernetes:") or "kind" not in inputs:
            continue
        where = f"{inputs['kind']} {resource['name']}"
        if resource["urn"] not in names:
            problems.append(f"{where}: not in the stack's state")
            continue
        name, namespace = names[resource["urn"]]
        live = lab.kube.get(inputs["apiVersion"], inputs["kind"], name, namespace)
        if live is None:
            problems.append(f"{where}: {namespace}/{name} not in the API server")
            continue
        body = substitute({k: v for k, v in inputs.items() if k not in ("apiVersion", "kind", "status")}, generated)
        if name != body.get("metadata", {}).get("name"):
            # named from a generated key (the render's are mock keys): the URN, not the name, is the identity
            body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "name"}
        problems += [f"{where}: {p}" for p in is_subset(body, live)]
    assert problems == []


def test_attic_migrates_only_once_the_database_is_ready(lab: Lab, dev: dict[str, Any]) -> None:
    """The stand-in operator makes the Cluster Ready seconds after it exists; the migrations Job, which needs the
    database, must be created after that (the provider awaits the Cluster's Ready condition first)."""
    assert lab.kube is not None
    names = state_names(lab)
    [cluster_urn] = [u for u in names if u.endswith("Cluster::attic-db-cluster")]
    [migrations_urn] = [u for u in names if u.endswith("Job::attic-db-migrations")]
    cluster = lab.kube.get("postgresql.cnpg.io/v1", "Cluster", *names[cluster_urn])
    job = lab.kube.get("batch/v1", "Job", *names[migrations_urn])
    assert cluster is not None and job is not None
    [ready] = [c for c in cluster["status"]["conditions"] if c["type"] == "Ready"]
    assert (
        job["metadata"]["creationTimestamp"] >= ready["lastTransitionTime"] > cluster["metadata"]["creationTimestamp"]
    )


def test_the_state_holds_no_secret_in_plain_text(lab: Lab, dev: dict[str, Any]) -> None:
    """Every value of every Secret the program created in the cluster is absent from `pulumi stack export`."""
    assert lab.kube is not None
    exported = pulumi(lab, "stack", "export").check().stdout
    namespaces = {m["metadata"].get("namespace") for m in dev["manifests"] if m["kind"] == "Secret"}
    values = {
        f"{secret['metadata']['namespace']}/{secret['metadata']['name']}[{key}]": base64.b64decode(value).decode(
            errors="replace"
        )
        for namespace in namespaces
        for secret in lab.kube.list("v1", "Secret", namespace)
        for key, value in (secret.get("data") or {}).items()
    }
    # short values (ports, flags) and public keys (exported on purpose: attic_public_key) are not secrets
    secrets = {k: v for k, v in values.items() if len(v) >= 12 and "public" not in k}
    assert secrets, "no Secret values found: the test would prove nothing"
    leaked = sorted(where for where, value in secrets.items() if value in exported)
    assert leaked == []


def test_up_registered_the_group_runners_the_masked_hidden_token_and_the_template(
    lab: Lab, dev: dict[str, Any]
) -> None:
    from components.ci_template import COMPONENT_FILE

    assert lab.gitlab is not None
    state = lab.gitlab.state
    group_id = lab.stack_values()["flywheel:gitlab"]["groupId"]
    pools = [pool["name"] for pool in lab.stack_values()["flywheel:runners"]]
    runners = [r for r in state.runners.values() if r.group_id == group_id]  # test_ci_jobs.py has its own group
    assert sorted(r.runner_type for r in runners) == ["group_type"] * len(pools)
    token = state.variables[group_id][("ATTIC_TOKEN", "*")]
    assert token.masked and token.hidden and not token.protected
    template_path = lab.stack_values()["flywheel:gitlab"]["templateProject"]
    [template] = [p for p in state.projects.values() if p.path_with_namespace == template_path]
    branch = lab.stack_values()["flywheel:gitlab"]["templateRef"]
    assert COMPONENT_FILE in template.files[branch]


def test_a_second_up_changes_nothing(lab: Lab, dev: dict[str, Any]) -> None:
    # --expect-no-changes: the CLI fails the update if any step would change anything
    pulumi(lab, "up", "--yes", "--expect-no-changes", "--policy-pack", "policies").check()
    result = pulumi(lab, "preview", "--expect-no-changes", "--json").check()
    changed = [step for step in preview_steps(result.stdout) if step["op"] not in ("same", "read")]
    assert changed == []


def test_a_config_change_shows_in_the_mr_note_as_the_render_diff_predicts(
    lab: Lab, dev: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tools import mr_note, render_diff

    assert lab.project is not None
    pulumi(lab, "config", "set", "--path", "flywheel:attic.gc.retention", "14 days").check()
    head = render(lab, STACK, tmp_path_factory.mktemp("render-head"))
    preview_json = pulumi(lab, "preview", "--json").check().stdout
    preview_text = pulumi(lab, "preview", "--diff").check().stdout
    digest = json.loads(preview_json)

    engine = mr_note.report_from_preview(STACK, digest, preview_text, 0)
    offline = render_diff.report_from_renders(
        STACK, render_diff.load_render(dev["out"]), render_diff.load_render(head["out"])
    )
    engine_changed = {(c.urn, c.op) for c in engine.changes}
    offline_changed = {(c.urn, c.op) for c in offline.changes}
    assert engine_changed, "the retention change planned nothing"
    engine_urns = {urn for urn, _ in engine_changed}
    offline_urns = {urn for urn, _ in offline_changed}
    assert (sorted(engine_urns - offline_urns), sorted(offline_urns - engine_urns)) == ([], [])

    note_file = tmp_path_factory.mktemp("note") / "note.md"
    (note_file.parent / "preview.json").write_text(preview_json)
    (note_file.parent / "preview.txt").write_text(preview_text)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.mr_note",
            "--stack",
            STACK,
            "--no-post",
            "--out",
            str(note_file),
            "--preview-json",
            str(note_file.parent / "preview.json"),
            "--preview-text",
            str(note_file.parent / "preview.txt"),
            "--preview-exit-code",
            "0",
        ],
        cwd=lab.project.dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    note = note_file.read_text()
    for urn, _ in engine_changed:
        assert urn.rsplit("::", 1)[1] in note
    pulumi(lab, "config", "set", "--path", "flywheel:attic.gc.retention", "30 days").check()


def test_destroy_leaves_the_retained_resources_in_place_and_says_so(lab: Lab, dev: dict[str, Any]) -> None:
    assert lab.kube is not None
    destroy = pulumi(lab, "destroy", "--yes", "--skip-preview").check()
    retained = [r for r in dev["resources"] if r["options"]["retainOnDelete"] and r["type"].startswith("kubernetes:")]
    assert retained, "the render retains nothing: the test would prove nothing"
    for resource in retained:
        inputs = resource["inputs"]
        meta = inputs["metadata"]
        live = lab.kube.get(inputs["apiVersion"], inputs["kind"], meta["name"], meta.get("namespace"))
        assert live is not None, f"{inputs['kind']} {meta['name']} was deleted by pulumi destroy"
        assert live["metadata"].get("deletionTimestamp") is None, f"{inputs['kind']} {meta['name']} is being deleted"
    assert "retain" in destroy.stdout.lower(), destroy.stdout[-3000:]
