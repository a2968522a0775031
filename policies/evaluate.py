"""Run the pack's policies over recorded resources (render output) — filled in by the policy pack issue."""

from __future__ import annotations

from typing import Any


def evaluate_resources(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Violations as {policyName, enforcementLevel, urn, message}; no policies are registered yet."""
    del resources
    return []
