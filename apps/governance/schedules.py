"""Scheduled syncs and rollbacks: when they are due, and running each due time exactly once.

Recurrences use the change windows' reading (`windows.parse_rule`: DTSTART is a wall-clock time in the
schedule's time zone, so "daily 02:00 Europe/Berlin" stays 02:00 across daylight saving). A one-off time is
stored in UTC.

`run_due()` (the beat task, every 30 s) claims each due time by inserting its ScheduleRun: the unique
(schedule, due_at) makes a second beat's insert fail, and the claim, the checks, the Operation and the advance
of `next_run_at` commit together, so a beat that dies half-way leaves the due time to the next one. At run
time a schedule passes the checks a click would: the owner's grant with its constraints (`decide`) and the
change windows (no break glass: nobody is there to give a reason). A refusal is a `denied` audit event naming
the schedule, and its reason is kept on the run for the owner to read. A beat that was down runs a missed due
time once, then moves on to the next occurrence after now (missed occurrences are not replayed one by one).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.access.decide import Target, decide
from apps.audit.service import Outcome, record
from apps.instances.models import Instance

from . import windows
from .models import Schedule, ScheduleRun

logger = logging.getLogger(__name__)

SHOWN_NEXT = 5


class Actor:
    """Stands in for the request a click would have been: the owner acts, from no address."""

    def __init__(self, user) -> None:
        self.user = user
        self.META: dict[str, str] = {}


def _rule(schedule: Schedule) -> windows.Window:
    return windows.Window(
        name=f"schedule {schedule.pk}", kind="allow", rrule=schedule.rrule, duration=timedelta(0),
        timezone=schedule.timezone,
    )  # fmt: skip


def next_after(schedule: Schedule, at: datetime) -> datetime | None:
    """The first due time strictly after `at` (aware, UTC), or None when there is none left."""
    if not schedule.rrule:
        return schedule.once_at if schedule.once_at and schedule.once_at > at else None
    return _rule(schedule).next_start(at)


def upcoming(schedule: Schedule, count: int = SHOWN_NEXT, at: datetime | None = None) -> list[datetime]:
    """The next `count` due times from `next_run_at` on (none while paused is still shown: resuming restores them)."""
    found: list[datetime] = []
    current = schedule.next_run_at
    while current is not None and len(found) < count:
        found.append(current)
        current = next_after(schedule, current)
    return found


def first_due(schedule: Schedule, at: datetime | None = None) -> datetime | None:
    """The due time a new (or resumed) schedule waits for: the next one at or after `at`."""
    at = at or timezone.now()
    return next_after(schedule, at - timedelta(microseconds=1))


def run_due(now: datetime | None = None) -> list[int]:
    """Run every schedule due at `now`; returns the ids of the runs this call claimed."""
    now = now or timezone.now()
    claimed = []
    due = Schedule.objects.filter(paused=False, next_run_at__lte=now).values_list("pk", flat=True)
    for pk in list(due):
        try:
            run = _run_one(pk, now)
        except IntegrityError:
            continue  # another beat claimed this due time first: it runs there, once
        if run is not None:
            claimed.append(run.pk)
    return claimed


def _run_one(pk: int, now: datetime) -> ScheduleRun | None:
    from apps.operations.services import start_operation

    with transaction.atomic():
        schedule = Schedule.objects.select_related("owner").filter(pk=pk, paused=False).first()
        if schedule is None or schedule.next_run_at is None or schedule.next_run_at > now:
            return None
        due_at = schedule.next_run_at
        run = ScheduleRun.objects.create(schedule=schedule, due_at=due_at)  # the claim (IntegrityError: taken)
        Schedule.objects.filter(pk=pk).update(next_run_at=next_after(schedule, max(due_at, now)))
        owner = get_user_model().objects.get(pk=schedule.owner_id)  # read afresh: no grant cached from before
        instance = Instance.objects.filter(name=schedule.instance_name).first()
        refusal = _refusal(schedule, owner, instance, now)
        actor = Actor(owner)
        if refusal:
            run.outcome, run.error = ScheduleRun.Outcome.REFUSED, refusal
            run.save(update_fields=["outcome", "error"])
            payload = {"schedule": schedule.pk, "due_at": due_at.isoformat(), "params": schedule.params}
            record(actor, action=schedule.kind, outcome=Outcome.DENIED, user=owner, instance=schedule.instance_name,
                   kind="application", project=schedule.project, name=schedule.app, error=refusal,
                   payload=payload)  # fmt: skip
            logger.info("schedule %s: due %s refused: %s", pk, due_at.isoformat(), refusal)
            return run
        op = start_operation(
            actor,
            kind=schedule.kind,
            instance=instance,
            project=schedule.project,
            target=schedule.app,
            params=schedule.params,
            idempotency_key=f"schedule:{schedule.pk}:{due_at.astimezone(UTC).isoformat()}",
        )
        run.operation = op
        run.save(update_fields=["operation"])
        logger.info("schedule %s: due %s started operation %s", pk, due_at.isoformat(), op.pk)
        return run


def _refusal(schedule: Schedule, owner, instance: Instance | None, now: datetime) -> str:
    """Why a click by the owner now would be refused ("" when it would not)."""
    prefix = f"Schedule #{schedule.pk} ({schedule.kind} of {schedule.app} on {schedule.instance_name}) refused: "
    namespace = schedule.params.get("appNamespace") or "*"
    target = Target(instance or schedule.instance_name, schedule.project or "*", schedule.app, namespace=namespace)
    decision = decide(owner, schedule.kind, target, schedule.params)
    if not decision.allowed:
        return prefix + decision.reason
    if instance is None:
        return prefix + f"instance {schedule.instance_name} is not registered"
    block = windows.check(owner, schedule.kind, instance, schedule.project, schedule.app, now, with_override=False)
    if block is not None:
        return prefix + f"{block} (a schedule never breaks glass)"
    return ""
