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
