from __future__ import annotations

from django import template

from apps.operations import workers
from apps.operations.models import Operation
from apps.operations.services import BROKER_DOWN

register = template.Library()

NO_WORKER = "Waiting for a worker: none is consuming the queue right now. This operation starts as soon as one is."


@register.simple_tag
def waiting_note(op: Operation) -> str:
    """Why a queued operation has not started, when the reason is that no worker is there to start it."""
    if op.state != Operation.State.QUEUED or op.message == BROKER_DOWN or workers.consuming():
        return ""
    return NO_WORKER
