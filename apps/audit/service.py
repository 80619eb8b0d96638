"""`record()`: the one way to write an audit event, called where the action happens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.core.net import client_ip

from .chain import append
from .models import AuditEvent

Outcome = AuditEvent.Outcome


def record(
    request: HttpRequest | None,
    *,
    action: str,
    outcome: str,
    user=None,
    instance: str = "",
    kind: str = "",
    project: str = "",
    namespace: str = "",
    name: str = "",
    payload: Any = None,
    before: Any = None,
    after: Any = None,
    error: str = "",
    operation_id: int | None = None,
    team: str = "",
    actor: str = "",
) -> AuditEvent:
    """Append one event. `user` defaults to the request's user; secrets in payload/before/after are redacted.

    `actor` names who acted when there is no user to name (a failed login's attempted user name).
    """
    if user is None and request is not None:
        user = getattr(request, "user", None)
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    named = user.get_username() if authenticated else (actor or getattr(user, "username", "") or "anonymous")
    actor = named[:150]
    if not team and authenticated:
        team = ",".join(_teams(user, action, str(instance or ""), project or "*", name or "*"))[:100]
    return append(
        actor=actor,
        actor_user=user if authenticated else None,
        team=team,
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request else ""),
        instance=str(instance or ""),
        kind=kind,
        project=project or "",
        namespace=namespace or "",
        name=name or "",
        action=action,
        request=payload if isinstance(payload, dict) else ({"value": payload} if payload is not None else {}),
        before=before,
        after=after,
        outcome=outcome,
        error=str(error or "")[:4000],
        operation_id=operation_id,
    )


def _teams(user, action: str, instance: str, project: str, name: str) -> list[str]:
    """The teams whose grants allowed this, else all the actor's teams with grants.

    Both come from the grants `can()` already loaded for this request, so recording costs no query.
    """
    from apps.access.rules import _grants, teams_allowing

    if instance:
        allowing = teams_allowing(user, action, instance, project, name)
        if allowing:
            return allowing
    return sorted({g.team.slug for g in _grants(user)})
