"""Change-window pages: platform admins manage windows (each change audited); everyone reads the calendar."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.access import glob
from apps.access.guards import admin_required
from apps.access.rules import applications_q, can, is_platform_admin
from apps.audit.service import Outcome, record
from apps.index.models import ApplicationSummary

from . import schedules, windows
from .forms import ChangeWindowForm, ScheduleForm
from .models import ChangeWindow, Schedule

CALENDAR_DAYS = 14
PAST_RUNS = 10


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


# ---------------------------------------------------------------- scheduled operations


def _own_schedule(request: HttpRequest, pk: int) -> Schedule:
    """The schedule if the viewer owns it (platform admins see all); 404 otherwise, so ids are not probed."""
    schedule = Schedule.objects.select_related("owner").filter(pk=pk).first()
    if schedule is None or not (schedule.owner_id == request.user.pk or is_platform_admin(request.user)):
        raise Http404("No such schedule.")
    return schedule


@require_GET
def schedule_list(request: HttpRequest) -> HttpResponse:
    items = Schedule.objects.select_related("owner").order_by("pk")
    if not is_platform_admin(request.user):
        items = items.filter(owner=request.user)
    rows = [
        {
            "s": s,
            "next": [] if s.paused else schedules.upcoming(s),
            "runs": list(s.runs.select_related("operation")[:PAST_RUNS]),
        }
        for s in items
    ]
    return render(request, "governance/schedules.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def schedule_new(request: HttpRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    instance, app = source.get("instance", "")[:100], source.get("app", "")[:253]
    namespace = source.get("appNamespace", "")[:253]  # an app outside the control plane's namespace names it
    rows = ApplicationSummary.objects.filter(applications_q(request.user)).filter(instance__name=instance, name=app)
    summary = rows.filter(namespace=namespace).first() if namespace else rows.first()
    if summary is None:
        raise Http404("No such application, or you may not see it.")
    form = ScheduleForm(request.POST or None, initial={"timezone": settings.TIME_ZONE})
    if request.method == "POST":
        target = {"instance": instance, "kind": "application", "project": summary.project, "name": app,
                  "namespace": summary.namespace}  # fmt: skip
        if not form.is_valid():
            problems = "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items())
            record(request, action="create", outcome=Outcome.FAILED, error=problems[:2000],
                   payload={"schedule": "new"}, **target)  # fmt: skip
        elif not can(request.user, form.cleaned_data["kind"], instance, summary.project, app, summary.namespace):
            why = f"you may not {form.cleaned_data['kind']} {app} on {instance}"
            record(request, action="create", outcome=Outcome.DENIED, error=why, payload={"schedule": "new"}, **target)
            form.add_error(None, f"Not scheduled: {why}.")
        else:
            d = form.cleaned_data
            schedule = Schedule(
                owner=request.user, instance_name=instance, project=summary.project, app=app, kind=d["kind"],
                params={**form.params(), **({"appNamespace": namespace} if namespace else {})},
                once_at=form.once_utc(), rrule=d["rrule"], timezone=d["timezone"],
            )  # fmt: skip
            schedule.next_run_at = schedules.first_due(schedule)
            if schedule.next_run_at is None:
                form.add_error(None, "That time has passed, or the recurrence has no occurrence left.")
            else:
                with transaction.atomic():
                    schedule.save()
                    record(request, action="create", outcome=Outcome.SUCCEEDED, after=schedule.snapshot(),
                           payload={"schedule": schedule.pk}, **target)  # fmt: skip
                messages.success(request, f"Scheduled {schedule.kind} of {app} on {instance}.")
                return redirect("governance:schedules")
    data = {"form": form, "instance": instance, "app": app, "project": summary.project, "namespace": namespace}
    return render(request, "governance/schedule_new.html", data)


@require_POST
def schedule_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause, resume or delete (the submit button's name says which); each audited."""
    schedule = _own_schedule(request, pk)
    before = schedule.snapshot()
    target = {"instance": schedule.instance_name, "kind": "application", "project": schedule.project,
              "name": schedule.app}  # fmt: skip
    with transaction.atomic():
        if "delete" in request.POST:
            action, after = "delete_schedule", None
            schedule.delete()
        else:
            action = "pause_schedule" if "pause" in request.POST else "resume_schedule"
            schedule.paused = action == "pause_schedule"
            if not schedule.paused:
                schedule.next_run_at = schedules.first_due(schedule)  # no catching up on what passed while paused
            schedule.save()
            after = schedule.snapshot()
        record(request, action=action, outcome=Outcome.SUCCEEDED, before=before, after=after,
               payload={"schedule": pk}, **target)  # fmt: skip
    messages.success(request, f"{action.split('_')[0].capitalize()}d schedule #{pk}.")
    return redirect("governance:schedules")
