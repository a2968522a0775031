"""Deterministic, plausible stand-ins for what the Pulumi engine and providers would return.

Used by the offline render and by the tests. Outputs are derived from the resource's type and
name (never random), so two renders of the same input are byte-identical. Outputs the real
providers mark secret (additionalSecretOutputs) are returned wrapped in the secret sentinel,
because the mock monitor does not add that secrecy by itself.

These are mocks: no key, token or password they produce is real or usable.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import string
import threading
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pulumi.runtime import MockResourceArgs, Mocks
from pulumi.runtime.mocks import MockCallArgs, MockMonitor
from pulumi.runtime.rpc import is_rpc_secret, wrap_rpc_secret

ALPHABET = string.ascii_letters + string.digits


def digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def token_text(seed: str, length: int, alphabet: str = ALPHABET) -> str:
    """A deterministic string of ``length`` characters from ``alphabet``."""
    out: list[str] = []
    counter = 0
    while len(out) < length:
        for byte in digest(seed, str(counter)):
            out.append(alphabet[byte % len(alphabet)])
        counter += 1
    return "".join(out[:length])


def _rsa_like_pem(seed: str) -> str:
    # Not a parseable key: the program only moves it into a Secret; nothing offline signs with it.
    body = base64.b64encode(b"".join(digest(seed, str(i)) for i in range(36))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END RSA PRIVATE KEY-----\n"


def _ed25519_outputs(seed: str) -> dict[str, Any]:
    # A real Ed25519 key derived from the seed: the program converts it to Nix's key format.
    key = ed25519.Ed25519PrivateKey.from_private_bytes(digest(seed)[:32])
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key()
    return {
        "privateKeyPem": wrap_rpc_secret(pem),
        "privateKeyPemPkcs8": wrap_rpc_secret(pem),
        "privateKeyOpenssh": wrap_rpc_secret(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            ).decode()
        ),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        + "\n",
    }


def _private_key_outputs(seed: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if inputs.get("algorithm") == "ED25519":
        return _ed25519_outputs(seed)
    pem = _rsa_like_pem(seed)
    return {
        "privateKeyPem": wrap_rpc_secret(pem),
        "privateKeyPemPkcs8": wrap_rpc_secret(pem),
        "publicKeyPem": "-----BEGIN PUBLIC KEY-----\n" + token_text(seed + "pub", 64) + "\n-----END PUBLIC KEY-----\n",
        "publicKeyOpenssh": "ssh-rsa " + token_text(seed + "ssh", 64) + "\n",
    }


def _fake_jwt(seed: str) -> str:
    urlsafe = string.ascii_letters + string.digits + "-_"
    return ".".join(token_text(seed + part, n, urlsafe) for part, n in (("h", 36), ("c", 120), ("s", 86)))


def mock_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs a provider would add to the inputs for a resource of ``typ`` named ``name``."""
    seed = f"{typ}:{name}"
    if typ == "random:index/randomPassword:RandomPassword":
        length = int(inputs.get("length", 32))
        return {"result": wrap_rpc_secret(token_text(seed, length)), "bcryptHash": wrap_rpc_secret("$2a$10$mock")}
    if typ == "random:index/randomString:RandomString":
        return {"result": token_text(seed, int(inputs.get("length", 16)), string.ascii_lowercase + string.digits)}
    if typ == "random:index/randomId:RandomId":
        return {"hex": digest(seed).hex()[: 2 * int(inputs.get("byteLength", 8))]}
    if typ == "tls:index/privateKey:PrivateKey":
        return _private_key_outputs(seed, inputs)
    if typ == "gitlab:index/userRunner:UserRunner":
        return {"token": wrap_rpc_secret("glrt-" + token_text(seed, 20)), "runnerId": int.from_bytes(digest(seed)[:3])}
    if typ == "pulumi-python:dynamic/flywheel:AtticToken":
        # not wrapped here: the resource declares it in additional_secret_outputs, as the engine would honour
        return {"token": _fake_jwt(seed)}
    return {}


class FlywheelMocks(Mocks):
    """Echo inputs, add deterministic provider outputs; ids are ``<name>-id``.

    ``issued_secrets`` keeps every secret output handed out, so tests can prove none leaks.
    """

    def __init__(self) -> None:
        self.issued_secrets: list[str] = []
        # The outputs the resource being registered declares secret (additional_secret_outputs), per thread:
        # the SDK calls the monitor from a thread pool, and MockResourceArgs does not carry them.
        self.declared_secret = threading.local()

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = {k: v for k, v in args.inputs.items() if k != "__provider"}
        outputs = mock_outputs(args.typ, args.name, args.inputs)
        for name in getattr(self.declared_secret, "names", ()):
            value = outputs.get(name, state.get(name))
            if value is not None and not is_rpc_secret(value):
                outputs[name] = wrap_rpc_secret(value)
        self.issued_secrets += [v["value"] for v in outputs.values() if is_rpc_secret(v)]
        state.update(outputs)
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class Registration(NamedTuple):
    """What the engine would receive for one resource, as the render records it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    depends_on: list[str]
    delete_before_replace: bool | None = None
    """None when the program left it to the provider (deleteBeforeReplaceDefined false)."""
    custom_timeouts: dict[str, str] = {}  # noqa: RUF012 (a NamedTuple default, never mutated)
    """customTimeouts as sent: the operations (create, update, delete) that have one."""


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration's options."""

    def __init__(self, mocks: FlywheelMocks) -> None:
        super().__init__(mocks)
        self.mocks: FlywheelMocks = mocks
        self.registrations: list[Registration] = []
        # what the program said through the engine's Log (pulumi.log.*): (level name, message)
        self.log: list[tuple[str, str]] = []

    def logger(self) -> logging.Logger:
        """A logger for the SDK's mock engine that records into ``log`` instead of printing."""
        recorder = logging.getLogger(f"flywheel.mock-engine.{id(self)}")
        recorder.propagate = False
        recorder.setLevel(logging.DEBUG)
        if not recorder.handlers:
            monitor = self

            class Record(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    monitor.log.append((record.levelname, record.getMessage()))

            recorder.addHandler(Record())
        return recorder

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives: a child's type is qualified by its parent's whole qualified type, except under
        the root stack (pkg/v3 resource/deploy/deployment.go:862-864, v3.274.1). The SDK's mock keeps only the
        parent's last type, so nested components' URNs did not match a real preview's."""
        from pulumi.runtime.settings import get_project, get_stack

        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        from pulumi.runtime import rpc

        self.mocks.declared_secret.names = set(request.additionalSecretOutputs)
        try:
            response = super().RegisterResource(request)
        finally:
            self.mocks.declared_secret.names = set()
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    depends_on=sorted(set(request.dependencies)),
                    delete_before_replace=bool(request.deleteBeforeReplace)
                    if request.deleteBeforeReplaceDefined
                    else None,
                    custom_timeouts={
                        operation: getattr(request.customTimeouts, operation)
                        for operation in ("create", "update", "delete")
                        if getattr(request.customTimeouts, operation)
                    },
                )
            )
        return response
