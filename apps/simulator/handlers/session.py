"""Session, account, settings, version and notification endpoints."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from .. import auth
from ..errors import ApiError, invalid, not_found, unauthenticated, unknown
from ..httpd import Request, Response, Router
from ..rbac import ACTIONS, RESOURCES

VERSION = "v3.1.0+03c4ad8"
PASSWORD_PATTERN = "^.{8,32}$"


def register(router: Router, sim: Any) -> None:
    state = sim.state

    def create_session(req: Request) -> Response:
        body = req.obj()
        if body.get("token"):
            raise unauthenticated(
                "token-based session creation no longer supported. please upgrade argocd cli to v0.7+"
            )
        username, password = body.get("username") or "", body.get("password") or ""
        if not username or not password:
            raise unauthenticated("no credentials supplied")
        with state.lock:
            account = state.accounts.get(username)
            ok = account is not None and account.enabled and account.password == password
            if ok and "login" not in account.capabilities:
                raise unauthenticated(f"account {username} does not have 'login' capability")
        if not ok:
            raise unauthenticated("Invalid username or password")
        token = auth.login_token(state, username)
        return Response({"token": token}, headers=auth.set_cookie_headers(token))

    def delete_session(req: Request) -> Response:
        # Argo CD's SessionService.Delete only clears the cookie: the token itself stays valid until it
        # expires (only the web /auth/logout flow revokes it).
        return Response(
            {"token": ""},
            headers=[("Set-Cookie", f"{auth.COOKIE}=; path=/; Max-Age=0; SameSite=lax; httpOnly")],
        )

    def userinfo(req: Request) -> dict:
        ctx = req.ctx
        if not ctx.logged_in:
            return {"loggedIn": False}
        out: dict[str, Any] = {"loggedIn": True, "username": ctx.username, "iss": auth.ISSUER}
        return out

    router.add("POST", "/api/v1/session", create_session, auth=False)
    router.add("DELETE", "/api/v1/session", delete_session)
    router.add("GET", "/api/v1/session/userinfo", userinfo, auth=False)

    # ------------------------------------------------------------------ accounts

    def account_json(acct: Any) -> dict:
        out: dict[str, Any] = {"name": acct.name, "enabled": acct.enabled, "capabilities": list(acct.capabilities)}
        tokens = [
            {"id": t["id"], "issuedAt": t["iat"], **({"expiresAt": t["exp"]} if t.get("exp") else {})}
            for t in acct.tokens
        ]
        if tokens:
            out["tokens"] = tokens
        return out

    def ensure_account_permission(req: Request, action: str, name: str) -> None:
        # Acting on your own local account needs no RBAC grant (ensureHasAccountPermission).
        if req.ctx.sub == name and not req.ctx.project:
            return
        req.ctx.require("accounts", action, name)

    def list_accounts(req: Request) -> dict:
        with state.lock:
            items = [account_json(a) for n, a in sorted(state.accounts.items()) if req.ctx.can("accounts", "get", n)]
        return {"items": items}

    def get_account(req: Request) -> dict:
        name = req.params["name"]
        ensure_account_permission(req, "get", name)
        with state.lock:
            acct = state.accounts.get(name)
            if acct is None:
                raise not_found(f"account '{name}' does not exist")
            return account_json(acct)

    def create_token(req: Request) -> dict:
        name = req.params["name"]
        ensure_account_permission(req, "update", name)
        body = req.obj()
        expires_in = int(body.get("expiresIn") or 0)
        token_id = str(body.get("id") or "") or str(uuid.uuid4())
        with state.lock:
            acct = state.accounts.get(name)
            if acct is None:
                raise not_found(f"account '{name}' does not exist")
            if "apiKey" not in acct.capabilities:
                raise unknown(f"account '{name}' does not have apiKey capability")
            if any(t["id"] == token_id for t in acct.tokens):
                raise unknown(f"account already has token with id '{token_id}'")
            token, claims = auth.issue(state, f"{name}:apiKey", expires_in, token_id)
            entry = {"id": token_id, "iat": claims["iat"]}
            if "exp" in claims:
                entry["exp"] = claims["exp"]
            acct.tokens.append(entry)
        sim.persist_secret()
        return {"token": token}

    def delete_token(req: Request) -> dict:
        name, token_id = req.params["name"], req.params["id"]
        ensure_account_permission(req, "update", name)
        with state.lock:
            acct = state.accounts.get(name)
            if acct is None:
                raise not_found(f"account '{name}' does not exist")
            before = len(acct.tokens)
            acct.tokens = [t for t in acct.tokens if t["id"] != token_id]
            if len(acct.tokens) == before:
                raise not_found(f"token with id '{token_id}' does not exist")
        sim.persist_secret()
        return {}

    def update_password(req: Request) -> Response:
        body = req.obj()
        name = body.get("name") or req.ctx.sub
        current, new = body.get("currentPassword") or "", body.get("newPassword") or ""
        if req.ctx.project:
            raise invalid("password can only be changed for local users")
        if name != req.ctx.sub:
            req.ctx.require("accounts", "update", name)
        # The caller's current password is checked before the new one (UpdatePassword); a new password that
        # fails the pattern is a plain error (HTTP 500).
        with state.lock:
            caller = state.accounts.get(req.ctx.sub)
            if caller is None or caller.password != current:
                raise invalid("current password does not match")
        if not re.match(PASSWORD_PATTERN, new):
            raise unknown(f"new password does not match the following expression: {PASSWORD_PATTERN}")
        with state.lock:
            acct = state.accounts.get(name)
            if acct is None:
                raise not_found(f"account '{name}' does not exist")
            acct.password = new
            # Tokens issued before this second stop working; sleep-free: use next second boundary.
            acct.password_mtime = int(time.time())
        # No new session is issued: the caller logs in again with the new password.
        return Response({})

    def can_i(req: Request) -> dict:
        resource, action, sub = req.params["resource"], req.params["action"], req.params["subresource"]
        if resource not in RESOURCES:
            raise invalid(f"unsupported resource: {resource}")
        if action.split("/")[0] not in ACTIONS:
            raise invalid(f"unsupported action: {action}")
        return {"value": "yes" if req.ctx.can(resource, action, sub) else "no"}

    router.add("GET", "/api/v1/account", list_accounts)
    router.add("PUT", "/api/v1/account/password", update_password)
    router.add("GET", "/api/v1/account/can-i/{resource}/{action}/{subresource}", can_i)
    router.add("GET", "/api/v1/account/{name}", get_account)
    router.add("POST", "/api/v1/account/{name}/token", create_token)
    router.add("DELETE", "/api/v1/account/{name}/token/{id}", delete_token)

    # ------------------------------------------------------------------ settings & version

    def settings(req: Request) -> dict:
        out: dict[str, Any] = {
            "url": sim.url,
            "additionalUrls": [],
            "appLabelKey": "app.kubernetes.io/instance",
            "statusBadgeEnabled": False,
            "statusBadgeRootUrl": "",
            "kustomizeOptions": {"buildOptions": ""},
            "googleAnalytics": {"trackingID": "", "anonymizeUsers": True},
            "help": {"chatUrl": "", "chatText": "", "binaryUrls": {}},
            "userLoginsDisabled": False,
            "kustomizeVersions": [],
            "uiCssURL": "",
            "uiLoginButtonText": "",
            "trackingMethod": "annotation",
            "installationID": state.installation_id,
            "execEnabled": False,
            "appsInAnyNamespaceEnabled": bool(state.app_namespaces),
            "impersonationEnabled": False,
            "hydratorEnabled": False,
            "syncWithReplaceAllowed": True,
            "resourceViewEnabled": False,
            "dexConfig": {"connectors": []},
            "oidcConfig": {},
        }
        if req.ctx.logged_in:
            out.update(
                {
                    "uiBannerContent": "",
                    "uiBannerURL": "",
                    "uiBannerPermanent": False,
                    "uiBannerPosition": "",
                    "controllerNamespace": "argocd",
                    "resourceOverrides": {},
                    "passwordPattern": PASSWORD_PATTERN,
                }
            )
        return out

    def plugins(req: Request) -> dict:
        return {"plugins": [{"name": "cmp-helm-v2"}, {"name": "kustomize-envsubst"}]}

    def version(req: Request) -> dict:
        if not req.ctx.logged_in:
            return {"Version": VERSION}
        return {
            "Version": VERSION,
            "BuildDate": "2025-07-23T15:44:02Z",
            "GitCommit": "03c4ad854c1e6d922a121cd40f505d9bc6e402da",
            "GitTag": "",
            "GitTreeState": "clean",
            "GoVersion": "go1.24.4",
            "Compiler": "gc",
            "Platform": "linux/amd64",
            "KustomizeVersion": "v5.7.0 2025-06-28T07:00:07Z",
            "HelmVersion": "v3.18.4+gd80839c",
            "KubectlVersion": "v0.33.1",
            "JsonnetVersion": "v0.21.0",
            "ExtraBuildInfo": "",
        }

    router.add("GET", "/api/v1/settings", settings, auth=False)
    router.add("GET", "/api/v1/settings/plugins", plugins)
    router.add("GET", "/api/version", version, auth=False)

    # ------------------------------------------------------------------ notifications

    def names(items: list[str]) -> Any:
        return lambda req: {"items": [{"name": n} for n in items]}

    router.add("GET", "/api/v1/notifications/services", names(["email", "slack", "webhook"]))
    router.add(
        "GET",
        "/api/v1/notifications/templates",
        names(["app-created", "app-deleted", "app-health-degraded", "app-sync-failed", "app-sync-succeeded"]),
    )
    router.add(
        "GET",
        "/api/v1/notifications/triggers",
        names(["on-created", "on-deleted", "on-health-degraded", "on-sync-failed", "on-sync-succeeded"]),
    )
    _ = ApiError
