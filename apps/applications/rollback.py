"""The history tab's two additions: who started each deployment (the portal user behind the portal's Argo CD
account), and the preview of a rollback (what the chosen revision's manifests change against the current ones).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from apps.argocd import fan_out
from apps.core.argocd_pages import error_text
from apps.core.diff import diff_docs
from apps.operations.models import Operation

JSON = dict[str, Any]


def initiators(ctx: Any, history: list[JSON]) -> dict[int, str]:
    """`{history id: portal user name}` for the entries a portal operation deployed.

    Argo CD records the account that called it (`initiatedBy.username`: the portal's own token) and accepts no
    other name from a client. A history entry's `deployStartedAt` is the `startedAt` of the operation that
    made it, which the portal's Operation row keeps in its result: that match names the person."""
    starts = {e.get("deployStartedAt"): e.get("id") for e in history if e.get("deployStartedAt")}
    if not starts:
        return {}
    ops = (
        Operation.objects.filter(
            instance_name=ctx.instance.name,
            target=ctx.name,
            kind__in=[Operation.Kind.SYNC, Operation.Kind.ROLLBACK],
            result__startedAt__in=list(starts),
            requested_by__isnull=False,
        )
        .select_related("requested_by")
        .order_by("created_at")
    )
    return {starts[op.result["startedAt"]]: op.requested_by.get_username() for op in ops}


def _key(manifest: JSON) -> str:
    meta = manifest.get("metadata") or {}
    group = (manifest.get("apiVersion") or "").rpartition("/")[0]
    kind = manifest.get("kind", "")
    name = f"{meta.get('namespace')}/{meta.get('name', '')}" if meta.get("namespace") else meta.get("name", "")
    return f"{kind}{'.' + group if group else ''} {name}"


def current_revision(app: JSON) -> str:
    """The revision deployed now: the last sync's, else the newest history entry's."""
    status = app.get("status") or {}
    history = status.get("history") or []
    return ((status.get("sync") or {}).get("revision") or (history[-1].get("revision") if history else "")) or ""


def preview(ctx: Any, request: Any, entry: JSON) -> JSON:
    """Each resource's diff between the manifests of the current revision and those of `entry`'s revision."""
    now, then = current_revision(ctx.app), entry.get("revision") or ""
    calls = {
        side: partial(ctx.client.get_application_manifests, ctx.name, revision=rev or None, **ctx.scope)
        for side, rev in (("current", now), ("target", then))
    }
    outcomes = fan_out(calls, max_workers=2, deadline=15.0)
    failed = [o.error for o in outcomes.values() if not o.ok]
    data: JSON = {"entry": entry, "current_revision": now, "target_revision": then, "items": [], "error": ""}
    if failed or len(outcomes) < 2:
        error = error_text(failed[0], ctx.instance.name) if failed else "no answer in time"
        data["error"] = f"Could not render the manifests to compare: {error}"
        return data
    current = {_key(m): m for m in outcomes["current"].value.get("manifests") or []}
    target = {_key(m): m for m in outcomes["target"].value.get("manifests") or []}
    items = []
    for key in sorted(set(current) | set(target)):
        label = f"deployment {entry.get('id')}"
        diff = diff_docs(current.get(key), target.get(key), "current", label, query=request.GET)
        items.append({"key": key, "diff": diff, "added": key not in current, "removed": key not in target})
    items.sort(key=lambda i: not i["diff"].changed)  # changed first, then unchanged; each group by name
    data.update(
        items=items,
        changed_count=sum(1 for i in items if i["diff"].changed),
        toolbar=items[0]["diff"] if items else None,
        source_differs=_source_differs(ctx.app, entry),
    )
    return data


def _source_differs(app: JSON, entry: JSON) -> bool:
    """Whether the entry was deployed from another repository or path than the app's source today (the preview
    renders today's source at that revision, as Argo CD's own UI does)."""
    spec = app.get("spec") or {}
    now = spec.get("source") or next(iter(spec.get("sources") or []), {})
    then = entry.get("source") or next(iter(entry.get("sources") or []), {})
    return any((now.get(k) or "") != (then.get(k) or "") for k in ("repoURL", "path", "chart"))
