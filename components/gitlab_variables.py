"""The group's CI/CD variables: what the greedy CI template needs to find and push to the Attic cache.

`BAZEL_REMOTE_CACHE` and `GF_BAZEL_SUBSTRATE_MODE` are deliberately NOT group variables: GitLab applies
group variables after the runner's `environment`, so one would override the injected value (the config
model refuses them in `gitlab.extraVariables`, and `group_variables` checks again).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gitlab

from components.config import CONTRACT_RUNNER_KEYS, GitlabConfig
from components.config_types import GITLAB_MASKABLE, GITLAB_MASKABLE_RULE
from components.contract import CacheContract

PUSH_VARIABLE_DESCRIPTION = (
    "Attic push token for CI (managed by flywheel/Pulumi). Masked and hidden, but not protected: "
    "the greedy build pattern pushes from feature-branch builds too."
)


@dataclass(frozen=True)
class GroupVariableSpec:
    """One group variable as it will be sent to GitLab."""

    key: str
    value: pulumi.Input[str]
    masked: bool = False
    hidden: bool = False
    protected: bool = False
    raw: bool = True
    description: str = ""


def require_maskable(key: str, value: str) -> str:
    """GitLab refuses to mask such a value; fail before sending, never echoing the value."""
    if not GITLAB_MASKABLE.match(value):
        raise ValueError(
            f"group variable {key}: value cannot be masked by GitLab (got a value of {len(value)} characters; "
            f"expected {GITLAB_MASKABLE_RULE})"
        )
    return value


def group_variables(
    gitlab: GitlabConfig, contract: CacheContract, ci_token: pulumi.Input[str]
) -> list[GroupVariableSpec]:
    """Every variable the group gets: the platform's four, then `gitlab.extraVariables`."""
    platform = [
        GroupVariableSpec(
            "ATTIC_SERVER", contract.attic_url, description="Attic server URL (managed by flywheel/Pulumi)."
        ),
        GroupVariableSpec("ATTIC_CACHE", contract.cache_name, description="Attic cache name (managed by flywheel)."),
        GroupVariableSpec(
            "ATTIC_PUBLIC_KEY", contract.public_key, description="Nix public key of the Attic cache (flywheel)."
        ),
        GroupVariableSpec(
            "ATTIC_TOKEN",
            pulumi.Output.secret(ci_token).apply(lambda token: require_maskable("ATTIC_TOKEN", token)),
            masked=True,
            hidden=True,
            protected=False,
            description=PUSH_VARIABLE_DESCRIPTION,
        ),
    ]
    extra = [
        GroupVariableSpec(
            key,
            pulumi.Output.secret(variable.value) if variable.masked or variable.secret else variable.value,
            masked=variable.masked,
            hidden=variable.hidden,
            protected=variable.protected,
            raw=variable.raw,
            description=variable.description or "Set in flywheel:gitlab.extraVariables (managed by Pulumi).",
        )
        for key, variable in sorted(gitlab.extra_variables.items())
    ]
    # The config model refuses these keys with their key path; this guard holds for a GitlabConfig that skipped
    # validation (model_copy(update=...), model_construct) and for a platform variable the model does not list,
    # because GitLab would accept the override silently.
    shadowed = sorted((CONTRACT_RUNNER_KEYS | {spec.key for spec in platform}) & gitlab.extra_variables.keys())
    if shadowed:
        raise ValueError(f"group variables would shadow runner or platform values: {', '.join(shadowed)}")
    return platform + extra


class GroupCiVariables(pulumi.ComponentResource):
    """`gitlab.GroupVariable`s on `gitlab.groupPath` (pass the GitLab provider in `opts`)."""

    def __init__(
        self,
        name: str,
        gitlab: GitlabConfig,
        contract: CacheContract,
        ci_token: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flywheel:index:GroupCiVariables", name, None, opts)
        self.variables: dict[str, pulumi_gitlab.GroupVariable] = {
            spec.key: pulumi_gitlab.GroupVariable(
                f"{name}-{spec.key}",
                group=gitlab.group_path,
                key=spec.key,
                value=spec.value,
                masked=spec.masked,
                hidden=spec.hidden,
                protected=spec.protected,
                raw=spec.raw,
                variable_type="env_var",
                environment_scope="*",
                description=spec.description,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for spec in group_variables(gitlab, contract, ci_token)
        }
        self.register_outputs({"keys": sorted(self.variables)})
