"""Validate rendered Kubernetes objects against the official schemas (kubernetes-validate, strict)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

KUBERNETES_VERSION = "1.31"
# Custom resources have no bundled schema; they are checked by their own tests.
CUSTOM_RESOURCE_GROUPS = ("postgresql.cnpg.io/",)


def schema_errors(manifests: list[dict[str, Any]]) -> list[str]:
    """One line per manifest that fails strict validation (empty when all pass)."""
    errors = []
    for manifest in manifests:
        if manifest.get("apiVersion", "").startswith(CUSTOM_RESOURCE_GROUPS):
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            name = (manifest.get("metadata") or {}).get("name")
            errors.append(f"{manifest.get('kind')}/{name}: {err.message}")
    return errors
