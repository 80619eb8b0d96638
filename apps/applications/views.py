"""Application pages: detail with lazy tabs, sync / rollback / terminate, resource actions, create, edit, delete.

Each view opens with `load()` (instance, live app, permission) and lets `argocd_errors` render Argo CD failures.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from apps.access.decide import sync_limits
from apps.access.guards import enforce, get_instance, require
from apps.access.rules import can_somewhere, instances_visible
from apps.argocd.errors import ArgoCDError
from apps.audit.service import Change, Outcome, begin, record
from apps.core import documents
from apps.core.argocd_pages import argocd_errors, error_text
from apps.core.diff import diff_docs
from apps.core.jsonpatch import PatchError, apply_json_patch, apply_merge_patch
from apps.governance import windows
from apps.governance.approval_views import approval_note
from apps.governance.approval_views import request_form as approval_request_form
from apps.governance.enforce import MAX_REASON as MAX_OVERRIDE_REASON
from apps.governance.enforce import gate as window_gate
from apps.governance.enforce import record_override
from apps.operations.services import BROKER_DOWN, idempotency_key, new_nonce

from . import helpers, services
from .forms import (
    AutosyncForm,
    CreateForm,
    CreateYamlForm,
    DeleteForm,
    EditForm,
    PatchForm,
    ResourceForm,
    RollbackForm,
    SyncForm,
)
from .services import TABS, AppContext, load


def _detail_url(ctx: AppContext, tab: str = "") -> str:
    url = reverse("applications:detail", args=[ctx.instance.name, ctx.name]) + ctx.ns_query
    return f"{url}{'&' if ctx.ns_query else '?'}tab={tab}" if tab else url


def _operation_url(op: Any) -> str:
    try:
        return reverse("operations:detail", args=[op.pk])
    except NoReverseMatch:
        return f"/operations/{op.pk}/"


def _answer(
    request: HttpRequest, ctx: AppContext, *, op: Any = None, error: str = "", tab: str = "", nonce_id: str = ""
) -> HttpResponse:
    """After a POST: HTMX gets the Operation card or the message in place; a plain POST is redirected.

    `nonce_id` names the form's nonce input: the card swaps in a fresh one (out of band) so the same form, still
    on the page, can start a *new* operation later while a double submit of this one stays a single operation.
    """
    if request.htmx:
        if op is not None:
            # Still waiting for the queue: keep the form's nonce, so sending it again is the same operation.
            waiting = op.message == BROKER_DOWN
            data = {"op": op, "nonce_id": "" if waiting else nonce_id, "nonce": new_nonce()}
            # The page's live part reads the app at once: it polls faster while the operation is on.
            return trigger_client_event(render(request, "applications/operation.html", data), "app-changed")
        return render(request, "errors/argocd.html#message", {"message": error})
    if op is not None:
        return redirect(_operation_url(op))
    messages.error(request, error)
    return redirect(_detail_url(ctx, tab))


@require_POST
@argocd_errors
def refresh(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    """Ask Argo CD to compare with Git now; `hard` also regenerates the manifests. Argo CD answers when done.

    A POST, though Argo CD needs only `get` for it: a link or an image elsewhere must not set it off.
    """
    hard = request.POST.get("mode") == "hard"
    # Permission first, then the refresh: a refused user must not set off a reconcile (or a manifest rebuild).
    ctx = load(request, instance, name, "refresh")
    ctx.client.get_application(ctx.name, refresh="hard" if hard else "normal", **ctx.scope)
    messages.success(request, f"Argo CD has {'hard-' if hard else ''}refreshed {ctx.name}.")
    return redirect(_detail_url(ctx))


@require_POST
@argocd_errors
def autosync(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    """Turn automated sync on or off (with prune / self-heal): a spec patch, audited like any edit of the app."""
    ctx = load(request, instance, name, "autosync")
    form = AutosyncForm(request.POST)
    form.is_valid()  # three booleans: nothing can be invalid
    params = form.params()
    enforce(request, "autosync", services.target(ctx), params, namespace=ctx.namespace)
    patch = AutosyncForm.patch(params)
    change = _begin(request, ctx, "autosync", payload={"patchType": "merge", "patch": patch}, before=editable(ctx.app))
    try:
        result = ctx.client.patch_application(ctx.name, patch, patch_type="merge", **ctx.scope)
    except ArgoCDError as exc:
        change.failed(exc.message)
        messages.error(request, error_text(exc, instance))
        return redirect(_detail_url(ctx))
    change.succeeded(after=editable(result))
    messages.success(request, f"Automated sync of {ctx.name} is {'on' if params['automated'] else 'off'}.")
    return redirect(_detail_url(ctx))


@require_GET
@argocd_errors
def detail(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    tab = request.GET.get("tab", "")
    tab = tab if tab in TABS else ""
    ctx = load(request, instance, name, "logs" if tab == "logs" else "view")
    data = _tab_data(request, ctx, tab)
    if request.htmx and tab:
        return render(request, "applications/detail.html#tab", data)
    app_summary = services.summary(ctx.app)
    data.update(
        summary=app_summary,
        sync_form=SyncForm(resources=app_summary["resources"], limits=sync_limits(request.user, services.target(ctx))),
        tabs=[(key, label) for key, (label, _) in TABS.items()],
        terminate_nonce=new_nonce(),
        live=services.live_state(ctx, app_summary, _shown_rights(data)),
    )
    data["sync_form"].approval_note = approval_note(request.user, services.target(ctx))
    data["poller"] = {"live_url": reverse("applications:live", args=[ctx.instance.name, ctx.name]) + ctx.ns_query}
    data["poller"]["period"] = data["live"]["period"]
    return render(request, "applications/detail.html", data)


@require_GET
@argocd_errors
def live(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    """The open detail page's poll: the summary box (badges, last operation, buttons) and, when it is the open
    tab, the resource tree, swapped out of band — or 204 when neither changed since the versions the page sent.

    Never an error status, which the page would flag on every poll: a failed read says so in the poller, which
    keeps trying; an app that is gone (or no longer visible) says so, and the poller stops.
    """
    live_url = reverse("applications:live", args=[instance, name])
    live_url += services.ns_query(services.requested_namespace(request) or "")
    poller = {"live_url": live_url, "period": services.LIVE_POLL_SECONDS}
    tree_seen = request.GET.get("tree")
    try:
        ctx = load(request, instance, name)
        data = _tab_data(request, ctx, "")
        app_summary = services.summary(ctx.app)
        data.update(summary=app_summary, live=services.live_state(ctx, app_summary, _shown_rights(data)))
        if tree_seen is not None:
            data.update(services.tree_context(ctx, request), tree=True)
    except Http404:
        poller["gone"] = f"{name} is no longer on {instance}, or you may no longer see it."
        return render(request, "applications/live.html", {"poller": poller})
    except ArgoCDError as exc:
        poller["failed"] = f"Could not re-read {name}: {error_text(exc, instance)}. The page shows what it last read."
        return render(request, "applications/live.html", {"poller": poller})
    unchanged = data["live"]["version"] == request.GET.get("v") and tree_seen in (None, data.get("tree_version"))
    if unchanged and "recover" not in request.GET:
        return HttpResponse(status=204)
    data.update(terminate_nonce=new_nonce(), poller={**poller, "period": data["live"]["period"]})
    return render(request, "applications/live.html", data)


def _tab_data(request: HttpRequest, ctx: AppContext, tab: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"ctx": ctx, "instance": ctx.instance, "app": ctx.app, "tab": tab, **extra}
    data["may"] = services.permissions(request, ctx)
    data["window"] = _window_blocks(request, ctx)
    if tab:
        data["tab_template"] = f"applications/tabs/{tab}.html"
        try:
            data.update(TABS[tab][1](ctx, request))
        except ArgoCDError as exc:
            data["tab_error"] = error_text(exc, ctx.instance.name)
    return data


def _shown_rights(data: dict[str, Any]) -> dict[str, Any]:
    """What the summary box's buttons depend on: rights, and the window blocking sync (so a poll shows it change)."""
    return {**data["may"], "window": str(data["window"]["sync"] or "")}


def _window_blocks(request: HttpRequest, ctx: AppContext) -> dict[str, Any]:
    """The change window blocking each operation this page starts (None when open), for its buttons and forms."""
    return {a: windows.check(request.user, a, ctx.instance, ctx.project, ctx.name) for a in ("sync", "rollback")}


@require_http_methods(["GET", "POST"])
@argocd_errors
def sync(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    ctx = load(request, instance, name, "view" if request.method == "GET" else "sync")
    resources = services.summary(ctx.app)["resources"]
    limits = sync_limits(request.user, services.target(ctx))
    form = SyncForm(request.POST or None, resources=resources, limits=limits)
    if request.method == "POST":
        if form.is_valid():
            params = form.params()
            asked = _approval_asked(request, ctx, "sync", params)
            if asked is not None:
                return asked
            # The disabled fields explain; this decides (a hand-made POST carries what it likes).
            enforce(request, "sync", services.target(ctx), params, namespace=ctx.namespace)
            key = idempotency_key(request, "sync", form.cleaned_data["nonce"])
            op = _start(request, ctx, "sync", params, key)
            return _answer(request, ctx, op=op, nonce_id="id_nonce")
        if request.htmx:  # the form sits in a dialog that closes on answer: say what was wrong next to the card area
            problems = "; ".join(
                f"{form[f].label if f in form.fields else 'Form'}: {' '.join(e)}" for f, e in form.errors.items()
            )
            return _answer(request, ctx, error=f"Sync not started — {problems}")
    form.approval_note = approval_note(request.user, services.target(ctx))
    data = {"ctx": ctx, "sync_form": form, "window": _window_blocks(request, ctx)}
    return render(request, "applications/sync.html", data)


def _approval_asked(request: HttpRequest, ctx: AppContext, kind: str, params: dict) -> HttpResponse | None:
    """The approval request form when the decision on this request is needs-approval; None otherwise."""
    from apps.access.decide import decide

    decision = decide(request.user, kind, services.target(ctx), params)
    if not decision.needs_approval:
        return None
    error = services.rollback_refusal(ctx, params["id"]) if kind == "rollback" else ""
    if error:  # no point asking approvers for what Argo CD would refuse
        record(request, action="rollback", outcome=Outcome.FAILED, payload=params, error=error, **_target(ctx))
        return _answer(request, ctx, error=error, tab="history")
    return approval_request_form(request, ctx, kind, params, decision)


def _start(request: HttpRequest, ctx: AppContext, kind: str, params: dict, key: str | None) -> Any:
    """Start the operation unless a change window blocks it (refused with 403, audited); an `override` holder's
    written reason breaks glass: the operation runs, flagged, beside an audited override event."""
    from apps.operations.services import start_operation

    reason = request.POST.get("override_reason", "").strip()[:MAX_OVERRIDE_REASON]
    params = services.operation_params(ctx, params)
    block = window_gate(request, kind, ctx.instance, ctx.project, ctx.name, reason)
    with transaction.atomic():
        op = start_operation(
            request,
            kind=kind,
            instance=ctx.instance,
            project=ctx.project,
            target=ctx.name,
            params=params,
            idempotency_key=key,
            override_reason=reason if block else "",
        )
        if block is not None and op.override_reason:
            record_override(request, op, block, reason)
    return op


@require_POST
@argocd_errors
def rollback(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    ctx = load(request, instance, name, "rollback")
    form = RollbackForm(request.POST)
    if not form.is_valid():
        return _answer(request, ctx, error="Pick a history entry to roll back to.", tab="history")
    d = form.cleaned_data
    params = {"id": d["id"], "prune": d["prune"], "dryRun": d["dry_run"]}
    asked = _approval_asked(request, ctx, "rollback", params)
    if asked is not None:
        return asked
    enforce(request, "rollback", services.target(ctx), params, namespace=ctx.namespace)
    error = services.rollback_refusal(ctx, d["id"])
    if error:
        record(request, action="rollback", outcome=Outcome.FAILED, payload=params, error=error, **_target(ctx))
        return _answer(request, ctx, error=error, tab="history")
    op = _start(request, ctx, "rollback", params, idempotency_key(request, "rollback", d["nonce"]))
    return _answer(request, ctx, op=op, nonce_id=f"rollback-nonce-{d['id']}")


@require_POST
@argocd_errors
def terminate(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    ctx = load(request, instance, name, "terminate")
    key = idempotency_key(request, "terminate", request.POST.get("nonce", ""))
    return _answer(request, ctx, op=_start(request, ctx, "terminate", {}, key), nonce_id="terminate-nonce")


def _target(ctx: AppContext) -> dict[str, str]:
    return {"instance": ctx.instance.name, "kind": "application", "project": ctx.project,
            "namespace": ctx.namespace, "name": ctx.name}  # fmt: skip


def _begin(request: HttpRequest, ctx: AppContext, action: str, **kw: Any) -> Change:
    """The audited intent of a change to this app (see apps.audit.service.begin)."""
    return begin(request, action=action, **_target(ctx), **kw)


@require_POST
@argocd_errors
def resource(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    """Run a resource action or delete a live resource (dispatch on the submit button's name)."""
    deleting = "delete_resource" in request.POST
    ctx = load(request, instance, name, "delete" if deleting else "action")
    form = ResourceForm(request.POST)
    if not form.is_valid() or not (deleting or form.cleaned_data["action"]):
        return _actions_answer(request, ctx, error="The resource or the action is missing.")
    target, d = form.target(), form.cleaned_data
    label = f"{d['kind']} {d['resource_name']}"
    params = {k[6:]: v for k, v in request.POST.items() if k.startswith("param_") and v != ""}
    payload = {"resource": target, **({"orphan": d["orphan"], "force": d["force"]} if deleting else {})}
    if not deleting:
        payload.update(action=d["action"], parameters=params)
    change = _begin(request, ctx, "delete_resource" if deleting else "action", payload=payload)
    try:
        if deleting:
            ctx.client.delete_resource(ctx.name, **target, orphan=d["orphan"], force=d["force"], **ctx.scope)
            notice = f"Deleted {label}."
        else:
            ctx.client.run_resource_action(ctx.name, d["action"], **target, parameters=params or None, **ctx.scope)
            notice = f"Ran {d['action']} on {label}."
    except ArgoCDError as exc:
        change.failed(exc.message)
        return _actions_answer(request, ctx, error=error_text(exc, instance))
    change.succeeded()
    return _actions_answer(request, ctx, notice=notice)


def _actions_answer(request: HttpRequest, ctx: AppContext, *, notice: str = "", error: str = "") -> HttpResponse:
    if request.htmx:
        data = _tab_data(request, ctx, "actions", notice=notice, error=error)
        return render(request, "applications/detail.html#tab", data)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(_detail_url(ctx, "actions"))


def editable(app: dict) -> dict:
    """The part of an Application a person edits: metadata that Argo CD lets you change, and the spec."""
    meta = app.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations", "finalizers") if meta.get(k)}
    return {"metadata": keep, "spec": app.get("spec") or {}}


def dump(doc: Any, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True)
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


@require_http_methods(["GET", "POST"])
@argocd_errors
def edit(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    ctx = load(request, instance, name, "view" if request.method == "GET" else "edit")
    current = editable(ctx.app)
    data: dict[str, Any] = {"ctx": ctx, "diff": None, "may": services.permissions(request, ctx)}
    fmt = request.POST.get("format", request.GET.get("format", "yaml"))
    edit_form = EditForm(initial={"document": dump(current, fmt), "format": fmt})
    patch_form = PatchForm()
    if "apply_patch" in request.POST:
        patch_form = PatchForm(request.POST)
        if patch_form.is_valid() and _apply_patch(request, ctx, patch_form, current):
            return redirect(_detail_url(ctx))
        _audit_refusal(request, ctx, patch_form)
    elif request.method == "POST":
        edit_form = EditForm(request.POST)
        if edit_form.is_valid():
            new = edit_form.cleaned_data["parsed"]
            # The toggles re-submit this form (the document is in the POST body, never in a link).
            data["diff"] = diff_docs(current, editable(new), "current", "new", query=request.POST, link_query={})
            if "apply" in request.POST and _apply_edit(request, ctx, edit_form, current, new):
                return redirect(_detail_url(ctx))
        _audit_refusal(request, ctx, edit_form)
    data.update(edit_form=edit_form, patch_form=patch_form)
    template = "applications/edit.html#forms" if request.htmx else "applications/edit.html"
    return render(request, template, data)


def _audit_refusal(request: HttpRequest, ctx: AppContext, form: Any) -> None:
    """A document refused for its size, depth or aliases is as likely a probe as a slip: it is audited."""
    message = documents.refusal(form)
    if message:
        record(request, action="edit", outcome=Outcome.FAILED, error=message, **_target(ctx))


def _project_guard(request: HttpRequest, ctx: AppContext, new_project: Any) -> None:
    """Moving an app to another project needs `edit` there too, or the edit is a way out of one's grants.

    Argo CD reads an empty or missing project as "default", so that is the project such an edit moves to.
    """
    target = new_project if isinstance(new_project, str) and new_project else "default"
    if target != ctx.project:
        require(
            request, "edit", ctx.instance, target, ctx.name, kind="application", name=ctx.name, namespace=ctx.namespace
        )


def _apply_edit(request: HttpRequest, ctx: AppContext, form: EditForm, current: dict, new: dict) -> bool:
    meta = new.get("metadata") or {}
    if meta.get("name", ctx.name) != ctx.name or meta.get("namespace", ctx.namespace) != ctx.namespace:
        form.add_error(None, "Renaming or moving an application is not possible; create a new one instead.")
        return False
    _project_guard(request, ctx, new["spec"].get("project"))
    body = {
        "metadata": {**editable(new)["metadata"], "name": ctx.name, "namespace": ctx.namespace},
        "spec": new["spec"],
    }
    change = _begin(request, ctx, "edit", before=current, after=editable(body))
    try:
        result = ctx.client.update_application(body)
    except ArgoCDError as exc:
        change.failed(exc.message)
        form.add_error(None, error_text(exc, ctx.instance.name))
        return False
    change.succeeded(after=editable(result))
    messages.success(request, f"Updated {ctx.name}.")
    return True


def _patched_project(app: dict, patch: Any, patch_type: str) -> Any:
    """The project the app would be in after the patch: applied here to a copy, exactly as Argo CD will."""
    try:
        result = apply_merge_patch(app, patch) if patch_type == "merge" else apply_json_patch(app, patch)
    except PatchError:
        return app.get("spec", {}).get("project")  # Argo CD refuses it; nothing moves
    spec = result.get("spec") if isinstance(result, dict) else None
    return spec.get("project") if isinstance(spec, dict) else None


def _apply_patch(request: HttpRequest, ctx: AppContext, form: PatchForm, current: dict) -> bool:
    patch, patch_type = form.cleaned_data["parsed"], form.cleaned_data["patch_type"]
    _project_guard(request, ctx, _patched_project(ctx.app, patch, patch_type))
    change = _begin(request, ctx, "edit", payload={"patchType": patch_type, "patch": patch}, before=current)
    try:
        result = ctx.client.patch_application(ctx.name, patch, patch_type=patch_type, **ctx.scope)
    except ArgoCDError as exc:
        change.failed(exc.message)
        form.add_error(None, error_text(exc, ctx.instance.name))
        return False
    change.succeeded(after=editable(result))
    messages.success(request, f"Patched {ctx.name}.")
    return True


@require_POST
@argocd_errors
def delete(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    ctx = load(request, instance, name, "delete")
    form = DeleteForm(request.POST)
    if not form.is_valid() or form.cleaned_data["confirm_name"] != ctx.name:
        messages.error(request, f"Type the application's name ({ctx.name}) to delete it; nothing was deleted.")
        return redirect(_detail_url(ctx))
    cascade = form.cleaned_data["cascade"]
    # Argo CD refuses a propagation policy without cascade.
    policy = (form.cleaned_data["propagation_policy"] or None) if cascade else None
    payload = {"cascade": cascade, "propagationPolicy": policy}
    change = _begin(request, ctx, "delete", payload=payload, before=editable(ctx.app))
    try:
        ctx.client.delete_application(ctx.name, cascade=cascade, propagation_policy=policy, **ctx.scope)
    except ArgoCDError as exc:
        change.failed(exc.message)
        messages.error(request, error_text(exc, instance))
        return redirect(_detail_url(ctx))
    change.succeeded()
    messages.success(request, f"Deleting {ctx.name} on {instance}{' with its resources' if cascade else ''}.")
    try:
        return redirect(reverse("index:list"))
    except NoReverseMatch:
        return redirect("/applications/")


@require_http_methods(["GET", "POST"])
@argocd_errors
def create(request: HttpRequest) -> HttpResponse:
    # Offered: the instances and projects where the user may create something. A submit is not held to the
    # offer: `require` checks it on the project and name it really names, and audits a refusal.
    visible = instances_visible(request.user)
    offered = [i for i in visible if can_somewhere(request.user, "create", i)]
    chosen = request.GET.get("instance") or request.POST.get("instance", "")
    if not chosen:
        return render(request, "applications/create.html", {"instances": offered})
    instance = get_instance(chosen)
    if not any(i.pk == instance.pk for i in visible):
        return render(request, "applications/create.html", {"instances": offered}, status=404)
    if request.method == "GET" and not any(i.pk == instance.pk for i in offered):
        refusal = f"You may not create applications on {instance.name}."
        return render(request, "applications/create.html", {"instances": offered, "refusal": refusal}, status=403)
    with instance.client() as client:
        names = sorted(p["metadata"]["name"] for p in client.list_projects())
        projects = [p for p in names if can_somewhere(request.user, "create", instance, p)]
        known = helpers.offered(client, instance.name)
        yaml_mode = "create_yaml" in request.POST
        form = CreateForm(None if yaml_mode else (request.POST or None), projects=projects)
        yaml_form = CreateYamlForm(request.POST if yaml_mode else None, initial={"document": _yaml_template(projects)})
        active = yaml_form if yaml_mode else form
        if request.method == "POST" and active.is_valid():
            app = active.cleaned_data["document"] if yaml_mode else active.application()
            created = _create(request, instance, client, app, active)
            if created:
                url = reverse("applications:detail", args=[instance.name, created["metadata"]["name"]])
                return redirect(url + services.ns_query(services.other_namespace(created)))
        refused = documents.refusal(active) if request.method == "POST" else ""
        if refused:  # a document refused for its size, depth or aliases is as likely a probe as a slip
            audit = {"instance": instance.name, "kind": "application", "error": refused}
            record(request, action="create", outcome=Outcome.FAILED, **audit)
    data = {"instance": instance, "instances": offered, "form": form, "yaml_form": yaml_form, "yaml_mode": yaml_mode}
    data.update(known)
    if request.htmx and request.method == "GET":  # the instance was switched: the form with that one's lists
        return render(request, "applications/create.html#page", data)
    return render(request, "applications/create.html", data, status=200 if request.method == "GET" else 422)


def _create(request: HttpRequest, instance: Any, client: Any, app: dict, form: Any) -> dict:
    meta, spec = app["metadata"], app["spec"]
    project, name = spec.get("project") or "default", meta["name"]
    namespace = meta.get("namespace") or ""
    require(request, "create", instance, project, name, kind="application", name=name, namespace=namespace)
    audit = {"instance": instance.name, "kind": "application", "project": project, "name": name}
    audit["namespace"] = namespace
    change = begin(request, action="create", payload=app, **audit)
    try:
        result = client.create_application(app, upsert=False, validate=True)
    except ArgoCDError as exc:
        change.failed(exc.message)
        form.add_error(None, error_text(exc, instance.name))
        return {}
    change.succeeded(after=editable(result))
    messages.success(request, f"Created {name} on {instance.name}.")
    result.setdefault("metadata", {}).setdefault("name", name)
    return result


def _yaml_template(projects: list[str]) -> str:
    example = {
        "metadata": {"name": "my-app", "namespace": "argocd", "labels": {"team": "example"}},
        "spec": {
            "project": projects[0] if projects else "default",
            "source": {"repoURL": "https://github.com/org/repo.git", "path": "deploy", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "my-app"},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
        },
    }
    return dump(example)
