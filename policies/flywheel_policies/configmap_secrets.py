"""No secret in a ConfigMap: private keys, tokens, passwords and secret-looking keys with literal values."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .common import CONFIG_MAP, REDACTED, as_dict, meaningful, parse_document, resource_of

_PRIVATE_KEY_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_URL_WITH_PASSWORD = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}")
_GITLAB_TOKEN = re.compile(r"\bgl(?:rt|rtr|pat|dt|ptt|ft|ffct|soat|cbt|imt|agent|oas)-[A-Za-z0-9_-]{10,}")
_NIX_SECRET_KEY = re.compile(r"^[A-Za-z0-9._+?=-]+:([A-Za-z0-9+/]{86}==)$")
_SECRET_KEY_NAME = re.compile(r"(?i)(secret|password|passwd|private[-_]?key|credential|(^|[-_.])(api[-_]?)?token$)")
# Keys that name where a secret lives rather than holding it (secretName, token-file, password_path, ...).
_SECRET_REFERENCE_NAME = re.compile(r"(?i)(name|ref|file|path|env|[-_]id)$")


def _value_secret_kind(value: str) -> str | None:
    if value == REDACTED:
        return "a value Pulumi holds as secret"
    if _PRIVATE_KEY_PEM.search(value):
        return "a PEM private key"
    if _URL_WITH_PASSWORD.search(value):
        return "a URL with an embedded password"
    if _JWT.search(value):
        return "a JWT (token)"
    if _GITLAB_TOKEN.search(value):
        return "a GitLab token"
    match = _NIX_SECRET_KEY.match(value.strip())
    if match:
        try:
            if len(base64.b64decode(match.group(1))) == 64:
                return "a Nix signing secret key"
        except binascii.Error:
            pass
    return None


def _secret_key(key: str) -> bool:
    return _SECRET_KEY_NAME.search(key) is not None and _SECRET_REFERENCE_NAME.search(key) is None


def secrets_in(value: Any, path: str) -> Iterator[str]:
    """Where ``value`` (a ConfigMap entry, possibly a TOML/YAML/JSON document) carries a secret."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}"
            if _secret_key(str(key)) and meaningful(item):
                yield f"{child} (a secret-looking key with a value)"
            else:
                yield from secrets_in(item, child)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from secrets_in(item, f"{path}[{index}]")
        return
    if not isinstance(value, str):
        return
    kind = _value_secret_kind(value)
    if kind:
        yield f"{path} ({kind})"
        return
    document = parse_document(value)
    if document is not None:
        yield from secrets_in(document, path)
        return
    for line in value.splitlines():  # env-file style KEY=value
        key, sep, item = line.partition("=")
        is_assignment = sep and re.fullmatch(r"\s*(export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*", key)
        if is_assignment and _secret_key(key.strip()) and meaningful(item.strip().strip("\"'")):
            yield f"{path}: {key.strip()} (a secret-looking key with a value)"


def _validate_attic_secrets_out_of_configmaps(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    res = resource_of(args)
    if res.type != CONFIG_MAP:
        return
    for field in ("data", "binaryData"):
        for key, value in as_dict(res.props.get(field)).items():
            if field == "binaryData" and isinstance(value, str):
                try:
                    value = base64.b64decode(value).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue
            for where in secrets_in(value, f"{field}.{key}"):
                report_violation(
                    f"ConfigMap '{res.display_name}' carries a secret at {where}; ConfigMaps are readable by "
                    "anyone who can read the namespace: move it to a Secret and pass it by env (secretKeyRef)"
                )


ATTIC_SECRETS_OUT_OF_CONFIGMAPS = ResourceValidationPolicy(
    "attic-secrets-out-of-configmaps",
    "No ConfigMap carries a private key, S3 secret key, database password or token.",
    _validate_attic_secrets_out_of_configmaps,
    EnforcementLevel.MANDATORY,
)
