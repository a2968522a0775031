"""Group CI/CD variables: Attic settings, a masked + hidden + unprotected push token, nothing shadowing the runners.

The component runs under the Pulumi mock monitor (tools.mocks); the push token stand-in is the mocks'
JWT-shaped value. Config refusals go through the real loader (`load_platform_config`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.config import PLATFORM_GROUP_KEYS, ExtraVariable, GitlabConfig
from components.config_types import GITLAB_MASKABLE
from components.contract import CacheContract
from components.gitlab_variables import GroupCiVariables, group_variables, require_maskable
from tests.conftest import dev_value, register
from tests.test_config import problems_for, with_change
from tools.mocks import _fake_jwt
from tools.render import REDACTED, RenderConfigError

CONTRACT = CacheContract(
    attic_url="https://attic.example.com",
    cache_name="main",
    public_key="main:0cBmWmpVqbQeaHM7q0G8Wq3ZFFkG9Z1b0ES2A7m8Rz4=",
    bazel_remote_cache="grpc://bazel-cache.flywheel.svc.cluster.local:9092",
)
PUSH_TOKEN = _fake_jwt("attic-ci-token")
MASKED_EXTRA = "deploy-key-value-do-not-leak-4e1b"


def gitlab_config(**extra: Any) -> GitlabConfig:
    return GitlabConfig.model_validate({**dev_value("gitlab"), **extra})


def build_variables(gitlab: GitlabConfig, token: str = PUSH_TOKEN) -> dict[str, dict[str, Any]]:
    resources = register(lambda: GroupCiVariables("group-variables", gitlab, CONTRACT, pulumi.Output.secret(token)))
    variables = [r for r in resources if r["type"] == "gitlab:index/groupVariable:GroupVariable"]
    return {r["inputs"]["key"]: r["inputs"] for r in variables}


@pytest.fixture(scope="module")
def dev_variables() -> dict[str, dict[str, Any]]:
    extra = {**dev_value("gitlab")["extraVariables"], "DEPLOY_KEY": {"value": MASKED_EXTRA, "masked": True}}
    return build_variables(gitlab_config(extraVariables=extra))


def test_attic_token_is_masked_hidden_raw_and_not_protected_with_the_reason(dev_variables: Any) -> None:
    token = dev_variables["ATTIC_TOKEN"]
    assert (token["masked"], token["hidden"], token["protected"], token["raw"]) == (True, True, False, True)
    assert token["value"] == REDACTED
    assert "not protected" in token["description"] and "feature-branch" in token["description"]
    assert len(token["description"]) <= 255


def test_mock_push_token_satisfies_gitlab_masking_rules() -> None:
    # the mocks mint the token in the shape attic's JWTs have (base64url segments joined by dots)
    assert GITLAB_MASKABLE.match(PUSH_TOKEN)
    assert require_maskable("ATTIC_TOKEN", PUSH_TOKEN) == PUSH_TOKEN


def test_attic_settings_are_plain_values_from_the_contract(dev_variables: Any) -> None:
    expected = {"ATTIC_SERVER": CONTRACT.attic_url, "ATTIC_CACHE": CONTRACT.cache_name}
    expected["ATTIC_PUBLIC_KEY"] = CONTRACT.public_key
    for key, value in expected.items():
        variable = dev_variables[key]
        assert variable["value"] == value
        assert (variable["masked"], variable["hidden"], variable["protected"], variable["raw"]) == (
            False,
            False,
            False,
            True,
        )


def test_every_variable_lands_on_the_group_path_as_env_var(dev_variables: Any) -> None:
    assert {v["group"] for v in dev_variables.values()} == {"acme/platform"}
    assert {v["variableType"] for v in dev_variables.values()} == {"env_var"}
    assert {v["environmentScope"] for v in dev_variables.values()} == {"*"}
    assert all(v["description"] for v in dev_variables.values())


def test_no_variable_shadows_the_runner_injected_contract(dev_variables: Any) -> None:
    assert set(dev_variables) == {
        "ATTIC_SERVER",
        "ATTIC_CACHE",
        "ATTIC_PUBLIC_KEY",
        "ATTIC_TOKEN",
        "NIX_CONFIG_EXTRA",
        "DEPLOY_KEY",
    }
    assert not {"BAZEL_REMOTE_CACHE", "GF_BAZEL_SUBSTRATE_MODE"} & set(dev_variables)
    # the config model refuses exactly the keys the platform sets (gitlab.extraVariables cannot shadow them)
    assert set(dev_variables) - {"NIX_CONFIG_EXTRA", "DEPLOY_KEY"} == PLATFORM_GROUP_KEYS


def test_extra_variables_keep_their_flags_and_masked_values_stay_secret(dev_variables: Any) -> None:
    plain = dev_variables["NIX_CONFIG_EXTRA"]
    assert plain["value"] == "max-jobs = auto"
    assert (plain["masked"], plain["raw"]) == (False, True)
    masked = dev_variables["DEPLOY_KEY"]
    assert masked["masked"] is True and masked["value"] == REDACTED
    recorded = json.dumps(dev_variables)
    assert MASKED_EXTRA not in recorded and PUSH_TOKEN not in recorded


@pytest.mark.parametrize(
    "bad_token", ["short", "has a space in it", "line-one-value\nline-two-value", "dollar$sign$value"]
)
def test_unmaskable_push_token_fails_before_sending_without_echoing_it(bad_token: str) -> None:
    with pytest.raises(Exception, match="ATTIC_TOKEN: value cannot be masked") as caught:
        build_variables(gitlab_config(), token=bad_token)
    assert bad_token not in str(caught.value)


@pytest.mark.parametrize("value", ["short7c", "two words here", "line-one\nline-two", "quote'd-value-x"])
def test_masking_rule_violation_in_extra_variables_is_refused_with_key_path(value: str) -> None:
    problems = problems_for(with_change("gitlab.extraVariables.DEPLOY_KEY", {"value": value, "masked": True}))
    assert len(problems) == 1
    assert problems[0].startswith("flywheel:gitlab.extraVariables.DEPLOY_KEY: value cannot be masked by GitLab")
    assert "expected one line of at least 8 characters" in problems[0]
    assert value not in problems[0]  # values of extra variables may be secrets: never echoed


@pytest.mark.parametrize("key", ["BAZEL_REMOTE_CACHE", "GF_BAZEL_SUBSTRATE_MODE"])
def test_contract_keys_are_refused_as_extra_variables(key: str) -> None:
    problems = problems_for(with_change(f"gitlab.extraVariables.{key}", "grpc://elsewhere:9092"))
    assert len(problems) == 1
    assert problems[0].startswith("flywheel:gitlab.extraVariables:")
    assert key in problems[0] and "override" in problems[0]


def test_contract_key_refused_by_the_whole_program_before_any_resource(
    render: Callable[[dict[str, Any]], Any],
) -> None:
    gitlab = dev_value("gitlab")
    gitlab["extraVariables"] = {"BAZEL_REMOTE_CACHE": "grpc://elsewhere:9092"}
    with pytest.raises(RenderConfigError) as caught:
        render({"gitlab": gitlab})
    assert any(p.startswith("flywheel:gitlab.extraVariables:") for p in caught.value.problems)


def test_shadowing_is_refused_again_if_the_config_model_was_bypassed() -> None:
    for key in ("BAZEL_REMOTE_CACHE", "GF_BAZEL_SUBSTRATE_MODE", "ATTIC_TOKEN"):
        gitlab = gitlab_config().model_copy(update={"extra_variables": {key: ExtraVariable(value="x" * 12)}})
        with pytest.raises(ValueError, match=key):
            group_variables(gitlab, CONTRACT, PUSH_TOKEN)


def test_dev_stack_group_variables_carry_the_attic_servers_values(dev_render: Any) -> None:
    variables = {
        r["inputs"]["key"]: r["inputs"]
        for r in dev_render.resources
        if r["type"] == "gitlab:index/groupVariable:GroupVariable"
    }
    assert set(variables) == {"ATTIC_SERVER", "ATTIC_CACHE", "ATTIC_PUBLIC_KEY", "ATTIC_TOKEN", "NIX_CONFIG_EXTRA"}
    assert variables["ATTIC_SERVER"]["value"].startswith("https://attic.example.com")
    assert variables["ATTIC_CACHE"]["value"] == dev_value("attic")["cacheName"]
    key_name, _, key_body = variables["ATTIC_PUBLIC_KEY"]["value"].partition(":")
    assert key_name and len(base64.b64decode(key_body, validate=True)) == 32  # a Nix Ed25519 public key
    token = variables["ATTIC_TOKEN"]
    assert (token["value"], token["masked"], token["hidden"], token["protected"]) == (REDACTED, True, True, False)
