"""What a stand-in resource type declares: its schema facts (defaults, ForceNew, Sensitive) and its CRUD.

Each concrete type copies these facts from the Terraform provider the real Pulumi provider bridges
and cites the schema it read; the gRPC host (``host.py``) turns them into Check/Diff/Create/... answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

Properties = dict[str, Any]


class ProviderError(Exception):
    """A one-line failure the host reports to the engine (no traceback)."""


class ResourceType:
    pulumi_type: ClassVar[str]
    # Optional inputs with a schema Default: Check fills them in, as the bridge does
    defaults: ClassVar[Mapping[str, Any]] = {}
    # Inputs whose change forces a replacement (TF ForceNew / RequiresReplace)
    replace_on_changes: ClassVar[frozenset[str]] = frozenset()
    # Outputs the schema marks Sensitive: returned wrapped as secrets
    secret_outputs: ClassVar[frozenset[str]] = frozenset()
    # Outputs only the provider knows: unknown during a preview of a create
    computed_outputs: ClassVar[tuple[str, ...]] = ()
    # Optional+Computed inputs: dropping them from the program keeps the server's value (no diff)
    optional_computed: ClassVar[frozenset[str]] = frozenset()
    # TF Set attributes: compared without order
    set_valued: ClassVar[frozenset[str]] = frozenset()

    def normalize(self, inputs: Properties) -> Properties:
        """Checked inputs as the provider stores them (after defaults), e.g. mirrored deprecated aliases."""
        return inputs

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        """(property, reason) for each invalid input; ``inputs`` holds only the known values."""
        return []

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        raise NotImplementedError

    def read(self, resource_id: str, state: Properties) -> Properties | None:
        """Current outputs, or None if the object is gone. Default: the state is all there is."""
        return state

    def update(self, resource_id: str, state: Properties, inputs: Properties) -> Properties:
        """Default: every input change forces a replacement, so an update only records the inputs."""
        return {**state, **inputs}

    def delete(self, resource_id: str, state: Properties) -> None:
        return None


class Package:
    """One provider plugin: name and version (what the SDK requests) and its resource types."""

    name: ClassVar[str]
    version: ClassVar[str]

    def __init__(self, types: list[ResourceType]) -> None:
        self.types = {t.pulumi_type: t for t in types}

    def configure(self, config: Properties) -> None:
        return None

    def check_config(self, config: Properties) -> list[tuple[str, str]]:
        return []

    def type(self, token: str) -> ResourceType:
        if token not in self.types:
            raise ProviderError(f"{self.name} stand-in: resource type '{token}' is not modelled")
        return self.types[token]
