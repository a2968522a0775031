"""Stand-in for pulumi-tls 5.6.2 (bridging hashicorp/terraform-provider-tls): PrivateKey, with real crypto.

Schema and encodings from terraform-provider-tls ``internal/provider/resource_private_key.go``
(privateKeyResourceSchemaV1 and Create): algorithm RSA|ECDSA|ED25519, rsa_bits default 2048,
ecdsa_curve default P224, every input RequiresReplace; private_key_pem (PKCS#1 "RSA PRIVATE KEY",
SEC1 "EC PRIVATE KEY", PKCS#8 for Ed25519), private_key_pem_pkcs8 and private_key_openssh are
Sensitive; OpenSSH forms and fingerprints are empty for ECDSA P224 (prvKeySupportsOpenSSHMarshalling).
pulumi-tls 5.6.2's SDK has no ``opensshComment`` input, so neither has this stand-in.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lab.providers.model import Package, Properties, ProviderError, ResourceType

ALGORITHMS = ("RSA", "ECDSA", "ED25519")
CURVES: dict[str, ec.EllipticCurve] = {
    "P224": ec.SECP224R1(),
    "P256": ec.SECP256R1(),
    "P384": ec.SECP384R1(),
    "P521": ec.SECP521R1(),
}
PEM = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()

PrivateKeyObject = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def generate(inputs: Properties) -> PrivateKeyObject:
    algorithm = inputs["algorithm"]
    if algorithm == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(inputs["rsaBits"]))
    if algorithm == "ECDSA":
        return ec.generate_private_key(CURVES[inputs["ecdsaCurve"]])
    if algorithm == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ProviderError(f"tls stand-in: algorithm '{algorithm}' is not one of {', '.join(ALGORITHMS)}")


def _supports_openssh(key: PrivateKeyObject) -> bool:
    # resource_private_key.go prvKeySupportsOpenSSHMarshalling: x/crypto/ssh has no P-224
    return not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1")


def key_outputs(key: PrivateKeyObject) -> dict[str, Any]:
    """The computed attributes of tls_private_key for this key."""
    traditional = (
        serialization.PrivateFormat.PKCS8
        if isinstance(key, ed25519.Ed25519PrivateKey)
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    public = key.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    outputs: dict[str, Any] = {
        "privateKeyPem": key.private_bytes(PEM, traditional, NO_PASSWORD).decode(),
        "privateKeyPemPkcs8": key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD).decode(),
        "publicKeyPem": public.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "privateKeyOpenssh": "",
        "publicKeyOpenssh": "",
        "publicKeyFingerprintMd5": "",
        "publicKeyFingerprintSha256": "",
        # setPublicKeyAttributes: id is the hex SHA1 of the public key's DER
        "id": hashlib.sha1(der).hexdigest(),  # noqa: S324
    }
    if _supports_openssh(key):
        openssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        blob = base64.b64decode(openssh.split()[1])
        md5 = hashlib.md5(blob).hexdigest()  # noqa: S324
        outputs |= {
            "privateKeyOpenssh": key.private_bytes(PEM, serialization.PrivateFormat.OpenSSH, NO_PASSWORD).decode(),
            # ssh.MarshalAuthorizedKey appends a newline
            "publicKeyOpenssh": openssh + "\n",
            # ssh.FingerprintLegacyMD5 / ssh.FingerprintSHA256
            "publicKeyFingerprintMd5": ":".join(md5[i : i + 2] for i in range(0, len(md5), 2)),
            "publicKeyFingerprintSha256": "SHA256:"
            + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="),
        }
    return outputs


class PrivateKeyType(ResourceType):
    pulumi_type = "tls:index/privateKey:PrivateKey"
    defaults: ClassVar[Properties] = {"rsaBits": 2048, "ecdsaCurve": "P224"}
    replace_on_changes = frozenset({"algorithm", "rsaBits", "ecdsaCurve"})
    secret_outputs = frozenset({"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"})
    computed_outputs: ClassVar[tuple[str, ...]] = (
        "privateKeyPem",
        "privateKeyPemPkcs8",
        "privateKeyOpenssh",
        "publicKeyPem",
        "publicKeyOpenssh",
        "publicKeyFingerprintMd5",
        "publicKeyFingerprintSha256",
    )

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        failures = []
        if "algorithm" in inputs and inputs["algorithm"] not in ALGORITHMS:
            failures.append(("algorithm", f"'{inputs['algorithm']}' is not one of {', '.join(ALGORITHMS)}"))
        if "ecdsaCurve" in inputs and inputs["ecdsaCurve"] not in CURVES:
            failures.append(("ecdsaCurve", f"'{inputs['ecdsaCurve']}' is not one of {', '.join(CURVES)}"))
        return failures

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        outputs = key_outputs(generate(inputs))
        return str(outputs.pop("id")), {**inputs, **outputs}


class TlsPackage(Package):
    name = "tls"
    version = "5.6.2"


def package() -> TlsPackage:
    return TlsPackage([PrivateKeyType()])
