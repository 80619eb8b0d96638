"""Single sign-on against a real OpenID Connect provider process (apps/identity/demo_oidc.py, authlib's
server), driven over HTTP by the portal: users created on first sign-in, teams following the groups claim
through the mapping rules, refusals audited, and LOCAL_LOGIN=admins-only."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import ANY
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.identity.models import GroupMapping, SsoIdentity
from apps.teams.models import Membership, Team

from .provider_process import Provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(settings, tmp_path) -> Iterator[Provider]:
    idp = Provider(tmp_path / "users.json", "http://testserver/oidc/callback/").start()
    idp.configure(settings)
    yield idp
    idp.stop()


@pytest.fixture
def teams() -> dict[str, Team]:
    web = Team.objects.create(name="Web", slug="web")
    ops = Team.objects.create(name="Ops", slug="ops")
    GroupMapping.objects.create(group="dev-*", team=web, role=Membership.Role.MEMBER)
    GroupMapping.objects.create(group="platform", team=ops, role=Membership.Role.MAINTAINER)
    return {"web": web, "ops": ops}


def sso(client: Client, provider: Provider, username: str):
    """Click "Sign in with", log in at the provider, follow it back: the portal's answer to the callback."""
    start = client.get("/oidc/login/")
    assert start.status_code == 302 and start["Location"].startswith(provider.issuer + "/authorize?")
    back = urlsplit(provider.sign_in(start["Location"], username))
    return client.get(f"{back.path}?{back.query}")


def test_the_login_page_offers_the_provider_when_configured(client, provider):
    response = client.get("/login/")
    assert b"Sign in with Test IdP" in response.content


def test_the_login_page_offers_no_sso_without_an_issuer(client, settings):
    settings.OIDC_ISSUER = ""
    assert b"Sign in with" not in client.get("/login/").content
    assert client.get("/oidc/login/")["Location"] == "/login/"


def test_the_authorization_request_carries_pkce_and_a_nonce(client, provider):
    location = client.get("/oidc/login/")["Location"]
    assert "code_challenge_method=S256" in location and "code_challenge=" in location
    assert "nonce=" in location and "state=" in location


def test_first_sign_in_creates_the_user_and_joins_the_mapped_teams(client, provider, teams, django_user_model):
    response = sso(client, provider, "alice")
    assert response.status_code == 302 and response["Location"] == "/"
    alice = django_user_model.objects.get(username="alice")
    assert not alice.has_usable_password() and alice.email == "alice@example.com"
    assert SsoIdentity.objects.get(user=alice).subject == "sub-alice"
    memberships = {m.team.slug: (m.role, m.managed_by_sso) for m in alice.memberships.select_related("team")}
    assert memberships == {"web": ("member", True), "ops": ("maintainer", True)}
    assert client.get("/account/password/").status_code == 200  # signed in
    added = AuditEvent.objects.filter(action="add_member", kind="team").order_by("id")
    assert [(e.team, e.actor, e.request["via"]) for e in added] == [("web", "alice", "SSO"), ("ops", "alice", "SSO")]
    assert AuditEvent.objects.filter(action="login", outcome="succeeded", actor="alice").count() == 1


def test_a_later_sign_in_removes_a_managed_membership_and_keeps_a_manual_one(client, provider, teams):
    sso(client, provider, "alice")
    search = Team.objects.create(name="Search", slug="search")
    Membership.objects.create(team=search, user=Membership.objects.first().user, role="member")  # added by hand
    Membership.objects.filter(team=teams["ops"]).update(managed_by_sso=False)  # an admin took this one over
    provider.set_groups("alice", ["dev-web"])
    client.post("/logout/")
    assert sso(Client(), provider, "alice").status_code == 302
    provider.set_groups("alice", [])
    assert sso(Client(), provider, "alice").status_code == 302
    kept = set(Membership.objects.filter(user__username="alice").values_list("team__slug", flat=True))
    assert kept == {"search", "ops"}
    removed = AuditEvent.objects.get(action="remove_member")
    assert (removed.team, removed.actor, removed.request) == (
        "web",
        "alice",
        {"username": "alice", "via": "SSO", "request_id": ANY},
    )
    assert AuditEvent.objects.filter(action="logout", actor="alice").count() == 1


def test_a_callback_with_a_state_the_portal_did_not_send_is_refused_and_audited(client, provider, teams):
    start = client.get("/oidc/login/")
    back = urlsplit(provider.sign_in(start["Location"], "alice"))
    tampered = back.query.replace("state=", "state=x")
    response = client.get(f"{back.path}?{tampered}", follow=True)
    assert "Single sign-on failed" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not Membership.objects.exists()
    event = AuditEvent.objects.get(action="login")
    assert (event.outcome, event.kind) == ("denied", "session")
    assert "mismatching_state" in event.error


def test_an_error_from_the_provider_is_refused_and_audited(client, provider):
    state = dict(parse_qsl(urlsplit(client.get("/oidc/login/")["Location"]).query))["state"]
    response = client.get(f"/oidc/callback/?error=access_denied&error_description=user+said+no&state={state}")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "access_denied" in AuditEvent.objects.get(action="login", outcome="denied").error


def test_a_missing_username_claim_is_refused_and_audited(client, provider, settings, django_user_model):
    settings.OIDC_USERNAME_CLAIM = "nickname"
    response = sso(client, provider, "alice")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not django_user_model.objects.filter(username="alice").exists()
    assert "no 'nickname' claim" in AuditEvent.objects.get(action="login", outcome="denied").error


def test_a_provider_user_cannot_take_over_a_local_account_of_the_same_name(client, provider, alice):
    response = sso(client, provider, "alice")
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert not SsoIdentity.objects.exists()
    assert "already exists" in AuditEvent.objects.get(action="login", outcome="denied").error


def test_admins_only_local_login_refuses_a_member_and_audits_it(client, settings, alice):
    settings.LOCAL_LOGIN = "admins-only"
    response = client.post("/login/", {"username": "alice", "password": "alice-password-123"})
    assert response.status_code == 200
    assert "Local login is reserved for platform admins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.outcome) == ("alice", "denied")
    assert "admins-only" in event.error


def test_admins_only_local_login_still_admits_a_platform_admin(client, settings, admin_user):
    settings.LOCAL_LOGIN = "admins-only"
    response = client.post("/login/", {"username": "root", "password": "root-password-123"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(admin_user.pk)


def test_an_admin_adds_and_deletes_a_mapping_rule_and_both_are_audited(admin_client, teams):
    response = admin_client.post("/sso/groups/", {"group": "sre-*", "team": teams["ops"].pk, "role": "member"})
    assert response.status_code == 302
    rule = GroupMapping.objects.get(group="sre-*")
    assert "sre-*" in admin_client.get("/sso/groups/").content.decode()
    admin_client.post("/sso/groups/", {"delete": rule.pk})
    assert not GroupMapping.objects.filter(group="sre-*").exists()
    assert [e.action for e in AuditEvent.objects.filter(kind="group_mapping").order_by("id")] == ["create", "delete"]


def test_a_member_cannot_see_or_change_the_mapping_rules(client, alice, teams):
    client.force_login(alice)
    assert client.get("/sso/groups/").status_code == 403
    assert client.post("/sso/groups/", {"group": "*", "team": teams["ops"].pk, "role": "maintainer"}).status_code == 403
    assert GroupMapping.objects.count() == 2


def test_a_deactivated_sso_user_is_refused_at_the_next_sign_in(client, provider, teams, django_user_model):
    sso(client, provider, "alice")
    django_user_model.objects.filter(username="alice").update(is_active=False)
    fresh = Client()
    response = sso(fresh, provider, "alice")
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in fresh.session
    assert "deactivated" in AuditEvent.objects.get(action="login", outcome="denied").error


def test_a_duplicate_mapping_rule_is_explained_and_not_saved(admin_client, teams):
    response = admin_client.post("/sso/groups/", {"group": "platform", "team": teams["ops"].pk, "role": "member"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert GroupMapping.objects.get(group="platform").role == "maintainer"
    assert not AuditEvent.objects.filter(kind="group_mapping").exists()


def test_the_team_page_tells_an_admin_which_members_the_mapping_manages(provider, teams, admin_client):
    sso(Client(), provider, "alice")
    page = admin_client.get("/teams/web/").content.decode()
    assert "alice" in page and "via SSO" in page
    Membership.objects.filter(team=teams["web"]).update(managed_by_sso=False)
    assert "via SSO" not in admin_client.get("/teams/web/").content.decode()


def test_an_unreachable_provider_is_explained_and_audited_not_an_error_page(client, provider, settings):
    provider.stop()  # nothing answers at the issuer any more
    settings.OIDC_ISSUER = provider.issuer + "/gone"  # a configuration the client has not cached
    response = client.get("/oidc/login/", follow=True)
    assert response.status_code == 200
    assert "discovery document could not be read" in response.content.decode()
    assert AuditEvent.objects.get(action="login", outcome="denied").kind == "session"
