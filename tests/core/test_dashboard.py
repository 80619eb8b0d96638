"""The home dashboard: fleet counts, what needs attention, changes, operations and instance health, each as the
user's grants show them, in a bounded number of queries."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.service import Outcome, record
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def apps_on(instance: Instance, project: str, *specs: tuple[str, str, str]) -> None:
    """(name, health, sync) rows in the index, as the indexer writes them."""
    now = timezone.now()
    ApplicationSummary.objects.bulk_create(
        ApplicationSummary(
            instance=instance, name=name, project=project, health_status=health, sync_status=sync, seen_at=now
        )  # fmt: skip
        for name, health, sync in specs
    )


@pytest.fixture
def fleet(alice):
    """Instances east and west; alice (team payments) may view project payments on east only."""
    east = Instance.objects.create(name="east", url="https://east.example.test", version="v2.13.1",
                                   last_seen=timezone.now())  # fmt: skip
    west = Instance.objects.create(name="west", url="https://west.example.test",
                                   last_error="connection refused to 10.0.0.9")  # fmt: skip
    apps_on(east, "payments", ("pay-api", "Healthy", "Synced"), ("pay-web", "Degraded", "Synced"),
            ("pay-db", "Healthy", "OutOfSync"), ("pay-cron", "", ""))  # fmt: skip
    apps_on(east, "search", ("search-api", "Degraded", "OutOfSync"))
    apps_on(west, "payments", ("west-pay", "Degraded", "OutOfSync"))
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    Grant.objects.create(team=team, instance_glob="east", project_glob="payments", app_glob="*", actions=["sync"])
    return {"east": east, "west": west}


def test_a_member_sees_counts_of_only_what_their_grants_show(client, alice, fleet):
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 200
    ctx = response.context
    assert [i.name for i in ctx["instances"]] == ["east"]
    east = ctx["instances"][0]
    assert east.total == 4
    assert east.health == {"Healthy": 2, "Degraded": 1, "Unknown": 1}
    assert east.sync == {"Synced": 2, "OutOfSync": 1, "Unknown": 1}
    assert ctx["totals"]["apps"] == 4
    html = response.content.decode()
    assert "search-api" not in html and "west-pay" not in html and "west" not in html
    # Each count links into the application list, filtered to it.
    assert 'href="/applications/?instance=east&amp;health=Degraded"' in html
    assert 'href="/applications/?instance=east&amp;sync=OutOfSync"' in html


def test_an_admin_sees_every_instance_and_the_reason_one_is_unreachable(admin_client, alice, fleet):
    response = admin_client.get("/")
    ctx = response.context
    assert [i.name for i in ctx["instances"]] == ["east", "west"]
    assert ctx["totals"]["apps"] == 6
    html = response.content.decode()
    assert "connection refused to 10.0.0.9" in html
    assert 'data-instance-health="west"' in html


def test_a_member_is_told_an_instance_is_unreachable_without_its_internal_error(client, alice, fleet):
    Grant.objects.create(team=Team.objects.get(slug="payments"), instance_glob="west", actions=[])
    client.force_login(alice)
    html = client.get("/").content.decode()
    row = html.split('data-instance-health="west"')[1].split("</tr>")[0]
    assert "unreachable" in row
    assert "10.0.0.9" not in html
    east = html.split('data-instance-health="east"')[1].split("</tr>")[0]
    assert "reachable" in east and "v2.13.1" in east


def test_degraded_apps_come_first_then_out_of_sync_with_links_to_their_pages(client, alice, fleet):
    client.force_login(alice)
    response = client.get("/")
    names = [a["name"] for a in response.context["attention"]]
    assert names == ["pay-web", "pay-db"]
    html = response.content.decode()
    assert 'href="/applications/east/pay-web/"' in html


def test_the_token_expiry_is_shown_and_flagged_when_near(admin_client, fleet):
    Instance.objects.filter(name="east").update(token_expires_at=timezone.now() + timedelta(days=3))
    Instance.objects.filter(name="west").update(token_expires_at=timezone.now() + timedelta(days=90))
    html = admin_client.get("/").content.decode()
    east = html.split('data-instance-health="east"')[1].split("</tr>")[0]
    west = html.split('data-instance-health="west"')[1].split("</tr>")[0]
    assert "expires " in east and "Degraded" in east
    assert "valid until" in west and "Degraded" not in west


def test_changes_of_the_last_day_are_those_the_user_may_read(client, alice, fleet):
    yesterday = timezone.now() - timedelta(hours=25)
    with mock.patch("apps.audit.chain.timezone.now", return_value=yesterday):
        old = record(None, actor="bob", action="sync", outcome=Outcome.SUCCEEDED, instance="east",
                     kind="application", project="payments", name="pay-api")  # fmt: skip
    mine = record(None, actor="bob", action="sync", outcome=Outcome.SUCCEEDED, instance="east",
                  kind="application", project="payments", name="pay-db")  # fmt: skip
    other = record(None, actor="bob", action="delete", outcome=Outcome.SUCCEEDED, instance="east",
                   kind="application", project="search", name="search-api")  # fmt: skip
    view = record(None, actor="bob", action="view", outcome=Outcome.DENIED, instance="east",
                  kind="application", project="payments", name="pay-web")  # fmt: skip
    client.force_login(alice)
    response = client.get("/")
    ids = [e.pk for e in response.context["changes"]]
    assert ids == [mine.pk]
    assert old.pk not in ids and other.pk not in ids and view.pk not in ids
    assert response.context["changes_total"] == 1
    assert "/audit/?from=" in response.context["changes_link"]


def test_running_operations_are_those_on_visible_apps_or_the_users_own(client, alice, bob, fleet):
    east, west = fleet["east"], fleet["west"]
    visible = Operation.objects.create(kind="sync", instance=east, instance_name="east", project="payments",
                                       target="pay-api", requested_by=bob, state=Operation.State.RUNNING)  # fmt: skip
    hidden = Operation.objects.create(kind="sync", instance=west, instance_name="west", project="payments",
                                      target="west-pay", requested_by=bob, state=Operation.State.QUEUED)  # fmt: skip
    done = Operation.objects.create(kind="sync", instance=east, instance_name="east", project="payments",
                                    target="pay-db", requested_by=alice, state=Operation.State.SUCCEEDED)  # fmt: skip
    client.force_login(alice)
    response = client.get("/")
    ids = [op.pk for op in response.context["operations"]]
    assert ids == [visible.pk]
    assert hidden.pk not in ids and done.pk not in ids
    assert f'data-operation="{visible.pk}"' in response.content.decode()


def test_the_users_recent_actions_are_their_own_outcomes(client, alice, bob, fleet):
    client.force_login(alice)
    own = record(None, user=alice, action="sync", outcome=Outcome.FAILED, instance="east", kind="application",
                 project="payments", name="pay-api", error="boom")  # fmt: skip
    record(None, user=alice, action="sync", outcome=Outcome.STARTED, instance="east", kind="application",
           project="payments", name="pay-api")  # fmt: skip
    record(None, user=bob, action="sync", outcome=Outcome.SUCCEEDED, instance="east", kind="application",
           project="payments", name="pay-db")  # fmt: skip
    response = client.get("/")
    assert [e.pk for e in response.context["my_actions"]] == [own.pk]


def test_the_requests_waiting_for_the_users_approval_are_listed(client, alice, bob, fleet):
    from apps.governance.models import ApprovalRequest

    later = timezone.now() + timedelta(hours=1)
    asked = ApprovalRequest.objects.create(requester=bob, targets=[{"instance": "east", "app": "pay-api"}],
                                           reason="release", approver_teams=["payments"], expires_at=later)  # fmt: skip
    ApprovalRequest.objects.create(requester=bob, targets=[{"instance": "east", "app": "search-api"}],
                                   reason="release", approver_teams=["search"], expires_at=later)  # fmt: skip
    client.force_login(alice)
    response = client.get("/")
    assert [a.pk for a in response.context["approvals"]] == [asked.pk]  # not the one for team search
    html = response.content.decode()
    assert f'href="/governance/approvals/{asked.pk}/"' in html and "east/pay-api" in html and "asked by bob" in html
    client.force_login(bob)  # the requester never approves their own
    assert "Nothing waits for your approval." in client.get("/").content.decode()


def test_the_htmx_refresh_is_a_fragment_of_the_board(client, alice, fleet):
    client.force_login(alice)
    response = client.get("/", **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="dashboard"')
    assert "<html" not in html and 'data-fleet="east"' in html


def test_a_user_without_grants_sees_an_empty_dashboard_with_what_to_do(client, bob, fleet):
    client.force_login(bob)
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["instances"] == []
    assert "ask a platform admin for a grant" in response.content.decode()


def test_the_query_count_does_not_grow_with_apps_instances_or_events(
    client, alice, fleet, django_assert_max_num_queries
):
    client.force_login(alice)
    client.get("/")  # warm the session

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/").status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for n in range(3):
        extra = Instance.objects.create(name=f"east-{n}", url=f"https://e{n}.example.test")
        apps_on(extra, "payments", *[(f"app-{n}-{i}", "Degraded", "OutOfSync") for i in range(40)])
        record(None, actor="bob", action="sync", outcome=Outcome.SUCCEEDED, instance=f"east-{n}",
               kind="application", project="payments", name=f"app-{n}-0")  # fmt: skip
    Grant.objects.create(team=Team.objects.get(slug="payments"), instance_glob="east-*", project_glob="payments")
    after = count()
    assert after <= before + 2  # a full list (more than one page of attention rows) adds its count query
    with django_assert_max_num_queries(20):
        client.get("/")
