"""A second factor for local accounts: a TOTP authenticator (django-otp) plus ten single-use recovery codes.

Every enrolment, confirmation, refused code, recovery-code use, reset and disable writes one audit event; events
say what happened and never hold the secret or a code. Wrong codes are throttled by django-otp (the wait doubles
with each failure, per device), beside django-axes' throttling of passwords.

`SecondFactorMiddleware` is the gate: a session whose user has a confirmed authenticator reaches nothing but the
code page and logout until a code is accepted; with OTP_REQUIRED_FOR_ADMINS, a platform admin without one reaches
nothing but enrolment.
"""

from __future__ import annotations

from collections.abc import Callable

import django_otp
import segno
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.access.rules import is_platform_admin
from apps.audit.service import Outcome, record

from . import services

KIND = services.KIND
RECOVERY_CODES = 10
# Set at login: this session must present a code before it counts as logged in.
REQUIRED_KEY = "otp_required"


def authenticator(user: AbstractBaseUser, *, confirmed: bool = True) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).order_by("-pk").first()


def is_enrolled(user: AbstractBaseUser) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG: presentation attributes only (no style), so the page's
    Content-Security-Policy, which allows no inline styles, leaves it intact."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", title="Authenticator QR code")


def normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()[:32]


def start_enrolment(request: HttpRequest) -> TOTPDevice:
    """A fresh, unconfirmed authenticator for the signed-in user (replacing any earlier unconfirmed one)."""
    user = request.user
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
        record(request, action="otp_enrol", outcome=Outcome.SUCCEEDED, kind=KIND, name=user.get_username(),
               payload={"step": "secret issued, waiting for a code"})  # fmt: skip
    return device


def confirm(request: HttpRequest, code: str) -> tuple[list[str], str]:
    """Confirm the pending authenticator with a code from it: (the new recovery codes, "") or ([], why not).

    On success this session counts as verified and every other session of the user ends, so none of them goes
    on without the second factor.
    """
    user = request.user
    device = authenticator(user, confirmed=False)
    if device is None:
        return [], "Start the set-up again: no authenticator is waiting for a code."
    error = _refusal(device, code)
    if error:
        record(request, action="otp_confirm", outcome=Outcome.FAILED, kind=KIND, name=user.get_username(), error=error)
        return [], error
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        django_otp.login(request, device)
        request.session[REQUIRED_KEY] = True
        ended = services.end_sessions(user, keep=request.session.session_key)
        record(request, action="otp_confirm", outcome=Outcome.SUCCEEDED, kind=KIND, name=user.get_username(),
               before={"enrolled": False}, after={"enrolled": True},
               payload={"recovery_codes": len(codes), "sessions_ended": ended})  # fmt: skip
    return codes, ""


def verify(request: HttpRequest, code: str) -> str:
    """The login's second step: "" when the code (or an unused recovery code, now used up) is accepted."""
    user = request.user
    device, error = _check(user, code)
    if device is None:
        record(request, action="otp_verify", outcome=Outcome.FAILED, kind=KIND, name=user.get_username(), error=error)
        return error
    django_otp.login(request, device)
    if isinstance(device, StaticDevice):
        left = recovery_codes_left(user)
        record(request, action="otp_recovery_code", outcome=Outcome.SUCCEEDED, kind=KIND, name=user.get_username(),
               payload={"recovery_codes_left": left})  # fmt: skip
    else:
        record(request, action="otp_verify", outcome=Outcome.SUCCEEDED, kind=KIND, name=user.get_username())
    return ""


def regenerate(request: HttpRequest) -> list[str]:
    """Ten new recovery codes for the signed-in (and verified) user; the old ones stop working."""
    user = request.user
    with transaction.atomic():
        before = recovery_codes_left(user)
        codes = _new_recovery_codes(user)
        record(request, action="otp_recovery_regenerate", outcome=Outcome.SUCCEEDED, kind=KIND,
               name=user.get_username(), before={"recovery_codes": before},
               after={"recovery_codes": len(codes)})  # fmt: skip
    return codes


def disable(request: HttpRequest, code: str) -> str:
    """Turn the user's own second factor off, given a current code: "" when done, else why not."""
    user = request.user
    device, error = _check(user, code)
    if device is None:
        record(request, action="otp_disable", outcome=Outcome.FAILED, kind=KIND, name=user.get_username(), error=error)
        return error
    with transaction.atomic():
        _remove_all(user)
        request.session.pop(REQUIRED_KEY, None)
        record(request, action="otp_disable", outcome=Outcome.SUCCEEDED, kind=KIND, name=user.get_username(),
               before={"enrolled": True}, after={"enrolled": False})  # fmt: skip
    return ""


def reset(request: HttpRequest, target: AbstractBaseUser) -> services.Done:
    """A platform admin removes another user's second factor (lost phone): they log in with the password alone
    and may enrol again."""
    action = "otp_reset"
    if not is_platform_admin(request.user):
        services._refuse(request, action, target, "not a platform admin")
    if target.pk == request.user.pk:
        services._refuse(request, action, target, "own second factor: use Two-factor")
    with transaction.atomic():
        before = {"enrolled": is_enrolled(target)}
        _remove_all(target)
        record(request, action=action, outcome=Outcome.SUCCEEDED, kind=KIND, name=target.get_username(),
               before=before, after={"enrolled": False})  # fmt: skip
    return services.Done(f"Second factor of {target.get_username()} reset: they log in with their password alone.")


services._REFUSALS["own second factor: use Two-factor"] = (
    "Turn your own second factor off under Two-factor, which asks for a current code."
)


def _remove_all(user: AbstractBaseUser) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def _new_recovery_codes(user: AbstractBaseUser) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def _refusal(device: TOTPDevice | StaticDevice, code: str) -> str:
    """Why `device` refuses `code` ("" if it accepts it); a throttled device refuses without looking."""
    allowed, info = device.verify_is_allowed()
    if not allowed:
        wait = max(1, int(((info or {}).get("locked_until", timezone.now()) - timezone.now()).total_seconds()) + 1)
        return f"Too many wrong codes: wait {wait} seconds, then try again."
    if device.verify_token(code):
        return ""
    return "That code is not valid: type the 6 digits your authenticator shows now, or an unused recovery code."


def _check(user: AbstractBaseUser, code: str) -> tuple[TOTPDevice | StaticDevice | None, str]:
    """The device that accepts `code`: six digits go to the authenticator, anything else (recovery codes have
    eight characters) to the recovery codes."""
    code = normalise(code)
    if not code:
        return None, "Type the code your authenticator shows, or a recovery code."
    recovery = StaticDevice.objects.filter(user=user, confirmed=True)
    device = authenticator(user) if code.isdigit() and len(code) == 6 else recovery.first()
    if device is None:
        return None, "No second factor is set up for this account."
    error = _refusal(device, code)
    return (None, error) if error else (device, "")


@receiver(user_logged_in)
def _mark_session(sender, request: HttpRequest | None, user: AbstractBaseUser, **kwargs) -> None:
    """At the password step, note whether this session still owes a code (one query per login, none per page)."""
    if request is not None and hasattr(request, "session"):
        if is_enrolled(user):
            request.session[REQUIRED_KEY] = True
        else:
            request.session.pop(REQUIRED_KEY, None)


# Views a session that still owes a code (or an enrolment) may reach; anything else sends it there.
VERIFY_OPEN = {"identity:otp-verify", "logout"}
ENROL = ("identity:otp", {"identity:otp", "logout"})


class SecondFactorMiddleware:
    """Runs after AuthenticationMiddleware and django-otp's OTPMiddleware, before any view: a session that owes a
    code gets a redirect for every URL, existing or not (HTMX requests a full-page redirect)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        owed = self._owed(request)
        htmx = request.headers.get("HX-Request") == "true"
        if owed:
            target, open_views = ("identity:otp-verify", VERIFY_OPEN) if owed == "code" else ENROL
            if not self._reaches(request, open_views):
                url = reverse(target)
                if owed == "code" and request.method == "GET" and not htmx:
                    url += "?" + urlencode({"next": request.get_full_path()})
                return HttpResponseClientRedirect(url) if htmx else redirect(url)
        return self.get_response(request)

    @staticmethod
    def _owed(request: HttpRequest) -> str:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return ""
        admin_rule = settings.OTP_REQUIRED_FOR_ADMINS and is_platform_admin(user)
        if not (request.session.get(REQUIRED_KEY) or admin_rule):
            return ""
        if user.is_verified():
            return ""
        if is_enrolled(user):
            request.session[REQUIRED_KEY] = True
            return "code"
        request.session.pop(REQUIRED_KEY, None)  # reset by an admin meanwhile: the password is enough again
        return "enrol" if admin_rule else ""

    @staticmethod
    def _reaches(request: HttpRequest, open_views: set[str]) -> bool:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        # The health probes and the login page need no login at all; everything else waits for the code.
        return match.view_name in open_views or getattr(match.func, "login_required", True) is False
