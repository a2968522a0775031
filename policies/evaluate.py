"""Run the pack's policies over recorded resources (render output or a hand-edited resources.json).

Each record is ``{urn, type, name, parent, custom, inputs, options {protect, retainOnDelete, dependsOn}}``.
Props are prepared the way the analyzer prepares them: secret sentinels unwrapped with
``pulumi_policy.deserialize.deserialize_properties`` and wrapped in its unknown-checking proxy (the
render's ``[unknown]`` marker becomes the engine's unknown sentinel). Enforcement levels come from each
policy's default, overridable with a config mapping shaped like ``pulumi preview --policy-pack-config``:
``{"all": "advisory", "<policy>": "disabled" | {"enforcementLevel": "...", <property>: ...}}``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies.flywheel_policies import POLICIES

UNKNOWN_TEXT = "[unknown]"  # what tools/render.py writes for a value unknown to the mock engine
LEVELS = {level.value: level for level in EnforcementLevel}


class PolicyConfigError(ValueError):
    """The policy config mapping names an unknown policy or level."""


class RecordedResourceOptions(PolicyResourceOptions):
    """The analyzer's resource options plus ``retain_on_delete``, which the render records.

    The engine's analyzer protocol carries no retainOnDelete; policies read it when present.
    """

    def __init__(self, protect: bool, retain_on_delete: bool | None, parent: str | None) -> None:
        super().__init__(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)
        self.retain_on_delete = retain_on_delete


def engine_values(value: Any) -> Any:
    """Recorded values as the engine sends them: the render's ``[unknown]`` marker becomes the unknown sentinel."""
    if value == UNKNOWN_TEXT:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: engine_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [engine_values(v) for v in value]
    return value


def analyzer_props(inputs: Mapping[str, Any]) -> Any:
    """Props as the analyzer hands them to a policy."""
    return unknown_checking_proxy(deserialize_properties(engine_values(dict(inputs))))


def _options(record: Mapping[str, Any]) -> RecordedResourceOptions:
    raw = record.get("options")
    options: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    retain = options.get("retainOnDelete")
    return RecordedResourceOptions(
        bool(options.get("protect", False)),
        retain if isinstance(retain, bool) else None,
        record.get("parent") if isinstance(record.get("parent"), str) else None,
    )


def _name(record: Mapping[str, Any]) -> str:
    name = record.get("name")
    return name if isinstance(name, str) else str(record.get("urn", "")).rsplit("::", 1)[-1]


def _inputs(record: Mapping[str, Any]) -> Mapping[str, Any]:
    inputs = record.get("inputs")
    return inputs if isinstance(inputs, Mapping) else {}


def resolve_config(config: Mapping[str, Any] | None) -> dict[str, tuple[EnforcementLevel, dict[str, Any]]]:
    """Each policy's effective level and properties (defaults, then ``all``, then per-policy entries)."""
    config = dict(config or {})
    names = {policy.name for policy in POLICIES}
    unknown = sorted(set(config) - names - {"all"})
    if unknown:
        raise PolicyConfigError(f"unknown policy name(s) in policy config: {', '.join(unknown)}")
    resolved: dict[str, tuple[EnforcementLevel, dict[str, Any]]] = {}
    everything = _level(config["all"], "all") if "all" in config else None
    for policy in POLICIES:
        level = everything or policy.enforcement_level or EnforcementLevel.ADVISORY
        properties: dict[str, Any] = {}
        entry = config.get(policy.name)
        if isinstance(entry, str):
            level = _level(entry, policy.name)
        elif isinstance(entry, Mapping):
            if "enforcementLevel" in entry:
                level = _level(entry["enforcementLevel"], policy.name)
            properties = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        elif entry is not None:
            raise PolicyConfigError(f"policy config for {policy.name}: expected a level or an object")
        resolved[policy.name] = (level, properties)
    return resolved


def _level(value: Any, where: str) -> EnforcementLevel:
    if value not in LEVELS:
        raise PolicyConfigError(
            f"policy config for {where}: enforcement level {value!r} is not one of {sorted(LEVELS)}"
        )
    return LEVELS[value]


def evaluate_resources(
    resources: list[dict[str, Any]], config: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Violations as ``{policyName, enforcementLevel, urn, message}``, sorted; stack violations have urn ''."""
    settings = resolve_config(config)
    stack = [
        PolicyResource(
            str(r.get("type", "")),
            analyzer_props(_inputs(r)),
            str(r.get("urn", "")),
            _name(r),
            _options(r),
            None,
            None,
            [],
            {},
        )
        for r in resources
    ]
    violations: list[dict[str, Any]] = []
    for policy in POLICIES:
        level, properties = settings[policy.name]
        if level == EnforcementLevel.DISABLED:
            continue
        if level == EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY  # as the analyzer reports a remediate policy's violations
        if isinstance(policy, StackValidationPolicy):
            _run(policy, StackValidationArgs(stack, properties), "", level, violations)
        elif isinstance(policy, ResourceValidationPolicy):
            for resource in stack:
                args = ResourceValidationArgs(
                    resource.resource_type,
                    resource.props,
                    resource.urn,
                    resource.name,
                    resource.opts,
                    None,
                    properties,
                )
                _run(policy, args, resource.urn, level, violations)
    return sorted(violations, key=lambda v: (v["policyName"], v["urn"], v["message"]))


def _run(policy: Policy, args: Any, urn: str, level: EnforcementLevel, out: list[dict[str, Any]]) -> None:
    def report_violation(message: str, violation_urn: str | None = None) -> None:
        # A resource policy's violation always belongs to the resource under validation.
        target = urn if isinstance(policy, ResourceValidationPolicy) else (violation_urn or "")
        out.append({"policyName": policy.name, "enforcementLevel": level.value, "urn": target, "message": message})

    try:
        result = policy.validate(args, report_violation)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
    except UnknownValueError as err:  # the analyzer turns this into an advisory "can't run during preview"
        out.append(
            {
                "policyName": policy.name,
                "enforcementLevel": EnforcementLevel.ADVISORY.value,
                "urn": urn,
                "message": f"can't run policy '{policy.name}' during preview: {err.message}",
            }
        )
    except Exception as err:  # noqa: BLE001 (a crashing policy must not pass a stack silently)
        out.append(
            {
                "policyName": policy.name,
                "enforcementLevel": EnforcementLevel.MANDATORY.value,
                "urn": urn,
                "message": f"policy '{policy.name}' failed: {type(err).__name__}: {err}",
            }
        )


async def _await(result: Any) -> None:
    await result
