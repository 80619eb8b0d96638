"""Reading one application live and shaping Argo CD's answers for the detail page.

Every view opens with `load()`: find the instance, fetch the app live (to learn its project), check `require()`.
Argo CD errors surface as `ArgoCDError`; `argocd_errors` turns them into a readable page or fragment.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import yaml
from django.http import Http404, HttpRequest

from apps.access.decide import Target
from apps.access.guards import get_instance, probe, require, require_visible
from apps.access.rules import can
from apps.argocd import ArgoCDClient, Outcome, errors, fan_out
from apps.argocd.errors import ArgoCDError
from apps.core.argocd_pages import error_text
from apps.core.diff import diff_docs
from apps.instances.models import Instance
from apps.operations import progress
from apps.operations.services import new_nonce

JSON = dict[str, Any]

SYNC_OPTIONS = [
    ("CreateNamespace=true", "Create the namespace if missing"),
    ("PruneLast=true", "Prune last"),
    ("ApplyOutOfSyncOnly=true", "Apply out-of-sync resources only"),
    ("ServerSideApply=true", "Server-side apply"),
    ("Replace=true", "Replace instead of apply"),
    ("Validate=false", "Skip schema validation"),
    ("RespectIgnoreDifferences=true", "Respect ignoreDifferences"),
]
PRUNE_POLICIES = ["foreground", "background", "orphan"]
MAX_ACTION_LOOKUPS = 50
# A Kubernetes namespace name (RFC 1123 label).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass
class AppContext:
    """What a view needs after `load()`: the instance, an open client and the live Application."""

    instance: Instance
    client: ArgoCDClient
    app: JSON

    @property
    def name(self) -> str:
        return self.app.get("metadata", {}).get("name", "")

    @property
    def namespace(self) -> str:
        return self.app.get("metadata", {}).get("namespace", "")

    @property
    def project(self) -> str:
        return self.app.get("spec", {}).get("project", "") or "default"

    @property
    def other_namespace(self) -> str:
        """The app's namespace when it is not the control plane's (apps in any namespace), else ""."""
        return other_namespace(self.app)

    @property
    def ns_query(self) -> str:
        """`?appNamespace=…` for the portal's URLs of an app outside the control plane's namespace, else ""."""
        return ns_query(self.other_namespace)

    @property
    def tab_query(self) -> str:
        """The start of a relative tab link (`?…&` or `?`), keeping the app's namespace."""
        return f"{self.ns_query}&" if self.ns_query else "?"

    @property
    def scope(self) -> dict[str, str]:
        """Keyword arguments that pin later calls to this app's project (NotFound instead of PermissionDenied)
        and, outside the control plane's namespace, address the app in its own namespace."""
        scope = {"project": self.project}
        if self.other_namespace:
            scope["app_namespace"] = self.other_namespace
        return scope


# Where Argo CD keeps Applications unless `application.namespaces` lets them live elsewhere; an app's
# `status.controllerNamespace` names it when Argo CD has reconciled the app.
CONTROL_PLANE_NAMESPACE = "argocd"


def other_namespace(app: JSON) -> str:
    namespace = (app.get("metadata") or {}).get("namespace") or ""
    control_plane = (app.get("status") or {}).get("controllerNamespace") or CONTROL_PLANE_NAMESPACE
    return namespace if namespace and namespace != control_plane else ""


def ns_query(namespace: str) -> str:
    return "?" + urlencode({"appNamespace": namespace}) if namespace else ""


def operation_params(ctx: AppContext, params: dict) -> dict:
    """An operation's parameters for the worker: with `appNamespace` when the app lives outside the control plane's
    namespace, so the worker addresses the same app the permission was decided on."""
    return {**params, "appNamespace": ctx.other_namespace} if ctx.other_namespace else params


def requested_namespace(request: HttpRequest) -> str | None:
    """The `appNamespace` a portal URL addresses (None: the control plane's namespace). Argo CD decides whether
    it is one where applications may live; a malformed one is refused here like a missing app."""
    value = (request.GET.get("appNamespace") or "").strip()
    return value or None


def load(
    request: HttpRequest, instance_name: str, app_name: str, action: str = "view", *, refresh: str | None = None
) -> AppContext:
    """Find the instance, read the app live and check `action` on it; 404 for unknown or invisible apps.

    `refresh` ("normal" or "hard") asks Argo CD to reconcile first (it answers once that is done)."""
    instance = get_instance(instance_name, request, kind="application", target=app_name)
    # Nobody without a grant on this instance learns anything about it, not even that it is down.
    require_visible(request, instance, kind="application", target=app_name)
    client = instance.client()
    request._argocd_clients = [*getattr(request, "_argocd_clients", []), client]
    namespace = requested_namespace(request)
    if namespace is not None and not DNS_LABEL.fullmatch(namespace):
        probe(request, instance.name, "application", app_name, f"malformed namespace {namespace[:63]!r}")
        raise Http404(f"No application {app_name!r} on {instance_name}.")
    try:
        app = client.get_application(
            app_name, app_namespace=namespace, refresh=refresh if refresh in ("normal", "hard") else None
        )
    except (errors.NotFound, errors.PermissionDenied) as exc:
        # Argo CD answers PermissionDenied for a missing app when no project is given (NOTES §a), and for an
        # app namespace that `application.namespaces` does not enable.
        where = f" in namespace {namespace}" if namespace else ""
        probe(request, instance.name, "application", app_name, f"no such application{where} in Argo CD")
        raise Http404(f"No application {app_name!r}{where} on {instance_name}.") from exc
    ctx = AppContext(instance, client, app)
    require(
        request, action, instance, ctx.project, ctx.name, kind="application", name=ctx.name, namespace=ctx.namespace
    )
    return ctx


def rollback_refusal(ctx: AppContext, history_id: int) -> str:
    """Why Argo CD would refuse rolling this app back to `history_id`, or "" (checked before any Operation)."""
    if ((ctx.app.get("spec") or {}).get("syncPolicy") or {}).get("automated"):
        return f"{ctx.name} has automated sync on: Argo CD refuses a rollback until you turn it off (Edit the spec)."
    if history_id not in [h.get("id") for h in (ctx.app.get("status") or {}).get("history") or []]:
        return f"{ctx.name} has no deployment with id {history_id} in its history."
    return ""


ACTIONS = ("sync", "rollback", "terminate", "action", "logs", "edit", "delete", "autosync", "refresh")


def own_revision(app: JSON) -> str:
    """The app's own `targetRevision` (of its first source): what a grant's "own revision only" allows."""
    spec = app.get("spec") or {}
    source = spec.get("source") or (spec.get("sources") or [{}])[0]
    return str(source.get("targetRevision") or "")


def target(ctx: AppContext) -> Target:
    """The app as `apps.access.decide` sees it."""
    return Target(ctx.instance, ctx.project, ctx.name, own_revision(ctx.app), namespace=ctx.namespace or "*")


def permissions(request: HttpRequest, ctx: AppContext) -> dict[str, bool]:
    """What the user may do on this app, to hide buttons they cannot use (the views still check each POST)."""
    return {a: can(request.user, a, ctx.instance, ctx.project, ctx.name, ctx.namespace or "*") for a in ACTIONS}


# ---------------------------------------------------------------- live page

# The open detail page re-reads its app this often; faster while an operation is queued or running on it.
LIVE_POLL_SECONDS = 5
LIVE_POLL_BUSY_SECONDS = 2


def fingerprint(*parts: Any) -> str:
    """A short digest of what a part of the page shows, so a poll can answer "unchanged" without HTML."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def live_state(ctx: AppContext, app_summary: JSON, may: dict[str, bool]) -> JSON:
    """The summary box's version (a digest of what it shows) and how often the page should poll it.

    Not the app's resourceVersion: Argo CD bumps it on every reconcile (reconciledAt), which would re-send an
    unchanged box every few minutes per app. The box shows the operation's phase, message, times and initiator,
    and the sync's per-resource results by phase and wave (`sync_steps`), which change as the sync goes.
    """
    from apps.operations.models import Operation

    op = app_summary["operation_state"]
    shown = {k: v for k, v in app_summary.items() if k not in ("resources", "reconciled_at", "operation_state")}
    shown["operation"] = {k: op.get(k) for k in ("phase", "message", "startedAt", "finishedAt")}
    shown["initiated_by"] = (op.get("operation") or {}).get("initiatedBy")
    queued_here = Operation.objects.filter(
        instance=ctx.instance,
        target=ctx.name,
        kind__in=(Operation.Kind.SYNC, Operation.Kind.ROLLBACK, Operation.Kind.TERMINATE),
        state__in=(Operation.State.QUEUED, Operation.State.RUNNING),
    ).exists()
    busy = app_summary["operation_running"] or queued_here
    return {
        "version": fingerprint(shown, may, busy),
        "period": LIVE_POLL_BUSY_SECONDS if busy else LIVE_POLL_SECONDS,
    }


# ---------------------------------------------------------------- summary


def summary(app: JSON) -> JSON:
    """The fields of the summary box, flattened so the template stays plain."""
    meta, spec, status = app.get("metadata", {}), app.get("spec", {}), app.get("status", {})
    sources = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    policy = spec.get("syncPolicy") or {}
    op_state = status.get("operationState") or {}
    return {
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "project": spec.get("project", ""),
        "labels": sorted((meta.get("labels") or {}).items()),
        "annotations": sorted((meta.get("annotations") or {}).items()),
        "sources": sources,
        "destination": spec.get("destination") or {},
        "sync_status": (status.get("sync") or {}).get("status", "Unknown"),
        "sync_revision": (status.get("sync") or {}).get("revision", ""),
        "health_status": (status.get("health") or {}).get("status", "Unknown"),
        "health_message": (status.get("health") or {}).get("message", ""),
        "operation_state": op_state,
        "operation_running": bool(app.get("operation")) or op_state.get("phase") in ("Running", "Terminating"),
        "conditions": status.get("conditions") or [],
        "automated": policy.get("automated"),
        "sync_options": policy.get("syncOptions") or [],
        "retry": policy.get("retry"),
        "images": (status.get("summary") or {}).get("images") or [],
        "external_urls": (status.get("summary") or {}).get("externalURLs") or [],
        "resources": status.get("resources") or [],
        "reconciled_at": status.get("reconciledAt", ""),
        "sync_steps": progress.steps(
            progress.with_waves((op_state.get("syncResult") or {}).get("resources") or [], app)
        ),
    }


def resource_key(res: JSON) -> str:
    """A stable form value for one resource: group/kind/namespace/name (group empty for the core group)."""
    return "/".join([res.get("group", ""), res.get("kind", ""), res.get("namespace", ""), res.get("name", "")])


def parse_resource_key(key: str) -> JSON | None:
    parts = key.split("/")
    if len(parts) != 4 or not parts[1] or not parts[3]:
        return None
    return {"group": parts[0], "kind": parts[1], "namespace": parts[2], "name": parts[3]}


# ---------------------------------------------------------------- tabs


def tree_context(ctx: AppContext, request: HttpRequest) -> JSON:
    """The tree tab: the graph (default), a list, pods grouped by node or parent, or the network view.

    The filters, the view and what is collapsed ride in the URL (see `graph.Filters`)."""
    from . import graph

    tree = ctx.client.get_resource_tree(ctx.name, **ctx.scope)
    f = graph.Filters.from_query(request.GET)
    f.app_namespace = ctx.other_namespace
    status = ctx.app.get("status") or {}
    synced = sorted((resource_key(r), r.get("status", "")) for r in status.get("resources") or [])
    data: JSON = {
        "filters": f,
        "views": graph.VIEWS,
        "health_states": graph.HEALTH_STATES,
        "sync_states": graph.SYNC_STATES,
        "orphans": tree.get("orphanedNodes") or [],
        "tree_version": fingerprint(
            [_shown_node(n) for n in tree.get("nodes") or []], tree.get("orphanedNodes"), synced
        ),
        "kinds": sorted({n.get("kind", "") for n in tree.get("nodes") or []} | {r[0].split("/")[1] for r in synced}),
    }
    if f.view == "list":
        data["rows"] = graph.flat_list(tree, ctx.app, f)
    elif f.view == "pods":
        data["pod_groups"] = graph.pods_view(tree, ctx.app, f)
    elif f.view == "network":
        data["network"] = graph.network_view(tree, ctx.app, f)
    else:
        data["graph"] = graph.graph(tree, ctx.app, f)
    return data


def _shown_node(node: JSON) -> JSON:
    """What the tree tab shows of a node: a resource's own resourceVersion churns without anything visible."""
    keys = ("group", "kind", "namespace", "name", "uid", "health", "info", "images")
    return {**{k: node.get(k) for k in keys}, "parents": [p.get("uid") for p in node.get("parentRefs") or []]}


def _state(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


state_of = _state


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False) if obj is not None else ""


def resources_context(ctx: AppContext, request: HttpRequest) -> JSON:
    items = []
    for res in ctx.client.get_managed_resources(ctx.name, **ctx.scope):
        live = _state(res.get("normalizedLiveState")) or _state(res.get("liveState"))
        desired = _state(res.get("predictedLiveState")) or _state(res.get("targetState"))
        diff = diff_docs(live, desired, "live", "desired", query=request.GET)
        items.append(
            {
                "res": res,
                "diff": diff,
                "changed": diff.changed,
                "missing_live": live is None,
                "missing_desired": desired is None,
            }
        )
    items.sort(key=lambda i: (not i["changed"], i["res"].get("kind", ""), i["res"].get("name", "")))
    return {
        "managed": items,
        "changed_count": sum(1 for i in items if i["changed"]),
        "toolbar": items[0]["diff"] if items else None,
    }


def history_context(ctx: AppContext, request: HttpRequest) -> JSON:
    history = list(reversed((ctx.app.get("status") or {}).get("history") or []))
    calls = {}
    for entry in history:
        revision = entry.get("revision") or next(iter(entry.get("revisions") or []), "")
        if revision:
            calls[entry.get("id")] = partial(ctx.client.get_revision_metadata, ctx.name, revision, **ctx.scope)
    outcomes = fan_out(calls, max_workers=6, deadline=8.0)
    rows = []
    for entry in history:
        outcome = outcomes.get(entry.get("id"))
        rows.append(
            {
                "entry": entry,
                "revision": entry.get("revision") or ", ".join(entry.get("revisions") or []),
                "meta": outcome.value if outcome and outcome.ok else None,
                "meta_error": error_text(outcome.error) if outcome and not outcome.ok else "",
                "source": entry.get("source") or next(iter(entry.get("sources") or []), {}),
                "nonce": new_nonce(),
            }
        )
    automated = bool(((ctx.app.get("spec") or {}).get("syncPolicy") or {}).get("automated"))
    data: JSON = {"history": rows, "automated": automated}
    from . import rollback  # it builds on this module

    by_portal_user = rollback.initiators(ctx, history)
    for row in rows:
        row["portal_user"] = by_portal_user.get(row["entry"].get("id"), "")
    # ?rollback=<id>: the preview of rolling back to that entry, with the form that confirms it.
    chosen = request.GET.get("rollback")
    row = next((r for r in rows if chosen is not None and str(r["entry"].get("id")) == chosen), None)
    if row is not None and can(request.user, "rollback", ctx.instance, ctx.project, ctx.name):
        data["rollback"] = {**rollback.preview(ctx, request, row["entry"]), "row": row}
    elif chosen is not None and row is None:
        data["rollback_missing"] = chosen[:20]
    return data


def events_context(ctx: AppContext, request: HttpRequest) -> JSON:
    items = list(ctx.client.list_application_events(ctx.name, **ctx.scope))
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True)
    return {"events": items}


def clamp_int(value: Any, default: int, low: int, high: int) -> int:
    """An int from a query parameter, kept within [low, high]; `default` when it is not a number."""
    try:
        return max(low, min(high, int(value)))
    except (TypeError, ValueError):
        return default


def pods_of(client: ArgoCDClient, ctx: AppContext) -> list[JSON]:
    tree = client.get_resource_tree(ctx.name, **ctx.scope)
    return [n for n in tree.get("nodes") or [] if n.get("kind") == "Pod" and not n.get("group")]


def logs_context(ctx: AppContext, request: HttpRequest) -> JSON:
    from . import logs  # it builds on this module

    return logs.context(ctx, request)


def _actions_for(ctx: AppContext, res: JSON) -> list[JSON]:
    return ctx.client.list_resource_actions(
        ctx.name,
        namespace=res.get("namespace") or None,
        resource_name=res["name"],
        version=res.get("version", "v1"),
        kind=res["kind"],
        group=res.get("group") or None,
        **ctx.scope,
    )


def actions_row(ctx: AppContext, res: JSON) -> JSON:
    """One row of the actions tab for one resource (the resource panel shows it alone)."""
    try:
        actions, error = sorted(_actions_for(ctx, res), key=lambda a: a.get("name", "")), ""
    except ArgoCDError as exc:
        actions, error = [], error_text(exc, ctx.instance.name)
    return {"res": res, "actions": actions, "error": error, "dom": "panel"}


def actions_context(ctx: AppContext, request: HttpRequest) -> JSON:
    resources = [r for r in (ctx.app.get("status") or {}).get("resources") or [] if not r.get("hook")]
    # One call per resource: bound it so a huge app cannot turn this tab into hundreds of requests.
    asked = resources[:MAX_ACTION_LOOKUPS]
    calls = {i: partial(_actions_for, ctx, r) for i, r in enumerate(asked)}
    outcomes = fan_out(calls, max_workers=6, deadline=8.0)
    rows = []
    for i, res in enumerate(resources):
        outcome = outcomes.get(i) or Outcome(ok=False, error=ArgoCDError("actions not looked up (too many)"))
        actions = sorted(outcome.value or [], key=lambda a: a.get("name", "")) if outcome.ok else []
        rows.append(
            {
                "res": res,
                "actions": actions,
                "error": "" if outcome.ok else error_text(outcome.error),
                "dom": f"r{i}",
            }
        )
    return {"rows": rows}


def windows_context(ctx: AppContext, request: HttpRequest) -> JSON:
    doc = ctx.client.get_application_syncwindows(ctx.name, **ctx.scope)
    return {
        "active_windows": doc.get("activeWindows") or [],
        "assigned_windows": doc.get("assignedWindows") or [],
        "can_sync": doc.get("canSync", True),
    }


TABS: dict[str, tuple[str, Callable[[AppContext, HttpRequest], JSON]]] = {
    "tree": ("Resource tree", tree_context),
    "diff": ("Diff", resources_context),
    "history": ("History", history_context),
    "events": ("Events", events_context),
    "logs": ("Logs", logs_context),
    "actions": ("Resources & actions", actions_context),
    "windows": ("Sync windows", windows_context),
}
