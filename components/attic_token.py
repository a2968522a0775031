"""Attic access tokens minted by the platform: a Pulumi dynamic resource around PyJWT (RS256).

Attic checks tokens statelessly: any JWT signed with the server's key, carrying Attic's claim
shape, is honoured (the same thing `atticadm make-token` produces):

    {"sub": ..., "nbf": ..., "exp": ..., "https://jwt.attic.rs/v1": {"caches": {"<cache>": {"r": 1, "w": 1}}}}

The token is minted once and kept (secret) in the stack state. ``diff`` reports no change for
the same inputs, so it stays stable across ``pulumi up``; it is re-minted when the subject,
permissions, validity or signing key change, or once it is inside the rotation window before
its expiry.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from components.provider_host import engine_call, is_unknown

CLAIM_NAMESPACE = "https://jwt.attic.rs/v1"
# Attic's permission bits (token/src/lib.rs, CachePermission).
PERMISSION_BITS = {
    "pull": "r",
    "push": "w",
    "delete": "d",
    "create_cache": "cc",
    "configure_cache": "cr",
    "configure_cache_retention": "cq",
    "destroy_cache": "cd",
}
CI_PUSH = ("pull", "push")
CACHE_BOOTSTRAP = ("pull", "create_cache", "configure_cache", "configure_cache_retention")


def cache_grants(grants: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """``{"main": ["pull", "push"]}`` -> ``{"main": {"r": 1, "w": 1}}`` (Attic's wire form)."""
    out: dict[str, dict[str, int]] = {}
    for cache, permissions in grants.items():
        unknown = sorted(set(permissions) - PERMISSION_BITS.keys())
        if unknown or not permissions:
            raise ValueError(
                f"cache {cache!r}: unknown or empty permissions {unknown or list(permissions)} "
                f"(expected some of {sorted(PERMISSION_BITS)})"
            )
        out[cache] = {PERMISSION_BITS[p]: 1 for p in sorted(permissions)}
    return out


def token_claims(
    subject: str, caches: Mapping[str, Mapping[str, int]], not_before: int, expires_at: int
) -> dict[str, Any]:
    return {
        "sub": subject,
        "nbf": not_before,
        "exp": expires_at,
        CLAIM_NAMESPACE: {"caches": {name: dict(bits) for name, bits in caches.items()}},
    }


def mint(signing_key_pem: str, subject: str, caches: Mapping[str, Mapping[str, int]], now: int, validity: int) -> str:
    """An RS256 JWT for ``subject`` valid from ``now`` for ``validity`` seconds."""
    import jwt  # imported here: the provider is serialized with the program

    claims = token_claims(subject, integer_bits(caches), int(now), int(now) + int(validity))
    return jwt.encode(claims, signing_key_pem, algorithm="RS256")


def integer_bits(caches: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Permission bits as JSON integers: atticd's claims use serde_with BoolFromInt, which refuses ``1.0``."""
    return {name: {bit: int(on) for bit, on in bits.items()} for name, bits in caches.items()}


def granted_permissions(claims: Mapping[str, Any], cache: str) -> set[str]:
    """What a decoded token grants on ``cache``, looked up as atticd does (exact name, then '*' patterns)."""
    caches: Mapping[str, Mapping[str, int]] = (claims.get(CLAIM_NAMESPACE) or {}).get("caches") or {}
    bits = caches.get(cache)
    if bits is None:
        bits = next((v for pattern, v in caches.items() if "*" in pattern and fnmatch.fnmatchcase(cache, pattern)), {})
    by_bit = {bit: name for name, bit in PERMISSION_BITS.items()}
    return {by_bit[bit] for bit, on in bits.items() if on and bit in by_bit}


def key_fingerprint(signing_key_pem: str) -> str:
    """SHA-256 of the public half: tells a key change apart without keeping the key in the outputs."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(signing_key_pem.encode(), password=None)
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(public_der).hexdigest()


def needs_rotation(expires_at: float, now: float, rotation_window: float) -> bool:
    return now >= expires_at - rotation_window


class AtticTokenProvider(pulumi.dynamic.ResourceProvider):
    """Mints on create and update; ``diff`` decides when a new token is due."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    @engine_call
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        # In preview any input, or any part of one, may be an Unknown: check only what is known.
        failures = []
        claims = news.get("claims")
        if not is_unknown(claims):
            claims = claims if isinstance(claims, dict) else {}
            if not is_unknown(claims.get("sub")) and not claims.get("sub"):
                failures.append(pulumi.dynamic.CheckFailure("claims", "a token needs a subject (claims.sub)"))
            if not is_unknown(claims.get("caches")) and not claims.get("caches"):
                failures.append(pulumi.dynamic.CheckFailure("claims", "a token must grant something (claims.caches)"))
        validity, window = news.get("validity_seconds"), news.get("rotation_window_seconds")
        if not (is_unknown(validity) or is_unknown(window)) and (
            not isinstance(validity, int | float) or not isinstance(window, int | float) or not 0 <= window < validity
        ):
            failures.append(
                pulumi.dynamic.CheckFailure(
                    "rotation_window_seconds",
                    f"0 <= rotation window < validity is required (got {window!r} and {validity!r})",
                )
            )
        return pulumi.dynamic.CheckResult(news, failures)

    def _mint(self, props: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock())
        validity = int(props["validity_seconds"])  # a double on the wire
        claims = props["claims"]
        token = mint(props["signing_key"], claims["sub"], integer_bits(claims["caches"]), now, validity)
        outs = {k: v for k, v in props.items() if k != "signing_key"}  # the key itself stays out of the outputs
        return outs | {
            "token": token,
            "not_before": now,
            "expires_at": now + validity,
            "key_fingerprint": key_fingerprint(props["signing_key"]),
        }

    @engine_call
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(id_=props["claims"]["sub"], outs=self._mint(props))

    @engine_call
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # An Unknown input (in preview) differs from every old value, so it alone means a new token.
        changed = [
            key for key in ("claims", "validity_seconds", "rotation_window_seconds") if olds.get(key) != news.get(key)
        ]
        signing_key = news.get("signing_key")
        if not isinstance(signing_key, str) or olds.get("key_fingerprint") != key_fingerprint(signing_key):
            changed.append("signing_key")
        expires_at, window = olds.get("expires_at"), news.get("rotation_window_seconds")
        if (
            not isinstance(window, int | float)
            or expires_at is None
            or needs_rotation(expires_at, self.clock(), window)
        ):
            changed.append("expires_at")
        # replaces and delete_before_replace unset: a change is an update (re-mint), never a replacement
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=[], stables=[])

    @engine_call
    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs=self._mint(news))

    @engine_call
    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Attic tokens are stateless: nothing to delete (the key rotation is what revokes them).
        return None


class AtticToken(pulumi.dynamic.Resource):
    """A JWT for ``subject`` with ``grants`` (``{"cache": ["pull", "push"]}``), signed by ``signing_key``.

    Type `pulumi-python:dynamic/flywheel:AtticToken`.
    """

    token: pulumi.Output[str]
    expires_at: pulumi.Output[int]
    not_before: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        *,
        subject: str,
        grants: Mapping[str, Sequence[str]],
        signing_key: pulumi.Input[str],
        validity_seconds: int,
        rotation_window_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "claims": {"sub": subject, "caches": cache_grants(grants)},
            "signing_key": pulumi.Output.secret(signing_key),
            "validity_seconds": validity_seconds,
            "rotation_window_seconds": rotation_window_seconds,
            "token": None,
            "expires_at": None,
            "not_before": None,
            "key_fingerprint": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["token"])
        super().__init__(AtticTokenProvider(), name, props, pulumi.ResourceOptions.merge(secret, opts))


# What `class AtticToken(Resource, module="flywheel", name="AtticToken")` would set, spelled out for the type checker.
AtticToken._resource_type_name = "dynamic/flywheel:AtticToken"
