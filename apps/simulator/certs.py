"""What Argo CD reads from repository certificates (util/db/certificate.go), with the `cryptography` library.

https: the certificate's subject in RFC 4514 notation (Go's pkix.Name.String()) is its certInfo, the public-key
algorithm in lower case (rsa, ecdsa, ed25519) its sub-type. ssh: certData is the base64 key of a known-hosts
line and certInfo the key's SHA256 fingerprint as `ssh-keygen -l` prints it.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

_ALGORITHMS = ((rsa.RSAPublicKey, "rsa"), (ec.EllipticCurvePublicKey, "ecdsa"), (ed25519.Ed25519PublicKey, "ed25519"),
               (dsa.DSAPublicKey, "dsa"), (ed448.Ed448PublicKey, "ed448"))  # fmt: skip


def tls_certificates(pem_text: str) -> list[tuple[str, str]]:
    """(sub-type, subject) of every PEM certificate in the text; ValueError if one does not parse."""
    try:
        certs = x509.load_pem_x509_certificates(pem_text.encode())
    except ValueError as exc:
        raise ValueError("Could not parse X509 data from input.") from exc
    out = []
    for cert in certs:
        key = cert.public_key()
        subtype = next((name for cls, name in _ALGORITHMS if isinstance(key, cls)), "unknown")
        out.append((subtype, cert.subject.rfc4514_string()))
    return out


def ssh_fingerprint(subtype: str, key_b64: str) -> str:
    """The unpadded base64 SHA256 of the key blob; ValueError if `subtype key` is not an SSH public key."""
    key_b64 = key_b64.strip().split()[0] if key_b64.strip() else ""
    try:
        load_ssh_public_key(f"{subtype} {key_b64}".encode())
    except (ValueError, TypeError) as exc:
        raise ValueError("ssh: no key found") from exc
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return base64.b64encode(digest).decode().rstrip("=")
