"""Approvals bound to what was seen: request, approve, reject, cancel, expire, run, and the worker's last check.

`apps.access.decide.decide()` says when an action needs approval (a matching ApprovalPolicy). A request records
the plan its approvers see: per application the revision resolved to a commit SHA (Argo CD's manifests answer),
that commit's metadata, a hash of the app's spec, and the diff Argo CD reports (managed resources); plus the
options as asked and the requester's reason. When the required number of eligible approvers (never the
requester) have approved, the operation starts, pinned to those SHAs with exactly those options and carrying the
request's id; `decide()` accepts those params and nothing else. In the worker, just before Argo CD is called,
`verify_in_worker()` compares the app's spec with the hash: a changed spec voids the approval ("approve what you
saw"). Every transition is an audit event; the operation's final event names the approvers.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.access.decide import APPROVAL_PARAM
from apps.audit.service import Outcome, record
from apps.teams.models import Membership

from .models import Approval, ApprovalRequest

State = ApprovalRequest.State
SYSTEM = SimpleNamespace(username="system", is_authenticated=False)
MAX_DIFF_ROWS = 3000  # lines per resource side: enough to read, small enough to store
MAX_REASON = 2000
SYNC_KEYS = ("prune", "dryRun", "strategy", "force", "resources", "syncOptions", "retryStrategy", "appNamespace")


class ApprovalError(Exception):
    """A transition that may not happen (who, or the request's state): the message says why."""


def ttl() -> timedelta:
    return timedelta(hours=float(getattr(settings, "APPROVAL_TTL_HOURS", 24)))


def spec_hash(app: dict) -> str:
    return hashlib.sha256(json.dumps(app.get("spec") or {}, sort_keys=True).encode()).hexdigest()


def run_params(req: ApprovalRequest, t: dict) -> dict:
    """The exact params of the operation an approved request runs for target `t`."""
    if req.kind == "rollback":
        return {**req.params, APPROVAL_PARAM: req.pk}
    options = {k: v for k, v in req.params.items() if k in SYNC_KEYS}
    return {**options, "revision": t["sha"], APPROVAL_PARAM: req.pk}


# ---------------------------------------------------------------- the plan


def plan(ctx, kind: str, params: dict) -> dict:
    """What the approvers will see for one application (reads Argo CD: manifests, revision metadata, diff)."""
    from apps.applications.services import state_of
    from apps.argocd.errors import ArgoCDError
    from apps.core.diff import DiffOptions, dump, strip

    if kind == "rollback":
        history = (ctx.app.get("status") or {}).get("history") or []
        entry = next((h for h in history if h.get("id") == params.get("id")), {})
        asked = sha = str(entry.get("revision") or "")
    else:
        asked = str(params.get("revision") or "")
        sha = str(ctx.client.get_manifests(ctx.name, revision=asked or None, **ctx.scope).get("revision") or "")
    try:
        meta = ctx.client.get_revision_metadata(ctx.name, sha, **ctx.scope) if sha else {}
    except ArgoCDError as exc:
        meta = {"error": exc.message}
    diff = []
    for res in ctx.client.get_managed_resources(ctx.name, **ctx.scope):
        live = state_of(res.get("normalizedLiveState")) or state_of(res.get("liveState"))
        desired = state_of(res.get("predictedLiveState")) or state_of(res.get("targetState"))
        # Kept as the lines the approvers read (without managed fields and status), so the page shows what was seen.
        before, after = dump(strip(live, DiffOptions())), dump(strip(desired, DiffOptions()))
        if before != after:
            what = {k: res.get(k, "") for k in ("group", "kind", "namespace", "name")}
            cut = max(len(before), len(after)) > MAX_DIFF_ROWS
            diff.append({**what, "before": before[:MAX_DIFF_ROWS], "after": after[:MAX_DIFF_ROWS], "cut": cut})
    return {
        "instance": ctx.instance.name,
        "project": ctx.project,
        "namespace": ctx.namespace,
        "app": ctx.name,
        "revision": asked,
        "sha": sha,
        "meta": {k: meta.get(k) for k in ("author", "date", "message", "tags", "error") if meta.get(k)},
        "spec_hash": spec_hash(ctx.app),
        "diff": diff,
    }


# ---------------------------------------------------------------- transitions


def _teams_of(user) -> list[str]:
    return sorted(Membership.objects.filter(user=user).values_list("team__slug", flat=True))


def _audit(request, req: ApprovalRequest, action: str, outcome: str = Outcome.SUCCEEDED, *, user=None,
           error: str = "", extra: dict | None = None) -> None:  # fmt: skip
    t = req.first if len(req.targets) == 1 else {}
    record(request, action=action, outcome=outcome, user=user, instance=t.get("instance", ""), kind="application",
           project=t.get("project", ""), namespace=t.get("namespace", ""), name=t.get("app", req.title),
           payload={"approval_request": req.pk, "kind": req.kind, **(extra or {})}, after=req.snapshot(),
           error=error, operation_id=req.operation_id,
           team=",".join(sorted(set(req.requester_teams) | set(req.approver_teams)))[:100])  # fmt: skip


def create(request, kind: str, plans: list[dict], params: dict, reason: str, need: dict) -> ApprovalRequest:
    """A pending request for `plans` (one per application), audited as `request_approval`."""
    with transaction.atomic():
        req = ApprovalRequest.objects.create(
            requester=request.user, requester_teams=_teams_of(request.user), kind=kind, targets=plans,
            params={k: v for k, v in params.items() if k != APPROVAL_PARAM}, reason=reason[:MAX_REASON],
            policy_id=need["policy_id"], policy_name=need["policy"], required=need["required"],
            approver_teams=need["teams"], other_team=need["other_team"], expires_at=timezone.now() + ttl(),
        )  # fmt: skip
        _audit(request, req, "request_approval", extra={"reason": req.reason})
    return req


def request_for(request, ctx, kind: str, params: dict, reason: str) -> ApprovalRequest:
    """Ask approval for `kind` with `params` on the loaded app `ctx` (the pages and the API both come here).

    Decided again first: a request that needs no approval, or that its grants refuse, raises ApprovalError
    (the refusal audited); Argo CD's errors while reading the plan propagate (nothing is created then)."""
    from apps.access.decide import decide
    from apps.applications.services import target

    params = {k: v for k, v in params.items() if k != APPROVAL_PARAM}
    decision = decide(request.user, kind, target(ctx), params)
    where = {"instance": ctx.instance.name, "kind": "application", "project": ctx.project,
             "namespace": ctx.namespace, "name": ctx.name}  # fmt: skip
    if decision.allowed:
        raise ApprovalError(f"This {kind} needs no approval: start it directly.")
    if not decision.needs_approval:
        record(request, action="request_approval", outcome=Outcome.DENIED, payload=params,
               error=f"refused by constraint {decision.constraint or 'grant'}: {decision.reason}", **where)  # fmt: skip
        raise ApprovalError(f"Not allowed: {decision.reason}.")
    if not reason.strip():
        raise ApprovalError("Give a reason: the approvers read it beside the diff.")
    if kind == "rollback":
        from apps.applications.services import rollback_refusal

        refusal = rollback_refusal(ctx, params.get("id"))
        if refusal:
            raise ApprovalError(refusal)
    return create(request, kind, [plan(ctx, kind, params)], params, reason.strip(), decision.approval)


def why_not_approver(user, req: ApprovalRequest, teams: list[str] | None = None) -> str:
    """Why `user` (whose team slugs are `teams`, read when not given) may not approve or reject `req` ("" when
    they may)."""
    if user.pk == req.requester_id:
        return "the requester never approves their own request"
    mine = set(_teams_of(user) if teams is None else teams)
    if not mine & set(req.approver_teams):
        return f"only members of {', '.join(req.approver_teams) or 'the approver teams'} approve this request"
    if req.other_team and mine & set(req.requester_teams):
        return "this policy wants an approver from another team than the requester's"
    if any(a.approver_id == user.pk for a in req.approvals.all()):
        return "you have approved it already"
    return ""


def _locked(pk: int) -> ApprovalRequest:
    return ApprovalRequest.objects.select_for_update().select_related("requester").get(pk=pk)


def _expire_if_due(req: ApprovalRequest) -> bool:
    if req.state == State.PENDING and req.expires_at <= timezone.now():
        req.state = State.EXPIRED
        req.save(update_fields=["state", "updated_at"])
        _audit(None, req, "expire_approval", user=SYSTEM)
        return True
    return False


def _state_error(req: ApprovalRequest, what: str) -> ApprovalError:
    return ApprovalError(f"Request #{req.pk} is {req.get_state_display().lower()}: nothing to {what}.")


def _transition(request, pk: int, action: str, step) -> ApprovalRequest:
    """Lock the request, expire it if due, let `step(req)` act or answer why not; a refusal is audited (after the
    transaction, so that it stays) and raised."""
    with transaction.atomic():
        req = _locked(pk)
        refusal = "" if _expire_if_due(req) else step(req)
        expired = req.state == State.EXPIRED
    if expired and not refusal:
        raise _state_error(req, action.split("_")[0])
    if refusal:
        if isinstance(refusal, ApprovalError):
            raise refusal
        _audit(request, req, action, Outcome.DENIED, error=refusal)
        raise ApprovalError(refusal[0].upper() + refusal[1:] + ".")
    return req


def approve(request, pk: int, comment: str = "") -> ApprovalRequest:
    """Count the user's approval; the last one needed starts the operation. Refusals are audited and raised."""
    comment = comment.strip()[:MAX_REASON]

    def step(req: ApprovalRequest):
        if req.state != State.PENDING:
            return _state_error(req, "approve")
        why = why_not_approver(request.user, req)
        if why:
            return why
        Approval.objects.create(request=req, approver=request.user, approver_name=request.user.get_username(),
                                team=",".join(sorted(set(_teams_of(request.user)) & set(req.approver_teams))),
                                comment=comment)  # fmt: skip
        _audit(request, req, "approve", extra={"comment": comment})
        if req.approvals.count() >= req.required:
            req.state = State.APPROVED
            req.save(update_fields=["state", "updated_at"])
            _audit(None, req, "approved", user=SYSTEM)
            _run(req)
        return ""

    return _transition(request, pk, "approve", step)


def reject(request, pk: int, reason: str) -> ApprovalRequest:
    reason = reason.strip()[:MAX_REASON]

    def step(req: ApprovalRequest):
        if req.state != State.PENDING:
            return _state_error(req, "reject")
        why = why_not_approver(request.user, req)
        if why and why != "you have approved it already":
            return why
        if not reason:
            return "a rejection needs a reason"
        req.state, req.decided_reason = State.REJECTED, reason
        req.save(update_fields=["state", "decided_reason", "updated_at"])
        _audit(request, req, "reject", extra={"reason": reason})
        return ""

    return _transition(request, pk, "reject", step)


def cancel(request, pk: int) -> ApprovalRequest:
    def step(req: ApprovalRequest):
        if req.requester_id != request.user.pk:
            return "only the requester cancels a request"
        if req.state not in (State.PENDING, State.APPROVED):
            return _state_error(req, "cancel")
        req.state = State.CANCELLED
        req.save(update_fields=["state", "updated_at"])
        _audit(request, req, "cancel_approval")
        return ""

    return _transition(request, pk, "cancel_approval", step)


def run(request, pk: int) -> ApprovalRequest:
    """The requester starts an approved request that a change window held back when it was approved."""

    def step(req: ApprovalRequest):
        if req.requester_id != request.user.pk:
            return "only the requester starts an approved request"
        if req.state != State.APPROVED:
            return _state_error(req, "start")
        _run(req)
        return ""

    return _transition(request, pk, "run_approval", step)


def _run(req: ApprovalRequest) -> None:
    """Start the approved plan as its requester (inside the caller's transaction); a window that blocks it now
    leaves it approved, with the reason, for the requester to start later."""
    from apps.instances.models import Instance
    from apps.operations.services import start_bulk_sync, start_operation

    from . import windows
    from .schedules import Actor

    actor = Actor(req.requester)
    instances = {i.name: i for i in Instance.objects.filter(name__in={t["instance"] for t in req.targets})}
    for t in req.targets:
        block = windows.check(req.requester, "sync" if req.kind == "bulk_sync" else req.kind,
                              instances.get(t["instance"]) or t["instance"], t["project"], t["app"])  # fmt: skip
        if block is not None:
            req.decided_reason = f"Approved, not started: {t['instance']}/{t['app']} is {block}. Start it later."
            req.save(update_fields=["decided_reason", "updated_at"])
            return
    key = f"approval:{req.pk}"
    if req.kind == "bulk_sync":
        targets = [
            (instances[t["instance"]], t["project"], t["app"]) for t in req.targets if t["instance"] in instances
        ]
        pinned = {f"{t['instance']}/{t['app']}": run_params(req, t) for t in req.targets}
        limit = req.params.get("limit")
        op = start_bulk_sync(actor, targets, {**run_params(req, {"sha": ""}), "limit": limit}, idempotency_key=key,
                             per_target=pinned)  # fmt: skip
    else:
        t = req.first
        op = start_operation(actor, kind=req.kind, instance=instances.get(t["instance"]), project=t["project"],
                             target=t["app"], params=run_params(req, t), idempotency_key=key)  # fmt: skip
    req.state, req.operation, req.decided_reason = State.EXECUTED, op, ""
    req.save(update_fields=["state", "operation", "decided_reason", "updated_at"])
    _audit(None, req, "run_approval", user=req.requester)


def expire_due() -> int:
    """Expire every pending request past its time (the beat calls this; pages also expire what they show)."""
    count = 0
    for pk in ApprovalRequest.objects.filter(state=State.PENDING, expires_at__lte=timezone.now()).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            count += _expire_if_due(_locked(pk))
    return count


# ---------------------------------------------------------------- in the worker


def verify_in_worker(op, app: dict) -> None:
    """Just before Argo CD is called: the op must be the one its request started, on an unchanged spec.

    A changed spec voids the request (audited): its approvers saw another application.
    """
    from apps.operations.runners import OperationFailed

    pk = op.params.get(APPROVAL_PARAM)
    if not pk:
        return
    with transaction.atomic():
        req = ApprovalRequest.objects.select_for_update().filter(pk=pk).first()
        if req is None or req.operation_id not in (op.pk, op.parent_id):
            raise OperationFailed(f"Approval request #{pk} did not start this operation.")
        t = next((t for t in req.targets if t["instance"] == op.instance_name and t["app"] == op.target), None)
        if t is None:
            raise OperationFailed(f"Approval request #{pk} does not cover {op.instance_name}/{op.target}.")
        if spec_hash(app) == t["spec_hash"]:
            return
        if req.state != State.VOID:
            req.state = State.VOID
            req.decided_reason = (f"{op.instance_name}/{op.target}: the application's spec changed after the request "
                                  "was made; request approval again.")  # fmt: skip
            req.save(update_fields=["state", "decided_reason", "updated_at"])
            _audit(None, req, "void_approval", user=SYSTEM, error=req.decided_reason)
    raise OperationFailed(
        f"Not started: the spec of {op.target} changed since approval request #{pk} was made, so the approval is "
        "void. Request approval again."
    )


def approvers_of(op) -> list[str]:
    pk = (op.params or {}).get(APPROVAL_PARAM)
    if not pk:
        return []
    return list(Approval.objects.filter(request_id=pk).values_list("approver_name", flat=True))


# ---------------------------------------------------------------- what a user sees


def waiting_for(user) -> list[ApprovalRequest]:
    """Pending requests this user may approve (not their own, not approved by them yet), newest first.

    Filtered in Python: JSON containment is not portable to SQLite, and open requests are few."""
    if not getattr(user, "is_authenticated", False):
        return []
    pending = ApprovalRequest.objects.filter(state=State.PENDING, expires_at__gt=timezone.now())
    pending = list(pending.exclude(requester=user).select_related("requester").prefetch_related("approvals"))
    if not pending:  # the usual answer, in one query (every page's navigation asks)
        return []
    teams = _teams_of(user)
    return [r for r in pending if not why_not_approver(user, r, teams)] if teams else []


def waiting_count(user) -> int:
    return len(waiting_for(user))


def visible(user, req: ApprovalRequest) -> bool:
    """Requester, approver-team members and platform admins see a request."""
    if user.is_superuser or req.requester_id == user.pk:
        return True
    return bool(set(_teams_of(user)) & set(req.approver_teams))


def describe_params(params: dict) -> list[str]:
    words = []
    for key in ("prune", "force", "dryRun"):
        if params.get(key):
            words.append(key)
    if params.get("strategy"):
        words.append(f"strategy {params['strategy']}")
    words += [str(o) for o in params.get("syncOptions") or []]
    if params.get("resources"):
        words.append(f"only {len(params['resources'])} resource(s)")
    if "id" in params:
        words.append(f"roll back to history id {params['id']}")
    return words or ["no options"]


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
