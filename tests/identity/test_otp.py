"""A second factor for local accounts: enrolment with a real TOTP code, the login's code step that no URL gets
around, recovery codes used once, throttled wrong codes, an admin's reset and the admins-must-enrol setting.
Every step is audited, and no event holds the secret or a code."""

from __future__ import annotations

import re
from base64 import b32encode
from unittest.mock import ANY

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEvent
from apps.identity import otp

from .conftest import event_text, is_logged_in, logged_in

pytestmark = pytest.mark.django_db
SETUP = "/account/two-factor/"
VERIFY = "/account/two-factor/verify/"


def code_of(device: TOTPDevice, ahead: int = 0) -> str:
    """The code the authenticator app shows now (`ahead`: the next step's, which the default tolerance of one step
    accepts too; a step's code works only once)."""
    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits, ahead).token():06d}"


def enrol(client: Client, username: str) -> tuple[TOTPDevice, list[str]]:
    assert client.post(SETUP, {"start": "1"}).status_code == 200
    device = TOTPDevice.objects.get(user__username=username, confirmed=False)
    page = client.post(SETUP, {"confirm": "1", "code": code_of(device)}).content.decode()
    codes = re.search(r'<pre class="code token" id="recovery-codes">(.*?)</pre>', page, re.S).group(1).split()
    device.refresh_from_db()
    return device, codes


def password_step(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302
    return client


@pytest.fixture
def enrolled_alice(alice) -> tuple[TOTPDevice, list[str]]:
    return enrol(logged_in("alice", "alice-password-123"), "alice")


@pytest.fixture
def no_throttle(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def secrets_absent(device: TOTPDevice, codes: list[str]) -> None:
    texts = [event_text(e) for e in AuditEvent.objects.all()]
    secret = b32encode(device.bin_key).decode()
    for text in texts:
        assert device.key not in text and secret not in text
        assert not any(code in text for code in codes)


def test_enrolment_shows_an_inline_svg_qr_code_confirms_with_a_real_code_and_shows_ten_recovery_codes_once(alice):
    client = logged_in("alice", "alice-password-123")
    assert "Set up two-factor login" in client.get(SETUP).content.decode()
    page = client.post(SETUP, {"start": "1"}).content.decode()
    device = TOTPDevice.objects.get(user=alice)
    assert not device.confirmed
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert "<path" in svg and "style" not in svg.lower()  # the CSP allows no inline styles
    assert "otpauth://totp/Argo%20CD%20Portal%3Aalice?secret=" in page.replace("&amp;", "&")

    wrong = client.post(SETUP, {"confirm": "1", "code": "000000" if code_of(device) != "000000" else "111111"})
    assert "That code is not valid" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed and not otp.is_enrolled(alice)
    device.throttle_reset()

    done = client.post(SETUP, {"confirm": "1", "code": code_of(device)})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    codes = re.search(r'id="recovery-codes">(.*?)</pre>', done.content.decode(), re.S).group(1).split()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert otp.is_enrolled(alice) and StaticToken.objects.filter(device__user=alice).count() == 10
    again = client.get(SETUP).content.decode()
    assert "10 recovery codes left" in again and not any(code in again for code in codes)
    assert is_logged_in(client)  # the enrolling session counts as verified

    events = {(e.action, e.outcome) for e in AuditEvent.objects.filter(kind="user", name="alice")}
    assert events == {("otp_enrol", "succeeded"), ("otp_confirm", "failed"), ("otp_confirm", "succeeded")}
    confirmed = AuditEvent.objects.get(action="otp_confirm", outcome="succeeded")
    assert (confirmed.before, confirmed.after) == ({"enrolled": False}, {"enrolled": True})
    secrets_absent(device, codes)


def test_login_asks_for_the_code_after_the_password(enrolled_alice):
    device, _ = enrolled_alice
    client = password_step("alice", "alice-password-123")
    response = client.get("/teams/")
    assert response.status_code == 302 and response["Location"] == f"{VERIFY}?next=%2Fteams%2F"
    assert not is_logged_in(client)
    page = client.get(response["Location"]).content.decode()
    assert "Two-factor code" in page and 'value="/teams/"' in page
    done = client.post(VERIFY, {"code": code_of(device, ahead=1), "next": "/teams/"})
    assert done.status_code == 302 and done["Location"] == "/teams/"
    assert is_logged_in(client)
    assert AuditEvent.objects.filter(action="otp_verify", outcome="succeeded", actor="alice").count() == 1


def test_a_wrong_code_is_refused_audited_and_throttled(enrolled_alice):
    device, codes = enrolled_alice
    client = password_step("alice", "alice-password-123")
    right = code_of(device, ahead=1)
    response = client.post(VERIFY, {"code": "999999" if right != "999999" else "888888"})
    assert response.status_code == 200 and "That code is not valid" in response.content.decode()
    assert not is_logged_in(client)
    event = AuditEvent.objects.get(action="otp_verify", outcome="failed")
    assert (event.actor, event.name, event.kind) == ("alice", "alice", "user")
    # Right after a failure the authenticator waits before it looks at any code, even the right one.
    throttled = client.post(VERIFY, {"code": right})
    assert "Too many wrong codes" in throttled.content.decode() and not is_logged_in(client)
    assert AuditEvent.objects.filter(action="otp_verify", outcome="failed").count() == 2
    secrets_absent(device, codes)


def test_a_recovery_code_works_once(enrolled_alice, no_throttle):
    device, codes = enrolled_alice
    first = password_step("alice", "alice-password-123")
    assert first.post(VERIFY, {"code": codes[3].upper()}).status_code == 302
    assert is_logged_in(first)
    event = AuditEvent.objects.get(action="otp_recovery_code")
    assert (event.outcome, event.request) == ("succeeded", {"recovery_codes_left": 9, "request_id": ANY})

    second = password_step("alice", "alice-password-123")
    refused = second.post(VERIFY, {"code": codes[3]})
    assert "That code is not valid" in refused.content.decode() and not is_logged_in(second)
    assert second.post(VERIFY, {"code": codes[4]}).status_code == 302 and is_logged_in(second)
    secrets_absent(device, codes)


def _routes(patterns, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            found += _routes(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            found.append((route, p.callback))
    return found


def test_no_url_is_reachable_between_password_and_code(enrolled_alice, admin_user):
    """Every route of the portal (parameters filled in), a made-up one, plain and HTMX, GET and POST."""
    client = password_step("alice", "alice-password-123")
    routes = _routes(get_resolver().url_patterns)
    assert len(routes) > 30
    checked = 0
    for route, view in [*routes, ("no/such/page/", None)]:
        path = "/" + re.sub(r"<[^>]+>", "x", route).lstrip("^").rstrip("$")
        if getattr(view, "login_required", True) is False or path in (VERIFY, "/logout/"):
            continue  # the health probes and the login page need no login at all; logging out stays open
        for method in (client.get, client.post):
            plain = method(path)
            assert plain.status_code == 302 and plain["Location"].startswith(VERIFY), (method, path, plain)
            htmx = method(path, headers={"HX-Request": "true"})
            assert htmx.status_code == 200 and htmx["HX-Redirect"] == VERIFY, (method, path)
            assert htmx.content == b""
            checked += 1
    assert checked > 30
    assert client.get("/login/")["Location"].startswith("/")  # the login page sends a logged-in user on…
    assert client.get("/")["Location"].startswith(VERIFY)  # …and that lands on the code page
    assert not AuditEvent.objects.exclude(action__in=["login", "otp_enrol", "otp_confirm"]).exists()  # no view ran
    assert client.post("/logout/").status_code == 302 and not is_logged_in(client)


def test_an_admin_resets_a_second_factor_and_it_is_audited_with_before_and_after(enrolled_alice, admin_user, bob):
    root = logged_in("root", "root-password-123")
    assert '<td data-field="otp">on</td>' in root.get("/users/alice/").content.decode()
    response = root.post("/users/alice/two-factor/reset/", {"otp_reset": "1"})
    assert response.status_code == 302 and response["Location"] == "/users/alice/"
    assert not otp.is_enrolled(enrolled_alice[0].user)
    assert not StaticToken.objects.filter(device__user__username="alice").exists()
    event = AuditEvent.objects.get(action="otp_reset")
    assert (event.actor, event.name, event.outcome) == ("root", "alice", "succeeded")
    assert (event.before, event.after) == ({"enrolled": True}, {"enrolled": False})
    assert "reset" in root.get("/users/alice/").content.decode()
    assert is_logged_in(logged_in("alice", "alice-password-123"))  # the password alone again

    bob_client = logged_in("bob", "bob-password-123")
    assert bob_client.post("/users/root/two-factor/reset/").status_code == 403
    denied = AuditEvent.objects.get(action="otp_reset", outcome="denied")
    assert (denied.actor, denied.name) == ("bob", "root")


def test_you_turn_your_own_second_factor_off_with_a_current_code_only(enrolled_alice, no_throttle):
    device, codes = enrolled_alice
    client = password_step("alice", "alice-password-123")
    assert client.post(VERIFY, {"code": codes[0]}).status_code == 302
    refused = client.post(SETUP, {"disable": "1", "code": "12345"})
    assert "not valid" in refused.content.decode() and otp.is_enrolled(device.user)
    assert AuditEvent.objects.filter(action="otp_disable", outcome="failed").count() == 1
    assert client.post(SETUP, {"disable": "1", "code": code_of(device, ahead=1)}).status_code == 302
    assert not otp.is_enrolled(device.user)
    event = AuditEvent.objects.get(action="otp_disable", outcome="succeeded")
    assert (event.before, event.after) == ({"enrolled": True}, {"enrolled": False})
    assert is_logged_in(password_step("alice", "alice-password-123"))


def test_new_recovery_codes_replace_the_old_ones(enrolled_alice, no_throttle):
    device, old = enrolled_alice
    client = password_step("alice", "alice-password-123")
    assert client.post(VERIFY, {"code": old[0]}).status_code == 302
    page = client.post(SETUP, {"regenerate": "1"}).content.decode()
    new = re.search(r'id="recovery-codes">(.*?)</pre>', page, re.S).group(1).split()
    assert len(new) == 10 and not set(new) & set(old)
    assert AuditEvent.objects.get(action="otp_recovery_regenerate").after == {"recovery_codes": 10}
    later = password_step("alice", "alice-password-123")
    assert "not valid" in later.post(VERIFY, {"code": old[1]}).content.decode()
    assert later.post(VERIFY, {"code": new[1]}).status_code == 302
    secrets_absent(device, old + new)


def test_otp_required_for_admins_sends_an_admin_to_enrolment_before_anything_else(settings, admin_user, alice):
    settings.OTP_REQUIRED_FOR_ADMINS = True
    root = logged_in("root", "root-password-123")
    for path in ("/", "/users/", "/account/password/", "/account/two-factor/verify/"):
        response = root.get(path)
        assert response.status_code == 302 and response["Location"] == SETUP, path
    assert root.get("/users/", headers={"HX-Request": "true"})["HX-Redirect"] == SETUP
    assert "Platform admins must set up two-factor login" in root.get(SETUP).content.decode()
    enrol(root, "root")
    assert root.get("/users/").status_code == 200
    assert is_logged_in(logged_in("alice", "alice-password-123"))  # others are not asked to enrol


def test_an_admin_with_a_second_factor_is_asked_for_it_even_with_the_setting_off(admin_user):
    device, _ = enrol(logged_in("root", "root-password-123"), "root")
    client = password_step("root", "root-password-123")
    assert client.get("/users/")["Location"].startswith(VERIFY)
    assert client.post(VERIFY, {"code": code_of(device, ahead=1)}).status_code == 302
    assert client.get("/users/").status_code == 200


def test_turning_two_factor_on_ends_every_other_session_of_yours(alice):
    laptop, phone = logged_in("alice", "alice-password-123"), logged_in("alice", "alice-password-123")
    enrol(laptop, "alice")
    assert is_logged_in(laptop) and not is_logged_in(phone)
    assert AuditEvent.objects.get(action="otp_confirm").request == {
        "recovery_codes": 10,
        "sessions_ended": 1,
        "request_id": ANY,
    }
