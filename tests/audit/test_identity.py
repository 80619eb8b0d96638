"""Logging in and out: argon2, django-axes lockout, session expiry, and the audit events they leave."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
WRONG = "not-the-password-42"


def login(client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def all_text(event: AuditEvent) -> str:
    return json.dumps({f.name: str(getattr(event, f.name)) for f in AuditEvent._meta.fields})


def test_passwords_are_stored_with_argon2(alice):
    assert alice.password.startswith("argon2")


def test_successful_login_is_audited_with_the_user_as_actor(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "alice-password-123"}, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.outcome, event.kind, event.ip) == ("alice", "succeeded", "session", "10.1.2.3")
    assert event.actor_user == alice


def test_failed_login_names_the_attempted_user_and_never_the_password(client, alice):
    response = login(client, "alice", WRONG)
    assert response.status_code == 200
    assert b"didn't match" in response.content
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.outcome, event.actor_user) == ("alice", "failed", None)
    assert WRONG not in all_text(event)


def test_failed_login_for_an_unknown_user_names_that_user_name(client):
    login(client, "mallory", WRONG)
    assert AuditEvent.objects.get(action="login", outcome="failed").actor == "mallory"


def test_five_failures_lock_the_user_out_even_with_the_right_password(client, alice):
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = [login(client, "alice", WRONG).status_code for _ in range(5)]
    assert statuses[:4] == [200, 200, 200, 200]
    response = login(client, "alice", "alice-password-123")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session
    denied = AuditEvent.objects.filter(action="login", outcome="denied")
    assert denied.count() >= 2  # the attempt that tripped the lock and the one made while locked
    assert set(denied.values_list("actor", flat=True)) == {"alice"}
    assert AuditEvent.objects.filter(action="login", outcome="failed").count() >= 4
    assert not AuditEvent.objects.filter(action="login", outcome="succeeded").exists()


def test_lockout_is_per_user_name_and_address_so_others_can_still_log_in(client, alice, bob):
    for _ in range(5):
        login(client, "alice", WRONG)
    assert login(client, "bob", "bob-password-123").status_code == 302
    other_address = client.post(
        "/login/", {"username": "alice", "password": "alice-password-123"}, REMOTE_ADDR="10.9.9.9"
    )
    assert other_address.status_code == 302


def test_lockout_ends_after_the_cool_off(client, alice):
    from axes.models import AccessAttempt

    for _ in range(5):
        login(client, "alice", WRONG)
    assert settings.AXES_COOLOFF_TIME == 0.25
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert login(client, "alice", "alice-password-123").status_code == 302


def test_sessions_expire_after_the_configured_age(client, alice):
    assert 0 < settings.SESSION_COOKIE_AGE <= 24 * 3600
    login(client, "alice", "alice-password-123")
    assert client.get("/audit/").status_code == 200
    session = Session.objects.get(session_key=client.session.session_key)
    assert session.expire_date <= timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE + 5)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_logout_needs_a_post(client, alice):
    login(client, "alice", "alice-password-123")
    assert client.get("/logout/").status_code == 405
    assert client.get("/audit/").status_code == 200


def test_logout_ends_the_session_and_is_audited(client, alice):
    login(client, "alice", "alice-password-123")
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/audit/").status_code == 302
    event = AuditEvent.objects.get(action="logout")
    assert (event.actor, event.outcome) == ("alice", "succeeded")


def test_login_and_logout_without_csrf_token_are_refused(alice):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/login/", {"username": "alice", "password": "alice-password-123"}).status_code == 403
    assert not AuditEvent.objects.filter(action="login").exists()
