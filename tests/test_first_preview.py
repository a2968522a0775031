"""The first `pulumi preview` of a new stack: nothing exists yet, so every value a provider computes is unknown.

The engine answers a create in preview with the inputs alone (pkg/v3 resource/plugin/provider_plugin.go:1442-1456:
`CreateResponse{Properties: req.Properties}` for providers without preview support, unknowns kept), and the SDK
makes every output it did not get unknown (`preview=True`). The render's mocks hand out made-up keys, tokens and
ids instead, so the program never met this shape in the other tests.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import MockResourceArgs

from tests.conftest import ROOT, dev_stack
from tools.mocks import FlywheelMocks, RecordingMonitor
from tools.render import run_program, run_under_mocks


class FirstPreviewMocks(FlywheelMocks):
    """A create in preview: outputs are the inputs, the id is unknown (empty), nothing computed."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return "", {k: v for k, v in args.inputs.items() if k != "__provider"}


def has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


def first_preview() -> RecordingMonitor:
    async def main() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="flywheel_program")

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return run_under_mocks(main, "dev", dev_stack(), RecordingMonitor(FirstPreviewMocks()), preview=True)


def test_the_first_preview_registers_everything_the_render_does() -> None:
    monitor = first_preview()
    previewed = sorted((r.type, r.name) for r in monitor.registrations)
    rendered = sorted((r["type"], r["name"]) for r in run_program("dev", dev_stack()).resources)
    assert previewed == rendered


def test_what_depends_on_generated_keys_reaches_the_providers_unknown() -> None:
    """The shapes the dynamic providers' Check and Diff must take (tests/test_dynamic_providers.py)."""
    registrations = {(r.type, r.name): r for r in first_preview().registrations}
    token = registrations[("pulumi-python:dynamic/flywheel:AtticToken", "attic-ci-push-token")]
    assert isinstance(token.inputs["signing_key"], Unknown) or has_unknown(token.inputs["signing_key"])
    assert not has_unknown(token.inputs["claims"])
    # the cache-init Job is named after the Nix public key: unknown until the key exists
    cache_init = registrations[("kubernetes:batch/v1:Job", "attic-cache-init")]
    assert has_unknown(cache_init.inputs["metadata"]["name"])


def test_no_secret_sends_generated_values_as_string_data() -> None:
    """pulumi-kubernetes folds ``stringData`` into ``data`` in Check only when nothing is computed
    (provider/v4 pkg/provider/provider.go:2572), so a Secret whose value is unknown at plan time would be planned
    with ``stringData`` and applied with ``data``: `pulumi up --plan` (the deploy job) refuses that apply."""
    secrets = [r for r in first_preview().registrations if r.type == "kubernetes:core/v1:Secret"]
    unknown = [r.name for r in secrets if has_unknown(r.inputs.get("data", {}))]
    assert len(unknown) >= 7  # S3 identities and credentials, Attic keys and cache-init, runner tokens
    assert [r.name for r in secrets if "stringData" in r.inputs] == []
