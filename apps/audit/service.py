"""`record()`: the one way to write an audit event, called where the action happens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .chain import append
from .models import AuditEvent

Outcome = AuditEvent.Outcome


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


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
) -> AuditEvent:
    """Append one event. `user` defaults to the request's user; secrets in payload/before/after are redacted."""
    if user is None and request is not None:
        user = getattr(request, "user", None)
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    actor = user.get_username() if authenticated else (getattr(user, "username", "") or "anonymous")
    if not team and authenticated:
        team = ",".join(user.teams.order_by("name").values_list("slug", flat=True)[:5])
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
