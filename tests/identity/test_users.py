"""The users pages: platform admins create, deactivate, reset and promote people; every change and every
refusal is audited with before/after and never a password; guard rails keep an admin in charge."""

from __future__ import annotations

import re
from unittest.mock import ANY

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory

from apps.audit.models import AuditEvent
from apps.teams.models import Membership, Team

from .conftest import event_text, is_logged_in, logged_in

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def root(admin_user):
    return logged_in("root", "root-password-123")


def user_events(action: str):
    return AuditEvent.objects.filter(kind="user", action=action).order_by("id")


def test_django_admin_is_gone(admin_client):
    assert "django.contrib.admin" not in settings.INSTALLED_APPS
    assert admin_client.get("/admin/").status_code == 404
    assert admin_client.get("/admin/login/").status_code == 404
    assert admin_client.post("/admin/auth/user/add/", {"username": "x"}).status_code == 404


def test_admin_lists_users_with_status_admin_flag_teams_and_last_login(root, alice, bob):
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    bob.is_active = False
    bob.save()
    html = root.get("/users/").content.decode()
    assert 'href="/users/alice/"' in html and 'href="/users/root/"' in html
    assert 'href="/teams/payments/">Payments</a>' in html
    assert "<strong>admin</strong>" in html  # root
    assert 'href="/users/bob/"' not in html  # inactive users are listed under "Inactive"
    inactive = root.get("/users/", {"status": "inactive"}).content.decode()
    assert 'href="/users/bob/"' in inactive and 'href="/users/alice/"' not in inactive


def test_the_search_answers_htmx_with_the_rows_fragment(root, alice, bob):
    response = root.get("/users/", {"q": "ALI", "status": "all"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="user-rows">') and "<html" not in html
    assert 'href="/users/alice/"' in html and 'href="/users/bob/"' not in html


def test_admin_creates_a_user_with_a_generated_password_shown_once(root):
    response = root.post("/users/", {"username": "carol", "email": "carol@example.com", "first_name": "Carol"})
    html = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = re.search(r'<pre class="code token" id="new-password"[^>]*>([^<]+)</pre>', html).group(1)
    carol = User.objects.get(username="carol")
    assert carol.check_password(password) and not carol.is_superuser and carol.first_name == "Carol"
    assert logged_in("carol", password)
    event = user_events("create").get()
    assert (event.actor, event.name, event.outcome, event.before) == ("root", "carol", "succeeded", None)
    assert event.after == {"username": "carol", "email": "carol@example.com", "first_name": "Carol",
                           "last_name": "", "is_active": True, "is_superuser": False}  # fmt: skip
    assert event.request == {"generated": True, "request_id": ANY}
    assert password not in event_text(event) and carol.password not in event_text(event)
    assert password not in root.get("/users/carol/").content.decode()  # once


def test_admin_creates_a_platform_admin_with_a_password_they_chose(root):
    chosen = "Correct-Horse-Battery-9"
    response = root.post("/users/", {"username": "dave", "password1": chosen, "password2": chosen,
                                     "is_superuser": "on"})  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/users/dave/"
    dave = User.objects.get(username="dave")
    assert dave.is_superuser and dave.check_password(chosen)
    event = user_events("create").get()
    assert event.after["is_superuser"] is True and chosen not in event_text(event)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "erin", "password1": "123", "password2": "123"}, "too short"),
        ({"username": "erin", "password1": "Long-enough-pass-1", "password2": "other-Long-pass-1"}, "differ"),
        ({"username": "alice"}, "already exists"),
        ({"username": "bad name!"}, "Enter a valid username"),
    ],
    ids=["weak", "mismatch", "taken", "invalid"],
)
def test_bad_new_users_are_refused_in_the_page_and_nothing_changes(root, alice, data, message):
    response = root.post("/users/", data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not User.objects.filter(username__in=["erin", "bad name!"]).exists()
    assert not user_events("create").exists()


def test_admin_makes_alice_a_platform_admin_and_back_with_before_and_after(root, alice):
    response = root.post("/users/alice/", {"make_admin": "1"})
    assert response.status_code == 302 and response["Location"] == "/users/alice/"
    alice.refresh_from_db()
    assert alice.is_superuser
    root.post("/users/alice/", {"unmake_admin": "1"})
    alice.refresh_from_db()
    assert not alice.is_superuser
    made, unmade = user_events("make_admin").get(), user_events("unmake_admin").get()
    assert (made.name, made.outcome, made.before["is_superuser"], made.after["is_superuser"]) == (
        "alice", "succeeded", False, True)  # fmt: skip
    assert (unmade.before["is_superuser"], unmade.after["is_superuser"]) == (True, False)


def test_an_htmx_change_re_renders_the_user_card(root, alice):
    response = root.post("/users/alice/", {"make_admin": "1"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<section id="user-card">')
    assert "alice is now a platform admin." in html and 'name="unmake_admin"' in html


def test_deactivation_ends_the_users_sessions_at_once_and_reactivation_does_not_revive_them(root, alice):
    alices_browser = logged_in("alice", "alice-password-123")
    assert is_logged_in(alices_browser)
    response = root.post("/users/alice/", {"deactivate": "1"})
    assert response.status_code == 302
    assert not is_logged_in(alices_browser)
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(alice.pk)]
    event = user_events("deactivate").get()
    assert (event.before["is_active"], event.after["is_active"], event.request) == (
        True,
        False,
        {"sessions_ended": 1, "request_id": ANY},
    )

    root.post("/users/alice/", {"reactivate": "1"})
    alice.refresh_from_db()
    assert alice.is_active and not is_logged_in(alices_browser)
    assert logged_in("alice", "alice-password-123")
    event = user_events("reactivate").get()
    assert (event.before["is_active"], event.after["is_active"]) == (False, True)
    assert is_logged_in(root)


def test_a_deactivated_user_cannot_log_in(root, alice):
    root.post("/users/alice/", {"deactivate": "1"})
    response = Client().post("/login/", {"username": "alice", "password": "alice-password-123"})
    assert response.status_code == 200 and "_auth_user_id" not in response.client.session


def test_reset_password_generates_one_shown_once_and_ends_the_users_sessions(root, alice):
    alices_browser = logged_in("alice", "alice-password-123")
    response = root.post("/users/alice/", {"reset_password": "1", "password1": "", "password2": ""})
    html = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = re.search(r'id="new-password"[^>]*>([^<]+)</pre>', html).group(1)
    assert not is_logged_in(alices_browser)
    alice.refresh_from_db()
    assert alice.check_password(password)
    event = user_events("reset_password").get()
    assert event.request == {"generated": True, "sessions_ended": 1, "request_id": ANY}
    assert event.before["username"] == event.after["username"] == "alice"
    assert password not in event_text(event) and alice.password not in event_text(event)


def test_reset_password_to_a_chosen_one_is_validated(root, alice):
    weak = root.post("/users/alice/", {"reset_password": "1", "password1": "alice", "password2": "alice"})
    assert weak.status_code == 200 and "too similar" in weak.content.decode()
    alice.refresh_from_db()
    assert alice.check_password("alice-password-123") and not user_events("reset_password").exists()
    chosen = "Fresh-Orchard-Lamp-7"
    response = root.post("/users/alice/", {"reset_password": "1", "password1": chosen, "password2": chosen})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(chosen) and chosen not in event_text(user_events("reset_password").get())


@pytest.mark.parametrize("action", ["make_admin", "unmake_admin", "deactivate", "reactivate", "reset_password"])
def test_non_admins_are_refused_every_change_and_the_attempt_is_audited(alice, bob, action):
    alices_browser = logged_in("alice", "alice-password-123")
    response = alices_browser.post("/users/bob/", {action: "1", "password1": "", "password2": ""})
    assert response.status_code == 403
    bob.refresh_from_db()
    assert (bob.is_active, bob.is_superuser, bob.check_password("bob-password-123")) == (True, False, True)
    event = user_events(action).get()
    assert (event.actor, event.name, event.outcome, event.error) == ("alice", "bob", "denied", "not a platform admin")


def test_non_admins_cannot_see_or_create_users_and_are_audited(alice):
    alices_browser = logged_in("alice", "alice-password-123")
    assert alices_browser.get("/users/").status_code == 403
    assert alices_browser.get("/users/root/").status_code == 403
    assert alices_browser.post("/users/", {"username": "mallory"}).status_code == 403
    assert not User.objects.filter(username="mallory").exists()
    assert list(AuditEvent.objects.filter(kind="user").order_by("id").values_list("action", "name", "outcome")) == [
        ("view", "", "denied"), ("view", "root", "denied"), ("create", "mallory", "denied"),
    ]  # fmt: skip
    assert 'href="/users/"' not in alices_browser.get("/teams/").content.decode()


@pytest.mark.parametrize("action", ["deactivate", "unmake_admin", "reset_password"])
def test_an_admin_cannot_remove_their_own_access_or_reset_their_own_password(root, admin_user, alice, action):
    alice.is_superuser = True  # a second admin, so the refusal is about oneself, not about the last admin
    alice.save()
    response = root.post("/users/root/", {action: "1"})
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.is_active and admin_user.is_superuser and admin_user.check_password("root-password-123")
    event = user_events(action).get()
    assert (event.actor, event.name, event.outcome) == ("root", "root", "denied")
    page = root.get("/users/root/").content.decode()
    assert "You cannot" in page or "Change your own password" in page
    assert is_logged_in(root)


def test_the_last_active_platform_admin_cannot_be_removed(root, admin_user):
    response = root.post("/users/root/", {"unmake_admin": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "root is the last active platform admin" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_superuser
    event = user_events("unmake_admin").get()
    assert (event.outcome, event.error) == ("denied", "the last active platform admin")


def test_an_admin_whose_rights_were_just_removed_cannot_act_on_a_stale_request(admin_user, alice, bob):
    # Two admins removing each other at once: the second change sees the first under the row locks.
    from apps.identity import services

    alice.is_superuser = True
    alice.save()
    request = RequestFactory().post("/users/alice/")
    request.user = User.objects.get(pk=admin_user.pk)  # loaded while root was still an admin
    User.objects.filter(pk=admin_user.pk).update(is_superuser=False)  # alice un-admins root meanwhile
    with pytest.raises(services.Refused):
        services.set_admin(request, alice, False)
    alice.refresh_from_db()
    assert alice.is_superuser
    assert user_events("unmake_admin").get().error == "not a platform admin"


def test_unknown_user_is_a_404_for_admins(root):
    assert root.get("/users/nobody/").status_code == 404
    assert root.post("/users/nobody/", {"make_admin": "1"}).status_code == 404
