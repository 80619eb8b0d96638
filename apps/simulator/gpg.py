"""GnuPG public keys read the way Argo CD reads them: imported with gpg into a throwaway keyring, then listed.

Argo CD (util/gpg) imports the submitted block into a temporary GNUPGHOME, lists the keys there and exports
each again; the key ID is the last 16 hex digits of the fingerprint, the owner the first user ID, the
subtype gpg's algorithm string (rsa2048, ed25519, …) and the trust the user ID's validity in that fresh
keyring (so "unknown" for every imported key).
"""

from __future__ import annotations

import tempfile
from typing import Any

import gnupg

# gpg's validity letters (DETAILS, field 2) as gpg --list-keys words them.
_TRUST = {
    "o": "unknown", "-": "unknown", "q": "undefined", "n": "never", "m": "marginal",
    "f": "full", "u": "ultimate", "e": "expired", "r": "revoked", "i": "invalid", "d": "disabled",
}  # fmt: skip
# OpenPGP public-key algorithm ids (RFC 4880 9.1) and gpg's prefix for keys it names by length.
_BY_LENGTH = {"1": "rsa", "2": "rsa", "3": "rsa", "16": "elg", "17": "dsa"}

_NOISE = ("keybox", "Total number processed", "invalid radix64 character", "key ")


class GpgError(ValueError):
    """gpg could not import any public key from the data; `str()` is gpg's reason."""


def subtype(listed: dict[str, Any]) -> str:
    """gpg's short algorithm string: <algo><bits> for RSA/DSA/Elgamal, the curve name for ECC keys."""
    prefix = _BY_LENGTH.get(str(listed.get("algo", "")))
    if prefix:
        return f"{prefix}{listed.get('length', '')}"
    return str(listed.get("curve") or "unknown")


def _reason(stderr: str) -> str:
    lines = [ln[5:].rstrip(".") for ln in stderr.splitlines() if ln.startswith("gpg: ")]
    lines = [ln for ln in lines if not ln.startswith(_NOISE)]
    if any("no valid OpenPGP data found" in ln for ln in lines):
        return "no valid OpenPGP data found"
    return lines[-1] if lines else "no public key found"


def read_public_keys(key_data: str) -> list[dict[str, Any]]:
    """Every public key in an ASCII-armored block as Argo CD's GnuPGPublicKey; raises GpgError."""
    with tempfile.TemporaryDirectory(prefix="sim-gpg-") as home:
        gpg = gnupg.GPG(gnupghome=home)
        imported = gpg.import_keys(key_data)
        if not imported.fingerprints:
            raise GpgError(_reason(imported.stderr or ""))
        keys = []
        for listed in gpg.list_keys():
            fingerprint = listed["fingerprint"]
            keys.append(
                {
                    "keyID": fingerprint[-16:],
                    "fingerprint": fingerprint,
                    "owner": (listed.get("uids") or [""])[0],
                    "trust": _TRUST.get(listed.get("trust") or "-", "unknown"),
                    "subType": subtype(listed),
                    "keyData": gpg.export_keys(fingerprint),
                }
            )
        return keys
