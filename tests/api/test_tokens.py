"""API tokens: shown once, stored hashed, expiring, revocable, audited, and never more than the owner holds."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.identity.tokens import ApiToken
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


def detail(instance, name):
    return f"/api/applications/{instance.name}/{name}"


def test_a_new_token_is_shown_once_and_stored_only_as_its_hash(client, alice):
    client.force_login(alice)
    expires = (timezone.localdate() + timedelta(days=10)).isoformat()
    form = {"name": "ci", "actions": ["view", "sync"], "instance_glob": "*", "project_glob": "payments",
            "app_glob": "*", "expires": expires}  # fmt: skip
    page = client.post(reverse("identity:tokens"), form).content.decode()
    secret = re.search(r'<pre id="new-token">(acp_[A-Za-z0-9_-]+)</pre>', page).group(1)
    token = ApiToken.objects.get(user=alice)
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.digest, token.hint} and len(token.hint) < len(secret)
    assert (token.actions, token.project_glob) == (["sync", "view"], "payments")
    assert secret not in client.get(reverse("identity:tokens")).content.decode()  # never again
    created = AuditEvent.objects.get(kind="api_token", action="create")
    assert created.actor == "alice" and secret not in str(created.after)


def test_a_token_must_expire_within_the_maximum(client, alice, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    client.force_login(alice)
    form = {"name": "ci", "actions": ["view"], "instance_glob": "*", "project_glob": "*", "app_glob": "*",
            "expires": (timezone.localdate() + timedelta(days=31)).isoformat()}  # fmt: skip
    response = client.post(reverse("identity:tokens"), form)
    assert response.status_code == 200 and "at most 30 days" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_revoked_token_is_refused_and_the_refusal_audited(client, alice, make_token, api, instance, grant):
    grant(alice, ["view"])
    secret = make_token(alice)
    assert api(secret).get("/api/applications").status_code == 200
    token = ApiToken.objects.get()
    assert token.last_used_at is not None
    client.force_login(alice)
    client.post(reverse("identity:token-revoke", args=[token.pk]))
    assert AuditEvent.objects.filter(kind="api_token", action="revoke", actor="alice").exists()
    response = api(secret).get("/api/applications")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated" and "revoked" in response.json()["message"]
    refusal = AuditEvent.objects.filter(kind="api_token", outcome="denied").latest("id")
    assert refusal.actor == "alice" and refusal.error == "revoked" and refusal.request["api_key_id"] == token.pk


def test_an_expired_token_is_refused(alice, make_token, api, instance, grant):
    grant(alice, ["view"])
    secret = make_token(alice, days=-1)
    response = api(secret).get("/api/applications")
    assert response.status_code == 401 and "expired" in response.json()["message"]
    assert AuditEvent.objects.filter(kind="api_token", outcome="denied", error="expired").exists()


def test_an_unknown_or_missing_token_gets_a_json_401_not_the_login_page(api, client):
    assert api("acp_not-a-real-token").get("/api/applications").json()["code"] == "unauthenticated"
    response = client.get("/api/applications")
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_someone_cannot_revoke_another_persons_token(client, alice, bob, make_token):
    make_token(alice)
    client.force_login(bob)
    token = ApiToken.objects.get()
    assert client.post(reverse("identity:token-revoke", args=[token.pk])).status_code == 404
    assert ApiToken.objects.get().revoked_at is None


def test_a_token_scope_narrower_than_the_grants_limits_the_call(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["sync"])
    name = fresh_app()
    view_only = api(make_token(alice, ["view"]))
    assert view_only.get(detail(instance, name)).status_code == 200
    response = view_only.post(detail(instance, name) + "/sync")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    other_project = api(make_token(alice, ["view", "sync"], project="search"))
    assert other_project.get(detail(instance, name)).json()["code"] == "not_found"
    denied = AuditEvent.objects.filter(outcome="denied", action="sync", name=name).get()
    assert denied.request["api_key_id"] == ApiToken.objects.get(actions=["view"]).pk


def test_a_token_loses_access_at_the_next_call_when_the_owners_grants_shrink(
    alice, make_token, api, instance, grant, fresh_app
):
    granted = grant(alice, ["view", "sync"])
    name = fresh_app()
    token = api(make_token(alice, ["view", "sync"]))
    assert token.get(detail(instance, name)).json()["permissions"]["sync"] is True
    Grant.objects.filter(pk=granted.pk).update(actions=["view"])
    assert token.get(detail(instance, name)).json()["permissions"]["sync"] is False
    assert token.post(detail(instance, name) + "/sync").status_code == 403
    granted.delete()
    assert token.get(detail(instance, name)).status_code == 404


def test_a_token_never_grants_an_action_its_owner_lacks(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["view"])
    name = fresh_app()
    response = api(make_token(alice, ["view", "sync"])).post(detail(instance, name) + "/sync")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def maintain(user, slug: str) -> Team:
    team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    Membership.objects.update_or_create(team=team, user=user, defaults={"role": Membership.Role.MAINTAINER})
    return team


def token_form(**extra) -> dict:
    return {"name": "ci", "actions": ["view", "sync"], "instance_glob": "*", "project_glob": "*", "app_glob": "*",
            "expires": (timezone.localdate() + timedelta(days=10)).isoformat(), **extra}  # fmt: skip


def test_a_team_maintainer_makes_a_team_token_and_a_member_cannot(client, alice, bob):
    team = maintain(alice, "payments")
    Membership.objects.create(team=team, user=bob)  # a plain member
    client.force_login(bob)
    response = client.post(reverse("identity:tokens"), token_form(team=team.pk))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()
    client.force_login(alice)
    client.post(reverse("identity:tokens"), token_form(team=team.pk))
    token = ApiToken.objects.get()
    assert token.team == team and token.user == alice
    assert AuditEvent.objects.get(kind="api_token", action="create").after["team"] == "payments"


def test_a_team_token_holds_the_teams_grants_not_its_makers(
    admin_user, make_token, api, instance, grant, fresh_app, alice
):
    team = maintain(admin_user, "payments")
    granted = Grant.objects.create(team=team, project_glob="payments", actions=["sync"])
    mine, other = fresh_app(), fresh_app(project="search")
    token = api(make_token(admin_user, ["view", "sync"], team=team))
    url = f"/api/applications/{instance.name}"
    assert token.get(f"{url}/{mine}").json()["permissions"]["sync"] is True
    assert token.get(f"{url}/{other}").status_code == 404  # the maker is a platform admin; the team is not
    Grant.objects.filter(pk=granted.pk).update(actions=["view"])
    assert token.post(f"{url}/{mine}/sync").status_code == 403
    granted.delete()
    assert token.get(f"{url}/{mine}").status_code == 404


def test_a_maintainer_may_revoke_a_team_token_another_maintainer_made(client, alice, bob, make_token):
    team = maintain(alice, "payments")
    maintain(bob, "payments")
    make_token(alice, team=team)
    client.force_login(bob)
    client.post(reverse("identity:token-revoke", args=[ApiToken.objects.get().pk]))
    assert ApiToken.objects.get().revoked_at is not None
