"""Admin pages for Argo CD instances: list, register, detail (health, test, can-i matrix), edit, delete."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.access.guards import admin_required
from apps.audit.service import Outcome, record
from apps.index.models import IndexState
from apps.index.query import released_leases
from apps.operations.models import Operation

from . import services
from .forms import InstanceForm
from .models import Instance


@admin_required
def instance_list(request: HttpRequest) -> HttpResponse:
    instances = Instance.objects.all()
    states = {s.instance_id: s for s in IndexState.objects.filter(instance__in=instances)}
    unheld = released_leases(
        [{"id": i.pk, "name": i.name, "holder": getattr(states.get(i.pk), "holder", "")} for i in instances]
    )
    rows = [(i, states.get(i.pk), unheld.get(i.pk)) for i in instances]
    return render(request, "instances/list.html", {"rows": rows})


@admin_required
def instance_new(request: HttpRequest) -> HttpResponse:
    form = InstanceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            instance = services.register_instance(
                name=data["name"], url=data["url"], token=data["token"] or None, username=data["username"] or None,
                password=data["password"] or None, verify_tls=data["verify_tls"], ca_bundle=data["ca_bundle"],
                labels=data["labels"], enabled=data["enabled"], request=request,
            )  # fmt: skip
        except (services.InstanceConnectionError, ValidationError) as exc:
            form.add_error(None, _message(exc))
        else:
            messages.success(request, f"Registered {instance.name} (Argo CD {instance.version or 'version unknown'}).")
            if note := services.login_session_note(instance):
                messages.warning(request, note)
            return redirect("instances:detail", name=instance.name)
    return render(request, "instances/form.html", {"form": form, "instance": None})


@admin_required
def instance_edit(request: HttpRequest, name: str) -> HttpResponse:
    instance = get_object_or_404(Instance, name=name)
    form = InstanceForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_instance(
                instance, request=request, url=data["url"], verify_tls=data["verify_tls"],
                ca_bundle=data["ca_bundle"], labels=data["labels"], enabled=data["enabled"],
                token=data["token"], username=data["username"], password=data["password"],
            )  # fmt: skip
        except services.InstanceConnectionError as exc:
            instance.refresh_from_db()  # nothing was saved; show the stored values
            form.add_error(None, _message(exc))
        else:
            messages.success(request, f"Saved {instance.name}.")
            if note := services.login_session_note(instance):
                messages.warning(request, note)
            return redirect("instances:detail", name=instance.name)
    return render(request, "instances/form.html", {"form": form, "instance": instance})


@admin_required
def instance_detail(request: HttpRequest, name: str) -> HttpResponse:
    instance = get_object_or_404(Instance, name=name)
    if request.method == "POST":
        return _detail_action(request, instance)
    index = IndexState.objects.filter(instance=instance).first()
    # Set when the indexer that last reported no longer holds the instance's lease: nothing watches it.
    unheld = released_leases([{"id": instance.pk, "name": instance.name, "holder": index.holder if index else ""}])
    context = {
        "instance": instance,
        "index": index,
        "unheld": unheld.get(instance.pk),
        "rotation_due": services.rotation_due(instance),
        "rotations": Operation.objects.filter(instance=instance, kind=Operation.Kind.ROTATE_INSTANCE_TOKEN)[:3],
    }
    if request.GET.get("part") == "cani" or request.GET.get("cani"):
        context["matrix"] = services.permissions_matrix(instance)
        if request.htmx:
            return render(request, "instances/detail.html#cani", context)
    return render(request, "instances/detail.html", context)


def _detail_action(request: HttpRequest, instance: Instance) -> HttpResponse:
    """The detail page's buttons: test, enable, disable, delete (dispatched on the button's name)."""
    if "test" in request.POST:
        result = services.check_instance(instance)
        record(
            request, action="test", outcome=Outcome.SUCCEEDED if result["ok"] else Outcome.FAILED, kind="instance",
            instance=instance.name, name=instance.name, payload={"version": result["version"]}, error=result["error"],
        )  # fmt: skip
        context = {"instance": instance, "result": result}
        if request.htmx:
            return render(request, "instances/detail.html#test-result", context)
        (messages.success if result["ok"] else messages.error)(
            request, f"Connected: Argo CD {result['version']}." if result["ok"] else result["error"]
        )
    elif "enable" in request.POST or "disable" in request.POST:
        services.set_enabled(instance, "enable" in request.POST, request)
        messages.success(request, f"{instance.name} is now {'enabled' if instance.enabled else 'disabled'}.")
    elif "delete" in request.POST:
        if request.POST.get("confirm_name") != instance.name:
            messages.error(request, f"Type {instance.name} to confirm the deletion; nothing was deleted.")
        else:
            revoked = services.delete_instance(instance, request)
            messages.success(request, f"Deleted {instance.name} and its index. {revoked}".strip())
            return redirect("instances:list")
    else:
        messages.error(request, "Unknown action; nothing was changed.")
    return redirect("instances:detail", name=instance.name)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)
