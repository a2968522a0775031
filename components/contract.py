"""The CacheContract: the one value that ties the cache services to the runners, variables and template."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import SUBSTRATE_MODE


@dataclass(frozen=True)
class CacheContract:
    """What a build job is promised about the shared caches.

    Built once from the cache components' outputs; every consumer reads it and none
    re-derives an endpoint from names.
    """

    attic_url: pulumi.Input[str]
    """URL clients use for Attic: the ingress URL when `attic.host` is set, else the in-cluster URL."""
    cache_name: pulumi.Input[str]
    public_key: pulumi.Input[str]
    """The cache's Nix public key, `name:base64` (not a secret)."""
    bazel_remote_cache: pulumi.Input[str] | None
    """`grpc://...:9092` of the shared bazel-remote; None when the Bazel cache is disabled."""
    substrate_mode: str = SUBSTRATE_MODE

    def runner_environment(self) -> pulumi.Output[dict[str, str]]:
        """The variables a self-hosted runner injects into every job (`[[runners]] environment`)."""
        attic = {
            "ATTIC_SERVER": self.attic_url,
            "ATTIC_CACHE": self.cache_name,
            "ATTIC_PUBLIC_KEY": self.public_key,
        }
        bazel = (
            {"BAZEL_REMOTE_CACHE": self.bazel_remote_cache, "GF_BAZEL_SUBSTRATE_MODE": self.substrate_mode}
            if self.bazel_remote_cache is not None
            else {}
        )
        return pulumi.Output.all(**bazel, **attic)
