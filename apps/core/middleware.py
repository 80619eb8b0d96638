"""Portal pages for refusals that Django would otherwise answer bare.

- A view's 404 ("no such thing, or not yours to see") gets the portal's page in development too, where
  Django would show its debug page listing every URL pattern.
- A 405 (a link to an address that only takes a form submission) gets a page instead of an empty body.
- An HTMX request from a browser whose session has ended sends the whole page to the login page, instead of
  swapping the login form into a fragment of the page.
- An address naming an object with a NUL character (`/instances/x%00/`) is a 404: no stored name holds one,
  and PostgreSQL refuses to even compare with it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django_htmx.http import HttpResponseClientRedirect

from .views import page_not_found


class PortalErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        htmx = getattr(request, "htmx", None)
        if htmx and response.status_code == 302 and not request.user.is_authenticated:
            login = resolve_url(settings.LOGIN_URL)
            if response["Location"].startswith(login):
                return HttpResponseClientRedirect(f"{login}?{urlencode({'next': htmx.current_url_abs_path or '/'})}")
        if response.status_code == 405 and not response.content and not getattr(request, "htmx", False):
            page = render(request, "errors/405.html", {"path": request.path, "allowed": response.get("Allow", "")})
            page.status_code = 405
            page["Allow"] = response.get("Allow", "")
            return page
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, DataError) and "\x00" in request.path:
            return page_not_found(request, Http404("No such object: its name holds a NUL character."))
        return None
