"""Secure config under a deployment: the program finds the exact secure paths in the stack's own file.

The engine hands the program PULUMI_CONFIG (each key's value as JSON text, secure leaves decrypted) and
PULUMI_CONFIG_SECRET_KEYS (top-level keys only, e.g. ["flywheel:storage"]); these tests set exactly that.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import config as runtime_config

import components.config as config_module
from components.config import ConfigError, PlatformConfig, load_from_pulumi
from tools.render import RenderConfigError, read_stack_file, validate_config

DEV_STACK_FILE = Path(__file__).resolve().parent.parent / "Pulumi.dev.yaml"
STACK = "prod"
SECRET_TEXT = "canary-7f3a91"  # what a secure value decrypts to
KEYS = "secret keys"  # in a test's engine config: the PULUMI_CONFIG_SECRET_KEYS the engine sends


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """``engine(document, decrypted)``: write ``document`` as Pulumi.prod.yaml (None: no file) and load the config
    as a deployment of it: ``decrypted`` is the config the engine sends (default: the document, secure leaves
    decrypted)."""
    tokens = runtime_config.CONFIG.set({}), runtime_config._SECRET_KEYS.set(set())  # no in-process config
    monkeypatch.setattr(config_module, "PROJECT_DIR", tmp_path)
    monkeypatch.setattr(config_module, "_run_by_offline_render", lambda: False)
    monkeypatch.setattr(pulumi, "get_stack", lambda: STACK)

    def run(
        document: dict[str, Any] | None, decrypted: dict[str, Any] | None = None, encoding: str = "utf-8"
    ) -> PlatformConfig:
        if document is not None:  # "utf-16" writes a BOM first, as the CLI (yaml.v3 readerc.go) accepts
            (tmp_path / f"Pulumi.{STACK}.yaml").write_bytes(yaml.safe_dump(document).encode(encoding))
        written = document["config"] if document else {}
        sent = decrypted if decrypted is not None else _decrypted(written)
        secret_keys = sorted({key for key, value in written.items() if _has_secure(value)} | set(sent.pop(KEYS, [])))
        values = {key: value if isinstance(value, str) else json.dumps(value) for key, value in sent.items()}
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
        monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
        return load_from_pulumi()

    yield run
    runtime_config.CONFIG.reset(tokens[0])
    runtime_config._SECRET_KEYS.reset(tokens[1])


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    return isinstance(value, list) and any(_has_secure(v) for v in value)


def _decrypted(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_TEXT
    if isinstance(value, dict):
        return {k: _decrypted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypted(v) for v in value]
    return value


def dev_document() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEV_STACK_FILE.read_text()))


def _s3_document() -> dict[str, Any]:
    document = dev_document()
    document["config"]["flywheel:storage"] = {
        "backend": "s3",
        "region": "eu-west-1",
        "endpoint": "https://s3.example.com",
        "credentials": {"accessKeyId": {"secure": "v1:AAAA"}, "secretAccessKey": {"secure": "v1:BBBB"}},
    }
    return document


def test_a_secure_value_outside_the_secret_paths_is_refused_as_the_render_refuses_it(
    engine: Any, tmp_path: Path
) -> None:
    document = _s3_document()
    document["config"]["flywheel:storage"]["region"] = {"secure": "v1:CCCC"}
    with pytest.raises(ConfigError) as caught:
        engine(document)
    (problem,) = caught.value.problems
    assert problem.startswith("flywheel:storage.region: holds a secure value where the program cannot keep it secret")
    assert SECRET_TEXT not in problem
    with pytest.raises(RenderConfigError) as rendered:  # the offline render of the same file says the same
        validate_config(read_stack_file(tmp_path / f"Pulumi.{STACK}.yaml"))
    assert rendered.value.problems == caught.value.problems


def test_a_secure_gitlab_group_path_is_refused(engine: Any) -> None:
    document = dev_document()
    document["config"]["flywheel:gitlab"]["groupPath"] = {"secure": "v1:DDDD"}
    with pytest.raises(ConfigError) as caught:
        engine(document)
    assert [p.split(":", 2)[1] for p in caught.value.problems] == ["gitlab.groupPath"]


def test_secure_values_at_the_secret_paths_deploy_and_only_they_are_secret(engine: Any) -> None:
    document = _s3_document()
    document["config"]["flywheel:gitlab"]["extraVariables"]["DEPLOY_HOOK"] = {"secure": "v1:EEEE"}
    config = engine(document)
    assert config.storage.credentials is not None
    assert config.storage.credentials.access_key_id.get_secret_value() == SECRET_TEXT
    variables = config.gitlab.extra_variables
    # the file shows which variable is secure: the plain one beside it is no longer hidden for safety's sake
    assert (variables["DEPLOY_HOOK"].secret, variables["NIX_CONFIG_EXTRA"].secret) == (True, False)


def test_a_utf16_stack_file_is_read_as_the_cli_reads_it(engine: Any) -> None:
    """The CLI accepts UTF-16 after a BOM; the program reads the file's secure paths from it too (it crashed with
    a UnicodeDecodeError traceback when it read the file as locale text)."""
    document = _s3_document()
    document["config"]["flywheel:storage"]["region"] = {"secure": "v1:CCCC"}
    with pytest.raises(ConfigError) as caught:
        engine(document, encoding="utf-16")
    assert [p.split(":", 2)[1] for p in caught.value.problems] == ["storage.region"]
    assert engine(_s3_document(), encoding="utf-16").storage.credentials is not None


def test_without_the_stack_file_a_value_that_may_be_the_secret_is_refused(engine: Any) -> None:
    """Config from an ESC environment: the engine says `flywheel:storage` holds a secret, no file shows where."""
    sent = _decrypted(_s3_document()["config"])
    sent[KEYS] = ["flywheel:storage"]
    with pytest.raises(ConfigError) as caught:
        engine(None, sent)
    (problem,) = caught.value.problems
    assert problem.startswith("flywheel:storage: holds a secure value, and Pulumi.prod.yaml does not show where")
    # the text values it cannot place are named, never shown; the credentials are kept secret wherever they came from
    unplaced = problem.split("engine sent them: ")[1].split(";")[0]
    assert unplaced == "storage.backend, storage.region, storage.endpoint"
    assert "eu-west-1" not in problem and SECRET_TEXT not in problem


def test_a_stack_file_that_differs_from_what_the_engine_sent_proves_nothing(engine: Any) -> None:
    document = _s3_document()
    sent = _decrypted(document["config"])
    sent["flywheel:storage"]["region"] = SECRET_TEXT  # e.g. an ESC environment's value, not the file's
    sent[KEYS] = ["flywheel:storage"]
    with pytest.raises(ConfigError) as caught:
        engine(document, sent)
    (problem,) = caught.value.problems
    assert "sent them: storage.region;" in problem and SECRET_TEXT not in problem


def test_a_variable_value_the_file_does_not_show_is_kept_secret(engine: Any) -> None:
    sent = _decrypted(dev_document()["config"])
    sent["flywheel:gitlab"]["extraVariables"]["DEPLOY_HOOK"] = {"value": SECRET_TEXT, "masked": True}
    sent[KEYS] = ["flywheel:gitlab"]
    config = engine(dev_document(), sent)  # DEPLOY_HOOK came from elsewhere (ESC): it may be the secret
    variables = config.gitlab.extra_variables
    assert (variables["DEPLOY_HOOK"].secret, variables["NIX_CONFIG_EXTRA"].secret) == (True, False)
