"""The README keeps its promises: the two commands, and a config table generated from the models."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT
from tools import config_reference


def test_readme_shows_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make render" in text and "make test" in text


def test_config_table_is_current() -> None:
    text = (ROOT / "README.md").read_text()
    assert config_reference.replace_in(text) == text, "run: .venv/bin/python -m tools.config_reference --write"


def test_config_table_lists_every_key_of_the_issue() -> None:
    keys = {row[0] for row in config_reference.rows()}
    for key in [
        "flywheel:namespace",
        "flywheel:gitlab.groupId",
        "flywheel:gitlab.extraVariables",
        "flywheel:storage.credentials.secretAccessKey",
        "flywheel:database.url",
        "flywheel:attic.gc.retention",
        "flywheel:attic.tokenValidity",
        "flywheel:bazelCache.maxSizeGiB",
        "flywheel:runners[].cacheInjection",
        "flywheel:ciTemplate.fallbackClientRef",
    ]:
        assert key in keys, key


def test_every_pointer_to_a_readme_section_names_one_that_exists() -> None:
    headings = {line.lstrip("#").strip() for line in (ROOT / "README.md").read_text().splitlines() if line[:2] == "##"}
    sources = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt", ROOT / "Makefile", ROOT / ".gitlab-ci.yml"]
    for folder in ("components", "tools", "policies"):
        sources += sorted((ROOT / folder).rglob("*.py"))
    pointers = [
        (source.relative_to(ROOT), name)
        for source in sources
        for name in re.findall(r'README "([^"]+)"', source.read_text())
    ]
    assert pointers, "no pointer found: the check below would prove nothing"
    assert [(s, n) for s, n in pointers if n not in headings] == []


def test_make_render_names_the_render_exit_code(tmp_path: Path) -> None:
    """make turns every failure into 2; the README says so and `make render` prints the render's own code."""
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["flywheel:attic"]["replicas"] = 0
    stack_file = tmp_path / "Pulumi.broken.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    done = subprocess.run(
        ["make", "-s", "render", "STACK=broken", f"STACK_FILE={stack_file}", f"OUT={tmp_path / 'out'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "flywheel:attic.replicas: out of range" in done.stderr
    assert "make render: tools.render exited 2 (an invalid configuration); make itself exits 2" in done.stderr
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "make itself exits `2` for any failure" in text
