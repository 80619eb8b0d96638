"""Teams, members and grants: admins manage them, members read their own, every change is audited."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from django.test import Client

from apps.access.models import Grant
from apps.access.rules import can
from apps.audit.models import AuditEvent
from apps.instances.models import Instance
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments(alice):
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    Grant.objects.create(team=team, instance_glob="sim-*", project_glob="payments", app_glob="payments-*",
                         actions=["sync"])  # fmt: skip
    return team


@pytest.fixture
def search(bob):
    team = Team.objects.create(name="Search", slug="search")
    Membership.objects.create(team=team, user=bob)
    Grant.objects.create(team=team, instance_glob="*", project_glob="search", app_glob="*", actions=["logs"])
    return team


def test_admin_creates_a_team_with_a_derived_slug(admin_client):
    response = admin_client.post("/teams/", {"name": "Payments Core", "slug": "", "description": "Money"})
    assert response.status_code == 302 and response["Location"] == "/teams/payments-core/"
    team = Team.objects.get(slug="payments-core")
    event = AuditEvent.objects.get(kind="team", action="create")
    assert (event.outcome, event.name, event.team, event.after["name"]) == (
        "succeeded", "payments-core", "payments-core", "Payments Core"
    )  # fmt: skip
    assert team.description == "Money"


def test_a_duplicate_team_is_refused_with_a_message(admin_client, payments):
    response = admin_client.post("/teams/", {"name": "Payments", "slug": ""})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Team.objects.count() == 1


def test_admin_renames_a_team_and_the_slug_stays(admin_client, payments, search):
    response = admin_client.post("/teams/payments/", {"edit_team": "1", "name": "Payments Core", "description": "$"})
    assert response.status_code == 302 and response["Location"] == "/teams/payments/"
    payments.refresh_from_db()
    assert (payments.name, payments.slug, payments.description) == ("Payments Core", "payments", "$")
    event = AuditEvent.objects.get(kind="team", action="edit")
    assert (event.name, event.before["name"], event.after["name"]) == ("payments", "Payments", "Payments Core")

    taken = admin_client.post("/teams/payments/", {"edit_team": "1", "name": "Search", "description": ""})
    assert taken.status_code == 200 and "already exists" in taken.content.decode()
    assert "<h1>Payments Core</h1>" in taken.content.decode()  # the page shows the team as saved, not the refused name
    assert Team.objects.get(slug="payments").name == "Payments Core"
    assert AuditEvent.objects.filter(kind="team", action="edit").count() == 1


def test_admin_adds_and_removes_a_member_by_username(admin_client, payments, bob):
    response = admin_client.post("/teams/payments/", {"add_member": "1", "username": "bob", "role": "maintainer"})
    assert response.status_code == 302
    membership = Membership.objects.get(team=payments, user=bob)
    assert membership.role == "maintainer"
    admin_client.post("/teams/payments/", {"remove_member": str(membership.pk)})
    assert not Membership.objects.filter(team=payments, user=bob).exists()
    events = list(AuditEvent.objects.filter(kind="team").order_by("id").values_list("action", "request"))
    assert events == [
        ("add_member", {"username": "bob", "role": "maintainer", "request_id": ANY}),
        ("remove_member", {"username": "bob", "request_id": ANY}),
    ]


@pytest.mark.parametrize(
    ("username", "message"), [("nobody", "No portal user is called"), ("alice", "already a member")]
)
def test_adding_an_unknown_or_existing_member_is_explained(admin_client, payments, username, message):
    response = admin_client.post("/teams/payments/", {"add_member": "1", "username": username, "role": "member"})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert payments.memberships.count() == 1
    assert not AuditEvent.objects.filter(kind="team").exists()


def test_admin_grants_actions_with_checkboxes_and_the_member_gains_them(admin_client, payments, alice):
    Instance.objects.create(name="prod-eu", url="https://prod-eu.example.com")
    assert not can(alice, "rollback", "prod-eu", "payments", "payments-api")
    data = {"add_grant": "1", "instance_glob": "prod-{eu,us}", "project_glob": "payments", "app_glob": "payments-*",
            "actions": ["rollback", "logs"]}  # fmt: skip
    response = admin_client.post("/teams/payments/", data)
    assert response.status_code == 302
    grant = Grant.objects.get(team=payments, instance_glob="prod-{eu,us}")
    assert grant.actions == ["logs", "rollback"]
    alice = type(alice).objects.get(pk=alice.pk)  # a fresh user object: grants are cached per object
    assert can(alice, "rollback", "prod-eu", "payments", "payments-api")
    event = AuditEvent.objects.get(kind="grant", action="create")
    assert event.after == {"team": "payments", "instance_glob": "prod-{eu,us}", "project_glob": "payments",
                           "app_glob": "payments-*", "namespace_glob": "*", "actions": ["logs", "rollback"],
                           "constraints": {}}  # fmt: skip
    assert (event.team, event.outcome) == ("payments", "succeeded")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"actions": []}, "This field is required"),
        ({"actions": ["fly"]}, "Select a valid choice"),
        ({"app_glob": "{a,b"}, "is not a valid glob"),
        ({"project_glob": ""}, "This field is required"),
    ],
)
def test_a_bad_grant_is_explained_and_not_saved(admin_client, payments, overrides, message):
    data = {"add_grant": "1", "instance_glob": "*", "project_glob": "*", "app_glob": "*", "actions": ["sync"]}
    data.update(overrides)
    response = admin_client.post("/teams/payments/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert payments.grants.count() == 1
    assert not AuditEvent.objects.filter(kind="grant").exists()


def test_admin_deletes_a_grant_and_it_is_audited_with_what_it_allowed(admin_client, payments):
    grant = payments.grants.get()
    assert admin_client.post("/teams/payments/", {"delete_grant": str(grant.pk)}).status_code == 302
    assert not payments.grants.exists()
    event = AuditEvent.objects.get(kind="grant", action="delete")
    assert event.before["actions"] == ["sync"] and event.before["app_glob"] == "payments-*"


def test_a_grant_of_another_team_cannot_be_deleted_through_this_one(admin_client, payments, search):
    other = search.grants.get()
    admin_client.post("/teams/payments/", {"delete_grant": str(other.pk)})
    admin_client.post("/teams/payments/", {"delete_grant": "not-a-number"})
    assert Grant.objects.filter(pk=other.pk).exists()


def test_deleting_a_team_needs_its_slug_typed(admin_client, payments):
    response = admin_client.post("/teams/payments/", {"delete_team": "1", "confirm_name": "nope"}, follow=True)
    assert "nothing was deleted" in response.content.decode()
    assert Team.objects.filter(slug="payments").exists()
    response = admin_client.post("/teams/payments/", {"delete_team": "1", "confirm_name": "payments"})
    assert response.status_code == 302 and response["Location"] == "/teams/"
    assert not Team.objects.exists() and not Grant.objects.exists()
    event = AuditEvent.objects.get(kind="team", action="delete")
    assert event.before["members"] == ["alice"] and event.before["grants"][0]["actions"] == ["sync"]


def test_a_member_sees_only_their_own_teams_and_grants_read_only(client, alice, payments, search):
    client.force_login(alice)
    html = client.get("/teams/").content.decode()
    assert "Payments" in html and "payments-*" in html
    assert "Search" not in html
    assert "Create team" not in html and "csrfmiddlewaretoken" not in html.split("</header>", 1)[1]
    detail = client.get("/teams/payments/")
    assert detail.status_code == 200
    assert "Add grant" not in detail.content.decode() and "Delete team" not in detail.content.decode()
    assert client.get("/teams/search/").status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"add_member": "1", "username": "alice", "role": "member"},
        {"add_grant": "1", "instance_glob": "*", "project_glob": "*", "app_glob": "*", "actions": ["admin"]},
        {"delete_team": "1", "confirm_name": "payments"},
        {"edit_team": "1", "name": "Mine now"},
    ],
)
def test_a_member_cannot_change_their_own_team(client, alice, payments, data):
    client.force_login(alice)
    response = client.post("/teams/payments/", data)
    assert response.status_code == 403
    assert "403 · Not allowed" in response.content.decode()
    assert payments.grants.count() == 1 and Team.objects.filter(slug="payments", name="Payments").exists()
    assert client.post("/teams/", {"name": "Mine"}).status_code == 403
    assert not Team.objects.filter(name="Mine").exists()


def test_a_user_without_teams_is_told_so(client, bob):
    client.force_login(bob)
    assert "You are not in any team yet" in client.get("/teams/").content.decode()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/teams/", {"name": "New"}),
        ("/teams/payments/", {"add_member": "1", "username": "bob", "role": "member"}),
        ("/teams/payments/", {"add_grant": "1", "instance_glob": "*", "project_glob": "*", "app_glob": "*",
                              "actions": ["sync"]}),
        ("/teams/payments/", {"delete_team": "1", "confirm_name": "payments"}),
        ("/teams/payments/", {"edit_team": "1", "name": "Payments Core", "description": ""}),
    ],
)  # fmt: skip
def test_every_post_needs_a_csrf_token(admin_user, payments, bob, path, data):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(path, data).status_code == 403
    changes = AuditEvent.objects.filter(kind__in=["team", "grant"])
    assert not changes.exists()
    client.get(path)
    response = client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 302
    assert changes.count() == 1


def test_demo_seed_gives_dev_the_payments_apps_of_the_simulated_instances():
    from apps.simulator.seed import generate
    from apps.teams.demo import seed_teams

    people = seed_teams("dev-password-123")
    assert people[0][0] == "dev" and people[0][1] == "dev-password-123" and "payments" in people[0][2]
    seed_teams("dev-password-123")  # idempotent: the demo may run twice
    assert Grant.objects.count() == 1 and Membership.objects.count() == 1
    Instance.objects.create(name="sim-1", url="http://127.0.0.1:8081")
    from django.contrib.auth import get_user_model

    dev = get_user_model().objects.get(username="dev")
    assert dev.check_password("dev-password-123")
    apps = [(a.obj["spec"]["project"], a.obj["metadata"]["name"]) for a in generate(60, 4, 1).apps]
    allowed = [name for project, name in apps if can(dev, "sync", "sim-1", project, name)]
    assert allowed and len(allowed) < len(apps)
    assert all(name.startswith("payments-") for name in allowed)
    assert not can(dev, "delete", "sim-1", "payments", allowed[0])


def test_admin_grants_sync_with_constraints_and_the_grant_list_shows_them(admin_client, alice):
    team = Team.objects.create(name="Payments", slug="payments")
    data = {"add_grant": "1", "instance_glob": "prod-*", "project_glob": "payments", "app_glob": "payments-*",
            "actions": ["sync"], "revision": "globs", "revision_globs": "release-*, v1.*", "forbid_prune": "on",
            "forbid_replace": "on", "dry_run_only": "on", "bulk_limit": "5"}  # fmt: skip
    response = admin_client.post("/teams/payments/", data)
    assert response.status_code == 302
    grant = team.grants.get()
    assert grant.constraints == {"revision": "globs", "revision_globs": ["release-*", "v1.*"], "prune": False,
                                 "replace": False, "dry_run_only": True, "bulk_limit": 5}  # fmt: skip
    event = AuditEvent.objects.get(kind="grant", action="create")
    assert event.after["constraints"] == grant.constraints
    page = admin_client.get("/teams/payments/").content.decode()
    for words in ("revisions: own or release-*, v1.*", "no prune", "no replace", "dry run only", "bulk ≤ 5"):
        assert words in page


def test_a_grant_form_with_revision_globs_chosen_but_none_given_changes_nothing(admin_client):
    team = Team.objects.create(name="Payments", slug="payments")
    data = {"add_grant": "1", "instance_glob": "*", "project_glob": "*", "app_glob": "*", "actions": ["sync"],
            "revision": "globs", "revision_globs": ""}  # fmt: skip
    response = admin_client.post("/teams/payments/", data)
    assert response.status_code == 200
    assert "Give at least one glob" in response.content.decode()
    assert not team.grants.exists()


def test_admin_narrows_an_existing_grant_in_place_and_the_edit_is_audited_with_before_and_after(admin_client, alice):
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    grant = Grant.objects.create(team=team, instance_glob="prod-*", project_glob="payments", app_glob="*",
                                 actions=["sync"])  # fmt: skip
    page = admin_client.get("/teams/payments/").content.decode()
    assert f'name="edit_grant" value="{grant.pk}"' in page and f'id="grant{grant.pk}_instance_glob"' in page

    data = {"edit_grant": str(grant.pk), "instance_glob": "prod-*", "project_glob": "payments", "app_glob": "*",
            "actions": ["sync"], "revision": "own", "forbid_prune": "on"}  # fmt: skip
    assert admin_client.post("/teams/payments/", data).status_code == 302

    grant.refresh_from_db()
    assert grant.constraints == {"revision": "own", "prune": False}
    event = AuditEvent.objects.get(kind="grant", action="edit")
    assert event.before["constraints"] == {} and event.after["constraints"] == grant.constraints
    assert 'value="own" selected' in admin_client.get("/teams/payments/").content.decode()


def test_editing_a_grant_of_another_team_finds_nothing(admin_client):
    Team.objects.create(name="Payments", slug="payments")
    other = Team.objects.create(name="Search", slug="search")
    grant = Grant.objects.create(team=other, actions=["sync"])
    data = {"edit_grant": str(grant.pk), "instance_glob": "*", "project_glob": "*", "app_glob": "*",
            "actions": ["admin"]}  # fmt: skip
    assert admin_client.post("/teams/payments/", data).status_code == 404
    grant.refresh_from_db()
    assert grant.actions == ["sync"]
