"""Registering Argo CD instances, checking their health and what the portal's account may do there.

Credentials: a token is used as given. A username/password is exchanged for a session token and then for an
API key of that account (so the portal holds a revocable, long-lived key, not a password); when the account
has no `apiKey` capability the session token is kept together with the password, so the client can log in
again when the session expires.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.argocd import ArgoCDClient, fan_out
from apps.argocd.errors import ArgoCDError, BadResponse
from apps.audit.service import Change, Outcome, begin, record

from .models import Instance, validate_instance_url

log = logging.getLogger(__name__)

# Portal-issued API keys live this long; rotating them is an operation of its own.
API_KEY_TTL_SECONDS = settings.PORTAL_TOKEN_LIFETIME_DAYS * 86400
# A connection check answers quickly: one retry, not the client's default three.
CHECK_RETRIES = 1

# The Argo CD permissions the can-i matrix asks about, per resource (Argo CD RBAC names, NOTES §c).
CAN_I_ACTIONS = ["get", "create", "update", "delete", "sync", "rollback", "override", "action"]
CAN_I_RESOURCES: dict[str, list[str]] = {
    "applications": CAN_I_ACTIONS,
    "applicationsets": ["get", "create", "update", "delete"],
    "projects": ["get", "create", "update", "delete"],
    "clusters": ["get", "create", "update", "delete"],
    "repositories": ["get", "create", "update", "delete"],
    "certificates": ["get", "create", "update", "delete"],
    "gpgkeys": ["get", "create", "delete"],
    "accounts": ["get", "update"],
    "logs": ["get"],
}
# Over REST the can-i object is one path segment, so it can only be "*". For instance-wide resources that is the
# object their policies name; for project-scoped ones policies name "<project>/<app>" and "*/*" does not match "*":
# a "yes" is real (a policy on "*" exists), a "no" proves nothing.
PROJECT_SCOPED = {"applications", "applicationsets", "logs"}
# The sentinel shown for such a "no".
CANNOT_TELL = "cannot tell"
# What the portal's account needs in Argo CD for each portal action to work at all (rollback and terminate
# are authorised as `sync` by Argo CD unless rollback enforcement is switched on).
PORTAL_ACTION_NEEDS: dict[str, list[tuple[str, str]]] = {
    "view": [("applications", "get")],
    "sync": [("applications", "sync")],
    "rollback": [("applications", "sync")],
    "terminate": [("applications", "sync")],
    "action": [("applications", "action")],
    "logs": [("logs", "get")],
    "edit": [("applications", "update")],
    "create": [("applications", "create")],
    "delete": [("applications", "delete")],
    "rotate": [("accounts", "update")],
    "create projects": [("projects", "create")],
    "edit clusters": [("clusters", "update")],
    "edit repositories": [("repositories", "update")],
}


class InstanceConnectionError(Exception):
    """Registering or updating an instance failed; `str()` says why in words fit for the page."""


@dataclass
class Credentials:
    token: str
    username: str = ""
    password: str = ""  # kept only when the token is a session token that must be renewed by logging in
    token_id: str = ""
    token_expires_at: datetime | None = None
    kind: str = "token"  # token | api-key | session
    # When an API key was made from a login session: Argo CD's API cannot end that session (DELETE
    # /api/v1/session only clears a browser cookie), so it stays valid in Argo CD until this time.
    login_session_expires_at: datetime | None = None


def jwt_claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT (to learn its id and expiry); {} if it is not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _expiry(claims: dict[str, Any]) -> datetime | None:
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, tz=UTC) if isinstance(exp, int | float) else None


def _client(url: str, *, name: str, verify_tls: bool, ca_bundle: str, **auth: Any) -> ArgoCDClient:
    connect, read = settings.ARGOCD_TIMEOUT
    return ArgoCDClient(
        url,
        name=name,
        verify=verify_tls,
        ca_bundle=ca_bundle or None,
        connect_timeout=connect,
        read_timeout=read,
        retries=CHECK_RETRIES,
        **auth,
    )


def _as_dict(value: Any, what: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{what} answer is not a JSON object", instance=name)
    return value


def obtain_credentials(
    *,
    name: str,
    url: str,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    verify_tls: bool = True,
    ca_bundle: str = "",
) -> Credentials:
    """Check the given credentials against the instance and turn them into what the portal stores."""
    if not token and not (username and password):
        raise InstanceConnectionError("Give either an API token, or a username and a password.")
    try:
        if token:
            with _client(url, name=name, verify_tls=verify_tls, ca_bundle=ca_bundle, token=token) as client:
                info = _as_dict(client.userinfo(), "userinfo", name)
            if not info.get("loggedIn"):
                raise InstanceConnectionError(f"{name}: Argo CD did not accept the token (not logged in).")
            claims = jwt_claims(token)
            return Credentials(
                token=token,
                username=str(info.get("username") or ""),
                token_id=str(claims.get("jti") or ""),
                token_expires_at=_expiry(claims),
            )
        with _client(url, name=name, verify_tls=verify_tls, ca_bundle=ca_bundle) as anonymous:
            session = anonymous.create_session(username, password)
        if not session:
            raise InstanceConnectionError(f"{name}: Argo CD answered the login without a token.")
        with _client(url, name=name, verify_tls=verify_tls, ca_bundle=ca_bundle, token=session) as client:
            try:
                key = client.create_account_token(
                    username, expires_in=API_KEY_TTL_SECONDS, token_id=f"portal-{uuid.uuid4().hex[:12]}"
                )
            except ArgoCDError as exc:
                if "apikey" not in str(exc).lower():
                    raise
                # No apiKey capability: keep the session token and the password to log in again later.
                claims = jwt_claims(session)
                return Credentials(
                    token=session,
                    username=username,
                    password=password,
                    token_id=str(claims.get("jti") or ""),
                    token_expires_at=_expiry(claims),
                    kind="session",
                )
        claims = jwt_claims(key)
        return Credentials(
            token=key,
            username=username,
            token_id=str(claims.get("jti") or ""),
            token_expires_at=_expiry(claims),
            kind="api-key",
            login_session_expires_at=_expiry(jwt_claims(session)),
        )
    except ArgoCDError as exc:
        raise InstanceConnectionError(str(exc)) from exc
    except ValueError as exc:  # options the client refuses before sending anything (e.g. an unusable CA bundle)
        raise InstanceConnectionError(f"{name}: {exc}") from exc


def _apply_credentials(instance: Instance, creds: Credentials) -> None:
    instance.token = creds.token
    instance.username = creds.username
    instance.password = creds.password
    instance.token_id = creds.token_id
    instance.token_expires_at = creds.token_expires_at


def credential_kind(instance: Instance) -> str:
    if instance.token and instance.password:
        return "session"
    if instance.token:
        return "api-key" if str(jwt_claims(instance.token).get("sub", "")).endswith(":apiKey") else "token"
    return "password" if instance.password else "none"


def snapshot(instance: Instance) -> dict[str, Any]:
    """What the audit log keeps of an instance: everything but the secrets (only whether they are set)."""
    return {
        "name": instance.name,
        "url": instance.url,
        "username": instance.username,
        # Key names avoid "token"/"password": the audit log redacts those whatever their value.
        "credential": credential_kind(instance),
        "credential_id": instance.token_id,
        "credential_expires_at": instance.token_expires_at.isoformat() if instance.token_expires_at else None,
        "verify_tls": instance.verify_tls,
        "ca_bundle_set": bool(instance.ca_bundle),
        "labels": instance.labels,
        "enabled": instance.enabled,
    }


SYSTEM = SimpleNamespace(username="system", is_authenticated=False)


def _audit(request: HttpRequest | None, action: str, outcome: str, name: str, **extra: Any) -> None:
    record(request, user=None if request else SYSTEM, action=action, outcome=outcome, instance=name,
           kind="instance", name=name, **extra)  # fmt: skip


def _begin(request: HttpRequest | None, action: str, name: str, **extra: Any) -> Change:
    """The audited intent of a change that creates or revokes the portal's credentials in Argo CD."""
    return begin(request, user=None if request else SYSTEM, action=action, instance=name, kind="instance",
                 name=name, **extra)  # fmt: skip


def register_instance(
    *,
    name: str,
    url: str,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    verify_tls: bool = True,
    ca_bundle: str = "",
    labels: dict[str, str] | None = None,
    enabled: bool = True,
    request: HttpRequest | None = None,
) -> Instance:
    """Create or update (by name) an instance after checking its credentials. Raises InstanceConnectionError."""
    existing = Instance.objects.filter(name=name).first()
    action = "update" if existing else "create"
    # Reject a bad name or URL before talking to anything.
    Instance(name=name, url=url, labels=labels or {}).full_clean(exclude=["url"], validate_unique=False)
    validate_instance_url(url)
    before = snapshot(existing) if existing else None
    change = _begin(request, action, name, payload={"url": url, "username": username or ""}, before=before)
    try:
        creds = obtain_credentials(
            name=name, url=url, token=token, username=username, password=password,
            verify_tls=verify_tls, ca_bundle=ca_bundle,
        )  # fmt: skip
    except InstanceConnectionError as exc:
        change.failed(str(exc))
        raise
    replaced = _portal_key(existing) if existing else None
    with transaction.atomic():
        instance = existing or Instance(name=name)
        instance.url = url
        instance.verify_tls = verify_tls
        instance.ca_bundle = ca_bundle
        instance.labels = labels or {}
        instance.enabled = enabled
        _apply_credentials(instance, creds)
        instance.full_clean(exclude=["url"])
        instance.save()
        change.target["payload"] = {**change.target["payload"], **_credential_facts(creds)}
        change.succeeded(after=snapshot(instance))
    _revoke_replaced_key(instance, replaced, request)
    check_instance(instance)
    instance.login_session_expires_at = creds.login_session_expires_at  # for the page, not stored
    return instance


def _credential_facts(creds: Credentials) -> dict[str, Any]:
    facts: dict[str, Any] = {"credential": creds.kind}
    if creds.login_session_expires_at:
        facts["login_session_valid_until"] = creds.login_session_expires_at.isoformat()
    return facts


def login_session_note(instance: Instance) -> str:
    """What the page says about the login session an API key was made from, if one was just used."""
    until = getattr(instance, "login_session_expires_at", None)
    if not until:
        return ""
    return (
        f"The login session used to create the API key stays valid in {instance.name} until "
        f"{until:%Y-%m-%d %H:%M} UTC: Argo CD's API cannot end it. Change the account's password in Argo CD "
        "to end it sooner."
    )


def update_instance(
    instance: Instance,
    *,
    request: HttpRequest | None,
    url: str,
    verify_tls: bool,
    ca_bundle: str,
    labels: dict[str, str],
    enabled: bool,
    token: str = "",
    username: str = "",
    password: str = "",
) -> Instance:
    """Edit an instance. Blank secrets keep the stored ones; new ones are checked before anything is saved."""
    before = snapshot(instance)
    creds = None
    moved = (url, verify_tls, ca_bundle) != (instance.url, instance.verify_tls, instance.ca_bundle)
    if moved and not (token or password):
        # The stored token must never be sent somewhere its owner did not type it for.
        error = "The URL or TLS settings changed: enter the token (or password) again for the new address."
        _audit(request, "update", Outcome.FAILED, instance.name, before=before, error=error)
        raise InstanceConnectionError(error)
    change = _begin(request, "update", instance.name, before=before) if token or password else None
    if change:
        try:
            creds = obtain_credentials(
                name=instance.name, url=url, token=token or None, username=username or None,
                password=password or None, verify_tls=verify_tls, ca_bundle=ca_bundle,
            )  # fmt: skip
        except InstanceConnectionError as exc:
            change.failed(str(exc))
            raise
    replaced = _portal_key(instance) if creds else None
    with transaction.atomic():
        instance.url = url
        instance.verify_tls = verify_tls
        instance.ca_bundle = ca_bundle
        instance.labels = labels
        instance.enabled = enabled
        if creds:
            _apply_credentials(instance, creds)
            instance.login_session_expires_at = creds.login_session_expires_at  # for the page, not stored
        instance.save()
        if change:
            if creds:
                change.target["payload"] = {**(change.target.get("payload") or {}), **_credential_facts(creds)}
            change.succeeded(after=snapshot(instance))
        else:
            _audit(request, "update", Outcome.SUCCEEDED, instance.name, before=before, after=snapshot(instance))
    _revoke_replaced_key(instance, replaced, request)
    return instance


def set_enabled(instance: Instance, enabled: bool, request: HttpRequest | None) -> None:
    before = snapshot(instance)
    instance.enabled = enabled
    instance.save(update_fields=["enabled", "updated_at"])
    _audit(request, "enable" if enabled else "disable", Outcome.SUCCEEDED, instance.name, before=before,
           after=snapshot(instance))  # fmt: skip


def _portal_key(instance: Instance) -> tuple[str, str, str] | None:
    """(username, token id, token) of an API key the portal created for itself, else None."""
    # Keys created here are "portal-…", keys made by a rotation operation (apps/kinds/rotations.py) "rotated-…";
    # a token an admin pasted may be shared with other tools and is never revoked by the portal.
    ours = instance.pk and instance.username and instance.token_id.startswith(("portal-", "rotated-"))
    if ours and credential_kind(instance) == "api-key":
        return instance.username, instance.token_id, instance.token
    return None


def _revoke_replaced_key(instance: Instance, old: tuple[str, str, str] | None, request: HttpRequest | None) -> None:
    """After new credentials are stored, revoke the portal's previous API key so keys do not pile up.

    Deleting a key is a change in Argo CD: its intent is on the audit chain before the call, its outcome after.
    """
    if old is None or old[1] == instance.token_id:
        return
    username, token_id, token = old
    change = _begin(request, "revoke-replaced-key", instance.name, payload={"account": username, "key_id": token_id})
    try:
        with _client(instance.url, name=instance.name, verify_tls=instance.verify_tls,
                     ca_bundle=instance.ca_bundle, token=token) as client:  # fmt: skip
            client.delete_account_token(username, token_id)
    except ArgoCDError as exc:
        log.warning("%s: could not revoke the replaced API key %s: %s", instance.name, token_id, exc)
        change.failed(f"Could not revoke the replaced API key {token_id} of {username} in {instance.name}: {exc}")
        return
    change.succeeded()


def delete_instance(instance: Instance, request: HttpRequest | None) -> str:
    """Forget the instance. An API key the portal created for itself is revoked in Argo CD first (best effort).

    Returns a sentence about the key for the page ("" when there was none to revoke).
    """
    before = snapshot(instance)
    revoked = ""
    change = _begin(request, "delete", instance.name, before=before) if _portal_key(instance) else None
    if change:
        try:
            with instance.client(retries=CHECK_RETRIES) as client:
                client.delete_account_token(instance.username, instance.token_id)
            revoked = f"Its API key {instance.token_id} was revoked in Argo CD."
        except ArgoCDError as exc:
            revoked = f"Its API key {instance.token_id} could not be revoked in Argo CD ({exc}); delete it there."
    with transaction.atomic():
        instance.delete()
        if change:
            change.target["payload"] = {"credential_revocation": revoked}
            change.succeeded()
        else:
            _audit(request, "delete", Outcome.SUCCEEDED, before["name"], before=before)
    return revoked


def check_instance(instance: Instance) -> dict[str, Any]:
    """Ask the instance for its version and who the portal is there; record the health on the row.

    Returns {"ok", "version", "userinfo", "error"}; never raises for a down or broken instance.
    """
    result = probe_instance(instance)
    save_health(instance, result)
    return result


def probe_instance(instance: Instance) -> dict[str, Any]:
    """The network half of check_instance (no database access, so it can run in any thread)."""
    result: dict[str, Any] = {"ok": False, "version": "", "userinfo": {}, "error": ""}
    try:
        with instance.client(retries=CHECK_RETRIES) as client:
            version = _as_dict(client.version(), "version", instance.name)
            info = _as_dict(client.userinfo(), "userinfo", instance.name)
        result["version"] = str(version.get("Version") or "")
        result["userinfo"] = info
        if not info.get("loggedIn"):
            result["error"] = f"{instance.name}: the stored credential is not accepted any more (not logged in)."
        else:
            result["ok"] = True
    except ArgoCDError as exc:
        result["error"] = str(exc)
    except ValueError as exc:  # unusable TLS options (e.g. a CA bundle that is not PEM)
        result["error"] = f"{instance.name}: {exc}"
    return result


def save_health(instance: Instance, result: dict[str, Any]) -> None:
    """Record a health check on the row; a change between reachable and not is also an audit event (and so a
    notification), written once per change rather than at every check."""
    was_failing = bool(instance.last_error)
    if was_failing != (not result["ok"]):
        what = "reachable again" if result["ok"] else f"unreachable: {result['error']}"
        _audit(None, "health", Outcome.SUCCEEDED if result["ok"] else Outcome.FAILED, instance.name,
               error="" if result["ok"] else what, payload={"health": what})  # fmt: skip
    fields = ["last_error", "updated_at"]
    instance.last_error = result["error"]
    if result["version"]:
        instance.version = result["version"]
        fields.append("version")
    if result["ok"]:
        instance.last_seen = timezone.now()
        fields.append("last_seen")
    instance.save(update_fields=fields)


def permissions_matrix(instance: Instance, *, deadline: float = 8.0) -> dict[str, Any]:
    """What Argo CD lets the portal's account do on this instance, asked with can-i in parallel.

    Returns {"actions", "rows": [(resource, [(action, answer)])], "needs": [(portal action, [needs], verdict)],
    "error"}. An answer is True, False, None (no such permission in Argo CD), CANNOT_TELL or an error message;
    a verdict is "works", "never" or "unknown".
    """
    calls = {(resource, action): (resource, action, "*") for resource, actions in CAN_I_RESOURCES.items()
             for action in actions}  # fmt: skip
    try:
        client = instance.client(retries=CHECK_RETRIES)
    except ValueError as exc:
        return {"actions": CAN_I_ACTIONS, "rows": [], "needs": [], "error": f"{instance.name}: {exc}"}
    with client:
        outcomes = fan_out(calls, lambda args: client.can_i(*args), max_workers=8, deadline=deadline)
    answers: dict[tuple[str, str], Any] = {}
    for (resource, action), o in outcomes.items():
        if not o.ok:
            answers[resource, action] = str(o.error)
        elif not o.value and resource in PROJECT_SCOPED:
            answers[resource, action] = CANNOT_TELL
        else:
            answers[resource, action] = bool(o.value)
    rows = [
        (resource, [(action, answers.get((resource, action))) for action in CAN_I_ACTIONS])
        for resource in CAN_I_RESOURCES
    ]
    errors = sorted({a for a in answers.values() if isinstance(a, str) and a != CANNOT_TELL})
    needs = []
    for portal_action, required in PORTAL_ACTION_NEEDS.items():
        got = [answers.get(need) for need in required]
        verdict = "works" if all(a is True for a in got) else "never" if False in got else "unknown"
        needs.append((portal_action, [f"{r} {a}" for r, a in required], verdict))
    return {"actions": CAN_I_ACTIONS, "rows": rows, "needs": needs, "error": errors[0] if errors else ""}


def rotation_due(instance: Instance) -> datetime | None:
    """When beat starts rotating the portal's own API key: PORTAL_TOKEN_ROTATE_WITHIN_DAYS before it expires.

    None when nothing will be rotated: no expiry, or a session token renewed by logging in again.
    """
    if not instance.token or not instance.token_expires_at or instance.password:
        return None
    return instance.token_expires_at - timedelta(days=settings.PORTAL_TOKEN_ROTATE_WITHIN_DAYS)
