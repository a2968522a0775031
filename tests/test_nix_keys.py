"""Nix cache keys: the Ed25519 key the program generates, in the forms Nix and Attic read."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from components.nix_keys import (
    PUBLIC_KEY_BYTES,
    SECRET_KEY_BYTES,
    keypair_from_pem,
    public_key_from_pem,
    split_key,
)
from tests.conftest import require_tool


def ed25519_pems() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_forms_have_the_lengths_nix_expects() -> None:
    private, _ = ed25519_pems()
    pair = keypair_from_pem("attic.example.com-main-1", private)
    name, secret = split_key(pair.secret_key, SECRET_KEY_BYTES)
    public_name, public = split_key(pair.public_key, PUBLIC_KEY_BYTES)
    assert name == public_name == "attic.example.com-main-1"
    assert len(secret) == 64 and len(public) == 32
    assert secret[32:] == public  # libsodium layout: seed || public key


def test_public_key_verifies_a_signature_made_with_the_secret_key() -> None:
    private, public_pem = ed25519_pems()
    pair = keypair_from_pem("k-1", private)
    _, secret = split_key(pair.secret_key, SECRET_KEY_BYTES)
    _, public = split_key(pair.public_key, PUBLIC_KEY_BYTES)
    message = b"1;/nix/store/abc-hello;sha256:xyz;123;"
    signature = ed25519.Ed25519PrivateKey.from_private_bytes(secret[:32]).sign(message)
    ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    with pytest.raises(InvalidSignature):
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message + b"tampered")
    # the public form derived from the public PEM alone is the same key
    assert public_key_from_pem("k-1", public_pem) == pair.public_key


def test_rejects_other_key_types_and_bad_names() -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        keypair_from_pem("k-1", rsa_pem)
    private, _ = ed25519_pems()
    for bad in ("", "a:b", "has space"):
        with pytest.raises(ValueError, match="Nix key name"):
            keypair_from_pem(bad, private)
    with pytest.raises(ValueError, match="bytes"):
        split_key("k-1:" + base64.b64encode(b"short").decode(), PUBLIC_KEY_BYTES)


@pytest.fixture
def nix_env(tmp_path: Path) -> dict[str, str]:
    require_tool("nix")
    return {
        **os.environ,
        "NIX_CONFIG": "experimental-features = nix-command flakes",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HOME": str(tmp_path / "home"),
    }


def test_layout_matches_nix_store_generate_binary_cache_key(tmp_path: Path, nix_env: dict[str, str]) -> None:
    """Nix's own generator writes the same forms: 64-byte seed||public secret, 32-byte public."""
    secret_file, public_file = tmp_path / "sk", tmp_path / "pk"
    subprocess.run(
        ["nix-store", "--generate-binary-cache-key", "ref-1", str(secret_file), str(public_file)],
        check=True,
        env=nix_env,
    )
    _, secret = split_key(secret_file.read_text().strip(), SECRET_KEY_BYTES)
    _, public = split_key(public_file.read_text().strip(), PUBLIC_KEY_BYTES)
    assert secret[32:] == public
    # and converting Nix's key through PKCS#8 (what pulumi_tls hands us) gives Nix's strings back
    pem = (
        ed25519.Ed25519PrivateKey.from_private_bytes(secret[:32])
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    pair = keypair_from_pem("ref-1", pem)
    assert pair.secret_key == secret_file.read_text().strip()
    assert pair.public_key == public_file.read_text().strip()


@pytest.mark.slow
def test_real_nix_signs_with_the_secret_key_and_verifies_with_the_public_key(
    tmp_path: Path, nix_env: dict[str, str]
) -> None:
    """Build a trivial input-addressed path in a private store, sign it with our key, verify with ours only."""
    private, _ = ed25519_pems()
    pair = keypair_from_pem("flywheel-test-1", private)
    other = keypair_from_pem("flywheel-test-1", ed25519_pems()[0])
    (tmp_path / "secret-key").write_text(pair.secret_key)
    (tmp_path / "default.nix").write_text(
        'builtins.derivation { name = "flywheel-sign"; system = builtins.currentSystem; builder = "/bin/sh"; '
        f'args = [ "-c" "echo {tmp_path.name} > $out" ]; }}'
    )
    root = tmp_path / "nix"
    store = f"local?store={root}/store&state={root}/state&log={root}/log"  # private: parallel-safe

    def nix(command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["nix", *command.split(), "--store", store, *args], env=nix_env, capture_output=True, text=True, timeout=120
        )
        assert not check or result.returncode == 0, f"nix {command} failed: {result.stderr}"
        return result

    # Private store, no substituters, builder as the calling user (pytest's tmp dirs are 0700).
    built = nix(
        "build", "--no-link", "--json", "--option", "substituters", "", "--option", "build-users-group", "",
        "-f", str(tmp_path / "default.nix"),
    )  # fmt: skip
    path = json.loads(built.stdout)[0]["outputs"]["out"]

    def verify(public_key: str) -> subprocess.CompletedProcess[str]:
        return nix("store verify", "--sigs-needed", "1", "--trusted-public-keys", public_key, path, check=False)

    assert verify(pair.public_key).returncode != 0, "an unsigned path must not verify"
    nix("store sign", "--key-file", str(tmp_path / "secret-key"), path)
    result = verify(pair.public_key)
    assert result.returncode == 0, result.stderr
    wrong = verify(other.public_key)
    assert wrong.returncode != 0 and "untrusted" in wrong.stderr
