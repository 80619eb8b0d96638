"""Where work starts, change windows are enforced: refuse (audited) or let an override holder break glass."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apps.audit.service import Outcome, record

from . import windows

OVERRIDE_ACTION = "override"  # the audit action of a break-glass event (its payload holds the reason)
MAX_REASON = 2000


def gate(request: HttpRequest, action: str, instance, project: str, app: str, reason: str = "") -> windows.Block | None:
    """None when no window blocks; the Block when the user overrides it with a written `reason`.

    Otherwise write a `denied` audit event naming the window and raise PermissionDenied with the same words.
    """
    block = windows.check(request.user, action, instance, project, app)
    if block is None:
        return None
    if block.may_override and reason.strip():
        return block
    why = str(block)
    if block.may_override:
        why += " — you may override it: give a written reason"
    record(request, action=action, outcome=Outcome.DENIED, instance=instance.name, kind="application",
           project=project, name=app, error=why, payload={"window": block.window, "until": _iso(block)})  # fmt: skip
    raise PermissionDenied(f"Not started: {app} on {instance.name} is {why}.")


def record_override(request: HttpRequest, op, block: windows.Block, reason: str) -> None:
    """The break-glass event, flagged by its action, tied to the operation it let through (once per operation)."""
    from apps.audit.models import AuditEvent

    if AuditEvent.objects.filter(operation_id=op.pk, action=OVERRIDE_ACTION).exists():
        return  # the same submit again (idempotency key): one operation, one override event
    record(
        request,
        action=OVERRIDE_ACTION,
        outcome=Outcome.SUCCEEDED,
        instance=op.instance_name,
        kind="application",
        project=op.project,
        name=op.target,
        payload={"reason": reason, "window": block.window, "until": _iso(block), "operation": op.kind},
        operation_id=op.pk,
    )


def _iso(block: windows.Block) -> str:
    return block.until.isoformat() if block.until else ""
