"""Change-window pages: platform admins manage windows (each change audited); everyone reads the calendar."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from apps.access import glob
from apps.access.guards import admin_required
from apps.access.rules import applications_q, is_platform_admin
from apps.audit.service import Outcome, record
from apps.index.models import ApplicationSummary

from . import windows
from .forms import ChangeWindowForm
from .models import ChangeWindow

CALENDAR_DAYS = 14


@admin_required
@require_GET
def window_list(request: HttpRequest) -> HttpResponse:
    items = ChangeWindow.objects.prefetch_related("exempt_teams")
    return render(request, "governance/list.html", {"items": items})


@admin_required
@require_http_methods(["GET", "POST"])
def window_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    window = get_object_or_404(ChangeWindow, pk=pk) if pk else None
    if request.method == "POST" and window is not None and "delete" in request.POST:
        return _delete(request, window)
    before = window.snapshot() if window else None
    form = ChangeWindowForm(request.POST or None, instance=window)
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                saved = form.save()
                record(request, action="edit" if before else "create", outcome=Outcome.SUCCEEDED,
                       kind="changewindow", name=saved.name, before=before, after=saved.snapshot())  # fmt: skip
            messages.success(request, f"Saved change window {saved.name}.")
            return redirect("governance:list")
        record(request, action="edit" if before else "create", outcome=Outcome.FAILED, kind="changewindow",
               name=request.POST.get("name", "")[:253], error="; ".join(
                   f"{f}: {' '.join(e)}" for f, e in form.errors.items())[:2000])  # fmt: skip
    return render(request, "governance/edit.html", {"form": form, "window": window})


def _delete(request: HttpRequest, window: ChangeWindow) -> HttpResponse:
    with transaction.atomic():
        before = window.snapshot()
        window.delete()
        record(request, action="delete", outcome=Outcome.SUCCEEDED, kind="changewindow", name=before["name"],
               before=before)  # fmt: skip
    messages.success(request, f"Deleted change window {before['name']}.")
    return redirect("governance:list")


def _applies_to_something_visible(user, w: windows.Window) -> bool:
    if is_platform_admin(user):
        return True
    return (
        ApplicationSummary.objects.filter(applications_q(user))
        .filter(
            instance__name__regex=glob.to_regex(w.instance_glob),
            project__regex=glob.to_regex(w.project_glob),
            name__regex=glob.to_regex(w.app_glob),
        )
        .exists()
    )


def _when(at, zone) -> str:
    return at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    """The next 14 days of the windows that govern some application the viewer can see, in two time zones."""
    tz_name = request.GET.get("tz", "").strip() or settings.TIME_ZONE
    try:
        viewer_zone = windows.zone(tz_name)
        tz_error = ""
    except windows.WindowError as exc:
        viewer_zone, tz_error, tz_name = windows.zone(settings.TIME_ZONE), str(exc), settings.TIME_ZONE
    start = timezone.now()
    shown = [w for w in windows.load() if _applies_to_something_visible(request.user, w)]
    rows = [
        {
            "occ": o,
            # Formatted here: the template's date filter would turn them back into the site's zone.
            "viewer_start": _when(o.start, viewer_zone),
            "viewer_end": _when(o.end, viewer_zone),
            "window_start": _when(o.start, o.window.zone),
            "window_end": _when(o.end, o.window.zone),
            "active": o.start <= start < o.end,
        }
        for o in windows.calendar(shown, start, start + timedelta(days=CALENDAR_DAYS))
    ]
    data = {"rows": rows, "windows": shown, "tz": tz_name, "tz_error": tz_error, "days": CALENDAR_DAYS}
    return render(request, "governance/calendar.html", data)
