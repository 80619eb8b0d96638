"""The grant form checks what its globs match: instance names against the registered instances, project and
application globs against the index, with a live preview of the applications covered; deleting a grant or
removing a member is confirmed in a dialog first."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.teams.coverage import PREVIEW_SIZE, Coverage, counts_per_grant, coverage
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def indexed_fleet():
    """argocd-east (payments: 25 apps, search: 2) and argocd-west (payments: 1); argocd-old is disabled."""
    east = Instance.objects.create(name="argocd-east", url="https://east.example.test")
    west = Instance.objects.create(name="argocd-west", url="https://west.example.test")
    Instance.objects.create(name="argocd-old", url="https://old.example.test", enabled=False)
    now = timezone.now()
    rows = [
        ApplicationSummary(instance=east, name=f"payments-{i:02}", project="payments", seen_at=now) for i in range(25)
    ]
    rows += [
        ApplicationSummary(instance=east, name=n, project="search", seen_at=now) for n in ("search-api", "crawler")
    ]
    rows.append(ApplicationSummary(instance=west, name="payments-west", project="payments", seen_at=now))
    ApplicationSummary.objects.bulk_create(rows)
    return {"east": east, "west": west}


@pytest.fixture
def payments(alice):
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    return team


def test_an_instance_glob_matching_no_instance_is_warned_with_a_suggestion(indexed_fleet):
    found = coverage("argocd-eats", "payments", "*")
    assert found.instances == [] and found.count == 0
    assert found.warnings == ["Instances: no registered instance matches 'argocd-eats'. Did you mean argocd-east?"]


def test_an_instance_glob_matching_only_a_disabled_instance_is_warned(indexed_fleet):
    found = coverage("argocd-old", "*", "*")
    assert "matches only disabled instances (argocd-old)" in found.warnings[0]


def test_a_project_glob_matching_no_indexed_app_is_warned_with_a_suggestion(indexed_fleet):
    found = coverage("argocd-*", "payment", "*")
    assert found.instances == ["argocd-east", "argocd-west"]
    assert found.warnings == [
        "Projects: no indexed application on argocd-east, argocd-west is in a project matching 'payment'. "
        "Did you mean payments?"
    ]


def test_an_app_glob_matching_nothing_in_those_projects_is_warned(indexed_fleet):
    found = coverage("argocd-east", "search", "payments-*")
    assert found.count == 0
    assert found.warnings[0].startswith("Applications: no indexed application in those projects matches 'payments-*'")


def test_the_preview_counts_every_covered_app_and_lists_the_first_twenty(indexed_fleet):
    found = coverage("argocd-{east,west}", "payments", "payments-*")
    assert found.warnings == []
    assert found.count == 26
    assert len(found.apps) == PREVIEW_SIZE == 20
    assert [a["name"] for a in found.apps[:2]] == ["payments-00", "payments-01"]
    assert found.apps[0]["href"] == "/applications/argocd-east/payments-00/"


def test_a_grant_on_everything_and_an_admin_grant_get_a_note(indexed_fleet):
    found = coverage("*", "*", "*", actions=["admin"])
    assert found.count == 28
    assert any("Every application on every instance" in n for n in found.notes)
    assert any("admin allows every action" in n for n in found.notes)


def test_a_malformed_glob_is_a_warning_not_an_error(indexed_fleet):
    found = coverage("{a", "*", "*")
    assert "braces" in found.warnings[0] and found.count == 0


def test_the_instance_is_checked_before_the_other_globs_are_typed(indexed_fleet):
    assert coverage("", "", "") == Coverage(missing=["instances", "projects", "applications"])
    early = coverage("argocd-eats", "", "")
    assert early.warnings[0].startswith("Instances: no registered instance matches 'argocd-eats'")
    found = coverage("argocd-east", "payments", "")
    assert (found.instances, found.missing, found.count, found.warnings) == (["argocd-east"], ["applications"], 0, [])


def test_the_preview_is_an_htmx_fragment_for_admins(admin_client, payments, indexed_fleet):
    response = admin_client.get(
        "/teams/payments/grant-preview/",
        {"instance_glob": "argocd-west", "project_glob": "payments", "app_glob": "*", "actions": "sync"},
        **HX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<div") and "<html" not in html
    assert "1 indexed application" in html and "argocd-west/payments-west" in html


def test_a_member_may_not_read_the_preview_and_the_refusal_is_audited(client, alice, payments, indexed_fleet):
    client.force_login(alice)
    response = client.get(
        "/teams/payments/grant-preview/", {"instance_glob": "*", "project_glob": "*", "app_glob": "*"}
    )
    assert response.status_code == 403
    event = AuditEvent.objects.get(outcome="denied")
    assert (event.actor, event.name) == ("alice", "/teams/payments/grant-preview/")
    assert event.request == {"path": ANY, "request_id": ANY}


def test_a_new_grant_starts_with_no_globs_and_no_action_ticked(admin_client, payments):
    html = admin_client.get("/teams/payments/").content.decode()
    form = html.split('id="new-grant"')[1].split("</form>")[0]
    for name in ("instance_glob", "project_glob", "app_glob"):
        field = form.split(f'name="{name}"')[1].split(">")[0]
        assert "value=" not in field, f"{name} is prefilled: {field}"
    assert "checked" not in form.split('name="actions"', 1)[1].split("</fieldset>")[0]
    assert 'hx-get="/teams/payments/grant-preview/"' in form and "delay:400ms" in form


def test_the_grants_table_says_how_many_apps_each_grant_covers_in_one_query(admin_client, payments, indexed_fleet):
    wide = Grant.objects.create(team=payments, instance_glob="argocd-*", project_glob="payments", actions=["sync"])
    typo = Grant.objects.create(team=payments, instance_glob="argocd-eats", project_glob="*", actions=["view"])
    old = Grant.objects.create(team=payments, instance_glob="argocd-old", project_glob="*", actions=["view"])
    regex = Grant.objects.create(team=payments, instance_glob="*", project_glob="s?arch", app_glob="[sc]*", actions=[])
    with CaptureQueriesContext(connection) as ctx:
        counts = counts_per_grant([wide, typo, old, regex])
    assert counts == {wide.pk: 26, typo.pk: 0, old.pk: 0, regex.pk: 2}
    assert len(ctx.captured_queries) <= 2  # the enabled instances, then one aggregate
    html = admin_client.get("/teams/payments/").content.decode()
    assert f'data-covers="{wide.pk}">26 apps' in html
    assert "nothing indexed" in html.split(f'data-covers="{typo.pk}"')[1].split("</td>")[0]


def test_deleting_a_grant_and_removing_a_member_are_confirmed_in_a_dialog(admin_client, alice, payments):
    grant = Grant.objects.create(team=payments, instance_glob="argocd-east", project_glob="payments", actions=["sync"])
    membership = payments.memberships.get(user=alice)
    html = admin_client.get("/teams/payments/").content.decode()
    grant_dialog = html.split(f'<dialog id="delete-grant-{grant.pk}">')[1].split("</dialog>")[0]
    assert f'name="delete_grant" value="{grant.pk}"' in grant_dialog and "csrfmiddlewaretoken" in grant_dialog
    assert "lose <strong>sync</strong> on instances <code>argocd-east</code>" in grant_dialog
    member_dialog = html.split(f'<dialog id="remove-member-{membership.pk}">')[1].split("</dialog>")[0]
    assert f'name="remove_member" value="{membership.pk}"' in member_dialog and "csrfmiddlewaretoken" in member_dialog
    assert "alice loses what this team grants" in member_dialog
    # Outside the dialogs only buttons that open them: nothing deletes in one click.
    outside = html
    for dialog in (grant_dialog, member_dialog):
        outside = outside.replace(dialog, "")
    assert 'name="delete_grant"' not in outside and 'name="remove_member"' not in outside
    assert f'data-dialog-open="delete-grant-{grant.pk}"' in outside
    # Editing the grant previews what the changed globs would cover, into its own place.
    assert f'hx-target="#grant-preview-{grant.pk}"' in html and f'id="grant-preview-{grant.pk}"' in html


def test_a_saved_grant_whose_instance_glob_matches_nothing_is_kept_and_warned_about(
    admin_client, payments, indexed_fleet
):
    data = {"add_grant": "1", "instance_glob": "argocd-eats", "project_glob": "payments", "app_glob": "*",
            "actions": ["sync"]}  # fmt: skip
    response = admin_client.post("/teams/payments/", data, follow=True)
    assert payments.grants.filter(instance_glob="argocd-eats").exists()
    html = response.content.decode()
    assert (
        "Saved, but: Instances: no registered instance matches &#x27;argocd-eats&#x27;. Did you mean argocd-east?"
        in html
    )
    grant = payments.grants.get()
    data = {"edit_grant": str(grant.pk), "instance_glob": "argocd-east", "project_glob": "payments", "app_glob": "*",
            "actions": ["sync"]}  # fmt: skip
    html = admin_client.post("/teams/payments/", data, follow=True).content.decode()
    assert "Saved, but" not in html and f'data-covers="{grant.pk}">25 apps' in html


def test_a_grant_limited_to_one_app_namespace_covers_only_the_apps_living_there(admin_client):
    from django.utils import timezone

    from apps.index.models import ApplicationSummary
    from apps.instances.models import Instance
    from apps.teams import coverage

    east = Instance.objects.create(name="cov-east", url="https://cov-east.example.test")
    for i, namespace in enumerate(("argocd", "team-a", "team-a")):
        ApplicationSummary.objects.create(instance=east, namespace=namespace, name=f"web-{i}", project="shop",
                                          seen_at=timezone.now())  # fmt: skip
    assert coverage.coverage("cov-east", "shop", "*").count == 3
    assert coverage.coverage("cov-east", "shop", "*", namespace_glob="team-*").count == 2
    assert coverage.coverage("cov-east", "shop", "*", namespace_glob="team-b").count == 0
