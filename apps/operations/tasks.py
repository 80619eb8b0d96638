"""Celery tasks: `run_operation` (claim a row, run its runner, end it) and `reap_operations` (the reaper).

Nothing here trusts the broker: the database row says what is left to do. A message may be lost
(Redis flushed) or delivered twice (a worker died after taking it); the reaper re-enqueues the first,
the conditional claim makes the second a no-op.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.argocd import errors

from . import runners
from .models import Operation
from .services import DEFAULT_BULK_LIMIT, finish

logger = logging.getLogger(__name__)

TIME_LIMIT = int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 3600))
QUEUED_AFTER_SECONDS = 30  # a queued row no worker touched this long has lost its message
STALE_AFTER_SECONDS = 30  # a running row whose heartbeat is this old has lost its worker
MAX_RUNNING_SECONDS = TIME_LIMIT + 300  # nothing stays running longer than a task may live

State = Operation.State


@shared_task(acks_late=True, ignore_result=True, time_limit=TIME_LIMIT, soft_time_limit=max(TIME_LIMIT - 60, 30))
def run_operation(op_id: int) -> None:
    op = _claim(op_id)
    if op is None:
        return
    if op.parent_id:
        runners.settle_bulk_parent(op.parent_id)  # the parent's summary counts this child as running now
    logger.info("operation %s running: %s of %s on %s", op.pk, op.kind, op.target or "-", op.instance_name or "-")
    execute(op)
    logger.info("operation %s ended", op.pk)


def _claim(op_id: int) -> Operation | None:
    """QUEUED → RUNNING with a conditional update; None when there is nothing for this message to do."""
    with transaction.atomic():
        row = Operation.objects.filter(pk=op_id).values("state", "parent_id", "instance_id").first()
        if row is None or row["state"] != State.QUEUED:
            return None
        if row["parent_id"] and row["instance_id"]:
            _forget_dispatch(op_id)  # this message is taken: whoever frees a slot next must send a new one
            if not _has_turn(op_id, row["parent_id"], row["instance_id"]):
                return None
        now = timezone.now()  # taken after the parent lock: later than any sibling's finish
        changed = Operation.objects.filter(pk=op_id, state=State.QUEUED).update(
            state=State.RUNNING,
            started_at=Coalesce(F("started_at"), Value(now)),
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
    if not changed:
        return None
    return Operation.objects.select_related("instance", "requested_by").get(pk=op_id)


def _has_turn(op_id: int, parent_id: int, instance_id: int) -> bool:
    """Bulk children: at most `limit` of one parent run against one instance; the others wait their turn.

    Locking the parent row serialises the siblings' count-then-claim, so the limit holds exactly
    whoever sent the message (the parent, a finishing sibling, the reaper).
    """
    parent = Operation.objects.select_for_update().filter(pk=parent_id).first()
    limit = int((parent.params or {}).get("limit") or DEFAULT_BULK_LIMIT) if parent else DEFAULT_BULK_LIMIT
    running = Operation.objects.filter(parent_id=parent_id, instance_id=instance_id, state=State.RUNNING).count()
    # Over the limit: the parent, or the next sibling to finish, sends this one again when a slot is free.
    return running < limit


def execute(op: Operation) -> None:
    """Run the runner of a claimed operation and end it; every outcome writes one final audit event."""
    runner = runners.RUNNERS.get(op.kind)
    try:
        if runner is None:
            raise runners.OperationFailed(f"No runner is registered for {op.kind} operations.")
        runner(op)
    except runners.Lost:
        logger.warning("operation %s: taken over by another worker, stopping", op.pk)
    except runners.Detached:
        return  # it goes on without a worker and is ended by whoever settles it
    except runners.OperationCancelled as exc:
        finish(op, State.CANCELLED, error=str(exc))
    except runners.OperationFailed as exc:
        finish(op, State.FAILED, error=str(exc))
    except SoftTimeLimitExceeded:
        finish(op, State.FAILED, error=f"Gave up after {TIME_LIMIT} s without an end from the worker.")
    except errors.ArgoCDError as exc:
        finish(op, State.FAILED, error=exc.message)
    except Exception as exc:
        logger.exception("operation %s failed", op.pk)
        finish(op, State.FAILED, error=f"Internal error: {type(exc).__name__}: {exc}")
    else:
        finish(op, State.SUCCEEDED)
    if op.parent_id and op.instance_id:
        runners.release_children(op.parent_id, op.instance_id)  # a slot is free: no need to wait for the parent
        runners.settle_bulk_parent(op.parent_id)


def _dispatch_key(op_id: int) -> str:
    return f"operations:dispatch:{op_id}"


def dispatch(op_id: int) -> None:
    """Send a bulk child to the workers unless a message for it is still on its way.

    Siblings finishing together would otherwise each send the same waiting children, and the queue
    fills with duplicates (harmless, the claim is conditional, but slow). The mark is dropped as soon
    as a worker takes the message (`_claim`), so a child refused for want of a slot is sent again by
    the next sibling to finish; after RESEND_SECONDS it lapses anyway, in case the message was lost.
    """
    try:
        # None, not False, is what the fail-soft cache answers when Redis is away: send rather than hold back.
        first = cache.add(_dispatch_key(op_id), 1, timeout=runners.RESEND_SECONDS) is not False
    except Exception:  # a cache outage must not hold the children back
        first = True
    if first:
        run_operation.delay(op_id)


def _forget_dispatch(op_id: int) -> None:
    try:
        cache.delete(_dispatch_key(op_id))
    except Exception:  # the mark lapses on its own
        logger.warning("operation %s: could not clear its dispatch mark", op_id)


@shared_task(ignore_result=True)
def reap_operations(
    queued_after: float = QUEUED_AFTER_SECONDS,
    stale_after: float = STALE_AFTER_SECONDS,
    max_age: float = MAX_RUNNING_SECONDS,
) -> dict[str, int]:
    """Fail what ran too long, re-attach what lost its worker, re-enqueue what lost its message."""
    now = timezone.now()
    counts = {"failed": 0, "reattached": 0, "requeued": 0}
    too_old = Operation.objects.filter(state=State.RUNNING, started_at__lt=now - timedelta(seconds=max_age))
    # A bulk sync lasts as long as its children, each of which is bounded on its own.
    too_old = too_old.exclude(kind=Operation.Kind.BULK_SYNC, children__state__in=(State.QUEUED, State.RUNNING))
    for op in too_old.select_related("requested_by"):
        error = f"Gave up: still running after {int(max_age)} s without an end from the worker or Argo CD."
        counts["failed"] += finish(op, State.FAILED, error=error)

    stale_at = now - timedelta(seconds=stale_after)
    stale = Operation.objects.filter(state=State.RUNNING).filter(
        Q(heartbeat_at__lt=stale_at) | Q(heartbeat_at__isnull=True, started_at__lt=stale_at)
    )
    for op in stale:
        # Back to QUEUED so exactly one worker claims it again; the runner then follows Argo CD's state.
        changed = Operation.objects.filter(
            pk=op.pk, state=State.RUNNING, attempts=op.attempts, heartbeat_at=op.heartbeat_at
        ).update(state=State.QUEUED, heartbeat_at=now, message="The worker stopped; re-attaching to Argo CD's state.")
        if changed:
            counts["reattached"] += 1
            transaction.on_commit(lambda pk=op.pk: run_operation.delay(pk))

    lost_at = now - timedelta(seconds=queued_after)
    lost = Operation.objects.filter(state=State.QUEUED).filter(
        Q(heartbeat_at__lt=lost_at) | Q(heartbeat_at__isnull=True, created_at__lt=lost_at)
    )
    for op in lost:
        same = Operation.objects.filter(pk=op.pk, state=State.QUEUED, heartbeat_at=op.heartbeat_at)
        if same.update(heartbeat_at=now):
            counts["requeued"] += 1
            transaction.on_commit(lambda pk=op.pk: run_operation.delay(pk))
    if any(counts.values()):
        logger.warning("reaper: %s", counts)
    return counts
