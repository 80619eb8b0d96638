"""People and platform-admin rights: every change here writes one audit event, refusals included.

Pages (and any later API) call these functions; none of them writes audit events on its own. Events never
hold a password or its hash: before/after are `snapshot()`s of the account, and a password change records
only whether the password was generated and how many sessions ended.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.access.rules import is_platform_admin
from apps.audit.service import Outcome, record

KIND = "user"


class Refused(Exception):
    """A change the guard rails do not allow; the message says why and what to do instead."""


@dataclass
class Done:
    notice: str
    password: str = ""  # a generated password, to be shown once and kept nowhere


def snapshot(user: AbstractBaseUser) -> dict:
    return {
        "username": user.get_username(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "is_superuser": user.is_superuser,
    }


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def deny(request: HttpRequest, action: str, name: str, reason: str) -> None:
    record(request, action=action, outcome=Outcome.DENIED, kind=KIND, name=name, error=reason)


def end_sessions(user: AbstractBaseUser, keep: str | None = None) -> int:
    """Delete every stored session of `user` except the one keyed `keep`; returns how many ended.

    Sessions are signed blobs with no user column, so each live one is decoded: a scan of live sessions,
    paid only on these rare changes. (A changed password already invalidates sessions through the session
    auth hash, and an inactive user is already refused; deleting the rows makes it final, so a later
    reactivation or a restored password does not revive them.)
    """
    stale = [
        s.session_key
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if s.get_decoded().get("_auth_user_id") == str(user.pk) and s.session_key != keep
    ]
    Session.objects.filter(session_key__in=stale).delete()
    return len(stale)


def create_user(request: HttpRequest, *, username: str, password: str, is_superuser: bool, **profile: str) -> Done:
    """A new user (`profile`: email, first_name, last_name); an empty `password` is generated and returned once."""
    if not is_platform_admin(request.user):
        _refuse(request, "create", get_user_model()(username=username), "not a platform admin")
    generated = not password
    password = password or generate_password()
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=username, password=password, **profile)
        if is_superuser:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        record(request, action="create", outcome=Outcome.SUCCEEDED, kind=KIND, name=username,
               after=snapshot(user), payload={"generated": generated})  # fmt: skip
    return Done(f"Created user {username}.", password if generated else "")


def set_active(request: HttpRequest, target: AbstractBaseUser, active: bool) -> Done:
    action = "reactivate" if active else "deactivate"
    with transaction.atomic():
        target, reason = _locked(request, action, target)
        if not reason:
            before = snapshot(target)
            target.is_active = active
            target.save(update_fields=["is_active"])
            ended = 0 if active else end_sessions(target)
            record(request, action=action, outcome=Outcome.SUCCEEDED, kind=KIND, name=target.get_username(),
                   before=before, after=snapshot(target), payload={"sessions_ended": ended})  # fmt: skip
    if reason:
        _refuse(request, action, target, reason)
    if active:
        return Done(f"Reactivated {target.get_username()}: they can log in again.")
    return Done(f"Deactivated {target.get_username()}; {_sessions(ended)} ended.")


def set_admin(request: HttpRequest, target: AbstractBaseUser, admin: bool) -> Done:
    action = "make_admin" if admin else "unmake_admin"
    with transaction.atomic():
        target, reason = _locked(request, action, target)
        if not reason:
            before = snapshot(target)
            target.is_superuser = admin
            target.save(update_fields=["is_superuser"])
            record(request, action=action, outcome=Outcome.SUCCEEDED, kind=KIND, name=target.get_username(),
                   before=before, after=snapshot(target))  # fmt: skip
    if reason:
        _refuse(request, action, target, reason)
    if admin:
        return Done(f"{target.get_username()} is now a platform admin.")
    return Done(f"{target.get_username()} is no longer a platform admin.")


def reset_password(request: HttpRequest, target: AbstractBaseUser, password: str) -> Done:
    """Set (or, when `password` is empty, generate) another user's password and end all their sessions."""
    action = "reset_password"
    if target.pk == request.user.pk:
        _refuse(request, action, target, "own password: use Change password")
    generated = not password
    password = password or generate_password()
    with transaction.atomic():
        target, reason = _locked(request, action, target)
        if not reason:
            target.set_password(password)
            target.save(update_fields=["password"])
            ended = end_sessions(target)
            record(request, action=action, outcome=Outcome.SUCCEEDED, kind=KIND, name=target.get_username(),
                   before=snapshot(target), after=snapshot(target),
                   payload={"generated": generated, "sessions_ended": ended})  # fmt: skip
    if reason:
        _refuse(request, action, target, reason)
    notice = f"New password set for {target.get_username()}; {_sessions(ended)} ended."
    return Done(notice, password if generated else "")


def change_own_password(request: HttpRequest, user: AbstractBaseUser, password: str) -> Done:
    """The signed-in user's new password: this session stays signed in, every other one of theirs ends."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        update_session_auth_hash(request, user)  # also gives this session a new key
        ended = end_sessions(user, keep=request.session.session_key)
        record(request, action="change_password", outcome=Outcome.SUCCEEDED, kind=KIND, name=user.get_username(),
               payload={"sessions_ended": ended})  # fmt: skip
    return Done(f"Password changed; {_sessions(ended, 'other')} ended.")


def _locked(request: HttpRequest, action: str, target: AbstractBaseUser) -> tuple[AbstractBaseUser, str]:
    """Re-read the target and every active platform admin under row locks; the reason the guard rails
    refuse the change, or "".

    The locks serialise concurrent changes, so two admins removing each other at the same moment cannot
    both succeed and leave the portal without one; the actor's own rights are checked again under them.
    """
    users = get_user_model().objects
    admins = set(
        users.select_for_update().filter(is_active=True, is_superuser=True).order_by("pk").values_list("pk", flat=True)
    )
    target = users.select_for_update().get(pk=target.pk)
    removes_admin = action in ("deactivate", "unmake_admin") and target.pk in admins
    if request.user.pk not in admins:
        return target, "not a platform admin"
    if removes_admin and admins <= {target.pk}:
        return target, "the last active platform admin"
    if target.pk == request.user.pk and removes_admin:
        return target, "an admin cannot remove their own access"
    return target, ""


def _refuse(request: HttpRequest, action: str, target: AbstractBaseUser, reason: str) -> None:
    """Audit the refusal (outside the change's transaction, so it stays) and raise it for the page."""
    name = target.get_username()
    deny(request, action, name, reason)
    raise Refused(_REFUSALS.get(reason, reason).format(name=name))


_REFUSALS = {
    "not a platform admin": "Only platform admins may change users.",
    "an admin cannot remove their own access": "You cannot deactivate yourself or remove your own platform admin "
    "rights: ask another platform admin.",
    "the last active platform admin": "{name} is the last active platform admin: make someone else an admin first.",
    "own password: use Change password": "Change your own password under Change password, which asks for the "
    "current one.",
}


def _sessions(n: int, which: str = "") -> str:
    which = f"{which} " if which else ""
    return f"{n} {which}session{'s' if n != 1 else ''}"
