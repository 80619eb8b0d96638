"""The portal's REST API under /api/: schemas in, the same service call the pages make, schema out.

Every call authenticates with an API token (apps.api.auth) and then goes through the pages' own services:
`load()` and `require()` decide and audit refusals, `start_operation()` writes the Operation and its audit
event. Nothing here talks to Argo CD or writes audit events of its own.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from ninja import Field, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.access import guards
from apps.applications import services as app_services
from apps.argocd.errors import ArgoCDError
from apps.audit import queries as audit_queries
from apps.audit import views as audit_views
from apps.audit.service import Outcome, record
from apps.core.argocd_pages import error_text
from apps.governance import enforce
from apps.index import query as index_query
from apps.operations import services as op_services
from apps.operations.models import Operation
from apps.operations.views import visible_operations

from .auth import TokenAuth
from .errors import ApiError, Error

api = NinjaAPI(
    title="Argo CD Portal API",
    version="1",
    description="Applications, operations and the audit log of the portal, with the caller's permissions.",
    auth=TokenAuth(),
    urls_namespace="api",
)
MAX_WAIT_SECONDS = 30
ERRORS = {401: Error, 403: Error, 404: Error, 409: Error, 422: Error, 503: Error}


# ---------------------------------------------------------------- errors


def _error(request: HttpRequest, status: int, code: str, message: str):
    return api.create_response(request, {"code": code, "message": message}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError):
    return _error(request, exc.status, exc.code, exc.message)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError):
    return _error(request, 401, "unauthenticated", "Send an API token: Authorization: Bearer <token>.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404):
    return _error(request, 404, "not_found", str(exc) or "Not found, or you may not see it.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied):
    return _error(request, 403, "forbidden", str(exc) or "You may not do this.")


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError):
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg', '')}" for e in exc.errors)
    return _error(request, 422, "invalid", f"The request is not valid — {problems}")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError):
    return _error(request, exc.status_code, "invalid" if exc.status_code < 500 else "error", str(exc))


@api.exception_handler(ArgoCDError)
def _argocd(request: HttpRequest, exc: ArgoCDError):
    return _error(request, 503 if exc.transient else 502, "unavailable", error_text(exc, ""))


def _close_clients(request: HttpRequest) -> None:
    for client in getattr(request, "_argocd_clients", []):
        if not getattr(client, "keep_open", False):
            client.close()


# ---------------------------------------------------------------- applications


class ApplicationRow(Schema):
    instance: str
    namespace: str
    name: str
    project: str
    repo: str
    path: str
    revision: str
    sync_status: str
    health_status: str
    operation_phase: str
    last_synced_at: datetime | None
    stale: bool


class ApplicationPage(Schema):
    total: int
    page: int
    pages: int
    items: list[ApplicationRow]
    stale_instances: list[str]


class ApplicationFilters(Schema):
    instance: str = ""
    project: str = ""
    sync: str = ""
    health: str = ""
    selector: str = Field("", description="A Kubernetes label selector, as on the applications page.")
    q: str = Field("", description="Text search in names, repositories and paths.")
    sort: str = Field("name", description="A column name; a leading '-' sorts descending.")
    page: int = 1


@api.get("/applications", response={200: ApplicationPage, **ERRORS}, tags=["applications"])
def list_applications(request: HttpRequest, filters: Query[ApplicationFilters]):
    """Applications from the portal's index, with the applications page's filters, sorting and paging."""
    params = {k: str(v) for k, v in filters.dict().items()}
    result = index_query.search(request.user, index_query.Filters.from_query(params))
    if result.selector_error:
        raise ApiError(422, "invalid", f"The label selector is not valid: {result.selector_error}")
    return {
        "total": result.total,
        "page": result.page,
        "pages": result.pages,
        "items": result.rows,
        "stale_instances": [s["name"] for s in result.stale],
    }


class ApplicationDetail(Schema):
    instance: str
    name: str
    namespace: str
    project: str
    summary: dict[str, Any]
    permissions: dict[str, bool]


@api.get("/applications/{instance}/{name}", response={200: ApplicationDetail, **ERRORS}, tags=["applications"])
def application_detail(request: HttpRequest, instance: str, name: str):
    """One application, read live from its Argo CD instance.

    `?appNamespace=` addresses an application outside the control plane's namespace (here and in the
    sync, rollback and terminate calls)."""
    try:
        ctx = app_services.load(request, instance, name)
        return {
            "instance": ctx.instance.name,
            "name": ctx.name,
            "namespace": ctx.namespace,
            "project": ctx.project,
            "summary": app_services.summary(ctx.app),
            "permissions": app_services.permissions(request, ctx),
        }
    finally:
        _close_clients(request)


class OperationOut(Schema):
    id: int
    kind: str
    state: str
    done: bool
    instance: str
    project: str
    target: str
    params: dict[str, Any]
    progress: int
    argocd_phase: str
    message: str
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _operation(op: Operation) -> dict[str, Any]:
    return {
        "id": op.pk,
        "kind": op.kind,
        "state": op.state,
        "done": op.state in Operation.FINAL_STATES,
        "instance": op.instance_name,
        "project": op.project,
        "target": op.target,
        "params": op.params,
        "progress": op.progress,
        "argocd_phase": op.argocd_phase,
        "message": op.message,
        "error": op.error,
        "created_at": op.created_at,
        "started_at": op.started_at,
        "finished_at": op.finished_at,
    }


class IdempotentIn(Schema):
    idempotency_key: uuid.UUID | None = Field(
        None, description="A UUID of your choosing: the same key again returns the first operation."
    )


class SyncIn(IdempotentIn):
    revision: str = ""
    prune: bool = False
    dry_run: bool = False
    force: bool = False
    sync_options: list[str] = Field(default_factory=list, max_length=20)


class RollbackIn(IdempotentIn):
    id: int = Field(..., ge=0, description="The history entry to roll back to.")
    prune: bool = False
    dry_run: bool = False


def _key(request: HttpRequest, kind: str, body: IdempotentIn) -> str | None:
    return op_services.idempotency_key(request, kind, body.idempotency_key.hex) if body.idempotency_key else None


def _start(request: HttpRequest, ctx: app_services.AppContext, kind: str, params: dict, key: str | None):
    # Grant constraints and change windows hold here as on the pages (refused with 403, audited); breaking glass
    # is for the pages only.
    if kind in ("sync", "rollback"):
        guards.enforce(request, kind, app_services.target(ctx), params, namespace=ctx.namespace)
    enforce.gate(request, kind, ctx.instance, ctx.project, ctx.name)
    op = op_services.start_operation(
        request,
        kind=kind,
        instance=ctx.instance,
        project=ctx.project,
        target=ctx.name,
        params=app_services.operation_params(ctx, params),
        idempotency_key=key,
    )
    return Status(202, _operation(op))


APP_OP = {202: OperationOut, **ERRORS}


@api.post("/applications/{instance}/{name}/sync", response=APP_OP, tags=["operations"])
def sync(request: HttpRequest, instance: str, name: str, body: SyncIn):
    """Start a sync; answers with the queued operation (poll `/api/operations/{id}?wait=30`)."""
    try:
        ctx = app_services.load(request, instance, name, "sync")
    finally:
        _close_clients(request)
    params: dict[str, Any] = {"prune": body.prune, "dryRun": body.dry_run, "force": body.force}
    if body.revision:
        params["revision"] = body.revision
    if body.sync_options:
        params["syncOptions"] = body.sync_options
    return _start(request, ctx, "sync", params, _key(request, "sync", body))


@api.post("/applications/{instance}/{name}/rollback", response=APP_OP, tags=["operations"])
def rollback(request: HttpRequest, instance: str, name: str, body: RollbackIn):
    """Roll back to a history entry (Argo CD refuses while automated sync is on)."""
    try:
        ctx = app_services.load(request, instance, name, "rollback")
    finally:
        _close_clients(request)
    params = {"id": body.id, "prune": body.prune, "dryRun": body.dry_run}
    error = app_services.rollback_refusal(ctx, body.id)
    if error:
        record(request, action="rollback", outcome=Outcome.FAILED, payload=params, error=error,
               instance=ctx.instance.name, kind="application", project=ctx.project, namespace=ctx.namespace,
               name=ctx.name)  # fmt: skip
        raise ApiError(409, "conflict", error)
    return _start(request, ctx, "rollback", params, _key(request, "rollback", body))


@api.post("/applications/{instance}/{name}/terminate", response=APP_OP, tags=["operations"])
def terminate(request: HttpRequest, instance: str, name: str, body: IdempotentIn):
    """Terminate the application's running operation."""
    try:
        ctx = app_services.load(request, instance, name, "terminate")
    finally:
        _close_clients(request)
    return _start(request, ctx, "terminate", {}, _key(request, "terminate", body))


class BulkSyncIn(IdempotentIn):
    applications: list[str] = Field(
        ..., min_length=1, max_length=1000, description="`instance/name` or `instance/namespace/name` each."
    )
    prune: bool = False
    dry_run: bool = False
    limit: int = Field(op_services.DEFAULT_BULK_LIMIT, ge=1, le=100)


class BulkSyncOut(Schema):
    operation: OperationOut
    refused: list[dict[str, str]]


@api.post("/bulk-sync", response={202: BulkSyncOut, **ERRORS}, tags=["operations"])
def bulk_sync(request: HttpRequest, body: BulkSyncIn):
    """Sync many applications; those you may not sync are listed as refused (and audited)."""
    allowed, refused = op_services.bulk_targets(request, body.applications)
    params = {"prune": body.prune, "dryRun": body.dry_run, "limit": body.limit}
    allowed = op_services.within_constraints(request, allowed, params, refused)
    refusals = [{"application": spec, "reason": why} for spec, why in refused]
    if not allowed:
        raise ApiError(403 if refused else 422, "forbidden" if refused else "invalid", "Nothing to sync: " +
                       "; ".join(f"{r['application']} ({r['reason']})" for r in refusals))  # fmt: skip
    parent = op_services.start_bulk_sync(request, allowed, params, idempotency_key=_key(request, "bulk_sync", body))
    return Status(202, {"operation": _operation(parent), "refused": refusals})


@api.get("/operations/{op_id}", response={200: OperationOut, **ERRORS}, tags=["operations"])
def operation(request: HttpRequest, op_id: int, wait: int = Query(0, ge=0, le=MAX_WAIT_SECONDS)):
    """An operation's state; with `wait`, answers when it is done or after that many seconds, whichever is first."""
    deadline = time.monotonic() + wait
    while True:
        op = visible_operations(request.user).filter(pk=op_id).first()
        if op is None:
            raise Http404("No such operation, or you may not see it.")
        if op.state in Operation.FINAL_STATES or time.monotonic() >= deadline:
            return _operation(op)
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


# ---------------------------------------------------------------- audit


class AuditEventOut(Schema):
    id: int
    at: datetime
    actor: str
    team: str
    ip: str | None
    instance: str
    kind: str
    project: str
    namespace: str
    name: str
    action: str
    outcome: str
    error: str
    operation_id: int | None
    request: dict[str, Any]


class AuditPage(Schema):
    items: list[AuditEventOut]
    next_before: int | None = Field(None, description="Pass as `before` for the next (older) page.")
    notes: list[str] = Field(default_factory=list, description="Filters that could not be applied as given.")


class AuditExportFilters(Schema):
    """The audit page's filters."""

    actor: str = ""
    team: str = ""
    instance: str = ""
    kind: str = ""
    name: str = ""
    action: str = ""
    outcome: str = ""
    q: str = ""
    from_: str = Field("", alias="from")
    to: str = ""


class AuditFilters(AuditExportFilters):
    """The filters, and the keyset page to read."""

    before: str = ""


@api.get("/audit", response={200: AuditPage, **ERRORS}, tags=["audit"])
def audit(request: HttpRequest, filters: Query[AuditFilters]):
    """Audit events you may see, newest first, with the audit page's filters and keyset paging."""
    params = filters.dict(by_alias=True)
    parsed = audit_queries.parse_filters(params)
    events = audit_queries.apply_filters(audit_queries.visible_events(request.user), parsed)
    rows, next_before = audit_queries.page(events, params.get("before") or None)
    items = [
        {f: getattr(e, f) for f in AuditEventOut.model_fields if f != "request"} | {"request": e.request or {}}
        for e in rows
    ]
    return {"items": items, "next_before": next_before, "notes": parsed.errors}


def _export_doc(content_type: str, what: str) -> dict[str, Any]:
    return {"responses": {200: {"description": what, "content": {content_type: {"schema": {"type": "string"}}}}}}


# The audit page's own exports (same rows, redaction, formula-safe CSV and "export" audit event), read from
# request.GET like the page; the schema only documents the filters.
@api.get("/audit/export.csv", response=ERRORS, tags=["audit"], openapi_extra=_export_doc("text/csv", "CSV rows"))
def audit_export_csv(request: HttpRequest, filters: Query[AuditExportFilters]):
    """The audit events you may see, filtered as `/api/audit`, as CSV; the export itself is audited."""
    return audit_views.export_csv(request)


@api.get(
    "/audit/export.jsonl",
    response=ERRORS,
    tags=["audit"],
    openapi_extra=_export_doc("application/x-ndjson", "One JSON object per line"),
)
def audit_export_jsonl(request: HttpRequest, filters: Query[AuditExportFilters]):
    """The audit events you may see, filtered as `/api/audit`, as JSON lines; the export itself is audited."""
    return audit_views.export_jsonl(request)


# ---------------------------------------------------------------- approvals


class ApprovalIn(Schema):
    instance: str
    application: str
    kind: str = Field("sync", pattern="^(sync|rollback)$")
    reason: str = Field(..., min_length=1, max_length=2000, description="Why it should run; approvers read it.")
    revision: str = Field("", description="sync: a branch, tag or commit; it is pinned to its commit SHA now.")
    prune: bool = False
    force: bool = False
    sync_options: list[str] = Field(default_factory=list, max_length=20)
    id: int | None = Field(None, ge=0, description="rollback: the history entry to roll back to.")


class ApprovalTargetOut(Schema):
    instance: str
    project: str
    application: str
    revision: str
    sha: str
    spec_hash: str
    changed_resources: int


class ApprovalOut(Schema):
    id: int
    kind: str
    state: str
    requester: str
    reason: str
    decided_reason: str
    policy: str
    required: int
    approver_teams: list[str]
    other_team: bool
    approvers: list[str]
    params: dict[str, Any]
    targets: list[ApprovalTargetOut]
    operation: int | None
    created_at: datetime
    expires_at: datetime


class ApprovalDecisionIn(Schema):
    comment: str = Field("", max_length=2000, description="approve: an optional comment; reject: the reason.")


def _approval(req) -> dict[str, Any]:
    return {
        "id": req.pk, "kind": req.kind, "state": req.state, "requester": req.requester.get_username(),
        "reason": req.reason, "decided_reason": req.decided_reason, "policy": req.policy_name,
        "required": req.required, "approver_teams": req.approver_teams, "other_team": req.other_team,
        "approvers": [a.approver_name for a in req.approvals.all()], "params": req.params,
        "targets": [{"instance": t["instance"], "project": t["project"], "application": t["app"],
                     "revision": t.get("revision", ""), "sha": t.get("sha", ""), "spec_hash": t.get("spec_hash", ""),
                     "changed_resources": len(t.get("diff") or [])} for t in req.targets],
        "operation": req.operation_id, "created_at": req.created_at, "expires_at": req.expires_at,
    }  # fmt: skip


def _in_token_scope(request: HttpRequest, req) -> bool:
    """A token narrowed to some applications sees (and decides) only requests about those."""
    token = getattr(request.user, "api_token", None)
    return token is None or all(token.allows("view", t["instance"], t["project"], t["app"]) for t in req.targets)


def _visible_approval(request: HttpRequest, approval_id: int):
    from apps.governance import approvals
    from apps.governance.models import ApprovalRequest

    req = ApprovalRequest.objects.select_related("requester").filter(pk=approval_id).first()
    if req is None or not _in_token_scope(request, req) or not approvals.visible(request.user, req):
        guards.probe(request, req.first.get("instance", "") if req else "", "approvalrequest", str(approval_id),
                     "no such approval request, or not one of the user's")  # fmt: skip
        raise Http404("No such approval request, or you may not see it.")
    return req


def _transition(request: HttpRequest, approval_id: int, step) -> dict[str, Any]:
    from apps.governance import approvals

    _visible_approval(request, approval_id)
    try:
        return _approval(step())
    except approvals.ApprovalError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc


@api.post("/approvals", response={201: ApprovalOut, **ERRORS}, tags=["approvals"])
def request_approval(request: HttpRequest, body: ApprovalIn):
    """Ask approval for a sync or rollback an approval policy governs; the plan (commit SHA, spec hash, diff) is
    read now and is exactly what runs once approved."""
    from apps.governance import approvals

    ctx = app_services.load(request, body.instance, body.application, body.kind)
    try:
        if body.kind == "rollback":
            if body.id is None:
                raise ApiError(422, "invalid", "A rollback needs the id of the history entry.")
            params: dict[str, Any] = {"id": body.id, "prune": body.prune, "dryRun": False}
        else:
            params = {"prune": body.prune, "dryRun": False, "force": body.force}
            if body.revision:
                params["revision"] = body.revision
            if body.sync_options:
                params["syncOptions"] = body.sync_options
        req = approvals.request_for(request, ctx, body.kind, params, body.reason)
    except approvals.ApprovalError as exc:
        denied = str(exc).startswith("Not allowed")
        raise ApiError(403 if denied else 409, "forbidden" if denied else "conflict", str(exc)) from exc
    finally:
        _close_clients(request)
    return Status(201, _approval(req))


@api.get("/approvals", response={200: list[ApprovalOut], **ERRORS}, tags=["approvals"])
def list_approvals(request: HttpRequest, waiting: bool = Query(False, description="Only those waiting for you.")):
    """Requests waiting for your approval, and (unless `waiting`) your own recent requests."""
    from apps.governance import approvals
    from apps.governance.models import ApprovalRequest

    approvals.expire_due()
    rows = list(approvals.waiting_for(request.user))
    if not waiting:
        rows += [r for r in ApprovalRequest.objects.filter(requester=request.user)[:50] if r not in rows]
    return [_approval(r) for r in rows if _in_token_scope(request, r)]


@api.get("/approvals/{approval_id}", response={200: ApprovalOut, **ERRORS}, tags=["approvals"])
def approval_detail(request: HttpRequest, approval_id: int):
    return _approval(_visible_approval(request, approval_id))


@api.post("/approvals/{approval_id}/approve", response={200: ApprovalOut, **ERRORS}, tags=["approvals"])
def approve(request: HttpRequest, approval_id: int, body: ApprovalDecisionIn):
    """Approve (never your own request); the last approval needed starts the operation (`operation`)."""
    from apps.governance import approvals

    return _transition(request, approval_id, lambda: approvals.approve(request, approval_id, body.comment))


@api.post("/approvals/{approval_id}/reject", response={200: ApprovalOut, **ERRORS}, tags=["approvals"])
def reject(request: HttpRequest, approval_id: int, body: ApprovalDecisionIn):
    """Reject, with the reason in `comment`."""
    from apps.governance import approvals

    return _transition(request, approval_id, lambda: approvals.reject(request, approval_id, body.comment))


@api.post("/approvals/{approval_id}/cancel", response={200: ApprovalOut, **ERRORS}, tags=["approvals"])
def cancel_approval(request: HttpRequest, approval_id: int):
    """Cancel your own request."""
    from apps.governance import approvals

    return _transition(request, approval_id, lambda: approvals.cancel(request, approval_id))
