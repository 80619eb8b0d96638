"""Record audit events on a hash chain and verify it.

Each event's hash covers its content and the previous event's hash, so changing, removing or
reordering any stored event breaks every later link. Writers serialise on one lock so the chain
has no forks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import AuditEvent

GENESIS = "0" * 64
SECRET_KEYS = (
    "password",
    "token",
    "secret",
    "bearer",
    "privatekey",
    "private_key",
    "key_data",
    "keydata",
    "certkey",
    "clientcertkey",
    "gcpserviceaccountkey",
    "authorization",
)
REDACTED = "***"
HASHED_FIELDS = (
    "at",
    "actor",
    "team",
    "ip",
    "user_agent",
    "instance",
    "kind",
    "project",
    "namespace",
    "name",
    "action",
    "request",
    "before",
    "after",
    "outcome",
    "error",
    "operation_id",
)
_LOCK_ID = 0x4155444954  # "AUDIT": PostgreSQL advisory lock key for the chain head


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, however deep, with ***."""
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret(k) and v not in (None, "", [], {}) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _is_secret(key: str) -> bool:
    lowered = str(key).lower().replace("-", "").replace("_", "")
    return any(s.replace("_", "") in lowered for s in SECRET_KEYS)


def _canonical(event: AuditEvent) -> bytes:
    data = {}
    for field in HASHED_FIELDS:
        value = getattr(event, field)
        if isinstance(value, datetime):
            value = value.isoformat(timespec="microseconds")
        data[field] = value
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(event: AuditEvent, prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event)).hexdigest()


def append(**fields: Any) -> AuditEvent:
    """Write one event at the head of the chain, in the caller's transaction if there is one."""
    fields["request"] = redact(fields.get("request") or {})
    fields["before"] = redact(fields.get("before"))
    fields["after"] = redact(fields.get("after"))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(at=timezone.now(), **fields)
        # Round-trip JSON so the hash covers exactly what the database will give back.
        for name in ("request", "before", "after"):
            setattr(event, name, json.loads(json.dumps(getattr(event, name), default=str)))
        event.prev_hash = head or GENESIS
        event.hash = compute_hash(event, event.prev_hash)
        event.save()
    return event


def verify(batch: int = 5000) -> tuple[int, AuditEvent | None, str]:
    """Walk the chain oldest first. Returns (events checked, first bad event or None, reason)."""
    prev = GENESIS
    checked = 0
    for event in _iterate(batch):
        if event.prev_hash != prev:
            return checked, event, f"prev_hash does not match the hash of the event before it (expected {prev[:12]}…)"
        if compute_hash(event, prev) != event.hash:
            return checked, event, "content does not match its hash (the event was changed)"
        prev = event.hash
        checked += 1
    return checked, None, ""


def _iterate(batch: int) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=last).order_by("id")[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1].id
