"""HS256 tokens signed with the server's secret key, as Argo CD's session manager issues them (PyJWT).

Verification errors are worded as golang-jwt v5 words them, since Argo CD puts that text in its 401s.
"""

from __future__ import annotations

from typing import Any

import jwt as pyjwt


class JWTError(Exception):
    """Raised for malformed, badly signed or expired tokens; the text mimics golang-jwt v5."""


def encode(claims: dict[str, Any], key: bytes) -> str:
    return pyjwt.encode(claims, key, algorithm="HS256")


def decode(token: str, key: bytes) -> dict[str, Any]:
    try:
        # golang-jwt v5 checks exp and nbf but not iat, and Argo CD checks the issuer itself.
        return pyjwt.decode(token, key, algorithms=["HS256"], options={"verify_iat": False, "verify_aud": False})
    except pyjwt.ExpiredSignatureError as exc:
        raise JWTError("token has invalid claims: token is expired") from exc
    except pyjwt.ImmatureSignatureError as exc:
        raise JWTError("token has invalid claims: token is not valid yet") from exc
    except pyjwt.InvalidSignatureError as exc:
        raise JWTError("token signature is invalid: signature is invalid") from exc
    except pyjwt.InvalidAlgorithmError as exc:
        raise JWTError("token is unverifiable: signing method (alg) is unavailable") from exc
    except pyjwt.InvalidTokenError as exc:
        raise JWTError(f"token is malformed: {exc}") from exc
