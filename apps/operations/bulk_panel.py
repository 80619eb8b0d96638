"""The bulk panel: what to do with the applications ticked in the list (sync with options, refresh, hard refresh),
then a confirmation that names every application and instance and what will be refused and why, then the act.

Sync goes through the bulk sync of `services` (one parent Operation, a child per app, each decided again by the
worker); refresh asks Argo CD directly, one audited call per application, a few at a time.
"""

from __future__ import annotations

import hashlib
from functools import partial
from itertools import groupby
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.argocd.fanout import fan_out
from apps.audit.service import begin
from apps.core.argocd_pages import error_text

from .services import (
    DEFAULT_BULK_LIMIT,
    bulk_targets,
    idempotency_key,
    new_nonce,
    start_bulk_sync,
    within_constraints,
)

MAX_APPS = 200  # one panel; a larger selection is refused rather than cut silently
REFRESH_DEADLINE = 60.0  # seconds for all refreshes together: Argo CD answers a refresh once it has reconciled
ACTIONS = {"sync": "Sync", "refresh": "Refresh", "hard-refresh": "Hard refresh"}


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=list(ACTIONS.items()), initial="sync", widget=forms.RadioSelect)
    prune = forms.BooleanField(required=False, help_text="Delete resources that are no longer in Git.")
    dry_run = forms.BooleanField(required=False, label="Dry run", help_text="Show what would change, change nothing.")
    apply_only = forms.BooleanField(
        required=False, label="Apply only", help_text="kubectl apply without running the sync hooks."
    )
    force = forms.BooleanField(required=False, help_text="Delete and re-create resources that cannot be patched.")
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=100, initial=DEFAULT_BULK_LIMIT, label="At once per instance"
    )

    def sync_params(self) -> dict[str, Any]:
        d = self.cleaned_data
        params: dict[str, Any] = {"prune": d["prune"], "dryRun": d["dry_run"], "force": d["force"]}
        params["strategy"] = "apply" if d["apply_only"] else "hook"
        params["limit"] = d.get("limit") or DEFAULT_BULK_LIMIT
        return params

    def options(self) -> list[str]:
        d = self.cleaned_data
        return [label for key, label in (("prune", "prune"), ("dry_run", "dry run"), ("apply_only", "apply only"),
                                         ("force", "force")) if d.get(key)]  # fmt: skip


@require_POST
def bulk_panel(request: HttpRequest) -> HttpResponse:
    """One page, three steps chosen by the button: the options (from the list), the confirmation (`review`), the
    act (`confirm`). Only the act changes anything; every step is decided per app by `decide()`."""
    specs = list(dict.fromkeys(s.strip() for s in request.POST.getlist("app") if s.strip()))
    form = BulkForm(request.POST if "action" in request.POST else None)
    data: dict[str, Any] = {"specs": specs, "form": form, "step": "choose", "nonce": new_nonce()}
    if not specs or len(specs) > MAX_APPS:
        data["error"] = (
            "Select at least one application in the list first."
            if not specs
            else f"{len(specs)} applications are selected; a bulk action takes at most {MAX_APPS}."
        )
        return render(request, "operations/bulk_panel.html", data, status=400)
    if "review" not in request.POST and "confirm" not in request.POST:
        return render(request, "operations/bulk_panel.html", data)
    if not form.is_valid():
        return render(request, "operations/bulk_panel.html", data, status=422)
    action = form.cleaned_data["action"]
    data.update(action=action, action_label=ACTIONS[action], options=form.options() if action == "sync" else [])
    audit = "confirm" in request.POST
    allowed, refused = bulk_targets(request, specs, action="sync" if action == "sync" else "refresh", audit=audit)
    params = form.sync_params()
    if action == "sync":
        allowed = within_constraints(request, allowed, params, refused, audit=audit)
    data.update(refused=refused, groups=_by_instance(allowed), count=len(allowed))
    if not audit:
        data.update(step="review", nonce=request.POST.get("nonce") or new_nonce())
        return render(request, "operations/bulk_panel.html", data)
    data["step"] = "done"
    if not allowed:
        return render(request, "operations/bulk_panel.html", data, status=403)
    if action == "sync":
        # The same confirmation sent twice is one bulk sync; Back, other options or apps, and confirm: another.
        chosen = repr((sorted((t[0].pk, *t[1:]) for t in allowed), sorted(params.items())))
        selection = hashlib.sha1(chosen.encode()).hexdigest()[:12]
        key = idempotency_key(request, f"bulk_sync:{selection}", request.POST.get("nonce", ""))
        data["parent"] = start_bulk_sync(request, allowed, params, idempotency_key=key)
    else:
        data["results"] = _refresh(request, allowed, hard=action == "hard-refresh")
    return render(request, "operations/bulk_panel.html", data)


def _by_instance(targets: list) -> list[tuple[str, list[str]]]:
    ordered = sorted(targets, key=lambda t: (t[0].name, t[2]))
    return [(name, [t[2] for t in group]) for name, group in groupby(ordered, key=lambda t: t[0].name)]


def _one_refresh(instance: Any, name: str, namespace: str, mode: str) -> None:
    with instance.client() as client:
        client.get_application(name, app_namespace=namespace or None, refresh=mode)


def _refresh(request: HttpRequest, targets: list, *, hard: bool) -> list[tuple[str, str, str]]:
    """Refresh each app (intent audited first), several at once; (instance, app, "" or the error) per app."""

    mode = "hard" if hard else "normal"
    changes, calls = {}, {}
    for inst, project, name, namespace in targets:
        key = (inst.name, name)
        changes[key] = begin(request, action="refresh", instance=inst.name, kind="application", project=project,
                             namespace=namespace, name=name, payload={"refresh": mode, "bulk": True})  # fmt: skip
        calls[key] = partial(_one_refresh, inst, name, namespace, mode)
    results = []
    for key, outcome in fan_out(calls, deadline=REFRESH_DEADLINE).items():
        if outcome.ok:
            changes[key].succeeded()
            results.append((*key, ""))
        else:
            message = error_text(outcome.error, key[0])
            changes[key].failed(message)
            results.append((*key, message))
    return results
