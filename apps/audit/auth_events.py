"""Audit events for logging in and out, connected to django.contrib.auth's and django-axes' signals.

A failed login names the user name that was tried as the actor; the password never reaches here
(Django replaces it in `credentials` before sending the signal) and is never recorded.
"""

from __future__ import annotations

from django.http import HttpRequest

from .service import Outcome, record

LOCKED_OUT = "locked out after too many failed logins; try again later"


def logged_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    # Single sign-on marks its logins (apps/identity/oidc_views.py) so the event says which way the user came in.
    payload = getattr(request, "login_payload", None)
    record(request, user=user, action="login", outcome=Outcome.SUCCEEDED, kind="session", payload=payload)


def logged_out(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if user is None:  # logging out without a session changes nothing worth recording
        return
    record(request, user=user, action="logout", outcome=Outcome.SUCCEEDED, kind="session")


def login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    # While axes has this user locked out the password was never checked: `locked_out` records that.
    if request is not None and getattr(request, "axes_locked_out", False):
        return
    record(
        request,
        action="login",
        outcome=Outcome.FAILED,
        kind="session",
        actor=_attempted(credentials),
        error="wrong user name or password",
    )


def locked_out(sender, request: HttpRequest | None, username: str | None, ip_address: str | None, **kwargs) -> None:
    record(request, action="login", outcome=Outcome.DENIED, kind="session", actor=username or "", error=LOCKED_OUT)


def _attempted(credentials: dict) -> str:
    return str(credentials.get("username") or "")
