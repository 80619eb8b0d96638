"""Home page, health probes and error pages."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from apps.access.rules import is_platform_admin

log = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    from apps.core.dashboard import dashboard_context

    template = "core/home.html#board" if request.htmx else "core/home.html"
    return render(request, template, dashboard_context(request.user))


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    cache.set("readyz", "1", 5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return the value just written")


def _check_broker() -> None:
    from kombu import Connection

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    with Connection(settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=0, timeout=2)


def _check_workers() -> None:
    from apps.operations import workers

    if not workers.consuming():
        raise RuntimeError(f"no Celery worker is consuming (no heartbeat in the last {workers.ttl():.0f} s)")


@login_not_required
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    checks = {"database": _check_database, "cache": _check_cache, "broker": _check_broker, "workers": _check_workers}
    # `?skip=workers` lets a web replica's readiness probe ignore what the replica itself does not need: a web
    # pod taken out of service because the workers are down would only add an outage to a delay.
    for name in request.GET.get("skip", "").split(","):
        checks.pop(name.strip(), None)
    failed = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure means "not ready"; the reason is what the operator needs
            log.warning("readiness check %s failed: %s", name, exc)
            failed[name] = str(exc) or exc.__class__.__name__
    if failed:
        # Strangers learn which checks failed; the reasons (addresses, connection strings) go to the log and
        # to platform admins.
        body: dict = {"status": "unavailable", "failed": sorted(failed)}
        if is_platform_admin(request.user):
            body["detail"] = failed
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": sorted(checks), "broker": settings.CELERY_BROKER_URL.split(":")[0]})


@login_not_required
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else "You do not have permission to do this."
    return render(request, "errors/403.html", {"message": message}, status=403)


@login_not_required
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    message = "This form is out of date (the session it came from has ended or changed). Reload the page and try again."
    return render(request, "errors/403.html", {"message": message}, status=403)


@login_not_required
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", {"path": request.path}, status=404)


@login_not_required
def server_error(request: HttpRequest) -> HttpResponse:
    return render(request, "errors/500.html", status=500)
