"""`record()`: the one way to write an audit event, called where the action happens."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest

from apps.core import requestid
from apps.core.net import client_ip

from .chain import append
from .models import AuditEvent

Outcome = AuditEvent.Outcome
log = logging.getLogger("portal.audit")


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
    intent_id: int | None = None,
) -> AuditEvent:
    """Append one event. `user` defaults to the request's user; secrets in payload/before/after are redacted.

    `actor` names who acted when there is no user to name (a failed login's attempted user name).
    """
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if outcome == Outcome.DENIED and request is not None:
        request.refusal_audited = True  # RefusalAuditMiddleware then does not record the same refusal again
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    named = user.get_username() if authenticated else (actor or getattr(user, "username", "") or "anonymous")
    actor = named[:150]
    if not team and authenticated:
        team = ",".join(_teams(user, action, str(instance or ""), project or "*", name or "*"))[:100]
    event = append(
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
        request=_payload(request, payload),
        before=before,
        after=after,
        outcome=outcome,
        error=str(error or "")[:4000],
        operation_id=operation_id,
        intent_id=intent_id,
    )
    _notify(event)
    return event


def _notify(event: AuditEvent) -> None:
    # After commit, so only events that exist are told; a failure here must never undo the audit write.
    try:
        from apps.notifications.services import on_audit_event

        on_audit_event(event.pk)
    except Exception:
        log.exception("audit: notifications for event #%s could not be scheduled", event.pk)


def _payload(request: HttpRequest | None, payload: Any) -> dict:
    """The event's request payload, with the id of the request (or the task it started) the event belongs to and
    the API token the call came through (apps.api sets it). That key avoids the word "token": the chain redacts
    the values of keys that contain it."""
    body = payload if isinstance(payload, dict) else ({"value": payload} if payload is not None else {})
    request_id = requestid.current()
    if request_id and "request_id" not in body:
        body = {**body, "request_id": request_id}
    token_id = getattr(request, "api_token_id", None) if request is not None else None
    return {**body, "api_key_id": token_id} if token_id else body


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


@dataclass
class Change:
    """A change about to be sent to Argo CD, already on the audit chain as a `started` event.

    Intent before effect: `begin()` commits the intent before the call, so a change can never be made
    unaudited, whatever fails afterwards (the process dies, the outcome cannot be written). The outcome
    event names its intent; an intent without one reads as "result unknown" in the log.
    """

    request: HttpRequest | None
    target: dict[str, Any] = field(default_factory=dict)
    intent: AuditEvent | None = None

    def succeeded(self, *, after: Any = None) -> AuditEvent | None:
        return self._close(Outcome.SUCCEEDED, after=after)

    def failed(self, error: str, *, after: Any = None) -> AuditEvent | None:
        return self._close(Outcome.FAILED, after=after, error=error)

    def _close(self, outcome: str, *, after: Any, error: str = "") -> AuditEvent | None:
        fields = {**self.target, "after": after if after is not None else self.target.get("after")}
        try:
            return record(self.request, outcome=outcome, error=error, intent_id=self.intent.pk, **fields)
        except DatabaseError:
            # The intent is on the chain; losing the outcome leaves "result unknown", never "no trace".
            log.exception("audit: the outcome of intent #%s could not be written", self.intent.pk)
            return None


def begin(request: HttpRequest | None, *, action: str, **target: Any) -> Change:
    """Write and commit the `started` event of a change, then return the handle that records its outcome.

    `target` takes record()'s keywords (instance, kind, project, namespace, name, payload, before, after…);
    the outcome event repeats them. If the intent cannot be written, this raises and nothing is sent.
    Call it outside `transaction.atomic()`, so that the intent is committed before the call.
    """
    change = Change(request, {"action": action, **target})
    change.intent = record(request, outcome=Outcome.STARTED, **change.target)
    return change
