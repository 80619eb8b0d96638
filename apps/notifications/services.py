"""The one place that decides what is worth telling whom, and how a message is shaped, signed and sent.

Payloads are built from the audit event, which the audit chain already redacted; a destination's secret
only ever signs the body and is never part of it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import time
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction

from apps.access import glob
from apps.audit.models import AuditEvent

from . import safeurl
from .models import Delivery, Destination, EventType, Subscription

log = logging.getLogger("portal.notifications")
TIMEOUT = 5.0
DESTINATION_KIND = "notification-destination"
# Audit actions of apps.governance.approvals worth telling: a request, and each way one is decided.
APPROVAL_NEWS = ("request_approval", "approved", "reject", "cancel_approval", "expire_approval", "void_approval")


class DeliveryError(Exception):
    """A destination did not accept a message (network error or a non-2xx answer).

    `permanent` errors are not retried: trying again would give the same answer (a redirect, a refused address).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DeliveryRefused(DeliveryError):
    """The portal itself refused to call the destination (an internal address, a scheme other than http(s))."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def event_type(event: AuditEvent) -> str | None:
    """What kind of news an audit event is, or None when it is not worth telling anyone."""
    if event.kind == DESTINATION_KIND:
        return None  # a destination's own refused delivery would otherwise be told to it again, and again
    if event.action in APPROVAL_NEWS and event.outcome == AuditEvent.Outcome.SUCCEEDED:
        return EventType.APPROVAL_DECIDED if event.action != "request_approval" else EventType.APPROVAL_REQUESTED
    if event.action == "run_approval" and event.outcome == AuditEvent.Outcome.SUCCEEDED:
        return None  # the approval was the news; the operation's own end comes as its own event
    if event.kind == "instance" and event.action == "health" and event.outcome == AuditEvent.Outcome.FAILED:
        return EventType.INSTANCE_UNREACHABLE
    if event.outcome == AuditEvent.Outcome.DENIED:
        return EventType.ATTEMPT_DENIED
    if event.outcome == AuditEvent.Outcome.FAILED and event.action.startswith("rotate"):
        return EventType.ROTATION_FAILED
    if event.operation_id and event.outcome in (AuditEvent.Outcome.SUCCEEDED, AuditEvent.Outcome.FAILED):
        return EventType.OPERATION_SUCCEEDED if event.outcome == "succeeded" else EventType.OPERATION_FAILED
    return None


def _concerns(destination: Destination, event: AuditEvent) -> bool:
    """A team hears of its own events, a user of their own acts, a platform destination of everything."""
    if destination.team_id:
        return destination.team.slug in event.team.split(",")
    if destination.user_id:
        return event.actor_user_id == destination.user_id
    return True


def plan(event_id: int) -> list[int]:
    """Create one Delivery per destination whose subscription matches the event; return their ids."""
    event = AuditEvent.objects.filter(pk=event_id).first()
    kind = event_type(event) if event else None
    if kind is None:
        return []
    subs = Subscription.objects.filter(destination__enabled=True).select_related("destination__team")
    created = []
    for sub in subs:
        dest = sub.destination
        if kind not in sub.events or not glob.match(sub.instance_glob or "*", event.instance or ""):
            continue
        if not _concerns(dest, event):
            continue
        delivery, new = Delivery.objects.get_or_create(
            destination=dest, event_id=event.pk, defaults={"event_type": kind}
        )
        if new:
            created.append(delivery.pk)
    return created


def dispatch(event_id: int) -> None:
    """Called after an audit event commits. Enqueues only when a subscription exists, so a portal without
    notifications never touches the broker for them; a failure to enqueue is logged, never raised."""
    try:
        if Subscription.objects.filter(destination__enabled=True).exists():
            from .tasks import dispatch_event

            dispatch_event.delay(event_id)
    except Exception:
        log.exception("notifications: could not enqueue the dispatch of audit event #%s", event_id)


def on_audit_event(event_id: int) -> None:
    transaction.on_commit(lambda: dispatch(event_id))


def body(delivery: Delivery) -> dict[str, Any]:
    base = settings.PORTAL_URL.rstrip("/")
    if delivery.event_id is None:
        return {"event": None, "type": "test", "actor": "", "instance": "", "kind": "", "name": "",
                "outcome": "", "error": "", "at": delivery.created_at.isoformat(),
                "url": f"{base}/notifications/{delivery.destination_id}/"}  # fmt: skip
    e = AuditEvent.objects.get(pk=delivery.event_id)
    return {"event": e.pk, "type": delivery.event_type, "actor": e.actor, "instance": e.instance, "kind": e.kind,
            "name": e.name, "action": e.action, "outcome": e.outcome, "error": e.error, "at": e.at.isoformat(),
            "url": f"{base}/audit/{e.pk}/"}  # fmt: skip


def slack_text(data: dict[str, Any]) -> str:
    if data["type"] == "test":
        return "Argo CD Portal: test notification."
    what = f"{data['kind']} {data['name']}".strip() or "-"
    line = f"[{data['type']}] {data['actor']} {data['action']} {what} on {data['instance'] or '-'}: {data['outcome']}"
    return f"{line} — {data['error'][:300]}\n{data['url']}" if data["error"] else f"{line}\n{data['url']}"


def sign(secret: str, raw: bytes) -> str:
    """HMAC-SHA256 of the body with the destination secret, as `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def email_subject(data: dict[str, Any]) -> str:
    if data["type"] == "test":
        return "[Argo CD Portal] Test notification"
    what = f"{data['kind']} {data['name']}".strip() or "-"
    return f"[Argo CD Portal] {data['type']}: {data['action']} {what} on {data['instance'] or '-'}"


def email_text(data: dict[str, Any]) -> str:
    if data["type"] == "test":
        return f"This is a test notification from Argo CD Portal.\n\nDestination: {data['url']}\n"
    labels = {"type": "Event", "actor": "Who", "action": "Action", "kind": "Kind", "name": "Name",
              "instance": "Instance", "outcome": "Outcome", "at": "At"}  # fmt: skip
    lines = [f"{label}: {data[key]}" for key, label in labels.items()]
    if data["error"]:
        lines.append(f"Error: {data['error']}")
    return "\n".join([*lines, "", f"Audit event: {data['url']}", ""])


def send_email(delivery: Delivery) -> None:
    """Send the message once through the configured mail server, or raise DeliveryError."""
    dest = delivery.destination
    data = body(delivery)
    message = EmailMessage(subject=email_subject(data), body=email_text(data), to=dest.recipient_list,
                           headers={"X-Portal-Event": str(data["event"] or "test")})  # fmt: skip
    try:
        with get_connection(fail_silently=False) as connection:
            connection.send_messages([message])
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"mail server {settings.EMAIL_HOST}:{settings.EMAIL_PORT}: {exc}") from None


def send(delivery: Delivery) -> int | None:
    """Deliver the message once; return the HTTP status (None for email), or raise DeliveryError."""
    dest = delivery.destination
    if dest.kind == Destination.Kind.EMAIL:
        send_email(delivery)
        return None
    data = body(delivery)
    payload = {"text": slack_text(data)} if dest.kind == Destination.Kind.SLACK else data
    raw = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "argocd-portal", "X-Portal-Timestamp": timestamp}
    if dest.secret:
        headers["X-Portal-Signature"] = sign(dest.secret, raw)
    try:
        status, location = safeurl.post(dest.url, raw, headers, TIMEOUT)
    except safeurl.UnsafeURL as exc:
        raise DeliveryRefused(f"Refused to call {dest.url}: {exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{dest.url}: {exc}") from None
    if 300 <= status < 400:
        raise DeliveryError(
            f"{dest.url} answered HTTP {status}, a redirect to {location or 'nowhere'}: redirects are not followed; "
            "point the destination at the final address.",
            permanent=True,
        )
    if not 200 <= status < 300:
        raise DeliveryError(f"{dest.url} answered HTTP {status}")
    return status
