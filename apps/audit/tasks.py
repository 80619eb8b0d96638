from __future__ import annotations

from celery import shared_task

from . import checkpoints


@shared_task(name="audit.checkpoint", ignore_result=True)
def checkpoint() -> None:
    """Beat's anchor of the chain head outside the database (see apps/audit/checkpoints.py)."""
    checkpoints.write()
