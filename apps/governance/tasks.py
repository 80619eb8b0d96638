"""The beat's entry to scheduled operations (every 30 s; see portal/celery.py)."""

from __future__ import annotations

from celery import shared_task

from . import schedules


@shared_task(name="governance.run_schedules", ignore_result=True)
def run_schedules() -> list[int]:
    return schedules.run_due()


@shared_task(name="governance.expire_approvals", ignore_result=True)
def expire_approvals() -> int:
    from . import approvals

    return approvals.expire_due()
