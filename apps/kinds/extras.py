"""Where a kind truly differs: extra actions (POST buttons on the detail page), live detail data, previews.

`run()` checks the action's grant with require() before any handler runs; every handler that changes
something goes through `services.mutate()` (one audit event) or `start_operation()` (an Operation).
Tokens created here are rendered once in the response and kept nowhere: not in the session, not in a
message, not in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse

from apps.access.rules import can
from apps.argocd import ArgoCDError
from apps.argocd.errors import FailedPrecondition
from apps.core.cron import window_state
from apps.instances.models import Instance
from apps.operations.models import Operation

from . import services
from .registry import JSON, ResourceKind, _appset_apps, _ts, dig

TEMPLATES = {
    "applicationsets": "kinds/extras/applicationsets.html",
    "projects": "kinds/extras/projects.html",
    "repositories": "kinds/extras/repositories.html",
    "clusters": "kinds/extras/ops.html",
    "accounts": "kinds/extras/accounts.html",
    "settings": "kinds/extras/ops.html",
}
ROTATIONS = (
    Operation.Kind.ROTATE_PROJECT_TOKEN,
    Operation.Kind.ROTATE_CLUSTER_AUTH,
    Operation.Kind.ROTATE_INSTANCE_TOKEN,
)
MAX_GRACE_SECONDS = 1800  # well inside the Celery task time limit (the runner waits it out)


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _expiry(request: HttpRequest) -> int | None:
    """Token lifetime in seconds from the form: blank or 0 = never expires; None when it is not a valid one."""
    raw = request.POST.get("expires_in", "").strip()
    seconds = _int(raw) if raw else 0
    return seconds if seconds is not None and seconds >= 0 else None


EXPIRY_ERROR = "The expiry must be 0 (never expires) or a positive number of seconds."


def _op_url(op: Operation) -> str:
    try:
        return reverse("operations:detail", args=[op.pk])
    except NoReverseMatch:
        return f"/operations/{op.pk}/"


def _started(request: HttpRequest, op: Operation) -> dict | HttpResponse:
    """htmx: the Operation card in place; a plain POST goes to the operation's page."""
    if request.htmx:
        return {"op": op}
    return redirect(_op_url(op))


def _mutate(request, kind, inst, key, obj, action: str, call: Callable[[Any], Any], **kw: Any) -> services.Result:
    return services.mutate(
        request, kind=kind, instance=inst, action=action, name=key, project=kind.scope(obj), call=call, **kw
    )


def _outcome(result: services.Result, done: str, **extra: Any) -> dict:
    if result.ok:
        return {"notice": done, "reload": True, **extra}
    return {"action_error": result.error}


# ---------------------------------------------------------------- clusters
def cluster_rotate(request, kind, inst, key, obj) -> dict | HttpResponse:
    from apps.operations.services import start_operation

    op = start_operation(
        request,
        kind=Operation.Kind.ROTATE_CLUSTER_AUTH,
        instance=inst,
        target=key,
        params={"server": key},
        audit_kind=kind.audit_kind,
    )
    return _started(request, op)


def instance_rotate(request, kind, inst, key, obj) -> dict | HttpResponse:
    from apps.operations.services import start_operation

    op = start_operation(
        request, kind=Operation.Kind.ROTATE_INSTANCE_TOKEN, instance=inst, target=inst.name, audit_kind="instance"
    )
    return _started(request, op)


def cluster_invalidate(request, kind, inst, key, obj) -> dict:
    result = _mutate(request, kind, inst, key, obj, "invalidate-cache", lambda c: c.invalidate_cluster_cache(key))
    return _outcome(result, "Cache invalidated; Argo CD is rebuilding it.")


# ---------------------------------------------------------------- repositories
_VALIDATE_PARAMS = {
    "username": "username",
    "password": "password",
    "sshPrivateKey": "sshPrivateKey",
    "insecure": "insecure",
    "tlsClientCertData": "tlsClientCertData",
    "tlsClientCertKey": "tlsClientCertKey",
    "type": "type",
    "name": "name",
    "enableOCI": "enableOci",
    "githubAppPrivateKey": "githubAppPrivateKey",
    "githubAppID": "githubAppID",
    "githubAppInstallationID": "githubAppInstallationID",
    "githubAppEnterpriseBaseUrl": "githubAppEnterpriseBaseUrl",
    "proxy": "proxy",
    "noProxy": "noProxy",
    "project": "project",
    "gcpServiceAccountKey": "gcpServiceAccountKey",
    "forceHttpBasicAuth": "forceHttpBasicAuth",
}


def _validate_args(body: JSON) -> JSON:
    return {q: body[k] for k, q in _VALIDATE_PARAMS.items() if body.get(k) not in (None, "")}


def repo_validate(request, kind, inst, key, obj) -> dict:
    """Ask Argo CD to reconnect with the credentials it stores (never returned to us) and report the state."""

    def call(c):
        state = c.get_repository(key, force_refresh=True).get("connectionState") or {}
        if state.get("status") not in (None, "", "Successful"):
            raise FailedPrecondition(state.get("message") or f"connection {state.get('status')}", instance=inst.name)

    return _outcome(_mutate(request, kind, inst, key, obj, "validate", call), f"Argo CD reached {key}.")


# ---------------------------------------------------------------- projects
def project_create_token(request, kind, inst, key, obj) -> dict:
    role = request.POST.get("role", "")
    expires = _expiry(request)
    token_id = request.POST.get("token_id", "").strip() or None
    desc = request.POST.get("description", "").strip() or None
    if not any(r.get("name") == role for r in dig(obj, "spec.roles", []) or []):
        return {"action_error": f"Project {key} has no role {role!r}."}
    if expires is None:
        return {"action_error": EXPIRY_ERROR}
    holder: dict[str, str] = {}

    def call(c):
        holder["token"] = c.create_project_token(
            key, role, expires_in=expires or None, token_id=token_id, description=desc
        )

    params = {"role": role, "expiresIn": expires, "id": token_id}
    result = _mutate(request, kind, inst, key, obj, "create-token", call, payload=params)
    return _outcome(result, f"Token created for role {role}.", new_token=holder.get("token", ""), token_role=role)


def project_delete_token(request, kind, inst, key, obj) -> dict:
    role = request.POST.get("role", "")
    iat = _int(request.POST.get("iat"))
    token_id = request.POST.get("token_id", "") or None
    if iat is None:
        return {"action_error": "Which token? The issued-at value is missing."}
    params = {"role": role, "iat": iat, "id": token_id}
    call = lambda c: c.delete_project_token(key, role, iat, token_id=token_id)  # noqa: E731
    result = _mutate(request, kind, inst, key, obj, "delete-token", call, payload=params)
    return _outcome(result, f"Token {token_id or iat} of role {role} deleted.")


def project_rotate_token(request, kind, inst, key, obj) -> dict | HttpResponse:
    from apps.operations.services import start_operation

    role = request.POST.get("role", "")
    grace = _int(request.POST.get("grace_seconds"), 0) * (60 if request.POST.get("grace_unit") == "minutes" else 1)
    role_obj = next((r for r in dig(obj, "spec.roles", []) or [] if r.get("name") == role), None)
    if role_obj is None:
        return {"action_error": f"Project {key} has no role {role!r}."}
    if not 0 <= grace <= MAX_GRACE_SECONDS:
        return {"action_error": f"The grace period must be between 0 and {MAX_GRACE_SECONDS // 60} minutes."}
    expires = _expiry(request)
    if expires is None:
        return {"action_error": EXPIRY_ERROR}
    old = {
        "iat": _int(request.POST.get("iat")),
        "id": request.POST.get("token_id", "") or None,
    }
    if old["iat"] is None:
        return {"action_error": "Pick the token to rotate."}
    op = start_operation(
        request,
        kind=Operation.Kind.ROTATE_PROJECT_TOKEN,
        instance=inst,
        project=key,
        target=key,
        params={
            "role": role,
            "old_iat": old["iat"],
            "old_id": old["id"],
            "grace_seconds": grace,
            "expires_in": expires,
        },
        audit_kind=kind.audit_kind,
    )
    return _started(request, op)


# ---------------------------------------------------------------- accounts
def _has_api_key(obj: JSON) -> bool:
    return "apiKey" in (obj.get("capabilities") or [])


def account_create_token(request, kind, inst, key, obj) -> dict:
    expires = _expiry(request)
    token_id = request.POST.get("token_id", "").strip() or None
    if not _has_api_key(obj):
        return {
            "action_error": f"Account {key} on {inst.name} lacks the apiKey capability, so Argo CD issues it "
            f"no tokens. Add apiKey to accounts.{key} in argocd-cm first."
        }
    if expires is None:
        return {"action_error": EXPIRY_ERROR}
    holder: dict[str, str] = {}

    def call(c):
        holder["token"] = c.create_account_token(key, expires_in=expires or None, token_id=token_id)

    result = _mutate(
        request, kind, inst, key, obj, "create-token", call, payload={"expiresIn": expires, "id": token_id}
    )
    return _outcome(result, f"Token created for {key}.", new_token=holder.get("token", ""))


def _portal_token_id(inst: Instance) -> str:
    from .rotations import claims

    return inst.token_id or (claims(inst.token).get("jti", "") if inst.token else "")


def account_delete_token(request, kind, inst, key, obj) -> dict:
    token_id = request.POST.get("token_id", "")
    if token_id and token_id == _portal_token_id(inst):
        return {
            "action_error": f"Token {token_id} is the one the portal itself uses on {inst.name}: deleting it would "
            "lock the portal out. Rotate it from the instance's settings page instead."
        }
    call = lambda c: c.delete_account_token(key, token_id)  # noqa: E731
    result = _mutate(request, kind, inst, key, obj, "delete-token", call, payload={"id": token_id})
    return _outcome(result, f"Token {token_id} of {key} deleted.")


def account_password(request, kind, inst, key, obj) -> dict:
    current = request.POST.get("current_password", "")
    new, again = request.POST.get("new_password", ""), request.POST.get("new_password_again", "")
    if not current:
        return {"action_error": "Enter the current password of the portal's account on this instance."}
    if not new or new != again:
        return {"action_error": "The new password is empty or the two entries differ."}
    call = lambda c: c.update_password(new, current, name=key)  # noqa: E731
    result = _mutate(request, kind, inst, key, obj, "change-password", call)
    return _outcome(result, f"Password of {key} changed.")


def account_can_i(request, kind, inst, key, obj) -> dict:
    q = {k: request.POST.get(k, "").strip() for k in ("resource", "verb", "subresource")}
    if not all(q.values()):
        return {"action_error": "Resource, action and object are all needed, e.g. projects / get / default."}
    if "/" in q["subresource"]:
        # grpc-gateway splits the REST path on the decoded "/", so such an object never reaches Argo CD.
        return {"action_error": "Argo CD's REST can-i cannot check an object containing '/' (like project/app)."}
    try:
        with inst.client() as c:
            answer = c.can_i(q["resource"], q["verb"], q["subresource"])
    except ArgoCDError as exc:
        return {"action_error": exc.message}
    return {"can_i": {**q, "answer": "yes" if answer else "no"}}


HANDLERS: dict[tuple[str, str], Callable[..., dict | HttpResponse]] = {
    ("settings", "rotate-portal-token"): instance_rotate,
    ("clusters", "rotate-auth"): cluster_rotate,
    ("clusters", "invalidate-cache"): cluster_invalidate,
    ("repositories", "validate"): repo_validate,
    ("projects", "create-token"): project_create_token,
    ("projects", "delete-token"): project_delete_token,
    ("projects", "rotate-token"): project_rotate_token,
    ("accounts", "create-token"): account_create_token,
    ("accounts", "delete-token"): account_delete_token,
    ("accounts", "password"): account_password,
    ("accounts", "can-i"): account_can_i,
}


def run(
    request: HttpRequest, kind: ResourceKind, inst: Instance, key: str, obj: JSON, name: str
) -> dict | HttpResponse:
    extra = next(e for e in kind.extras if e.name == name)
    services.check(request, extra.action, kind, inst, obj, key)
    return HANDLERS[(kind.slug, name)](request, kind, inst, key, obj)


# ---------------------------------------------------------------- previews on the create/edit form
def preview(request: HttpRequest, kind: ResourceKind, inst: Instance, body: JSON) -> dict:
    """ApplicationSets: the applications it would generate. Repositories: test the connection as entered."""
    try:
        with inst.client() as c:
            if kind.slug == "applicationsets":
                apps = c.generate_applicationset(body)
                rows = [
                    {
                        "name": dig(a, "metadata.name", ""),
                        "project": dig(a, "spec.project", ""),
                        "destination": dig(a, "spec.destination.server") or dig(a, "spec.destination.name", ""),
                        "namespace": dig(a, "spec.destination.namespace", ""),
                        "source": dig(a, "spec.source.repoURL", "") + " " + (dig(a, "spec.source.path") or ""),
                    }
                    for a in apps
                ]
                return {"preview": rows, "preview_done": True}
            if kind.slug in ("repositories",):
                c.validate_repository(body.get("repo", ""), **_validate_args(body))
                return {"notice": f"Argo CD reached {body.get('repo')} with these settings."}
    except ArgoCDError as exc:
        return {"error": exc.message}
    return {"error": f"{kind.title} have no preview."}


# ---------------------------------------------------------------- live data for detail pages
def _rotation_ops(inst: Instance, target: str) -> list[Operation]:
    from .reveal import waiting

    ops = list(Operation.objects.filter(instance=inst, target=target, kind__in=ROTATIONS)[:3])
    for op in ops:
        op.token_waiting = op.kind == Operation.Kind.ROTATE_PROJECT_TOKEN and waiting(op.pk)
    return ops


def _app_link(inst: Instance, name: str) -> str:
    try:
        return reverse("applications:detail", args=[inst.name, name])
    except NoReverseMatch:
        return ""


RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def _owned_by(app: JSON, appset: JSON) -> bool:
    """Argo CD finds a set's apps by their controller owner reference (by uid when the set has one)."""
    uid = dig(appset, "metadata.uid", "")
    for ref in dig(app, "metadata.ownerReferences", []) or []:
        if ref.get("kind") != "ApplicationSet" or not ref.get("controller", False):
            continue
        if (uid and ref.get("uid") == uid) or (not uid and ref.get("name") == dig(appset, "metadata.name")):
            return True
    return False


def appset_apps(inst: Instance, appset: JSON, user: Any) -> tuple[list[dict], str, list[str]]:
    """The set's applications from the live list (owner references), with progressive-sync step if any.

    Returns the rows the user may view, Argo CD's error, and the names of all the apps the set owns.
    """
    steps = {r.get("application"): r for r in _appset_apps(appset) if r.get("step") or r.get("message")}
    try:
        with inst.client() as c:
            apps = c.list_applications(projects=dig(appset, "spec.template.spec.project") or None)
    except ArgoCDError as exc:
        return [], exc.message, []
    rows = []
    everyone: list[str] = []
    for a in apps:
        if not _owned_by(a, appset):
            continue
        name = dig(a, "metadata.name", "")
        everyone.append(name)
        if not can(user, "view", inst, dig(a, "spec.project", "") or "default", name):
            continue
        step = steps.get(name) or {}
        rows.append(
            {
                "application": name,
                "status": f"{dig(a, 'status.sync.status', '')} {dig(a, 'status.health.status', '')}".strip(),
                "step": step.get("step", ""),
                "message": step.get("message", ""),
                "url": _app_link(inst, name),
                "cascade": RESOURCES_FINALIZER in (dig(a, "metadata.finalizers", []) or []),
            }
        )
    # Apps the set's status lists outside the template's project (a templatePatch may move them) are counted
    # too: the list above is asked for that project only, to ask Argo CD for less.
    listed = {r.get("name") for r in dig(appset, "status.resources", []) or [] if r.get("kind") == "Application"}
    elsewhere = {n for n in listed if n} - set(everyone)
    return sorted(rows, key=lambda r: r["application"]), "", sorted(set(everyone) | elsewhere)


def appset_deletion(inst: Instance, appset: JSON, user: Any) -> dict:
    """What deleting the set takes with it, per its sync policy (Argo CD's API offers no orphan option)."""
    rows, error, everyone = appset_apps(inst, appset, user)
    policy = dig(appset, "spec.syncPolicy.applicationsSync", "") or "sync"
    return {
        "owned_apps": rows,
        "owned_error": error,
        "owned_names": everyone,
        "owned_hidden": len(everyone) - len(rows),
        "apps_policy": policy,
        "apps_deleted": policy in ("sync", "create-delete"),
        "resources_kept": bool(dig(appset, "spec.syncPolicy.preserveResourcesOnDeletion", False)),
    }


def load_appset(request, kind, inst, key, obj) -> dict:
    return appset_deletion(inst, obj, request.user)


def load_project(request, kind, inst, key, obj) -> dict:
    windows = []
    for w in dig(obj, "spec.syncWindows", []) or []:
        st = window_state(w)
        windows.append({**w, "active": st.active, "next_change": st.next_change, "error": st.error})
    roles = [
        {
            **r,
            "tokens": [
                {"iat": t.get("iat"), "id": t.get("id", ""), "issued": _ts(t.get("iat")), "expires": _ts(t.get("exp"))}
                for t in r.get("jwtTokens") or []
            ],
        }
        for r in dig(obj, "spec.roles", []) or []
    ]
    return {"windows": windows, "roles": roles, "ops": _rotation_ops(inst, key)}


def load_repository(request, kind, inst, key, obj) -> dict:
    try:
        with inst.client() as c:
            return {"repo_apps": c.list_repository_apps(key), "repo_apps_error": ""}
    except ArgoCDError as exc:
        return {"repo_apps": [], "repo_apps_error": exc.message}


def load_account(request, kind, inst, key, obj) -> dict:
    tokens = [
        {"id": t.get("id", ""), "issued": _ts(t.get("issuedAt")), "expires": _ts(t.get("expiresAt"))}
        for t in obj.get("tokens") or []
    ]
    return {"tokens": tokens, "portal_token_id": _portal_token_id(inst), "api_key": _has_api_key(obj)}


def load_cluster(request, kind, inst, key, obj) -> dict:
    return {"ops": _rotation_ops(inst, key)}


def load_settings(request, kind, inst, key, obj) -> dict:
    return {"ops": _rotation_ops(inst, inst.name)}


LOADERS: dict[str, Callable[..., dict]] = {
    "applicationsets": load_appset,
    "projects": load_project,
    "repositories": load_repository,
    "accounts": load_account,
    "clusters": load_cluster,
    "settings": load_settings,
}


def load(request: HttpRequest, kind: ResourceKind, inst: Instance, key: str, obj: JSON) -> dict:
    loader = LOADERS.get(kind.slug)
    return loader(request, kind, inst, key, obj) if loader else {}
