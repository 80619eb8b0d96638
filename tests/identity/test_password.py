"""Every user changes their own password: audited without secrets; this session stays, the others end."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from django.contrib.sessions.models import Session

from apps.audit.models import AuditEvent

from .conftest import event_text, is_logged_in, logged_in

pytestmark = pytest.mark.django_db
NEW = "Quiet-Harbour-Lantern-42"


def sessions_of(user) -> int:
    return sum(1 for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(user.pk))


def change(client, old: str, new: str, again: str | None = None):
    return client.post(
        "/account/password/",
        {"old_password": old, "new_password1": new, "new_password2": new if again is None else again},
    )


def test_changing_your_password_keeps_this_session_and_ends_the_others(alice):
    laptop, phone = logged_in("alice", "alice-password-123"), logged_in("alice", "alice-password-123")
    assert sessions_of(alice) == 2 and is_logged_in(phone)
    response = change(laptop, "alice-password-123", NEW)
    assert response.status_code == 302 and response["Location"] == "/account/password/"
    assert "1 other session ended" in laptop.get("/account/password/").content.decode()  # still logged in
    assert not is_logged_in(phone)
    assert sessions_of(alice) == 1
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    event = AuditEvent.objects.get(kind="user", action="change_password")
    assert (event.actor, event.name, event.outcome, event.request) == (
        "alice", "alice", "succeeded", {"sessions_ended": 1, "request_id": ANY})  # fmt: skip
    for secret in (NEW, "alice-password-123", alice.password):
        assert secret not in event_text(event)


def test_an_admin_changes_their_own_password_too(admin_user):
    root = logged_in("root", "root-password-123")
    assert change(root, "root-password-123", NEW).status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.check_password(NEW) and is_logged_in(root)


@pytest.mark.parametrize(
    ("old", "new", "again", "message"),
    [
        ("wrong-password-1", NEW, None, "Your old password was entered incorrectly"),
        ("alice-password-123", "abc12", None, "too short"),
        ("alice-password-123", NEW, NEW + "x", "didn’t match"),
    ],
    ids=["wrong current", "weak", "mismatch"],
)
def test_a_refused_change_says_why_changes_nothing_and_is_audited_without_secrets(alice, old, new, again, message):
    laptop, phone = logged_in("alice", "alice-password-123"), logged_in("alice", "alice-password-123")
    response = change(laptop, old, new, again)
    assert response.status_code == 200 and message in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password("alice-password-123") and is_logged_in(phone)
    event = AuditEvent.objects.get(kind="user", action="change_password")
    assert (event.actor, event.outcome) == ("alice", "failed")
    for secret in (old, new, "alice-password-123"):
        assert secret not in event_text(event)


def test_every_page_links_change_password_and_only_admins_see_users(alice, admin_user):
    html = logged_in("alice", "alice-password-123").get("/teams/").content.decode()
    assert 'href="/account/password/"' in html and 'href="/users/"' not in html
    html = logged_in("root", "root-password-123").get("/teams/").content.decode()
    assert 'href="/account/password/"' in html and 'href="/users/"' in html


def test_the_password_page_needs_a_login(client):
    response = client.get("/account/password/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post("/account/password/", {"old_password": "x"}).status_code == 302
    assert not AuditEvent.objects.filter(action="change_password").exists()
