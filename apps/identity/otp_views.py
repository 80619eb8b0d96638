"""Pages of the second factor: the user's own Two-factor page (enrol, confirm, recovery codes, disable), the
login's code step, and a platform admin's reset of another user's second factor."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from apps.access.rules import is_platform_admin

from . import otp, services

ACTIONS = ("start", "confirm", "regenerate", "disable")


@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """The signed-in user's second factor; POST actions dispatch on the submit button's name."""
    action = next((a for a in ACTIONS if a in request.POST), "")
    user = request.user
    if request.method == "GET" or not action:
        return _page(request, error="Unknown action; nothing was changed." if request.method == "POST" else "")
    if action == "start":
        return _page(request, pending=otp.start_enrolment(request))
    if action == "confirm":
        codes, error = otp.confirm(request, request.POST.get("code", ""))
        if error:
            return _page(request, pending=otp.authenticator(user, confirmed=False), error=error)
        return _page(request, codes=codes, notice="Two-factor login is on.")
    if not otp.is_enrolled(user):
        return _page(request, error="Two-factor login is not set up; nothing was changed.")
    if action == "regenerate":
        notice = "New recovery codes made; the old ones no longer work."
        return _page(request, codes=otp.regenerate(request), notice=notice)
    error = otp.disable(request, request.POST.get("code", ""))
    if error:
        return _page(request, error=error)
    messages.success(request, "Two-factor login is off.")
    return redirect("identity:otp")


def _page(
    request: HttpRequest, *, pending=None, codes: list[str] | None = None, error: str = "", notice: str = ""
) -> HttpResponse:
    user = request.user
    context = {
        "enrolled": otp.is_enrolled(user),
        "codes_left": otp.recovery_codes_left(user),
        "pending": pending,
        "uri": pending.config_url if pending else "",
        "qr": otp.qr_svg(pending.config_url) if pending else "",
        "codes": codes or [],
        "error": error,
        "notice": notice,
        "forced": settings.OTP_REQUIRED_FOR_ADMINS and is_platform_admin(user),
    }
    response = render(request, "identity/two_factor.html", context)
    add_never_cache_headers(response)  # a secret or recovery codes may be on it: keep it out of every cache
    return response


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The login's second step, reached only by a session that owes a code (the gate sends it here)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    if request.user.is_verified() or not otp.is_enrolled(request.user):
        return redirect(next_url or "home")
    error = ""
    if request.method == "POST":
        error = otp.verify(request, request.POST.get("code", ""))
        if not error:
            return redirect(next_url or "home")
    response = render(request, "identity/otp_verify.html", {"error": error, "next": next_url})
    add_never_cache_headers(response)
    return response


@require_POST
def reset(request: HttpRequest, username: str) -> HttpResponse:
    """A platform admin removes another user's second factor; anyone else gets the audited 403."""
    if not is_platform_admin(request.user):
        services.deny(request, "otp_reset", username[:150], "not a platform admin")
        raise PermissionDenied("Only platform admins may reset a second factor.")
    target = get_object_or_404(get_user_model(), username=username)
    try:
        done = otp.reset(request, target)
    except services.Refused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, done.notice)
    return redirect("identity:detail", username=target.get_username())
