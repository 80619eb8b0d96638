"""How pages show Argo CD failures: a sentence for a person, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.argocd import ArgoCDError, errors


def error_text(exc: ArgoCDError, instance: str = "") -> str:
    """Unreachable instances say so and invite a retry; otherwise Argo CD's own words."""
    if isinstance(exc, errors.Unavailable):
        return f"{exc.instance or instance} is unavailable: {exc.detail} — try again"
    if isinstance(exc, errors.BadResponse):
        return f"{exc.instance or instance} answered something that is not Argo CD: {exc.detail} — try again"
    return exc.detail or exc.message


def argocd_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Render an Argo CD failure as a message (a fragment for HTMX) and close the clients the view opened."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ArgoCDError as exc:
            name = kwargs.get("instance", "")
            context = {
                "message": error_text(exc, name),
                "instance": name,
                "object_name": kwargs.get("name") or kwargs.get("key", ""),
                "unreachable": exc.transient,
            }
            if request.htmx:
                return render(request, "errors/argocd.html#message", context)
            return render(request, "errors/argocd.html", context, status=503 if exc.transient else 502)
        finally:
            for client in getattr(request, "_argocd_clients", []):
                if not getattr(client, "keep_open", False):
                    client.close()

    return wrapper
