"""The application list across instances: one page, SQL on the index, grants applied in the query."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import query


def application_list(request: HttpRequest) -> HttpResponse:
    # No access helper to open with: what the user may see is applied inside the query (applications_q), so
    # a user without grants gets an empty list rather than a 403.
    filters = query.Filters.from_query(request.GET)
    result = query.search(request.user, filters)
    context = {
        "f": filters,
        "result": result,
        "headers": query.headers(filters),
        "sort_param": ("-" if filters.desc else "") + filters.sort,
    }
    if request.htmx:
        return render(request, "index/list.html#rows", context)
    context.update(
        instances=result.instances,
        projects=query.projects(request.user),
        sync_choices=query.SYNC_CHOICES,
        health_choices=query.HEALTH_CHOICES,
        can_sync=query.can_sync_any(request.user, result.instances),
    )
    return render(request, "index/list.html", context)
