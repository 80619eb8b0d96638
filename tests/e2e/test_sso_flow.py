"""Single sign-on in headless Chromium through a real OpenID Connect provider process (authlib's server, started
here on a free port): "Sign in with Test IdP", the provider's own login form, back to the portal signed in, teams
following the groups claim; a tampered nonce refused; each step in the audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from apps.audit.models import AuditEvent
from apps.identity.models import GroupMapping
from apps.teams.models import Membership, Team
from tests.identity.provider_process import Provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(live_server, settings, tmp_path) -> Iterator[Provider]:
    idp = Provider(tmp_path / "users.json", f"{live_server.url}/oidc/callback/").start()
    idp.configure(settings)
    yield idp
    idp.stop()


@pytest.fixture
def mapped_teams() -> dict[str, Team]:
    web = Team.objects.create(name="Web", slug="web")
    ops = Team.objects.create(name="Ops", slug="ops")
    GroupMapping.objects.create(group="dev-*", team=web, role=Membership.Role.MEMBER)
    GroupMapping.objects.create(group="platform", team=ops, role=Membership.Role.MAINTAINER)
    return {"web": web, "ops": ops}


def sign_in_at_provider(page, provider: Provider, username: str) -> None:
    page.goto("/login/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    expect(page).to_have_url(re.compile(re.escape(provider.issuer) + r"/authorize"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(provider.users[username]["password"])
    page.get_by_role("button", name="Sign in").click()


def memberships(username: str) -> dict[str, tuple[str, bool]]:
    rows = Membership.objects.filter(user__username=username).select_related("team")
    return {m.team.slug: (m.role, m.managed_by_sso) for m in rows}


def test_alice_signs_in_through_the_provider_and_her_teams_follow_her_groups(page, shot, provider, mapped_teams):
    sign_in_at_provider(page, provider, "alice")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
    assert memberships("alice") == {"web": ("member", True), "ops": ("maintainer", True)}
    shot(page, "sso-signed-in.png")

    # An admin adds alice to Search by hand; the provider drops her from every dev group.
    search = Team.objects.create(name="Search", slug="search")
    Membership.objects.create(team=search, user=Membership.objects.filter(user__username="alice").first().user)
    provider.set_groups("alice", ["platform"])
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/"))

    sign_in_at_provider(page, provider, "alice")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert memberships("alice") == {"ops": ("maintainer", True), "search": ("member", False)}

    events = AuditEvent.objects.filter(actor="alice").order_by("id")
    assert [(e.action, e.outcome, e.team) for e in events] == [
        ("login", "succeeded", ""),
        ("add_member", "succeeded", "web"),
        ("add_member", "succeeded", "ops"),
        ("logout", "succeeded", ""),
        ("login", "succeeded", ""),
        ("remove_member", "succeeded", "web"),
    ]
    assert all(e.request.get("via") == "SSO" for e in events if e.action != "logout")
    assert events.filter(action="login").last().request["groups"] == ["platform"]


def test_a_tampered_nonce_is_refused_and_audited(page, provider, mapped_teams):
    page.goto("/login/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    expect(page).to_have_url(re.compile(re.escape(provider.issuer) + r"/authorize"))
    # The authorization request reaches the provider with another nonce than the one the portal keeps.
    page.locator('input[name="nonce"]').evaluate("input => { input.value = 'replayed-' + input.value }")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(provider.users["alice"]["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_contain_text("Single sign-on failed")
    expect(page).to_have_url(re.compile(r"/login/$"))
    assert not Membership.objects.exists()
    event = AuditEvent.objects.get(action="login")
    assert (event.outcome, event.kind) == ("denied", "session")
    assert "nonce" in event.error


def test_with_local_login_for_admins_only_a_member_is_refused_in_the_login_form(page, settings, alice, provider):
    settings.LOCAL_LOGIN = "admins-only"
    page.goto("/login/")
    expect(page.locator("main")).to_contain_text("for platform admins' break-glass accounts only")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice-password-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Local login is reserved for platform admins")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.outcome) == ("alice", "denied")
