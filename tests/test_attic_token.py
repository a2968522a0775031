"""Attic tokens: the dynamic provider called directly (create/diff/update), and the resource under mocks."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi.dynamic import dynamic
from pulumi.runtime.proto import provider_pb2

from components.attic_token import (
    CACHE_BOOTSTRAP,
    CI_PUSH,
    CLAIM_NAMESPACE,
    AtticToken,
    AtticTokenProvider,
    cache_grants,
    granted_permissions,
)
from tests.conftest import ROOT, register
from tests.engine_host import UNKNOWN, DynamicHost, Secret, dynamic_host, wire
from tools.render import REDACTED

DAY = 86400
T0 = 1_800_000_000  # a fixed "now" (2027-01-15)


def rsa_pems() -> tuple[str, str]:
    """A PKCS#1 private key PEM (what atticd and pulumi_tls use for RSA) and its public PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    return private, public


KEY, PUBLIC = rsa_pems()
OTHER_KEY, OTHER_PUBLIC = rsa_pems()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def props(**overrides: Any) -> dict[str, Any]:
    base = {
        "claims": {"sub": "flywheel/flywheel/ci-push", "caches": cache_grants({"main": CI_PUSH})},
        "signing_key": KEY,
        "validity_seconds": 90 * DAY,
        "rotation_window_seconds": 14 * DAY,
    }
    return base | overrides


def decode(token: str, public: str = PUBLIC, at: float = T0) -> dict[str, Any]:
    # PyJWT checks exp/nbf against the real clock; check them against the provider's clock instead.
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims["nbf"] <= at < claims["exp"]
    return claims


def test_create_mints_an_rs256_token_with_attics_claim_shape() -> None:
    provider = AtticTokenProvider(Clock(T0))
    result = provider.create(props())
    token = result.outs["token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = decode(token)
    assert claims["sub"] == "flywheel/flywheel/ci-push"
    assert claims["nbf"] == T0
    assert claims["exp"] == T0 + 90 * DAY == result.outs["expires_at"]
    assert claims[CLAIM_NAMESPACE] == {"caches": {"main": {"r": 1, "w": 1}}}
    assert set(claims) == {"sub", "nbf", "exp", CLAIM_NAMESPACE}
    assert result.id == "flywheel/flywheel/ci-push"
    # the signing key never lands in the outputs (state); only its public fingerprint does
    assert "signing_key" not in result.outs
    assert KEY not in json.dumps(result.outs)


def test_token_does_not_verify_with_another_key() -> None:
    token = AtticTokenProvider(Clock(T0)).create(props()).outs["token"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, OTHER_PUBLIC, algorithms=["RS256"], options={"verify_exp": False, "verify_nbf": False})


def test_a_token_for_one_cache_grants_nothing_on_another() -> None:
    claims = decode(AtticTokenProvider(Clock(T0)).create(props()).outs["token"])
    assert granted_permissions(claims, "main") == {"pull", "push"}
    assert granted_permissions(claims, "other") == set()
    assert granted_permissions(claims, "main2") == set()
    # and the lookup honours Attic's '*' patterns, so the check above is not vacuous
    wildcard = {CLAIM_NAMESPACE: {"caches": cache_grants({"team-*": ["pull"]})}}
    assert granted_permissions(wildcard, "team-a") == {"pull"}
    assert granted_permissions(wildcard, "main") == set()


def test_bootstrap_grants_are_create_configure_retention_and_pull_only() -> None:
    claims = decode(
        AtticTokenProvider(Clock(T0))
        .create(props(claims={"sub": "init", "caches": cache_grants({"main": CACHE_BOOTSTRAP})}))
        .outs["token"]
    )
    assert claims[CLAIM_NAMESPACE]["caches"]["main"] == {"r": 1, "cc": 1, "cr": 1, "cq": 1}
    assert "push" not in granted_permissions(claims, "main")
    assert "destroy_cache" not in granted_permissions(claims, "main")


def test_cache_grants_refuses_unknown_permissions() -> None:
    with pytest.raises(ValueError, match="unknown or empty permissions"):
        cache_grants({"main": ["pull", "admin"]})
    with pytest.raises(ValueError, match="unknown or empty permissions"):
        cache_grants({"main": []})


def test_diff_reports_no_change_for_the_same_inputs() -> None:
    clock = Clock(T0)
    provider = AtticTokenProvider(clock)
    state = provider.create(props()).outs
    clock.now = T0 + 30 * DAY
    assert provider.diff("id", state, props()).changes is False
    # the engine hands numbers back as floats: still no change
    as_floats = props(validity_seconds=float(90 * DAY), rotation_window_seconds=float(14 * DAY))
    assert provider.diff("id", state, as_floats).changes is False


@pytest.mark.parametrize(
    ("days_later", "due"),
    [(75, False), (76 - 1 / DAY, False), (76, True), (80, True), (95, True)],
)
def test_rotation_is_due_inside_the_window_before_expiry(days_later: float, due: bool) -> None:
    """Valid 90 days, window 14 days: re-mint from day 76 on."""
    clock = Clock(T0)
    provider = AtticTokenProvider(clock)
    state = provider.create(props()).outs
    clock.now = T0 + days_later * DAY
    assert provider.diff("id", state, props()).changes is due


@pytest.mark.parametrize(
    "change",
    [
        {"claims": {"sub": "flywheel/flywheel/ci-push", "caches": cache_grants({"main": ["pull"]})}},
        {"claims": {"sub": "someone-else", "caches": cache_grants({"main": CI_PUSH})}},
        {"validity_seconds": 30 * DAY},
        {"rotation_window_seconds": 7 * DAY},
        {"signing_key": OTHER_KEY},
    ],
    ids=["permissions", "subject", "validity", "window", "signing-key"],
)
def test_diff_reports_a_change_when_an_input_changes(change: dict[str, Any]) -> None:
    provider = AtticTokenProvider(Clock(T0))
    state = provider.create(props()).outs
    result = provider.diff("id", state, props(**change))
    assert result.changes is True
    assert not result.replaces  # re-minted in place: consumers keep referring to the same resource


# --- through the SDK's dynamic-provider host, with the values the engine sends ---------------------


def payload_text(token: str) -> str:
    """The JWT's claims exactly as encoded (what atticd parses), not as Python compares them."""
    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamicHost]:
    with dynamic_host(tmp_path_factory.mktemp("attic-token-host")) as running:
        yield running


def test_a_token_minted_from_engine_doubles_carries_json_integers(host: DynamicHost) -> None:
    """The engine sends every number as a double; atticd's BoolFromInt claims refuse `1.0` (token/src/lib.rs)."""
    provider = AtticTokenProvider()
    created = host.create(provider, props(signing_key=Secret(KEY)))
    token = wire(created.properties)["token"]
    text = payload_text(token)
    caches = json.loads(text)[CLAIM_NAMESPACE]["caches"]
    assert caches == {"main": {"r": 1, "w": 1}}
    assert '"r":1,' in text.replace(" ", "") and '"w":1}' in text.replace(" ", "")
    assert "1.0" not in text  # no float anywhere: permission bits, nbf and exp
    claims = json.loads(text)
    assert all(type(claims[k]) is int for k in ("nbf", "exp"))
    assert claims["exp"] - claims["nbf"] == 90 * DAY


def test_diff_in_preview_with_the_signing_key_being_replaced_reports_a_change(host: DynamicHost) -> None:
    """A replaced tls.PrivateKey is unknown in preview: the host hands diff an Unknown object, not a string."""
    provider = AtticTokenProvider()
    state = wire(host.create(provider, props(signing_key=Secret(KEY))).properties)
    diff = host.diff(provider, "id", state, props(signing_key=UNKNOWN))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert not diff.replaces and not diff.deleteBeforeReplace
    same = host.diff(provider, "id", state, props(signing_key=Secret(KEY)))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE


def test_diff_and_check_accept_an_unknown_rotation_window(host: DynamicHost) -> None:
    provider = AtticTokenProvider()
    state = wire(host.create(provider, props(signing_key=Secret(KEY))).properties)
    assert host.diff(provider, "id", state, props(rotation_window_seconds=UNKNOWN)).changes == (
        provider_pb2.DiffResponse.DIFF_SOME
    )
    checked = host.check(provider, props(rotation_window_seconds=UNKNOWN))
    assert list(checked.failures) == []
    assert wire(checked.inputs)["rotation_window_seconds"] == UNKNOWN


def test_update_re_mints_a_later_token_with_the_new_inputs() -> None:
    clock = Clock(T0)
    provider = AtticTokenProvider(clock)
    old = provider.create(props()).outs
    clock.now = T0 + 80 * DAY
    new = provider.update("id", old, props(signing_key=OTHER_KEY)).outs
    assert new["token"] != old["token"]
    claims = decode(new["token"], OTHER_PUBLIC, at=clock.now)
    assert claims["nbf"] == T0 + 80 * DAY and claims["exp"] == T0 + 170 * DAY
    assert provider.diff("id", new, props(signing_key=OTHER_KEY)).changes is False


def test_check_refuses_a_window_not_inside_the_validity() -> None:
    provider = AtticTokenProvider()
    assert provider.check({}, props()).failures == []
    failures = provider.check({}, props(rotation_window_seconds=90 * DAY)).failures
    assert [f.property for f in failures] == ["rotation_window_seconds"]
    failures = provider.check({}, props(claims={"sub": "", "caches": {}})).failures
    assert len(failures) == 2


def test_the_provider_survives_pulumis_serialization(tmp_path: Path) -> None:
    """The engine ships the provider, dill-serialized, to a separate Python process started in the project
    directory; revive it in such a process and mint there."""
    (tmp_path / "provider").write_text(dynamic.serialize_provider(AtticTokenProvider()))
    (tmp_path / "props.json").write_text(json.dumps(props()))
    revive = (
        "import base64, json, sys, dill; "
        "provider = dill.loads(base64.b64decode(open(sys.argv[1]).read())); "
        "print(provider.create(json.load(open(sys.argv[2]))).outs['token'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", revive, str(tmp_path / "provider"), str(tmp_path / "props.json")],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), PUBLIC, algorithms=["RS256"])
    assert claims["sub"] == "flywheel/flywheel/ci-push"


def test_resource_registers_its_claims_and_the_signing_key_as_a_secret() -> None:
    """Under mocks the provider does not run: check what the engine would receive, and the token's secrecy.

    The mocks make an output secret only when the resource declares it (additional_secret_outputs), as the
    engine does, so the secrecy assertion fails if AtticToken stops declaring it.
    """
    token: dict[str, Any] = {}

    async def build() -> None:
        resource = AtticToken(
            "unit-ci-push-token",
            subject="flywheel/ns/ci-push",
            grants={"main": CI_PUSH},
            signing_key="-----BEGIN RSA PRIVATE KEY-----\nstand-in\n-----END RSA PRIVATE KEY-----\n",
            validity_seconds=90 * DAY,
            rotation_window_seconds=14 * DAY,
        )
        token["value"] = await resource.token.future()
        token["secret"] = await resource.token.is_secret()

    (registered,) = [r for r in register(build) if r["name"] == "unit-ci-push-token"]
    assert (token["value"] or "").count(".") == 2  # a JWT-shaped stand-in
    assert token["secret"] is True
    assert registered["type"] == "pulumi-python:dynamic/flywheel:AtticToken"
    inputs = registered["inputs"]
    assert inputs["claims"] == {"sub": "flywheel/ns/ci-push", "caches": {"main": {"r": 1, "w": 1}}}
    assert inputs["signing_key"] == REDACTED  # registered as a secret
    assert "stand-in" not in json.dumps(registered)
