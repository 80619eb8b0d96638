"""The resource panel opened from a node of the tree: summary, live and desired manifests, diff, events, logs and
the resource's actions, one part at a time (HTMX), each offered and served only as the user's rights allow.

The parts reuse what the app's tabs already do: the diff component, the actions tab's rows and forms (whose
POSTs go to `views.resource`, which decides again), the logs tab for pods.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.access.guards import probe
from apps.argocd.errors import ArgoCDError
from apps.core.argocd_pages import argocd_errors, error_text
from apps.core.diff import diff_docs

from . import graph, services
from .forms import ResourceForm
from .services import AppContext, load

JSON = dict[str, Any]
PARTS = {
    "summary": "Summary",
    "live": "Live manifest",
    "desired": "Desired manifest",
    "diff": "Diff",
    "events": "Events",
    "logs": "Logs",
    "actions": "Actions",
}
MASK = "********"


def _masked(manifest: Any) -> Any:
    """A Secret's values never reach the page (Argo CD masks them too; this holds if a server does not)."""
    if isinstance(manifest, dict) and manifest.get("kind") == "Secret":
        manifest = dict(manifest)
        for key in ("data", "stringData"):
            if isinstance(manifest.get(key), dict):
                manifest[key] = dict.fromkeys(manifest[key], MASK)
        annotations = (manifest.get("metadata") or {}).get("annotations") or {}
        if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
            meta = dict(manifest["metadata"])
            meta["annotations"] = {**annotations, "kubectl.kubernetes.io/last-applied-configuration": MASK}
            manifest["metadata"] = meta
    return manifest


def _find(tree: JSON, app: JSON, res: JSON) -> graph.Item | None:
    wanted = (res["group"] or "", res["kind"], res["namespace"] or "", res["resource_name"])
    _root, items = graph.items_of(tree, app)
    return next((i for i in items if (i.group, i.kind, i.namespace, i.name) == wanted), None)


def _managed(ctx: AppContext, res: JSON) -> JSON | None:
    items = ctx.client.get_managed_resources(
        ctx.name, namespace=res["namespace"], resource_name=res["resource_name"], version=res["version"],
        group=res["group"], kind=res["kind"], **ctx.scope,
    )  # fmt: skip
    return next(iter(items), None)


def _live(ctx: AppContext, res: JSON) -> Any:
    return _masked(ctx.client.get_resource(ctx.name, **res, **ctx.scope))


def _first_pod(item: graph.Item) -> graph.Item | None:
    if item.kind == "Pod" and not item.group:
        return item
    for child in item.children:
        pod = _first_pod(child)
        if pod is not None:
            return pod
    return None


def _part(ctx: AppContext, part: str, res: JSON, item: graph.Item) -> JSON:
    if part == "live":
        return {"manifest": services.dump_yaml(_live(ctx, res))}
    if part in ("desired", "diff"):
        managed = _managed(ctx, res)
        if managed is None:
            return {"not_managed": True}
        live = services.state_of(managed.get("normalizedLiveState")) or services.state_of(managed.get("liveState"))
        desired = services.state_of(managed.get("predictedLiveState")) or services.state_of(managed.get("targetState"))
        live, desired = _masked(live), _masked(desired)
        if part == "desired":
            return {"manifest": services.dump_yaml(desired) if desired is not None else ""}
        return {"diff": diff_docs(live, desired, "live", "desired")}
    if part == "events":
        events = list(
            ctx.client.list_application_events(
                ctx.name, resource_namespace=res["namespace"], resource_name=res["resource_name"],
                resource_uid=(item.node or {}).get("uid"), **ctx.scope,
            )
        )  # fmt: skip
        events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True)
        return {"events": events}
    if part == "logs":
        return {"pod": _first_pod(item)}
    if part == "actions":
        row = services.actions_row(ctx, {**res, "name": res["resource_name"], "status": item.sync, "health": None})
        return {"rows": [row]}
    return {}


@require_GET
@argocd_errors
def resource_panel(request: HttpRequest, instance: str, name: str) -> HttpResponse:
    part = request.GET.get("part", "summary")
    part = part if part in PARTS else "summary"
    ctx = load(request, instance, name, "logs" if part == "logs" else "view")
    template = "applications/resource/panel.html" if request.htmx else "applications/resource/page.html"
    form = ResourceForm(request.GET)
    data: JSON = {"ctx": ctx, "instance": ctx.instance, "part": part, "may": services.permissions(request, ctx)}
    if not form.is_valid():
        data["panel_error"] = "Which resource? The link is missing its kind, version or name."
        return render(request, template, data, status=200 if request.htmx else 400)
    res = form.target()
    try:
        tree = ctx.client.get_resource_tree(ctx.name, **ctx.scope)
    except ArgoCDError as exc:
        data["panel_error"] = error_text(exc, instance)
        return render(request, template, data)
    item = _find(tree, ctx.app, res)
    if item is None:
        what = f"{res['kind']}/{res['resource_name']}"
        probe(request, ctx.instance.name, "resource", f"{ctx.name}:{what}", "no such resource in the application")
        raise Http404(f"{ctx.name} on {instance} has no resource {what}.")
    may = data["may"]
    shown = dict(PARTS)
    if not (may["logs"] and item.is_workload and _first_pod(item)):
        shown.pop("logs")
    if not (may["action"] or may["delete"]):
        shown.pop("actions")
    if part not in shown:
        part = data["part"] = "summary"
    data.update(item=item, res=res, parts=shown.items(), query=item.panel_query)
    try:
        data.update(_part(ctx, part, res, item))
    except ArgoCDError as exc:
        data["part_error"] = error_text(exc, instance)
    return render(request, template, data)
