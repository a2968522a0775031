"""tools/render_diff.py on real renders of the dev stack: the program under the mock monitor, written by
tools.render exactly as `make render` writes build/<stack>, once per side of a one-key config change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, dev_value, render_stack, stack_with
from tools.mocks import mock_outputs
from tools.preview_markdown import marker, render_note
from tools.render import RenderResult, evaluate_policies, write_output
from tools.render_diff import load_render, report_from_renders

RenderDir = Callable[[dict[str, Any]], Path]


@pytest.fixture(scope="module")
def render_dir(tmp_path_factory: pytest.TempPathFactory) -> RenderDir:
    """Render the dev stack with overrides into a folder (cached per override within the module)."""
    cache: dict[str, Path] = {}

    def make(overrides: dict[str, Any]) -> Path:
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            result = render_stack(stack_with(overrides))
            out = tmp_path_factory.mktemp("render") / "dev"
            write_output(out, result, evaluate_policies(result.resources))
            cache[key] = out
        return cache[key]

    return make


def diff_note(base: Path | None, head: Path) -> str:
    return render_note(report_from_renders("dev", load_render(base) if base else None, load_render(head)))


def test_new_runner_pool_shows_its_resources_and_its_config_toml(render_dir: RenderDir) -> None:
    pools = dev_value("runners")
    base = render_dir({})
    head = render_dir({"runners": [*pools, {"name": "arm", "tags": ["flywheel-arm"], "concurrent": 2}]})
    before, after = load_render(base).resources, load_render(head).resources
    added = {after[urn]["type"]: after[urn]["name"] for urn in after.keys() - before.keys()}
    assert not before.keys() - after.keys()
    assert added.get("gitlab:index/userRunner:UserRunner", "").startswith("runners-arm")
    assert added.get("kubernetes:helm.sh/v3:Release", "").startswith("runners-arm")
    note = diff_note(base, head)
    assert note.splitlines()[4].startswith(f"✅ **{len(added)} to create")
    for typ, name in added.items():
        assert f"| `{name}` | ➕ create | | |" in note, typ
    config = note[note.index("<details><summary><code>files/runners/arm/config.toml</code> (added)") :]
    assert '+name = "flywheel-arm"\n' in config and "+limit = 2\n" in config
    assert '+    "GF_BAZEL_SUBSTRATE_MODE=shared-cache-backed",\n' in config
    # the pool's runner token (a secret output of UserRunner) never appears
    runner = next(r for r in after.values() if r["type"] == "gitlab:index/userRunner:UserRunner" and "arm" in r["name"])
    token = mock_outputs(runner["type"], runner["name"], runner["inputs"])["token"]["value"]
    assert token.startswith("glrt-") and token not in note


def test_ci_template_change_shows_the_resource_and_the_rendered_file(render_dir: RenderDir) -> None:
    template = dev_value("ciTemplate")
    base = render_dir({})
    head = render_dir({"ciTemplate": {**template, "fallbackClientRef": ".#attic-client-pinned"}})
    note = diff_note(base, head)
    lines = note.splitlines()
    assert lines[0] == marker("dev")
    # the component and its README (whose inputs table shows the default)
    assert "✅ **2 to update**, no replacements or deletions" in note
    unchanged = len(load_render(base).resources) - 2
    assert f"| · unchanged | {unchanged} |" in note
    assert "| `ci-template-greedy-build` | 🔄 update | `content` |" in note
    assert "| `ci-template-readme` | 🔄 update | `content` |" in note
    # each file's diff is shown once, as the rendered file's unified diff
    assert note.count("<details>") == 2
    assert "<code>files/ci-template/templates/greedy-build.yml</code> (changed)" in note
    assert "<code>files/ci-template/README.md</code> (changed)" in note
    assert "\n-      default: .#attic-client\n+      default: .#attic-client-pinned\n" in note


def test_bazel_cache_change_is_shown_property_by_property(render_dir: RenderDir) -> None:
    bazel = dev_value("bazelCache")
    base = render_dir({})
    head = render_dir({"bazelCache": {**bazel, "maxSizeGiB": 80, "storageSize": "100Gi"}})
    note = diff_note(base, head)
    assert "✅ **2 to update**, no replacements or deletions" in note
    assert "| `bazel-cache-data` | 🔄 update | `spec.resources.requests.storage` | `60Gi` → `100Gi` |" in note
    deployment = note[note.index("**`kubernetes:apps/v1:Deployment`**") :]
    row = next(line for line in deployment.splitlines() if "`80`" in line)
    assert row.endswith("| `50` → `80` |") and ".env[" in row


def test_disabling_a_component_calls_out_its_deletions(render_dir: RenderDir) -> None:
    bazel = dev_value("bazelCache")
    pools = [{**pool, "cacheInjection": False} for pool in dev_value("runners")]
    base = render_dir({"runners": pools})
    head = render_dir({"bazelCache": {**bazel, "enabled": False}, "runners": pools})
    note = diff_note(base, head)
    before, after = load_render(base).resources, load_render(head).resources
    removed = sorted(before.keys() - after.keys())
    assert removed and not after.keys() - before.keys()
    assert f"{len(removed)} to delete" in note.splitlines()[4]
    callouts = note[note.index("#### ⚠️ Replacements and deletions") : note.index("#### Changed resources")]
    for urn in removed:
        assert f"`{before[urn]['name']}`" in callouts
    volume = next(line for line in callouts.splitlines() if "PersistentVolumeClaim" in line)
    assert "retainOnDelete: removed from the stack, the object itself stays" in volume


def test_mock_secrets_never_reach_the_note(render_dir: RenderDir) -> None:
    """Renaming the bucket touches the storage credentials' consumers; the generated passwords stay hidden."""
    storage = dev_value("storage")
    base = render_dir({})
    head = render_dir({"storage": {**storage, "bucket": "flywheel-attic-2"}})
    note = diff_note(base, head)
    resources = load_render(head).resources.values()
    secrets = [
        str(mock_outputs(r["type"], r["name"], r["inputs"])["result"]["value"])
        for r in resources
        if r["type"] == "random:index/randomPassword:RandomPassword"
    ]
    assert secrets and all(len(s) >= 16 for s in secrets)
    for secret in secrets:
        assert secret not in note
    assert "`flywheel-attic` → `flywheel-attic-2`" in note
    assert '-  "bucket": "flywheel-attic",\n+  "bucket": "flywheel-attic-2",' in note


def test_plaintext_under_a_secret_key_is_redacted(render_dir: RenderDir, tmp_path: Path) -> None:
    """A hand-edited render whose Helm values carry a token in clear: the change shows, the value does not."""
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(render_dir({}), base)
    shutil.copytree(render_dir({}), head)
    for folder, token in ((base, "glrt-base-PLAINTEXT-1"), (head, "glrt-head-PLAINTEXT-2")):
        resources = json.loads((folder / "resources.json").read_text())
        release = next(r for r in resources if r["type"] == "kubernetes:helm.sh/v3:Release")
        release["inputs"].setdefault("values", {})["runnerToken"] = token
        release["inputs"]["values"]["database"] = {"url": f"postgresql://attic:{token}@db:5432/attic"}
        (folder / "resources.json").write_text(json.dumps(resources))
    note = diff_note(base, head)
    assert "PLAINTEXT" not in note
    assert "`values.runnerToken` | 🔒 `[secret]` → 🔒 `[secret]` |" in note
    url = "`postgresql://attic:[secret]@db:5432/attic`"
    assert f"`values.database.url` | {url} → {url} |" in note  # the URL stays readable, its password not


def test_policy_violations_are_marked_new_or_existing(render_dir: RenderDir, tmp_path: Path) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(render_dir({}), base)
    shutil.copytree(render_dir({}), head)
    old = {"policyName": "old-rule", "enforcementLevel": "advisory", "urn": "", "message": "known"}
    new = {
        "policyName": "runners-get-cache-contract",
        "enforcementLevel": "mandatory",
        "urn": "urn:pulumi:dev::flywheel::kubernetes:helm.sh/v3:Release::runners-nix",
        "message": "no GF_BAZEL_SUBSTRATE_MODE",
    }
    (base / "policy-report.json").write_text(json.dumps({"violations": [old]}))
    (head / "policy-report.json").write_text(json.dumps({"violations": [old, new]}))
    note = diff_note(base, head)
    assert "⛔ **Blocked by policy**: 1 mandatory violation" in note
    expected = "- ⛔ **mandatory** `runners-get-cache-contract` on `runners-nix` _(new in this MR)_"
    assert f"{expected}: no GF_BAZEL_SUBSTRATE_MODE" in note
    assert "- ⚠️ **advisory** `old-rule` on `(stack)` _(already on the target branch)_: known" in note
    assert "✅ **No changes**" not in note and "Changed resources" not in note


def test_without_a_base_everything_is_added(render_dir: RenderDir) -> None:
    head = render_dir({})
    report = report_from_renders("dev", None, load_render(head))
    note = render_note(report)
    assert report.counts == {"create": len(load_render(head).resources)}
    assert "The target branch has no render of this stack: everything shows as added." in note
    assert "(added)" in note  # rendered files are new files


def test_cli(render_dir: RenderDir, tmp_path: Path) -> None:
    template = dev_value("ciTemplate")
    base = render_dir({})
    head = render_dir({"ciTemplate": {**template, "fallbackClientRef": ".#attic-client-pinned"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tools.render_diff", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)

    out = tmp_path / "note.md"
    done = cli("--base", str(base), "--head", str(head), "--stack", "dev", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text() == diff_note(base, head) + "\n"
    mistyped = cli("--base", str(tmp_path / "no-such-render"), "--head", str(head))
    assert mistyped.returncode == 2 and "no-such-render: no render here (a mistyped --base?" in mistyped.stderr
    assert mistyped.stdout == ""
    printed = cli("--base", str(tmp_path / "no-such-render"), "--base-missing-ok", "--head", str(head))
    assert printed.returncode == 0 and "everything shows as added" in printed.stdout
    missing = cli("--base", str(base), "--head", str(tmp_path / "empty"))
    assert missing.returncode == 2
    assert "resources.json: not a render output" in missing.stderr and "run `make render` first" in missing.stderr


def test_load_render_reads_back_what_the_render_wrote(render_dir: RenderDir, dev_render: RenderResult) -> None:
    render = load_render(render_dir({}))
    assert render.files == dev_render.files and "ci-template/templates/greedy-build.yml" in render.files
    assert list(render.resources.values()) == json.loads(json.dumps(dev_render.resources))
    assert all(urn.startswith("urn:pulumi:dev::flywheel::") for urn in render.resources)
