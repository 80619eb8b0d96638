"""The application list across instances: one page, SQL on the index, grants applied in the query."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from apps.governance import windows
from apps.operations.services import new_nonce

from . import query


def application_list(request: HttpRequest) -> HttpResponse:
    # No access helper to open with: what the user may see is applied inside the query (applications_q), so
    # a user without grants gets an empty list rather than a 403.
    filters = query.Filters.from_query(request.GET)
    result = query.search(request.user, filters)
    windows.blocks_for_rows(request.user, "sync", result.rows)
    base, params = reverse("index:list"), dict(request.GET.lists())
    context = {
        "f": filters,
        "result": result,
        "headers": query.headers(filters, base, params),
        "counts": query.count_links(result, base, params),
        "pages": query.page_links(result, base, params),
        "sort_param": ("-" if filters.desc else "") + filters.sort,
    }
    if request.htmx:
        return render(request, "index/list.html#rows", context)
    choices = query.choices(request.user, result.instances)
    context.update(
        list_url=base,
        instances=result.instances,
        projects=choices["projects"],
        sync_choices=query.SYNC_CHOICES,
        health_choices=query.HEALTH_CHOICES,
        can_sync=choices["can_sync"],
        can_create=choices.get("can_create", False),
        bulk_nonce=new_nonce(),
    )
    return render(request, "index/list.html", context)
