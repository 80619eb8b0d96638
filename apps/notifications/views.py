"""Notification destinations: platform admins manage all, team maintainers their team's, anyone their own."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.access.rules import is_platform_admin
from apps.audit.service import Outcome, record
from apps.teams.models import Membership, Team

from .forms import DestinationForm, SubscriptionForm
from .models import Delivery, Destination
from .services import DESTINATION_KIND

KIND = DESTINATION_KIND


def _teams(user) -> QuerySet[Team]:
    if is_platform_admin(user):
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user, memberships__role=Membership.Role.MAINTAINER)


def _destinations(user) -> QuerySet[Destination]:
    qs = Destination.objects.select_related("team", "user")
    if is_platform_admin(user):
        return qs
    return qs.filter(Q(user=user) | Q(team__in=_teams(user)))


def _get_destination(request: HttpRequest, pk: int) -> Destination:
    dest = _destinations(request.user).filter(pk=pk).first()
    if dest is None:
        raise Http404("No such destination, or it is not yours to manage.")
    return dest


def _set_owner(request: HttpRequest, dest: Destination) -> None:
    """A team's destination has no user owner; without a team it is the platform's only when an admin says so."""
    if dest.team_id:
        dest.user = None
    elif not dest.user_id and not is_platform_admin(request.user):
        dest.user = request.user


def _snapshot(dest: Destination) -> dict:
    subs = [{"events": s.events, "instance_glob": s.instance_glob} for s in dest.subscriptions.all()]
    return {"name": dest.name, "kind": dest.kind, "url": dest.url, "recipients": dest.recipients,
            "enabled": dest.enabled, "owner": dest.owner, "signed": bool(dest.secret),
            "subscriptions": subs}  # fmt: skip


def _audit(request: HttpRequest, action: str, dest: Destination, **extra) -> None:
    record(request, action=action, outcome=Outcome.SUCCEEDED, kind=KIND, name=dest.name,
           team=dest.team.slug if dest.team_id else "", **extra)  # fmt: skip


def destination_list(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST or None, teams=_teams(request.user))
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            dest = form.save(commit=False)
            _set_owner(request, dest)
            dest.save()
            _audit(request, "create", dest, after=_snapshot(dest))
        messages.success(request, f"Created destination {dest.name}; now subscribe it to events.")
        return redirect("notifications:detail", pk=dest.pk)
    context = {"destinations": _destinations(request.user), "form": form}
    return render(request, "notifications/list.html", context)


def destination_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dest = _get_destination(request, pk)
    form = DestinationForm(instance=dest, teams=_teams(request.user))
    sub_form = SubscriptionForm()
    if request.method == "POST":
        if "delete" in request.POST:
            with transaction.atomic():
                _audit(request, "delete", dest, before=_snapshot(dest))
                dest.delete()
            messages.success(request, f"Deleted destination {dest.name}.")
            return redirect("notifications:list")
        if "send_test" in request.POST:
            return _send_test(request, dest)
        if "delete_subscription" in request.POST:
            return _delete_subscription(request, dest)
        if "edit" in request.POST:
            form = DestinationForm(
                request.POST, instance=Destination.objects.get(pk=dest.pk), teams=_teams(request.user)
            )
            if form.is_valid():
                return _save(request, dest, form)
        elif "subscribe" in request.POST:
            sub_form = SubscriptionForm(request.POST)
            if sub_form.is_valid():
                return _subscribe(request, dest, sub_form)
        else:
            messages.error(request, "Unknown action; nothing was changed.")
            return redirect("notifications:detail", pk=dest.pk)
    context = {"dest": dest, "form": form, "sub_form": sub_form, "subscriptions": dest.subscriptions.all(),
               "deliveries": dest.deliveries.all()[:50], "pending": _pending(dest)}  # fmt: skip
    template = "notifications/detail.html#deliveries" if request.htmx and request.method == "GET" else None
    return render(request, template or "notifications/detail.html", context)


def _pending(dest: Destination) -> bool:
    # The log refreshes itself while a delivery is still on its way, and stops once none is.
    return dest.deliveries.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]).exists()


def _save(request: HttpRequest, dest: Destination, form: DestinationForm) -> HttpResponse:
    before = _snapshot(dest)
    with transaction.atomic():
        saved = form.save(commit=False)
        _set_owner(request, saved)
        saved.save()
        _audit(
            request,
            "update",
            saved,
            before=before,
            after={**_snapshot(saved), "signature_changed": bool(form.cleaned_data.get("secret"))},
        )
    messages.success(request, f"Saved destination {saved.name}.")
    return redirect("notifications:detail", pk=dest.pk)


def _subscribe(request: HttpRequest, dest: Destination, form: SubscriptionForm) -> HttpResponse:
    with transaction.atomic():
        sub = form.save(commit=False)
        sub.destination = dest
        sub.save()
        _audit(request, "subscribe", dest, after={"events": sub.events, "instance_glob": sub.instance_glob})
    messages.success(request, f"{dest.name} now hears of {', '.join(sub.events)} on {sub.instance_glob}.")
    return redirect("notifications:detail", pk=dest.pk)


def _delete_subscription(request: HttpRequest, dest: Destination) -> HttpResponse:
    raw = request.POST.get("delete_subscription", "")
    sub = dest.subscriptions.filter(pk=int(raw)).first() if raw.isdigit() else None
    if sub is None:
        messages.error(request, "That subscription no longer exists; nothing was changed.")
        return redirect("notifications:detail", pk=dest.pk)
    with transaction.atomic():
        _audit(request, "unsubscribe", dest, before={"events": sub.events, "instance_glob": sub.instance_glob})
        sub.delete()
    messages.success(request, "Removed the subscription.")
    return redirect("notifications:detail", pk=dest.pk)


def _send_test(request: HttpRequest, dest: Destination) -> HttpResponse:
    from .tasks import deliver

    with transaction.atomic():
        delivery = Delivery.objects.create(destination=dest, event_type="test")
        _audit(request, "send-test", dest, payload={"delivery": delivery.pk})
        transaction.on_commit(lambda: deliver.delay(delivery.pk))
    messages.success(request, f"Test message queued (delivery #{delivery.pk}); its result shows in the log below.")
    return redirect("notifications:detail", pk=dest.pk)
