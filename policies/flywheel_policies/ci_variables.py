"""GitLab CI variables: how they are named in messages, and credential-like ones masked and hidden."""

from __future__ import annotations

import re

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .common import (
    CI_VARIABLE_TYPES,
    GROUP_VARIABLE,
    PROJECT_VARIABLE,
    UNKNOWN,
    Res,
    config_value,
    resource_of,
    text,
)


def ci_variables(resources: list[Res]) -> list[Res]:
    return [r for r in resources if r.type in CI_VARIABLE_TYPES]


def variable_label(res: Res) -> str:
    key = text(res.props.get("key")) or "?"
    kind = CI_VARIABLE_TYPES.get(res.type, "CI")
    return f"{kind} variable {key} ('{res.name}')"


SENSITIVE_KEY_PATTERN = r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIAL|API_KEY)"


def _validate_ci_token_masked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if res.type not in (GROUP_VARIABLE, PROJECT_VARIABLE):
        return
    key = res.props.get("key")
    if not isinstance(key, str):
        return
    pattern = config_value(args, "keyPattern", SENSITIVE_KEY_PATTERN, str)
    try:
        looks_secret = re.search(pattern, key) is not None
    except re.error:
        looks_secret = re.search(SENSITIVE_KEY_PATTERN, key) is not None
    if not looks_secret:
        return
    missing = [
        flag for flag in ("masked", "hidden") if res.props.get(flag) is not True and res.props.get(flag) is not UNKNOWN
    ]
    if missing:
        report_violation(
            f"{variable_label(res)} looks like a credential but is not {' and '.join(missing)}; "
            "set masked: true and hidden: true (hidden can only be set when the variable is created)"
        )


CI_TOKEN_MASKED = ResourceValidationPolicy(
    "ci-token-masked",
    "CI variables whose key looks like a token, secret or password are masked and hidden.",
    _validate_ci_token_masked,
    EnforcementLevel.MANDATORY,
    PolicyConfigSchema({"keyPattern": {"type": "string", "default": SENSITIVE_KEY_PATTERN}}),
)
