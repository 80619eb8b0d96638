"""Checks made in the portal before anything is sent to Argo CD: a clear message beats a cryptic 400."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from apps.core import documents

SSH_KEY_TYPES = {
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}
_PGP_PUBLIC = re.compile(r"-----BEGIN PGP PUBLIC KEY BLOCK-----.+-----END PGP PUBLIC KEY BLOCK-----", re.S)


def https_certificate(text: str) -> str:
    """ "" if `text` holds at least one PEM certificate that parses, else the reason."""
    from cryptography import x509

    if "-----BEGIN CERTIFICATE-----" not in text:
        return "An https certificate must be PEM text starting with -----BEGIN CERTIFICATE-----."
    try:
        certs = x509.load_pem_x509_certificates(text.strip().encode())
    except ValueError as exc:
        return f"The certificate is not a valid PEM X.509 certificate ({exc})."
    return "" if certs else "No certificate found in the PEM text."


def ssh_known_host(text: str) -> str:
    """ "" if every non-comment line is `host[,host…] keytype base64`, else the reason naming the line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        return "Enter a known-hosts line: host keytype base64-key."
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) < 3:
            return f"Line {n} is not `host keytype base64-key`."
        if parts[1] not in SSH_KEY_TYPES:
            return f"Line {n}: {parts[1]!r} is not an SSH key type (e.g. ssh-ed25519, ssh-rsa)."
        try:
            base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            return f"Line {n}: the key is not valid base64."
    return ""


def certificate(cert_type: str, data: str) -> str:
    if cert_type == "https":
        return https_certificate(data)
    if cert_type == "ssh":
        return ssh_known_host(data)
    return "Certificate type must be https or ssh."


def gpg_public_key(text: str) -> str:
    if "PRIVATE KEY" in text:
        return "This is a PRIVATE key. Only ASCII-armoured PUBLIC key blocks may be added; keep the private key secret."
    if not _PGP_PUBLIC.search(text or ""):
        return (
            "Paste an ASCII-armoured public key: "
            "-----BEGIN PGP PUBLIC KEY BLOCK----- … -----END PGP PUBLIC KEY BLOCK-----."
        )
    return ""


def positive_int(value: Any) -> str:
    return "" if isinstance(value, int) and value > 0 else "Enter a positive whole number (1 or more)."


def http_url(value: Any) -> str:
    """ "" for an http(s) URL with a host, e.g. http://proxy.internal:3128."""
    parts = urlsplit(str(value).strip())
    if parts.scheme in ("http", "https") and parts.netloc:
        return ""
    return f"{value!r} is not an http:// or https:// URL (e.g. http://proxy.internal:3128)."


def load_yaml_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """Parse YAML (or JSON) into a mapping with metadata.name: (obj, "") or (None, the reason)."""
    try:
        obj = documents.parse(text or "")
    except documents.DocumentError as exc:
        return None, documents.Refusal(exc) if exc.refused else str(exc)
    if not isinstance(obj, dict):
        return None, "The YAML must be a mapping with metadata and spec."
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        return None, "metadata.name is required."
    if not isinstance(obj["metadata"]["name"], str):
        return None, "metadata.name must be text."
    if not isinstance(obj.get("spec"), dict):
        return None, "spec must be a mapping."
    return obj, ""
