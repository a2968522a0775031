"""Where a stack's secure values sit: exact paths, read from the stack's own ``Pulumi.<stack>.yaml``.

The engine tells a program only which top-level keys hold a secure value (pulumi sdk/go/common/resource/config/
map.go ``SecureKeys``: ``flywheel:storage``, never ``storage.region``). The stack file shows the exact paths, but
it is what the engine sent only where its values agree with the engine's: config may also come from an ESC
environment or another config file. So a path counts as known only where the file's value matches the engine's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.stack_yaml import StackFileError, decode_stack_file, load_stack_document

ConfigPath = tuple[str, ...]  # ('flywheel:storage', 'credentials', 'accessKeyId')


@dataclass
class SecureLocations:
    """``secure``: leaves the stack file shows as ``secure:``; ``unproven``: text leaves of a secret key that the file
    does not show as the engine sent them (each may be the secure value: a secure value reaches a program as text)."""

    secure: list[ConfigPath] = field(default_factory=list)
    unproven: list[ConfigPath] = field(default_factory=list)


def stack_file_config(path: Path, project: str) -> dict[str, Any] | None:
    """The ``config`` mapping of a stack file, keys with their namespace; None when it is absent or unreadable."""
    try:
        # the bytes decoded as the CLI decodes them (UTF-8 without its BOM, or UTF-16 after its BOM), not by locale
        document = load_stack_document(decode_stack_file(path.read_bytes()))
    except (OSError, ValueError, StackFileError):
        return None  # the CLI has read it already: without it here, nothing is known, and nothing is trusted
    config = document.get("config")
    if not isinstance(config, dict):
        return None
    return {(key if ":" in key else f"{project}:{key}"): value for key, value in config.items()}


def locate_secure_values(
    values: Mapping[str, Any], secret_keys: Iterable[str], stack_config: Mapping[str, Any] | None
) -> SecureLocations:
    """Compare what the engine sent for each secret key (``values``: config text as the engine passes it) with the
    stack file's ``config`` (``stack_file_config``; None when there is none)."""
    found = SecureLocations()
    for key in sorted(set(secret_keys)):
        if key not in values:
            continue
        sent = _engine_value(values[key])
        written = (stack_config or {}).get(key, _ABSENT)
        _walk(sent, written, (key,), found)
    return found


_ABSENT = object()


def _engine_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text
    return parsed if isinstance(parsed, dict | list) else text


def _is_secure(written: Any) -> bool:
    return isinstance(written, dict) and set(written) == {"secure"}


def _walk(sent: Any, written: Any, path: ConfigPath, found: SecureLocations) -> None:
    if _is_secure(written):
        found.secure.append(path)
    elif isinstance(sent, dict):
        for key, item in sent.items():
            inner = written.get(key, _ABSENT) if isinstance(written, dict) else _ABSENT
            _walk(item, inner, (*path, str(key)), found)
    elif isinstance(sent, list):
        for index, item in enumerate(sent):
            inner = written[index] if isinstance(written, list) and index < len(written) else _ABSENT
            _walk(item, inner, (*path, str(index)), found)
    elif isinstance(sent, str) and sent != written:
        found.unproven.append(path)
    # numbers, booleans and null are never a secure value: the engine sends a decrypted secret as text
