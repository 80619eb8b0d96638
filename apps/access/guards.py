"""What every view and task opens with: find the instance, check `can()`, audit a denial."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from apps.audit.service import Outcome, record
from apps.instances.models import Instance

from .decide import Decision, Target, decide
from .rules import can, instances_visible, is_platform_admin


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Platform-admin pages (instances, teams, grants): superusers only; others get the portal's 403 page.

    LoginRequiredMiddleware has already sent anonymous visitors to the login page.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        check_admin(request)
        return view(request, *args, **kwargs)

    return wrapper


def check_admin(request: HttpRequest) -> None:
    """Raise PermissionDenied unless the request's user is a platform admin (for views that branch on it)."""
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform admins may manage this.")


# Django's own vocabulary calls the admin-only decorator "staff"; in the portal only superusers qualify.
staff_required = admin_required


def get_instance(name: str, request: HttpRequest | None = None, *, kind: str = "", target: str = "") -> Instance:
    """An enabled instance by name, or 404 (a disabled instance is as good as absent to its users).

    With a request, a miss is audited as a probe (what was asked for, refused as not found)."""
    instance = Instance.objects.filter(name=name, enabled=True).first()
    if instance is None:
        if request is not None:
            probe(request, name, kind, target, "no enabled instance of that name")
        raise Http404(f"No enabled Argo CD instance is called {name!r}.")
    return instance


def require_visible(request: HttpRequest, instance: Instance, *, kind: str, target: str = "") -> None:
    """404 unless the user holds some grant on the instance; the refusal is audited, the answer tells nothing."""
    if not any(i.pk == instance.pk for i in instances_visible(request.user)):
        probe(request, instance.name, kind, target, "no grant on this instance")
        raise Http404("Not found, or you may not see it.")


def probe(request: HttpRequest, instance: str, kind: str, target: str, why: str) -> None:
    """Audit a request answered 404 so that admins see who looks for what they may not see."""
    record(request, action="view", outcome=Outcome.DENIED, instance=instance[:63], kind=kind, name=target[:253],
           error=f"answered 404: {why}", payload={"path": request.get_full_path()[:500]})  # fmt: skip


# What each action is, as the verb phrase of "You may not … <kind> <name>" (an action's value is not English).
REFUSED_PHRASES = {
    "view": "see",
    "sync": "sync",
    "rollback": "roll back",
    "terminate": "terminate the operation of",
    "action": "run resource actions on",
    "logs": "read the logs of",
    "edit": "edit",
    "create": "create",
    "delete": "delete",
    "rotate": "rotate the tokens of",
    "override": "override the change windows of",
    "autosync": "turn automated sync on or off for",
    "refresh": "refresh",
    "admin": "administer",
}


def refusal(action: str, kind: str, name: str, instance: str) -> str:
    """The sentence of a 403, e.g. "You may not read the logs of application payments-api on argocd-east."."""
    phrase = REFUSED_PHRASES.get(action, action)
    what = f"{kind}s" if name in ("", "*") else f"{kind} {name}"
    return f"You may not {phrase} {what} on {instance}."


def require(
    request: HttpRequest,
    action: str,
    instance: Instance,
    project: str = "*",
    app: str = "*",
    *,
    kind: str = "application",
    name: str = "",
    namespace: str = "",
) -> None:
    """Raise PermissionDenied (and write a `denied` audit event) unless the user may do `action`.

    A user who may not even view the object gets a 404 so that names cannot be probed.
    """
    ns = namespace or "*"
    if can(request.user, action, instance, project, app, ns):
        return
    record(
        request,
        action=action,
        outcome=Outcome.DENIED,
        instance=instance.name,
        kind=kind,
        project=project if project != "*" else "",
        namespace=namespace,
        name=name or (app if app != "*" else ""),
        error="not granted",
    )
    if action != "view" and can(request.user, "view", instance, project, app, ns):
        raise PermissionDenied(refusal(action, kind, name or app, instance.name))
    raise Http404("Not found, or you may not see it.")


def enforce(
    request: HttpRequest, action: str, target: Target, params: dict, *, kind: str = "application", namespace: str = ""
) -> Decision:
    """Decide the request with its parameters; a refusal is audited with its reason and answered 403.

    The caller has already checked the action itself (`require`), so a refusal here is a grant's constraint.
    """
    decision = decide(request.user, action, target, params)
    if decision.allowed:
        return decision
    instance = target.instance if isinstance(target.instance, str) else target.instance.name
    record(
        request,
        action=action,
        outcome=Outcome.DENIED,
        instance=instance,
        kind=kind,
        project=target.project if target.project != "*" else "",
        namespace=namespace,
        name=target.app if target.app != "*" else "",
        payload=params,
        error=f"refused by constraint {decision.constraint or 'grant'}: {decision.reason}",
    )
    raise PermissionDenied(f"Not allowed: {decision.reason}.")
