"""Who reads which audit events: admins everything; members their own and what their grants cover."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.audit.queries import visible_events
from tests.audit.test_pages import export_rows, ids_in

pytestmark = pytest.mark.django_db


def visible_names(user, events) -> set[str]:
    ids = set(visible_events(user).values_list("id", flat=True))
    return {label for label, e in events.items() if e.id in ids}


def test_admin_reads_every_event(admin_user, events):
    assert visible_names(admin_user, events) == set(events)


def test_member_reads_events_of_apps_in_their_grant_and_their_own(alice, events):
    assert visible_names(alice, events) == {"pay_app", "alice_own"}


def test_app_glob_limits_which_apps_of_a_project_a_member_reads(bob, events):
    assert visible_names(bob, events) == {"search_app"}


def test_instance_wide_events_need_a_grant_with_star_globs(carol, events):
    # carol's grant covers every project and app on stage, so stage's repository events too.
    assert visible_names(carol, events) == {"stage_repo", "stage_app"}


def test_portal_wide_events_are_for_admins_and_the_actor(alice, carol, events, admin_user):
    assert "team_change" not in visible_names(carol, events)
    assert "team_change" in visible_names(admin_user, events)


def test_a_user_without_teams_reads_only_their_own_events(django_user_model, events):
    from tests.audit.personas import event

    dave = django_user_model.objects.create_user("dave", "d@example.com", "dave-password-123")
    mine = event(actor="dave", instance="prod", project="payments", name="pay-api")
    assert list(visible_events(dave).values_list("id", flat=True)) == [mine.id]


def test_member_list_and_exports_apply_the_same_rule(client, alice, events):
    client.force_login(alice)
    own = set(AuditEvent.objects.filter(actor="alice").values_list("id", flat=True))
    expected = {events["pay_app"].id} | own
    assert set(ids_in(client.get("/audit/"))) == expected
    assert {int(r["id"]) for r in export_rows(client.get("/audit/export.csv"))} == expected
    first_export = AuditEvent.objects.get(action="export", actor="alice").id  # her own event, so hers to see
    assert {r["id"] for r in export_rows(client.get("/audit/export.jsonl"))} == expected | {first_export}


def test_member_reads_the_detail_of_a_covered_event(client, alice, events):
    client.force_login(alice)
    assert client.get(f"/audit/{events['pay_app'].id}/").status_code == 200
    assert client.get(f"/audit/{events['alice_own'].id}/").status_code == 200


def test_grant_patterns_with_classes_and_alternatives_work_in_the_query(django_user_model):
    from apps.access.models import Grant
    from apps.teams.models import Membership, Team
    from tests.audit.personas import event

    erin = django_user_model.objects.create_user("erin", "e@example.com", "erin-password-123")
    team = Team.objects.create(name="Mixed", slug="mixed")
    Membership.objects.create(team=team, user=erin)
    Grant.objects.create(team=team, instance_glob="prod-[0-9]", project_glob="{pay,search}*", app_glob="*-api")
    seen = {
        event(instance="prod-1", project="payments", name="pay-api"),
        event(instance="prod-2", project="search", name="web-api"),
    }
    hidden = {
        event(instance="prod-10", project="payments", name="pay-api"),
        event(instance="prod-1", project="web", name="pay-api"),
        event(instance="prod-1", project="payments", name="pay-ui"),
        event(instance="prod-1", kind="cluster", name="c-api"),  # instance-wide: needs * globs
    }
    visible = set(visible_events(erin))
    assert seen <= visible
    assert not hidden & visible


def test_the_instance_picker_offers_only_instances_the_member_may_see(client, alice, teams):
    from apps.instances.models import Instance

    Instance.objects.create(name="prod", url="https://prod.example.com")
    Instance.objects.create(name="secret-lab", url="https://lab.example.com")
    client.force_login(alice)
    body = client.get("/audit/").content.decode()
    assert '<option value="prod">' in body
    assert "secret-lab" not in body
