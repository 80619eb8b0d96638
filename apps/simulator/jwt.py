"""Minimal HS256 JWT encode/verify, enough for Argo CD-issued tokens (no third-party dependency)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class JWTError(Exception):
    """Raised for malformed, badly signed or expired tokens; the text mimics golang-jwt v5."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], key: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(sig)}"


def decode(token: str, key: bytes, now: float | None = None) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("token is malformed: token contains an invalid number of segments")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        sig = _unb64(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise JWTError("token is malformed: could not base64 decode") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise JWTError("token is unverifiable: signing method (alg) is unavailable")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        raise JWTError("token signature is invalid: signature is invalid")
    if not isinstance(claims, dict):
        raise JWTError("token is malformed: claims are not an object")
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and now >= exp:
        raise JWTError("token has invalid claims: token is expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and now + 1 < nbf:
        raise JWTError("token has invalid claims: token is not valid yet")
    return claims


def peek(token: str) -> dict[str, Any]:
    """Unverified claims, used only to pick the verification path (argocd vs other issuer)."""
    try:
        return json.loads(_unb64(token.split(".")[1]))
    except (ValueError, IndexError, UnicodeDecodeError):
        return {}
