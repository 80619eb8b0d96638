"""Operation pages: the list, one operation (card, terminate, children), the polled card, bulk sync."""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from apps.access.guards import require
from apps.access.rules import applications_q, can, instances_visible, is_platform_admin
from apps.applications.services import CONTROL_PLANE_NAMESPACE
from apps.core.pgtext import escape_filters

from .models import Operation
from .services import (
    DEFAULT_BULK_LIMIT,
    bulk_targets,
    idempotency_key,
    start_bulk_sync,
    start_operation,
    within_constraints,
)

FOLLOWABLE = (Operation.Kind.SYNC, Operation.Kind.ROLLBACK)
# Operations on an application; the others (token rotations) name accounts, roles and clusters, so only their
# requester and platform admins see them.
ON_APPLICATIONS = (Operation.Kind.SYNC, Operation.Kind.ROLLBACK, Operation.Kind.TERMINATE, Operation.Kind.BULK_SYNC)


def visible_operations(user) -> QuerySet[Operation]:
    """Operations on applications the user may view, plus their own; platform admins see all."""
    qs = Operation.objects.select_related("requested_by", "instance")
    if is_platform_admin(user):
        return qs
    on_visible_apps = Q(kind__in=ON_APPLICATIONS) & applications_q(user, "view", namespace_field="app_namespace")
    # An operation on an app outside the control plane's namespace carries that namespace in its params.
    in_params = KeyTextTransform("appNamespace", "params")
    app_namespace = Coalesce(in_params, Value(CONTROL_PLANE_NAMESPACE), output_field=TextField())
    return qs.annotate(name=F("target"), app_namespace=app_namespace).filter(on_visible_apps | Q(requested_by=user))


def _get_operation(request: HttpRequest, pk: int) -> Operation:
    op = visible_operations(request.user).filter(pk=pk).first()
    if op is None:
        raise Http404("No such operation, or you may not see it.")
    return op


def operation_list(request: HttpRequest) -> HttpResponse:
    f, notes = escape_filters({k: request.GET.get(k, "").strip() for k in ("state", "kind", "instance", "user")})
    qs = visible_operations(request.user)
    if f["state"]:
        qs = qs.filter(state=f["state"])
    if f["kind"]:
        qs = qs.filter(kind=f["kind"])
    if f["instance"]:
        qs = qs.filter(instance_name=f["instance"])
    if f["user"]:
        qs = qs.filter(requested_by__username=f["user"])
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": f,
        "notes": notes,
        "running": visible_operations(request.user).filter(state=Operation.State.RUNNING).count(),
        "states": Operation.State.choices,
        "kinds": Operation.Kind.choices,
        "instances": [i.name for i in instances_visible(request.user)],
        "users": get_user_model().objects.filter(operation__isnull=False).distinct().values_list("username", flat=True)
        if is_platform_admin(request.user)
        else [request.user.get_username()],
        "query": request.GET.copy(),
    }
    if request.htmx:
        return render(request, "operations/list.html#rows", context)
    return render(request, "operations/list.html", context)


def operation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    op = _get_operation(request, pk)
    if request.method == "POST" and "terminate" in request.POST:
        return _terminate(request, op)
    bulk = op.kind == Operation.Kind.BULK_SYNC
    context = {
        "op": op,
        "can_terminate": _may_terminate(request, op),
        "children": op.children.select_related("requested_by").order_by("id") if bulk else [],
    }
    if request.htmx and request.GET.get("part") == "children":
        return render(request, "operations/detail.html#children", context)
    return render(request, "operations/detail.html", context)


def _may_terminate(request: HttpRequest, op: Operation) -> bool:
    return (
        op.kind in FOLLOWABLE
        and op.state == Operation.State.RUNNING
        and op.instance is not None
        and can(request.user, "terminate", op.instance, op.project or "*", op.target or "*")
    )


def _terminate(request: HttpRequest, op: Operation) -> HttpResponse:
    if op.kind not in FOLLOWABLE or op.instance is None:
        raise Http404("Only syncs and rollbacks can be terminated.")
    require(request, "terminate", op.instance, op.project or "*", op.target, name=op.target)
    if op.is_final:
        messages.info(request, f"Operation #{op.pk} has already ended.")
        return redirect("operations:detail", pk=op.pk)
    term = start_operation(
        request, kind=Operation.Kind.TERMINATE, instance=op.instance, project=op.project, target=op.target,
        params={"operation": op.pk},
        idempotency_key=idempotency_key(request, "terminate", request.POST.get("idempotency_key", "")),
    )  # fmt: skip
    if request.htmx:
        return render(request, "operations/card.html", {"op": term})
    messages.success(request, f"Terminating {op.instance_name}/{op.target}.")
    return redirect("operations:detail", pk=term.pk)


def operation_card(request: HttpRequest, pk: int) -> HttpResponse:
    op = _get_operation(request, pk)
    # The operation page also has action buttons to empty once the operation ends (out of band).
    response = render(request, "operations/card.html", {"op": op, "with_actions": request.GET.get("actions") == "1"})
    if op.is_final:
        # 286 tells htmx to stop polling; the final card is still swapped in, and the page may refresh
        # what the operation changed (e.g. a project's token table) on "operation-finished".
        return trigger_client_event(HttpResponseStopPolling(response.content), "operation-finished")
    return response


@require_POST
def bulk_sync(request: HttpRequest) -> HttpResponse:
    allowed, refused = bulk_targets(request, request.POST.getlist("app"))
    params = {
        "prune": request.POST.get("prune") == "on",
        "dryRun": request.POST.get("dryRun") == "on" or request.POST.get("dry_run") == "on",
        "limit": _int(request.POST.get("limit"), DEFAULT_BULK_LIMIT, 1, 100),
    }
    needs: list[dict] = []
    allowed = within_constraints(request, allowed, params, refused, needs)
    if allowed and needs:  # some of the set needs approval: the set is approved once, or not synced
        from apps.governance.approval_views import bulk_request_form

        return bulk_request_form(request, allowed, params, needs, refused)
    if not allowed:
        template = "operations/bulk.html#result" if request.htmx else "operations/bulk.html"
        return render(request, template, {"refused": refused, "parent": None}, status=403 if refused else 400)
    # The same form sent twice is one bulk sync; the same form sent again with another selection (after the
    # browser's Back button) is another one.
    selection = hashlib.sha1(repr(sorted((t[0].pk, *t[1:]) for t in allowed)).encode()).hexdigest()[:12]
    key = idempotency_key(request, f"bulk_sync:{selection}", request.POST.get("idempotency_key", ""))
    parent = start_bulk_sync(request, allowed, params, idempotency_key=key)
    if request.htmx:
        return render(request, "operations/bulk.html#result", {"refused": refused, "parent": parent})
    for spec, why in refused:
        messages.warning(request, f"Not synced: {spec} ({why}).")
    messages.success(request, f"Bulk sync of {len(allowed)} application{pluralize(len(allowed))} started.")
    return redirect("operations:detail", pk=parent.pk)


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value or default), low), high)
    except ValueError:
        return default
