"""Starting and ending operations: the Operation row and its audit events are written in one transaction.

`start_operation()` is what views call (after `apps.access.guards.require()`); the worker picks the row up
through `run_operation` once the transaction has committed. `finish()` is the one place an operation ends,
so every operation gets exactly one final audit event.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from apps.instances.models import Instance

from .models import Operation

logger = logging.getLogger(__name__)

DEFAULT_BULK_LIMIT = 10  # children of one bulk sync running at once against one instance
LIVE_PHASES = ("Pending", "Running", "Terminating")  # Argo CD phases of an operation not over yet
SYNC_PARAM_KEYS = ("revision", "prune", "dryRun", "strategy", "force", "resources", "syncOptions", "retryStrategy")


BROKER_DOWN = (
    "Queued: the task queue (Redis) is unreachable, so no worker has it yet. It is saved and runs when the queue "
    "is back (the reaper sends it); submitting again does not start a second one."
)


def _enqueue(op: Operation) -> bool:
    """Send the committed operation to the workers; with the broker away, say so on the row instead of failing.

    The row and its audit event are committed already, and the reaper re-sends queued rows nobody took, so
    the operation will run: answering an error here would tell the user nothing happened, and they would retry.
    """
    from .tasks import run_operation

    try:
        run_operation.delay(op.pk)
    except Exception as exc:  # kombu's OperationalError, redis errors, a refused socket: the broker is away
        logger.warning("operation %s: not sent to the workers (%s); the reaper sends it later", op.pk, exc)
        Operation.objects.filter(pk=op.pk, state=Operation.State.QUEUED).update(message=BROKER_DOWN)
        op.message = BROKER_DOWN
        return False
    return True


def _resend(op: Operation) -> None:
    if _enqueue(op):  # sent this time (a duplicate message is harmless: the claim is conditional)
        Operation.objects.filter(pk=op.pk, state=Operation.State.QUEUED, message=BROKER_DOWN).update(message="")
        op.message = ""


def start_operation(
    request: HttpRequest | None,
    *,
    kind: str,
    instance: Instance | None,
    project: str = "",
    target: str = "",
    params: dict | None = None,
    idempotency_key: str | None = None,
    parent: Operation | None = None,
    audit_kind: str = "application",
    enqueue: bool = True,
    override_reason: str = "",
) -> Operation:
    """Create a queued Operation and its `started` audit event, and enqueue it once committed.

    The same `idempotency_key` twice returns the first operation and creates nothing, so a double
    submit is one operation. The caller has already checked permission. `enqueue=False` leaves the
    dispatch to someone else (a bulk sync's parent releases its children a few at a time). A non-empty
    `override_reason` flags an operation let through a change window (the worker then does not re-check it).
    """
    if idempotency_key:
        existing = Operation.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.state == Operation.State.QUEUED and existing.message == BROKER_DOWN and enqueue:
                _resend(existing)  # the same submit again: one operation, sent once more in case the queue is back
            return existing
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and not user.is_authenticated:
        user = None
    try:
        with transaction.atomic():
            op = Operation.objects.create(
                kind=kind,
                instance=instance,
                instance_name=instance.name if instance else "",
                project=project or "",
                target=target or "",
                params=params or {},
                requested_by=user,
                parent=parent,
                idempotency_key=idempotency_key or None,
                override_reason=override_reason,
            )
            record(
                request,
                action=kind,
                outcome=Outcome.STARTED,
                user=user,
                instance=op.instance_name,
                kind=audit_kind,
                project=op.project,
                namespace=str((op.params or {}).get("appNamespace") or ""),
                name=op.target,
                payload=op.params,
                operation_id=op.pk,
            )
            if enqueue:
                transaction.on_commit(lambda: _enqueue(op))
        logger.info("operation %s queued: %s of %s on %s", op.pk, op.kind, op.target or "-", op.instance_name or "-")
    except IntegrityError:
        # Two submits raced past the lookup above: the unique key let exactly one through.
        existing = Operation.objects.filter(idempotency_key=idempotency_key).first() if idempotency_key else None
        if existing is None:
            raise
        return existing
    return op


def start_bulk_sync(
    request: HttpRequest | None,
    targets: list[tuple],
    params: dict,
    *,
    idempotency_key: str | None = None,
    per_target: dict[str, dict] | None = None,
) -> Operation:
    """One parent operation and one child sync per (instance, project, app[, namespace]), all in one transaction.

    A namespace other than the control plane's goes to the child as `appNamespace` (apps in any namespace).

    `per_target` ("instance/app" → params) gives some children params of their own (an approved bulk sync pins
    each application to its own commit); `params["approval"]`, when given, stays on the parent.

    `params["limit"]` caps the children running at once per instance (default 10); the other keys are
    sync parameters given to every child. The parent's runner releases the children as slots free up.
    """
    params = dict(params or {})
    limit = max(1, int(params.pop("limit", None) or DEFAULT_BULK_LIMIT))
    sync_params = {k: v for k, v in params.items() if k in SYNC_PARAM_KEYS}
    names = [f"{t[0].name}/{ns_prefix(t)}{t[2]}" for t in targets]
    with transaction.atomic():
        parent = start_operation(
            request,
            kind=Operation.Kind.BULK_SYNC,
            instance=None,
            target=f"{len(targets)} application{'s' if len(targets) != 1 else ''}",
            params={
                **sync_params,
                "limit": limit,
                "targets": names,
                **({"approval": params["approval"]} if params.get("approval") else {}),
            },  # fmt: skip
            idempotency_key=idempotency_key,
        )
        if parent.children.exists():  # the idempotency key matched an earlier bulk sync
            return parent
        for t in targets:
            inst, project, app = t[:3]
            namespace = ns_prefix(t).rstrip("/")
            start_operation(
                request,
                kind=Operation.Kind.SYNC,
                instance=inst,
                project=project,
                target=app,
                params={
                    **(per_target or {}).get(f"{inst.name}/{app}", sync_params),
                    **({"appNamespace": namespace} if namespace else {}),
                },
                parent=parent,
                enqueue=False,
            )
    return parent


def ns_prefix(target: tuple) -> str:
    """`<namespace>/` for a bulk target whose app lives outside the control plane's namespace, else ""."""
    from apps.applications.services import CONTROL_PLANE_NAMESPACE

    namespace = target[3] if len(target) > 3 else ""
    return f"{namespace}/" if namespace and namespace != CONTROL_PLANE_NAMESPACE else ""


def bulk_targets(
    request: HttpRequest, specs: list[str], *, action: str = "sync", audit: bool = True
) -> tuple[list, list[tuple[str, str]]]:
    """Split `<instance>/<name>` (or `<instance>/<namespace>/<name>`) specs into permitted targets and refusals
    (each refusal audited); the bulk-sync page and the API both start from this.

    `action` is what is asked of every target (sync, or refresh: refresh is not held by change windows);
    `audit=False` only previews the answer (the bulk panel's confirmation step), the request that acts audits."""
    from apps.access.rules import can
    from apps.core.pgtext import storable
    from apps.governance import windows
    from apps.index.models import ApplicationSummary

    allowed, refused = [], []
    # A NUL cannot reach PostgreSQL; the index holds one as `\u0000`, so that is what is looked up (and audited).
    for spec in dict.fromkeys(storable(v.strip()) for v in specs if v.strip()):
        instance_name, _, name = spec.partition("/")
        namespace, _, short = name.rpartition("/")
        rows = ApplicationSummary.objects.select_related("instance").filter(
            instance__name=instance_name, instance__enabled=True, name=short
        )
        if namespace:
            rows = rows.filter(namespace=namespace)
        if len(rows[:2]) > 1:  # one name in several namespaces: never guess which one was meant
            refused.append((spec, "ambiguous: several applications have this name; give instance/namespace/name"))
            continue
        row = rows.first()
        if row is None or not can(request.user, "view", row.instance, row.project, row.name, row.namespace):
            refused.append((spec, "not found, or you may not see it"))
            if audit:
                record(request, action=action, outcome=Outcome.DENIED, instance=instance_name, kind="application",
                       name=short, error=f"bulk {action}: not found or not visible")  # fmt: skip
            continue
        if not can(request.user, action, row.instance, row.project, row.name, row.namespace):
            refused.append((spec, f"you may not {action} it"))
            if audit:
                record(request, action=action, outcome=Outcome.DENIED, instance=instance_name, kind="application",
                       project=row.project, namespace=row.namespace, name=row.name,
                       error=f"bulk {action}: not granted")  # fmt: skip
            continue
        block = windows.check(request.user, "sync", row.instance, row.project, row.name) if action == "sync" else None
        if block is not None:  # bulk sync has no break glass: override one application at a time from its page
            refused.append((spec, str(block)))
            if audit:
                record(request, action="sync", outcome=Outcome.DENIED, instance=instance_name, kind="application",
                       project=row.project, namespace=row.namespace, name=row.name,
                       error=f"bulk sync: {block}")  # fmt: skip
            continue
        allowed.append((row.instance, row.project, row.name, row.namespace))
    return allowed, refused


def within_constraints(
    request: HttpRequest, targets: list, params: dict, refused: list, needs: list | None = None, *, audit: bool = True
) -> list:
    """Keep the bulk targets whose grants allow this sync with its parameters and size; audit and list the others
    (the bulk-sync page and the API both pass through here after `bulk_targets`).

    A target whose decision is needs-approval is kept, and its policy's terms appended to `needs`: the caller
    then asks approval once for the whole set (the bulk sync does not start without it)."""
    from apps.access.decide import Target, decide

    asked = {"prune": params["prune"], "dryRun": params["dryRun"], "bulk_size": len(targets)}
    asked.update({k: params[k] for k in ("force", "strategy", "syncOptions") if params.get(k)})
    kept = []
    for t in targets:
        inst, project, app = t[:3]
        namespace = t[3] if len(t) > 3 else ""
        decision = decide(request.user, "sync", Target(inst, project, app, namespace=namespace or "*"), asked)
        if decision.allowed:
            kept.append(t)
            continue
        if decision.needs_approval and needs is not None:  # a caller that cannot ask: refused like any reason
            kept.append(t)
            needs.append(decision.approval)
            continue
        refused.append((f"{inst.name}/{ns_prefix(t)}{app}", decision.reason))
        if not audit:
            continue
        record(request, action="sync", outcome=Outcome.DENIED, instance=inst.name, kind="application",
               project=project, namespace=namespace, name=app, payload=asked,
               error=f"bulk sync: refused by constraint {decision.constraint}: {decision.reason}")  # fmt: skip
    return kept


def started_event(op: Operation) -> AuditEvent | None:
    return AuditEvent.objects.filter(operation_id=op.pk, outcome=Outcome.STARTED).order_by("id").first()


def finish(op: Operation, state: str, *, error: str = "", message: str | None = None, **fields: Any) -> bool:
    """End a running operation (fenced on its attempt) and write the final audit event.

    Returns False when another worker took the operation over meanwhile (nothing is written then).
    """
    now = timezone.now()
    values = {"state": state, "finished_at": now, "heartbeat_at": now, "error": error[:8000], **fields}
    if state == Operation.State.SUCCEEDED:
        values["progress"] = 100
    if message is not None:
        values["message"] = message
    if state != Operation.State.SUCCEEDED and "argocd_phase" not in fields and op.argocd_phase in LIVE_PHASES:
        # Ending without Argo CD's end: its last seen phase, or a "still checking" message, would contradict the badge.
        values["argocd_phase"] = "Unknown"
        values.setdefault("message", f"Ended without Argo CD's result (last seen: {op.argocd_phase}).")
    with transaction.atomic():
        changed = Operation.objects.filter(pk=op.pk, state=Operation.State.RUNNING, attempts=op.attempts).update(
            **values
        )
        if not changed:
            return False
        for key, value in values.items():
            setattr(op, key, value)
        _final_audit(op)
    return True


def _final_audit(op: Operation) -> None:
    started = started_event(op)
    outcome = Outcome.SUCCEEDED if op.state == Operation.State.SUCCEEDED else Outcome.FAILED
    record(
        None,
        action=op.kind,
        outcome=outcome,
        user=op.requested_by,
        team=started.team if started else "",
        instance=op.instance_name,
        kind=started.kind if started else "application",
        project=op.project,
        name=op.target,
        payload={"state": op.state, "argocd_phase": op.argocd_phase, "result": op.result, **_approvers(op)},
        error=op.error,
        operation_id=op.pk,
    )


def _approvers(op: Operation) -> dict:
    """The approvers of the request an operation carries out, for its final audit event ({} when none)."""
    from apps.governance.approvals import approvers_of

    names = approvers_of(op)
    return {"approval_request": op.params.get("approval"), "approvers": names} if names else {}


def new_nonce() -> str:
    """A fresh value for a form's hidden `idempotency_key` field."""
    return uuid.uuid4().hex


def idempotency_key(request: HttpRequest, kind: str, nonce: str) -> str | None:
    """A key for one submit of one form by one user, so a double submit starts one Operation.

    None when the nonce is not one we issued: then nothing can be matched, least of all someone else's operation.
    """
    try:
        value = uuid.UUID(hex=nonce).hex
    except (ValueError, TypeError):
        return None
    return f"{kind}:{request.user.pk}:{value}"[:64]
