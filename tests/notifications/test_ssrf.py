"""Webhooks may only call public http(s) addresses: checked on save, again at each delivery, no redirects."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.notifications.models import Delivery, Destination
from apps.notifications.tasks import deliver
from apps.teams.models import Membership, Team

from .conftest import SECRET, Receiver

pytestmark = pytest.mark.django_db
URL = "/notifications/"


def create(client, url: str, **fields):
    return client.post(URL, {"name": "ops-hook", "kind": "webhook", "url": url, "secret": SECRET, "enabled": "on",
                             "create": "1", **fields})  # fmt: skip


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1, a loopback address"),
        ("http://localhost:6379/", "a loopback address"),
        ("http://[::1]/hook", "::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("https://10.1.2.3/hook", "10.1.2.3, a private address"),
        ("http://192.168.0.10/", "a private address"),
        ("http://0.0.0.0:8080/", "0.0.0.0, an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1, a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1, a reserved address"),
        ("http://internal.example.com/hook", "internal.example.com resolves to 10.0.0.7, a private address"),
        ("http://nowhere.invalid/hook", "The host nowhere.invalid does not resolve"),
        ("gopher://hooks.example.com/", "starting with https:// or http://"),
    ],
)
def test_a_team_maintainer_cannot_point_a_webhook_at_an_internal_address(client, alice, settings, dns, url, reason):
    settings.NOTIFY_ALLOWED_HOSTS = []
    dns["internal.example.com"] = "10.0.0.7"
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice, role=Membership.Role.MAINTAINER)
    client.force_login(alice)
    response = create(client, url, team=str(team.pk))
    assert response.status_code == 200
    assert reason in response.content.decode().replace("&#x27;", "'")
    assert not Destination.objects.exists()


def test_an_internal_url_is_refused_on_edit_too_and_the_stored_one_stays(admin_client, settings):
    settings.NOTIFY_ALLOWED_HOSTS = []
    dest = Destination.objects.create(name="ops-hook", url="https://hooks.example.com/portal")
    response = admin_client.post(f"{URL}{dest.pk}/", {"name": "ops-hook", "kind": "slack", "enabled": "on",
                                                      "url": "http://169.254.169.254/", "edit": "1"})  # fmt: skip
    assert response.status_code == 200 and "a link-local address" in response.content.decode()
    dest.refresh_from_db()
    assert (dest.url, dest.kind) == ("https://hooks.example.com/portal", "webhook")
    assert not AuditEvent.objects.filter(action="update").exists()


def test_a_host_in_notify_allowed_hosts_may_be_internal(admin_client, settings):
    settings.NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    assert create(admin_client, "http://127.0.0.1:8080/hook").status_code == 302
    assert create(admin_client, "http://127.0.0.2:8080/hook").status_code == 200
    assert list(Destination.objects.values_list("url", flat=True)) == ["http://127.0.0.1:8080/hook"]


@pytest.mark.django_db(transaction=True)
def test_a_host_that_resolves_internally_by_delivery_time_is_not_called_and_the_refusal_is_audited(
    settings, dns, receiver
):
    # Saved while it resolved to a public address; by delivery time its DNS points inside (rebinding).
    dest = Destination.objects.create(name="ops-hook", url="http://rebind.example.com/hook", secret=SECRET)
    delivery = Delivery.objects.create(destination=dest, event_type="test")
    dns["rebind.example.com"] = "127.0.0.1"
    settings.NOTIFY_ALLOWED_HOSTS = []
    deliver.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1), "a refusal is not retried"
    assert delivery.last_error == (
        "Refused to call http://rebind.example.com/hook: rebind.example.com resolves to 127.0.0.1, a loopback "
        "address: webhooks may only call public addresses. A platform admin can allow an internal host with "
        "NOTIFY_ALLOWED_HOSTS."
    )
    event = AuditEvent.objects.get(action="deliver", kind="notification-destination", name="ops-hook")
    assert event.outcome == "denied" and event.actor == "portal" and "loopback" in event.error
    assert event.request["delivery"] == delivery.pk and SECRET not in str(event.request)
    assert not receiver.received
    # The refusal is not news for the destinations: it would be refused again, and again.
    assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_redirect_is_not_followed_and_fails_the_delivery(settings):
    inside = Receiver(SECRET)
    redirecting = Receiver(SECRET, codes=[302], location=inside.url.replace("127.0.0.1", "169.254.169.254"))
    try:
        dest = Destination.objects.create(name="ops-hook", url=redirecting.url, secret=SECRET)
        delivery = Delivery.objects.create(destination=dest, event_type="test")
        deliver.apply(args=[delivery.pk])
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "answered HTTP 302, a redirect to http://169.254.169.254:" in delivery.last_error
        assert "redirects are not followed" in delivery.last_error
        assert len(redirecting.received) == 1 and not inside.received
    finally:
        inside.stop()
        redirecting.stop()


@pytest.mark.django_db(transaction=True)
def test_the_call_goes_to_the_checked_address_and_names_the_host(settings, dns, receiver):
    port = receiver.url.split(":")[2].split("/")[0]
    dns["hooks.internal.test"] = "127.0.0.1"
    settings.NOTIFY_ALLOWED_HOSTS = ["hooks.internal.test"]
    dest = Destination.objects.create(name="ops-hook", url=f"http://hooks.internal.test:{port}/hook", secret=SECRET)
    delivery = Delivery.objects.create(destination=dest, event_type="test")
    deliver.apply(args=[delivery.pk])
    (request,) = receiver.received
    assert request["signed"] and request["host"] == f"hooks.internal.test:{port}"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
