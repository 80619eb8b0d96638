"""What every view and task opens with: find the instance, check `can()`, audit a denial."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from apps.audit.service import Outcome, record
from apps.instances.models import Instance

from .rules import can


def get_instance(name: str) -> Instance:
    """An enabled instance by name, or 404 (a disabled instance is as good as absent to its users)."""
    instance = Instance.objects.filter(name=name, enabled=True).first()
    if instance is None:
        raise Http404(f"No enabled Argo CD instance is called {name!r}.")
    return instance


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
    if can(request.user, action, instance, project, app):
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
    if action != "view" and can(request.user, "view", instance, project, app):
        raise PermissionDenied(f"You may not {action} {kind} {name or app} on {instance.name}.")
    raise Http404("Not found, or you may not see it.")
