"""Periodic: rotate the portal's instance tokens before they expire (beat task name below)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.operations.models import Operation

from .rotations import expiring_instances

ROTATE_WITHIN_DAYS = settings.PORTAL_TOKEN_ROTATE_WITHIN_DAYS


def rotate_expiring_instance_tokens(days: int | None = None) -> list[int]:
    """Start a ROTATE_INSTANCE_TOKEN operation for each instance whose token expires within `days`.

    At most one attempt per instance, token and day (idempotency key), and none while one is in flight.
    Returns the ids of the operations started.
    """
    from apps.operations.services import start_operation

    within = timedelta(days=ROTATE_WITHIN_DAYS if days is None else days)
    started = []
    for inst in expiring_instances(within):
        busy = Operation.objects.filter(
            instance=inst,
            kind=Operation.Kind.ROTATE_INSTANCE_TOKEN,
            state__in=[Operation.State.QUEUED, Operation.State.RUNNING],
        ).exists()
        if busy:
            continue
        raw = f"{inst.pk}:{inst.token_id}:{timezone.now().date()}"
        key = "rotate-instance-token:" + hashlib.sha256(raw.encode()).hexdigest()[:40]
        op = start_operation(
            None,
            kind=Operation.Kind.ROTATE_INSTANCE_TOKEN,
            instance=inst,
            target=inst.name,
            params={"reason": f"token expires {inst.token_expires_at:%Y-%m-%d %H:%M} UTC"},
            idempotency_key=key,
            audit_kind="instance",
        )
        started.append(op.pk)
    return started


@shared_task(name="kinds.rotate_expiring_instance_tokens", ignore_result=True)
def rotate_expiring_instance_tokens_task(days: int | None = None) -> list[int]:
    return rotate_expiring_instance_tokens(days)
