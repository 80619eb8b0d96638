"""The portal's own user pages: platform admins manage people and admin rights; everyone changes their
own password. Every change and every refusal is audited by `services`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from apps.access.rules import is_platform_admin
from apps.audit.service import Outcome, record

from . import otp, services
from .forms import STATUS_CHOICES, PasswordResetForm, UserCreateForm, UserSearchForm

PAGE_SIZE = 200
# The submit button's name on the user page → the change it asks for.
ACTIONS = {
    "deactivate": lambda r, u: services.set_active(r, u, False),
    "reactivate": lambda r, u: services.set_active(r, u, True),
    "make_admin": lambda r, u: services.set_admin(r, u, True),
    "unmake_admin": lambda r, u: services.set_admin(r, u, False),
}


def _admin_or_403(request: HttpRequest, action: str, name: str = "") -> None:
    """Platform admins only; anyone else gets the 403 page and an audit event saying they tried."""
    if not is_platform_admin(request.user):
        services.deny(request, action, name, "not a platform admin")
        raise PermissionDenied("Only platform admins may manage users.")


@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest) -> HttpResponse:
    """The users, searchable; a POST creates one (a generated password is shown once on its page)."""
    creating = request.method == "POST"
    _admin_or_403(request, "create" if creating else "view", request.POST.get("username", "")[:150])
    create_form = UserCreateForm(request.POST if creating else None)
    if creating and create_form.is_valid():
        return _create(request, create_form)
    search = UserSearchForm(request.GET)
    q, status = "", "active"
    if search.is_valid():
        q, status = search.cleaned_data["q"].strip(), search.cleaned_data["status"] or "active"
    users = get_user_model().objects.prefetch_related("memberships__team").order_by("username")
    if status != "all":
        users = users.filter(is_active=status == "active")
    if q:
        users = users.filter(Q(username__icontains=q) | Q(email__icontains=q) | Q(first_name__icontains=q)
                             | Q(last_name__icontains=q))  # fmt: skip
    context = {"users": users[:PAGE_SIZE], "total": users.count(), "q": q, "status": status,
               "statuses": STATUS_CHOICES, "create_form": create_form}  # fmt: skip
    partial = request.htmx and not creating
    return render(request, "identity/list.html#rows" if partial else "identity/list.html", context)


def _create(request: HttpRequest, form: UserCreateForm) -> HttpResponse:
    data = form.cleaned_data
    profile = {key: data[key] for key in ("email", "first_name", "last_name")}
    done = services.create_user(request, username=data["username"], password=data["password"],
                                is_superuser=data["is_superuser"], **profile)  # fmt: skip
    user = get_user_model().objects.get(username=data["username"])
    if done.password:
        return _detail_page(request, user, done=done, full=True)
    messages.success(request, done.notice)
    if request.htmx:
        return HttpResponseClientRedirect(reverse("identity:detail", args=[user.get_username()]))
    return redirect("identity:detail", username=user.get_username())


@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, username: str) -> HttpResponse:
    action = next((a for a in (*ACTIONS, "reset_password") if a in request.POST), "view")
    _admin_or_403(request, action, username[:150])
    target = get_object_or_404(get_user_model(), username=username)
    if request.method != "POST":
        return _detail_page(request, target)
    if action == "view":
        return _detail_page(request, target, error="Unknown action; nothing was changed.")
    reset_form = PasswordResetForm(request.POST, user=target) if action == "reset_password" else None
    if reset_form is not None and not reset_form.is_valid():
        return _detail_page(request, target, reset_form=reset_form)
    try:
        if reset_form is not None:
            done = services.reset_password(request, target, reset_form.cleaned_data["password"])
        else:
            done = ACTIONS[action](request, target)
    except services.Refused as refused:
        if request.htmx:
            return _detail_page(request, target, error=str(refused))
        messages.error(request, str(refused))
        return redirect("identity:detail", username=target.get_username())
    if request.htmx or done.password:
        return _detail_page(request, target, done=done)
    messages.success(request, done.notice)
    return redirect("identity:detail", username=target.get_username())


def _detail_page(
    request: HttpRequest, target, *, done=None, error: str = "", reset_form=None, full: bool = False
) -> HttpResponse:
    """The user page, or (for HTMX) its card; a generated password appears here once and is never stored."""
    target.refresh_from_db()
    context = {
        "target": target,
        "teams": target.memberships.select_related("team").order_by("team__name"),
        "reset_form": reset_form or PasswordResetForm(user=target),
        "is_self": target.pk == request.user.pk,
        "otp_enrolled": otp.is_enrolled(target),
        "done": done,
        "error": error,
    }
    template = "identity/detail.html#card" if request.htmx and not full else "identity/detail.html"
    response = render(request, template, context)
    if done and done.password:
        add_never_cache_headers(response)  # keep the one-time password out of every cache
    return response


@require_http_methods(["GET", "POST"])
def change_password(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            done = services.change_own_password(request, request.user, form.cleaned_data["new_password1"])
            messages.success(request, done.notice)
            return redirect("identity:password")
        # Field names and Django's messages only: what was typed is never recorded.
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        record(request, action="change_password", outcome=Outcome.FAILED, kind=services.KIND,
               name=request.user.get_username(), error=problems)  # fmt: skip
    return render(request, "identity/password.html", {"form": form})
