"""The README keeps its promises: the two commands, and a config table generated from the models."""

from __future__ import annotations

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
