"""Argo CD session semantics: token issuing/verification and the RBAC helper every handler uses."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

from . import jwt
from .errors import ApiError, denied, unauthenticated

ISSUER = "argocd"
SESSION_SECONDS = 24 * 3600
# Login tokens with less than this left are silently re-issued on any call (autoRegenerateTokenDuration).
RENEW_BEFORE_SECONDS = 5 * 60
COOKIE = "argocd.token"
COOKIE_CHUNK = 4000


@dataclass
class Ctx:
    """Who is calling. `sub` is what RBAC sees (`admin`, `proj:p:r`), `username` what userinfo shows."""

    sub: str = ""
    username: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    project: str = ""  # set for project role tokens
    state: Any = None
    renewed_token: str = ""  # a fresh login token to hand back via Set-Cookie

    @property
    def logged_in(self) -> bool:
        return bool(self.sub)

    def can(self, res: str, act: str, obj: str) -> bool:
        st = self.state
        with st.lock:
            if self.project:
                policy = st.project_policy(self.project)
                if policy is None:
                    return False
                return st.enforcer.enforce(self.sub, res, act, obj, project_policy=policy)
            return st.enforcer.enforce(self.sub, res, act, obj)

    def require(self, res: str, act: str, obj: str, bare: bool = False) -> None:
        if not self.can(res, act, obj):
            raise denied("permission denied" if bare else self.denied_message(res, act, obj))

    def denied_message(self, res: str, act: str, obj: str) -> str:
        iat = self.claims.get("iat")
        when = datetime.fromtimestamp(iat, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if iat else ""
        return f"permission denied: {res}, {act}, {obj}, sub: {self.username or self.sub}, iat: {when}"


def issue(state: Any, sub: str, expires_in: int = 0, jti: str = "") -> tuple[str, dict]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": sub, "nbf": now, "iat": now, "jti": jti or str(uuid.uuid4())}
    if expires_in > 0:
        claims["exp"] = now + expires_in
    # Go orders RegisteredClaims as iss, sub, aud, exp, nbf, iat, jti.
    ordered = {k: claims[k] for k in ("iss", "sub", "exp", "nbf", "iat", "jti") if k in claims}
    return jwt.encode(ordered, state.secret_key), ordered


def login_token(state: Any, username: str) -> str:
    token, _ = issue(state, f"{username}:login", SESSION_SECONDS)
    return token


def token_from_request(headers: Any) -> str:
    auth = headers.get("Authorization") or ""
    if auth.lower().startswith("bearer "):
        candidate = auth[7:].strip()
        if len(candidate.split(".")) == 3:
            return candidate
    cookie_header = headers.get("Cookie")
    if cookie_header:
        jar = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # noqa: BLE001 - malformed cookies are simply ignored
            return ""
        if COOKIE in jar:
            value = jar[COOKIE].value
            head, sep, rest = value.partition(":")
            if sep and head.isdigit():
                # Chunked cookie: argocd.token=<N>:<chunk1>, argocd.token-1=<chunk2>, ...
                parts = [rest] + [jar[f"{COOKIE}-{i}"].value for i in range(1, int(head)) if f"{COOKIE}-{i}" in jar]
                return "".join(parts)
            return value
    return ""


def set_cookie_headers(token: str) -> list[tuple[str, str]]:
    attrs = "path=/; SameSite=lax; httpOnly"
    if len(token) <= COOKIE_CHUNK:
        return [("Set-Cookie", f"{COOKIE}={token}; {attrs}")]
    chunks = [token[i : i + COOKIE_CHUNK] for i in range(0, len(token), COOKIE_CHUNK)]
    headers = [("Set-Cookie", f"{COOKIE}={len(chunks)}:{chunks[0]}; {attrs}")]
    headers += [("Set-Cookie", f"{COOKIE}-{i}={c}; {attrs}") for i, c in enumerate(chunks[1:], 1)]
    return headers


def verify(state: Any, token: str) -> Ctx:
    """Parse and validate a token the way sessionmanager.Parse does; raises 401 errors."""
    try:
        claims = jwt.decode(token, state.secret_key)
    except jwt.JWTError as exc:
        raise unauthenticated(f"invalid session: {exc}") from exc
    if claims.get("iss") != ISSUER:
        raise unauthenticated("invalid session: token has invalid claims: token has invalid issuer")
    sub = str(claims.get("sub") or "")
    jti = str(claims.get("jti") or "")
    with state.lock:
        if sub.startswith("proj:"):
            parts = sub.split(":")
            if len(parts) != 3:
                raise unauthenticated("invalid session: invalid project token subject")
            _, proj_name, role_name = parts
            proj = state.projects.get(proj_name)
            role = next(
                (r for r in ((proj or {}).get("spec", {}).get("roles") or []) if r.get("name") == role_name), None
            )
            if proj is None or role is None:
                raise unauthenticated(f"invalid session: role '{role_name}' does not exist in project '{proj_name}'")
            tokens = role.get("jwtTokens") or []
            found = any((t.get("id") == jti) if jti else (t.get("iat") == claims.get("iat")) for t in tokens)
            if not found:
                raise unauthenticated(f"invalid session: token for role '{role_name}' has been revoked")
            return Ctx(sub=sub, username=sub, claims=claims, project=proj_name, state=state)
        account_name, _, capability = sub.partition(":")
        capability = capability or "login"
        account = state.accounts.get(account_name)
        if account is None:
            raise unauthenticated(f"invalid session: account {account_name} does not exist")
        if not account.enabled:
            raise unauthenticated(f"invalid session: account {account_name} is disabled")
        if capability not in account.capabilities:
            raise unauthenticated(f"invalid session: account {account_name} does not have '{capability}' capability")
        if jti and jti in state.revoked:
            raise unauthenticated("invalid session: token is revoked, please re-login")
        if capability == "apiKey" and not any(t.get("id") == jti for t in account.tokens):
            raise unauthenticated("invalid session: account token has been revoked")
        if account.password_mtime and int(claims.get("iat", 0)) < account.password_mtime:
            raise unauthenticated("invalid session: account password has changed since token issued")
    return Ctx(sub=account_name, username=account_name, claims=claims, state=state)


def authenticate(state: Any, headers: Any, required: bool) -> Ctx:
    token = token_from_request(headers)
    if not token:
        if required:
            raise unauthenticated("no session information")
        return Ctx(state=state)
    try:
        ctx = verify(state, token)
    except ApiError:
        if required:
            raise
        return Ctx(state=state)
    exp = ctx.claims.get("exp")
    if str(ctx.claims.get("sub", "")).endswith(":login") and exp and exp - time.time() < RENEW_BEFORE_SECONDS:
        ctx.renewed_token = login_token(state, ctx.username)
    return ctx
