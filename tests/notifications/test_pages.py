"""Destination pages: admins and team maintainers manage them, every change is audited, the secret is write-only."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from apps.notifications import services
from apps.notifications.models import Delivery, Destination, EventType, Subscription
from apps.teams.models import Membership, Team

from .conftest import SECRET

pytestmark = pytest.mark.django_db
URL = "/notifications/"


@pytest.fixture
def payments(alice, bob):
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice, role=Membership.Role.MAINTAINER)
    Membership.objects.create(team=team, user=bob)
    return team


def create(client, **fields) -> object:
    data = {"name": "ops-hook", "kind": "webhook", "url": "https://hooks.example.com/portal", "secret": SECRET,
            "enabled": "on", "create": "1", **fields}  # fmt: skip
    return client.post(URL, data)


def test_admin_creates_a_destination_whose_secret_is_encrypted_and_never_shown(admin_client):
    response = create(admin_client)
    dest = Destination.objects.get(name="ops-hook")
    assert response.status_code == 302 and dest.secret == SECRET and dest.owner == "platform"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM notifications_destination WHERE id = %s", [dest.pk])
        assert SECRET not in cursor.fetchone()[0]
    for page in (admin_client.get(URL), admin_client.get(f"{URL}{dest.pk}/")):
        assert page.status_code == 200 and "ops-hook" in page.content.decode()
        assert SECRET not in page.content.decode()
    event = AuditEvent.objects.get(action="create", kind="notification-destination", name="ops-hook")
    assert SECRET not in str(event.after) and event.after["signed"] is True


def test_editing_without_a_secret_keeps_the_stored_one_and_is_audited(admin_client):
    create(admin_client)
    dest = Destination.objects.get()
    admin_client.post(f"{URL}{dest.pk}/", {"name": "ops-hook-2", "kind": "slack", "url": dest.url, "edit": "1"})
    dest.refresh_from_db()
    assert (dest.name, dest.kind, dest.secret, dest.enabled) == ("ops-hook-2", "slack", SECRET, False)
    assert AuditEvent.objects.filter(action="update", name="ops-hook-2", outcome="succeeded").exists()


def test_a_bad_url_or_glob_is_explained_and_changes_nothing(admin_client):
    response = create(admin_client, url="ftp://user:pw@example.com")
    assert response.status_code == 200 and "Enter a valid URL" in response.content.decode()
    assert not Destination.objects.exists()
    create(admin_client)
    dest = Destination.objects.get()
    response = admin_client.post(f"{URL}{dest.pk}/", {"events": ["nope"], "instance_glob": "sim-{a", "subscribe": "1"})
    assert response.status_code == 200 and "braces" in response.content.decode()
    assert not Subscription.objects.exists()


def test_subscribing_and_unsubscribing_are_audited(admin_client):
    create(admin_client)
    dest = Destination.objects.get()
    admin_client.post(f"{URL}{dest.pk}/", {"events": [EventType.OPERATION_FAILED], "instance_glob": "sim-*",
                                           "subscribe": "1"})  # fmt: skip
    sub = Subscription.objects.get(destination=dest)
    assert sub.events == ["operation.failed"] and sub.instance_glob == "sim-*"
    admin_client.post(f"{URL}{dest.pk}/", {"delete_subscription": str(sub.pk)})
    assert not Subscription.objects.exists()
    assert AuditEvent.objects.filter(action__in=["subscribe", "unsubscribe"], name="ops-hook").count() == 2


def test_team_maintainer_manages_their_teams_destination_and_a_plain_member_cannot_see_it(client, alice, bob, payments):
    client.force_login(alice)
    create(client, team=str(payments.pk))
    dest = Destination.objects.get()
    assert dest.team == payments and dest.user is None
    client.force_login(bob)
    assert client.get(f"{URL}{dest.pk}/").status_code == 404
    assert client.post(f"{URL}{dest.pk}/", {"delete": "1"}).status_code == 404
    assert "ops-hook" not in client.get(URL).content.decode()
    assert Destination.objects.exists()
    refused = AuditEvent.objects.filter(actor="bob", outcome="denied", name=f"{URL}{dest.pk}/")
    assert refused.filter(action="post").exists() and refused.filter(action="get").exists()


def test_a_member_may_not_assign_a_destination_to_a_team_they_do_not_maintain(client, bob, payments):
    client.force_login(bob)
    response = create(client, team=str(payments.pk))
    assert response.status_code == 200 and not Destination.objects.exists()
    create(client)  # without a team it is bob's own
    assert Destination.objects.get().user == bob


def test_the_delivery_log_is_a_fragment_for_htmx(admin_client):
    create(admin_client)
    dest = Destination.objects.get()
    Delivery.objects.create(destination=dest, event_type="test", status="failed", attempts=6, last_error="HTTP 502")
    response = admin_client.get(f"{URL}{dest.pk}/", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body and 'id="deliveries"' in body and "HTTP 502" in body
    assert "every 2s" not in body  # nothing on its way: the log stops polling
    Delivery.objects.create(destination=dest, event_type="test", status="retrying", attempts=1)
    assert "every 2s" in admin_client.get(f"{URL}{dest.pk}/", headers={"HX-Request": "true"}).content.decode()


def test_event_types_follow_the_audit_event():
    def ev(**fields):
        return AuditEvent(**{"action": "sync", "outcome": "succeeded", "operation_id": None, **fields})

    assert services.event_type(ev(operation_id=1)) == "operation.succeeded"
    assert services.event_type(ev(operation_id=1, outcome="failed")) == "operation.failed"
    assert services.event_type(ev(outcome="denied")) == "attempt.denied"
    assert services.event_type(ev(action="rotate-token", outcome="failed")) == "rotation.failed"
    assert services.event_type(ev(action="rotate_instance_token", outcome="failed", operation_id=3)) == (
        "rotation.failed"
    )
    assert services.event_type(ev(operation_id=1, outcome="started")) is None
    assert services.event_type(ev()) is None


def test_a_failure_to_enqueue_never_breaks_the_audit_write(monkeypatch, django_capture_on_commit_callbacks, caplog):
    Subscription.objects.create(
        destination=Destination.objects.create(name="d", url="https://x.example.com"), events=["attempt.denied"]
    )

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("apps.notifications.tasks.dispatch_event.delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        event = record(None, action="sync", outcome=Outcome.DENIED, actor="mallory", instance="sim-1")
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert "could not enqueue" in caplog.text


def test_a_maintainer_who_clears_the_team_keeps_the_destination_as_their_own_not_platform_wide(client, alice, payments):
    client.force_login(alice)
    create(client, team=str(payments.pk))
    dest = Destination.objects.get()
    client.post(f"{URL}{dest.pk}/", {"name": dest.name, "kind": "webhook", "url": dest.url, "team": "", "edit": "1"})
    dest.refresh_from_db()
    assert (dest.team, dest.user, dest.owner) == (None, alice, "user alice")


def test_an_admin_moves_a_users_destination_to_a_team(admin_client, bob, payments):
    dest = Destination.objects.create(name="bobs", url="https://x.example.com", user=bob)
    response = admin_client.post(f"{URL}{dest.pk}/", {"name": "bobs", "kind": "webhook", "url": dest.url,
                                                      "team": str(payments.pk), "edit": "1"})  # fmt: skip
    dest.refresh_from_db()
    assert response.status_code == 302 and (dest.team, dest.user) == (payments, None)


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]
