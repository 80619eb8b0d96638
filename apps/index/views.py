"""The application list across instances: one page, SQL on the index, grants applied in the query."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.access.decide import Target, decide
from apps.governance import windows
from apps.instances.models import Instance
from apps.operations.services import new_nonce

from . import query
from .models import Favourite


def _row_actions(user, rows: list[dict]) -> None:
    """Whether each row offers Sync and Refresh: the same decision the action's own view takes (decide()), here
    only to show the buttons. Unsaved enabled instances: the rows come from instances the user may view, which are
    enabled, so nothing is read from the database per row."""
    instances: dict[str, Instance] = {}
    for row in rows:
        instance = instances.setdefault(row["instance"], Instance(name=row["instance"], enabled=True))
        target = Target(instance, row["project"], row["name"])
        row["can_sync"] = decide(user, "sync", target).allowed
        row["can_refresh"] = decide(user, "refresh", target).allowed


def application_list(request: HttpRequest) -> HttpResponse:
    # No access helper to open with: what the user may see is applied inside the query (applications_q), so
    # a user without grants gets an empty list rather than a 403.
    filters = query.Filters.from_query(request.GET)
    result = query.search(request.user, filters)
    windows.blocks_for_rows(request.user, "sync", result.rows)
    _row_actions(request.user, [*result.rows, *result.pinned])
    pinned = {(r["instance_id"], r["namespace"], r["name"]) for r in result.pinned}
    for row in result.rows:
        row["pinned"] = (row["instance_id"], row["namespace"], row["name"]) in pinned
    base, params = reverse("index:list"), dict(request.GET.lists())
    context = {
        "f": filters,
        "result": result,
        "headers": query.headers(filters, base, params),
        "counts": query.count_links(result, base, params),
        "pages": query.page_links(result, base, params),
        "facets": query.facet_links(filters, result, base, params),
        "views": query.view_links(filters, base, params),
        "sort_param": ("-" if filters.desc else "") + filters.sort,
        "count_cap": query.COUNT_CAP,
        "here": request.get_full_path(),
    }
    if request.htmx:
        return render(request, "index/list.html#rows", context)
    choices = query.choices(request.user, result.instances)
    context.update(
        list_url=base,
        instances=result.instances,
        sync_choices=query.SYNC_CHOICES,
        health_choices=query.HEALTH_CHOICES,
        can_sync=choices["can_sync"],
        can_create=choices.get("can_create", False),
        bulk_nonce=new_nonce(),
    )
    return render(request, "index/list.html", context)


@require_POST
def toggle_favourite(request: HttpRequest) -> HttpResponse:
    """Pin an application to the top of the user's list, or unpin it. Only an application the user may view can
    be pinned: any other answers 404 like one that does not exist (and the refusal is audited)."""
    # "instance/namespace/name": none of the three can hold a slash (URL segments, Kubernetes names).
    instance_name, _, rest = request.POST.get("pin", "").partition("/")
    namespace, _, name = rest.partition("/")
    instances = {i["name"]: i["id"] for i in query.instances_with_state(request.user)}
    if instance_name not in instances:
        raise Http404("No such application")
    pk = instances[instance_name]
    if not query.visible(request.user, instances).filter(instance_id=pk, namespace=namespace, name=name).exists():
        raise Http404("No such application")
    deleted, _ = Favourite.objects.filter(user=request.user, instance_id=pk, namespace=namespace, name=name).delete()
    if not deleted:
        Favourite.objects.get_or_create(user=request.user, instance_id=pk, namespace=namespace, name=name)
    messages.success(request, f"{'Unpinned' if deleted else 'Pinned'} {instance_name}/{name}.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure()):
        back = reverse("index:list")
    return redirect(back)
