"""Record audit events on a hash chain and verify it.

Each event's hash covers its content and the previous event's hash, so changing, removing or
reordering any stored event breaks every later link. Writers serialise on one lock so the chain
has no forks.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.pgtext import storable_json

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
# Keys that contain a secret-looking word but hold no secret (Argo CD's settings: the rule new passwords follow).
NOT_SECRET_KEYS = ("passwordpattern",)
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
# Fields added after events were first written: hashed only when set.
LATER_FIELDS = ("intent_id",)
log = logging.getLogger("portal.audit")
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
    if lowered in NOT_SECRET_KEYS:
        return False
    return any(s.replace("_", "") in lowered for s in SECRET_KEYS)


def _canonical(event: AuditEvent) -> bytes:
    return _canonical_values({field: getattr(event, field) for field in (*HASHED_FIELDS, *LATER_FIELDS)})


def _canonical_values(data: dict[str, Any]) -> bytes:
    for field in LATER_FIELDS:
        if data.get(field) is None:
            del data[field]  # so events written before the field existed keep their hashes
    for field, value in data.items():
        if isinstance(value, datetime):
            data[field] = value.isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(event: AuditEvent, prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event)).hexdigest()


def append(**fields: Any) -> AuditEvent:
    """Write one event at the head of the chain, in the caller's transaction if there is one."""
    # NUL and lone surrogates, which PostgreSQL cannot hold, must not make an event unwritable after the change
    # it records was made: they are stored as visible escapes.
    fields = {k: storable_json(v) for k, v in fields.items()}
    fields["request"] = redact(fields.get("request") or {})
    fields["before"] = redact(fields.get("before"))
    fields["after"] = redact(fields.get("after"))
    with transaction.atomic():
        head, head_at = _lock_and_read_head()
        # `at` never goes backwards along the chain (even across web hosts whose clocks differ a
        # little), so a time range maps exactly onto an id range: see queries.id_bounds().
        now = timezone.now()
        event = AuditEvent(at=max(now, head_at) if head_at else now, **fields)
        # Round-trip JSON so the hash covers exactly what the database will give back.
        for name in ("request", "before", "after"):
            setattr(event, name, json.loads(json.dumps(getattr(event, name), default=str)))
        event.prev_hash = head or GENESIS
        event.hash = compute_hash(event, event.prev_hash)
        event.save()
    # One line per event for log shippers; the payload is the redacted one the hash covers.
    log.info(
        "audit #%s %s %s %s %s/%s/%s %s request=%s",
        event.pk, event.actor, event.action, event.kind, event.instance, event.project, event.name, event.outcome,
        json.dumps(event.request, sort_keys=True, default=str)[:500],
    )  # fmt: skip
    return event


def _lock_and_read_head() -> tuple[str | None, datetime | None]:
    """Take the chain lock (held until the transaction ends), then read the head's hash and time.

    On PostgreSQL both go in one round trip: a multi-statement query without parameters runs each
    statement with its own snapshot, so the SELECT sees the head committed by the previous holder.
    """
    if connection.vendor != "postgresql":
        head = AuditEvent.objects.order_by("-id").values_list("hash", "at").first()
        return head or (None, None)
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock({_LOCK_ID}); SELECT hash, at FROM {table} ORDER BY id DESC LIMIT 1"
        )
        cursor.cursor.nextset()
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)


def verify(batch: int = 5000) -> tuple[int, AuditEvent | None, str]:
    """Walk the chain oldest first. Returns (events checked, first bad event or None, reason)."""
    prev = GENESIS
    checked = 0
    for pk, prev_hash, stored_hash, values in _iterate(batch):
        if prev_hash != prev:
            reason = f"prev_hash does not match the hash of the event before it (expected {prev[:12]}…)"
            return checked, AuditEvent.objects.get(pk=pk), reason
        if hashlib.sha256(prev.encode() + _canonical_values(values)).hexdigest() != stored_hash:
            return checked, AuditEvent.objects.get(pk=pk), "content does not match its hash (the event was changed)"
        prev = stored_hash
        checked += 1
    return checked, None, ""


def _iterate(batch: int) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    # Plain tuples, not model instances: verifying a million events is bound by this loop.
    hashed = (*HASHED_FIELDS, *LATER_FIELDS)
    columns = ("id", "prev_hash", "hash", *hashed)
    last = 0
    while True:
        rows = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values_list(*columns)[:batch])
        if not rows:
            return
        for row in rows:
            yield row[0], row[1], row[2], dict(zip(hashed, row[3:], strict=True))
        last = rows[-1][0]
