"""What the create form offers from the chosen instance: its repositories, clusters and (in the view) projects;
paths and revisions found in a repository (Argo CD's `refs` and `apps`); a chart's Helm values and parameters
(`appdetails`). Reads only: a failure becomes a note beside the field, never an error page.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.access.guards import get_instance, require_visible
from apps.access.rules import can_somewhere
from apps.argocd.errors import ArgoCDError
from apps.audit.service import Outcome, record
from apps.core.argocd_pages import error_text

from .forms import CreateForm

JSON = dict[str, Any]
MAX_OFFERED = 500  # a datalist longer than this helps nobody; the field still takes any value


def offered(client: Any, instance_name: str) -> JSON:
    """The instance's repositories and clusters for the create form's datalists; a failed read is a note."""
    data: JSON = {"repos": [], "clusters": [], "offer_note": ""}
    try:
        data["repos"] = sorted({r.get("repo", "") for r in client.list_repositories() if r.get("repo")})[:MAX_OFFERED]
        clusters = client.list_clusters()
    except ArgoCDError as exc:
        data["offer_note"] = f"Could not read the repositories and clusters of {instance_name}: {error_text(exc)}."
        return data
    data["clusters"] = [
        {"server": c.get("server", ""), "name": c.get("name", "")} for c in clusters[:MAX_OFFERED] if c.get("server")
    ]
    return data


def _instance_for_create(request: HttpRequest) -> Any:
    """The instance named in the query, when the user may create applications somewhere on it (else 404/403,
    audited: these reads show what a repository holds)."""
    name = request.GET.get("instance", "")
    instance = get_instance(name, request, kind="repository", target=request.GET.get("repo_url", "")[:253])
    require_visible(request, instance, kind="repository", target=request.GET.get("repo_url", "")[:253])
    if not can_somewhere(request.user, "create", instance):
        record(request, action="create", outcome=Outcome.DENIED, instance=instance.name, kind="application",
               error="create form suggestions: not granted")  # fmt: skip
        raise PermissionDenied(f"You may not create applications on {instance.name}.")
    return instance


def _source(request: HttpRequest) -> JSON:
    q = request.GET
    source = {"repoURL": q.get("repo_url", "").strip(), "targetRevision": q.get("target_revision", "").strip()}
    for key, field in (("path", "path"), ("chart", "chart")):
        if q.get(field, "").strip():
            source[key] = q[field].strip()
    return source


@require_GET
def source_suggestions(request: HttpRequest) -> HttpResponse:
    """Datalists of revisions (branches, tags; chart versions), paths and charts of the typed repository."""
    instance = _instance_for_create(request)
    source = _source(request)
    data: JSON = {"revisions": [], "paths": [], "charts": [], "note": "", "error": ""}
    if not source["repoURL"]:
        data["note"] = "Choose a repository to see its branches, tags and paths."
        return render(request, "applications/_source_suggestions.html", data)
    with instance.client() as client:
        try:
            repo = next(iter(client.list_repositories(repo=source["repoURL"])), {})
            if repo.get("type") == "helm":
                charts = client.list_helm_charts(source["repoURL"])
                data["charts"] = [c.get("name", "") for c in charts][:MAX_OFFERED]
                chosen = next((c for c in charts if c.get("name") == source.get("chart")), None)
                data["revisions"] = list((chosen or {}).get("versions") or [])[:MAX_OFFERED]
            else:
                refs = client.list_repository_refs(source["repoURL"])
                data["revisions"] = ["HEAD", *(refs.get("branches") or []), *(refs.get("tags") or [])][:MAX_OFFERED]
                apps = client.list_repository_apps(source["repoURL"], revision=source["targetRevision"] or None)
                data["paths"] = [a.get("path", "") for a in apps if a.get("path")][:MAX_OFFERED]
        except ArgoCDError as exc:
            data["error"] = f"{source['repoURL']}: {error_text(exc, instance.name)}"
            return render(request, "applications/_source_suggestions.html", data)
    found = [f"{len(data[k])} {k}" for k in ("paths", "charts", "revisions") if data[k]]
    data["note"] = f"From {source['repoURL']}: {', '.join(found) or 'nothing found'}."
    return render(request, "applications/_source_suggestions.html", data)


@require_GET
def helm_details(request: HttpRequest) -> HttpResponse:
    """The Helm fields filled from the chart: its values.yaml and its parameters (from Argo CD's appdetails).

    What the user already typed in the other Helm fields is kept; values and parameters are replaced."""
    instance = _instance_for_create(request)
    source = _source(request)
    form = CreateForm(initial={k: v for k, v in request.GET.items() if k in CreateForm.base_fields})
    data: JSON = {"form": form, "helm_open": True, "helm_note": "", "helm_error": ""}
    if not source["repoURL"] or not (source.get("path") or source.get("chart")):
        data["helm_error"] = "Give the repository and a path (or a chart) first."
        return render(request, "applications/create.html#helm", data)
    with instance.client() as client:
        try:
            details = client.get_repository_app_details(source)
        except ArgoCDError as exc:
            data["helm_error"] = f"Could not read the chart: {error_text(exc, instance.name)}"
            return render(request, "applications/create.html#helm", data)
    helm = details.get("helm") if details.get("type") == "Helm" else None
    if not isinstance(helm, dict):
        data["helm_error"] = f"Argo CD finds a {details.get('type') or 'plain'} source there, not a Helm chart."
        return render(request, "applications/create.html#helm", data)
    params = [p for p in helm.get("parameters") or [] if isinstance(p, dict) and p.get("name")]
    # The chart's values.yaml goes into the values to edit; its parameters are listed with their defaults, so
    # that only the ones the user writes into "Helm parameters" are set on the app (as in Argo CD's own UI).
    form.initial.update(source_type="helm", helm_values=str(helm.get("values") or ""))
    data["chart_parameters"] = [(str(p["name"]), str(p.get("value", ""))) for p in params][:MAX_OFFERED]
    if not form.initial.get("helm_value_files"):
        form.initial["helm_value_files"] = "\n".join(str(f) for f in helm.get("valueFiles") or [])
    data["helm_note"] = (
        f"Loaded from the chart {helm.get('name') or source.get('chart') or source.get('path')}: "
        f"values.yaml and {len(params)} parameter{'s' if len(params) != 1 else ''}. Edit the values; to set a "
        "parameter, write name=value under Helm parameters."
    )
    return render(request, "applications/create.html#helm", data)
