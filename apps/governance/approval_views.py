"""Approval pages: the request form (from the sync dialog), a request's detail with its diff, the inbox, and the
platform admins' policy pages. Each transition goes through `apps.governance.approvals`."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.access.decide import decide
from apps.access.guards import admin_required, probe
from apps.access.rules import is_platform_admin
from apps.argocd.errors import ArgoCDError
from apps.audit.service import Outcome, record
from apps.core.argocd_pages import argocd_errors, error_text
from apps.core.diff import diff_text

from . import approvals
from .forms import ApprovalPolicyForm, ApprovalRequestForm
from .models import ApprovalPolicy, ApprovalRequest

MY_RECENT = 20


def request_form(request: HttpRequest, ctx, kind: str, params: dict, decision, *, status: int = 200) -> HttpResponse:
    """What the sync (or rollback) POST answers when its decision is needs-approval: the request form, filled in."""
    form = ApprovalRequestForm(initial={"instance": ctx.instance.name, "app": ctx.name, "kind": kind, "params": params})
    data = {"form": form, "need": decision.approval, "ctx": ctx, "kind": kind,
            "options": approvals.describe_params(params)}  # fmt: skip
    template = "governance/approval_new.html#form" if request.htmx else "governance/approval_new.html"
    return render(request, template, data, status=status)


@require_POST
@argocd_errors
def approval_new(request: HttpRequest) -> HttpResponse:
    from apps.applications.services import load

    form = ApprovalRequestForm(request.POST)
    if not form.is_valid():
        instance, app = request.POST.get("instance", "")[:100], request.POST.get("app", "")[:253]
        ctx = load(request, instance, app, "view")
        problems = "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items())
        messages.error(request, f"Approval not requested — {problems}")
        return redirect("applications:detail", ctx.instance.name, ctx.name)
    d = form.cleaned_data
    ctx = load(request, d["instance"], d["app"], d["kind"])
    back = redirect("applications:detail", ctx.instance.name, ctx.name)
    try:
        req = approvals.request_for(request, ctx, d["kind"], d["params"], d["reason"])
    except approvals.ApprovalError as exc:
        messages.error(request, str(exc))
        return back
    except ArgoCDError as exc:
        record(request, action="request_approval", outcome=Outcome.FAILED, instance=ctx.instance.name,
               kind="application", project=ctx.project, name=ctx.name, payload=d["params"],
               error=exc.message)  # fmt: skip
        messages.error(
            request, f"Approval not requested: could not read the plan — {error_text(exc, ctx.instance.name)}"
        )
        return back
    messages.success(request, f"Approval requested (#{req.pk}): {req.required} approval(s) from "
                              f"{', '.join(req.approver_teams)}.")  # fmt: skip
    return redirect("governance:approval", req.pk)


def _visible_request(request: HttpRequest, pk: int) -> ApprovalRequest:
    req = ApprovalRequest.objects.select_related("requester", "operation").filter(pk=pk).first()
    if req is None or not approvals.visible(request.user, req):
        probe(request, req.first.get("instance", "") if req else "", "approvalrequest", str(pk),
              "no such approval request, or not one of the user's")  # fmt: skip
        raise Http404("No such approval request, or you may not see it.")
    return req


@require_http_methods(["GET", "POST"])
def approval_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The plan, its diff and reason; POST approve / reject / cancel / run (the submit button's name says which)."""
    req = _visible_request(request, pk)
    if request.method == "POST":
        try:
            if "approve" in request.POST:
                req = approvals.approve(request, pk, request.POST.get("comment", ""))
                messages.success(request, _after_approval(req))
            elif "reject" in request.POST:
                approvals.reject(request, pk, request.POST.get("reason", ""))
                messages.success(request, f"Rejected request #{pk}.")
            elif "cancel" in request.POST:
                approvals.cancel(request, pk)
                messages.success(request, f"Cancelled request #{pk}.")
            elif "run" in request.POST:
                req = approvals.run(request, pk)
                messages.success(request, _after_approval(req))
        except approvals.ApprovalError as exc:
            messages.error(request, str(exc))
        return redirect("governance:approval", pk)
    if req.state == ApprovalRequest.State.PENDING and approvals._expire_if_due(req):
        req.refresh_from_db()
    for target in req.targets:  # the stored lines, shown by the one diff component with the page's toggles
        for d in target.get("diff") or []:
            d["shown"] = diff_text(d.get("before") or [], d.get("after") or [], "live", "desired", query=request.GET)
    data = {
        "req": req,
        "approvals": list(req.approvals.all()),
        "why_not": approvals.why_not_approver(request.user, req) if req.state == "pending" else "",
        "options": approvals.describe_params(req.params),
        "is_requester": req.requester_id == request.user.pk,
    }
    return render(request, "governance/approval_detail.html", data)


def _after_approval(req: ApprovalRequest) -> str:
    if req.state == ApprovalRequest.State.EXECUTED:
        return f"Approved: request #{req.pk} is running as operation #{req.operation_id}."
    if req.state == ApprovalRequest.State.APPROVED:
        return req.decided_reason or f"Request #{req.pk} is approved."
    left = req.required - req.approvals.count()
    return f"Approved: request #{req.pk} waits for {left} more approval{'s' if left != 1 else ''}."


@require_GET
def approval_inbox(request: HttpRequest) -> HttpResponse:
    approvals.expire_due()
    mine = ApprovalRequest.objects.filter(requester=request.user).select_related("operation")[:MY_RECENT]
    recent = ApprovalRequest.objects.select_related("requester")[:MY_RECENT] if is_platform_admin(request.user) else []
    data = {"waiting": approvals.waiting_for(request.user), "mine": mine, "recent": recent}
    return render(request, "governance/approvals.html", data)


# ---------------------------------------------------------------- policies (platform admins)


@admin_required
@require_GET
def policy_list(request: HttpRequest) -> HttpResponse:
    items = ApprovalPolicy.objects.prefetch_related("approver_teams")
    return render(request, "governance/policies.html", {"items": items})


@admin_required
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    policy = get_object_or_404(ApprovalPolicy, pk=pk) if pk else None
    if request.method == "POST" and policy is not None and "delete" in request.POST:
        with transaction.atomic():
            before = policy.snapshot()
            policy.delete()
            record(request, action="delete", outcome=Outcome.SUCCEEDED, kind="approvalpolicy", name=before["name"],
                   before=before)  # fmt: skip
        messages.success(request, f"Deleted approval policy {before['name']}.")
        return redirect("governance:policies")
    before = policy.snapshot() if policy else None
    form = ApprovalPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST":
        action = "edit" if before else "create"
        if form.is_valid():
            with transaction.atomic():
                saved = form.save()
                record(request, action=action, outcome=Outcome.SUCCEEDED, kind="approvalpolicy", name=saved.name,
                       before=before, after=saved.snapshot())  # fmt: skip
            messages.success(request, f"Saved approval policy {saved.name}.")
            return redirect("governance:policies")
        record(request, action=action, outcome=Outcome.FAILED, kind="approvalpolicy",
               name=request.POST.get("name", "")[:253], error="; ".join(
                   f"{f}: {' '.join(e)}" for f, e in form.errors.items())[:2000])  # fmt: skip
    return render(request, "governance/policy_edit.html", {"form": form, "policy": policy})


def approval_note(user, target) -> str:
    """What the sync form says before the click when a real (not dry-run) sync of `target` needs approval."""
    decision = decide(user, "sync", target, {"dryRun": False})
    if not decision.needs_approval:
        return ""
    need = decision.approval
    plural = "s" if need["required"] != 1 else ""
    other = " (approvers from another team than yours)" if need["other_team"] else ""
    return (f"This sync needs {need['required']} approval{plural} from team {', '.join(need['teams'])}{other}: "
            "submitting it asks for approval (a dry run needs none).")  # fmt: skip


# ---------------------------------------------------------------- bulk syncs: one request for the set


def bulk_request_form(request: HttpRequest, targets: list, params: dict, needs: list[dict], refused: list):
    """What a bulk sync answers when some of its applications need approval: one request for the whole set."""
    from apps.operations.services import ns_prefix

    need = max(needs, key=lambda n: n["required"])
    specs = [f"{t[0].name}/{ns_prefix(t)}{t[2]}" for t in targets]
    data = {"need": need, "specs": specs, "params": params, "refused": refused,
            "options": approvals.describe_params(params)}  # fmt: skip
    template = "governance/approval_bulk.html#form" if request.htmx else "governance/approval_bulk.html"
    return render(request, template, data)


@require_POST
def approval_bulk_new(request: HttpRequest) -> HttpResponse:
    """Plan every application of the set (each read live) and ask approval once for all of them."""
    from apps.applications.services import AppContext
    from apps.operations.services import DEFAULT_BULK_LIMIT, bulk_targets, ns_prefix, within_constraints

    reason = request.POST.get("reason", "").strip()[: approvals.MAX_REASON]
    params = {"prune": request.POST.get("prune") == "on", "dryRun": False,
              "limit": _int(request.POST.get("limit"), DEFAULT_BULK_LIMIT)}  # fmt: skip
    refused: list = []
    targets, refused = bulk_targets(request, request.POST.getlist("app"))
    needs: list[dict] = []
    targets = within_constraints(request, targets, params, refused, needs)
    if not targets or not needs or not reason:
        why = "give a reason" if targets and needs else "nothing in this set needs approval, or nothing may be synced"
        messages.error(request, f"Approval not requested: {why}.")
        return redirect("governance:approvals")
    plans = []
    try:
        for t in targets:
            inst, project, name, other = t[0], t[1], t[2], ns_prefix(t).rstrip("/")
            with inst.client() as client:
                app = client.get_application(name, project=project, app_namespace=other or None)
                ctx = AppContext(inst, client, app)
                plans.append(approvals.plan(ctx, "sync", params))
    except ArgoCDError as exc:
        messages.error(request, f"Approval not requested: could not read the plan — {error_text(exc)}")
        return redirect("governance:approvals")
    need = max(needs, key=lambda n: n["required"])
    req = approvals.create(request, "bulk_sync", plans, params, reason, need)
    messages.success(request, f"Approval requested (#{req.pk}) for {len(plans)} applications.")
    return redirect("governance:approval", req.pk)


def _int(value, default: int) -> int:
    try:
        return min(max(int(value), 1), 100)
    except (TypeError, ValueError):
        return default
