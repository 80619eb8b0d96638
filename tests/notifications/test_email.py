"""Email destinations: messages reach a real SMTP server through a real Celery worker, with no secrets in them."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from apps.notifications.models import Delivery, Destination, EventType, Subscription

from .conftest import SECRET, Inbox
from .test_delivery import wait_for_delivery

URL = "/notifications/"
# The test mail server takes a login without TLS, on loopback only.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def email_form(**fields) -> dict:
    return {"name": "ops-mail", "kind": "email", "url": "", "recipients": "ops@example.test,  oncall@example.test",
            "secret": SECRET, "enabled": "on", "create": "1", **fields}  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_failed_operation_and_a_send_test_are_mailed_to_the_recipients_without_secrets(
    mail_worker, inbox, admin_client, alice
):
    assert admin_client.post(URL, email_form()).status_code == 302
    dest = Destination.objects.get(name="ops-mail")
    assert (dest.kind, dest.recipients, dest.url) == ("email", "ops@example.test, oncall@example.test", "")
    admin_client.post(f"{URL}{dest.pk}/", {"events": [EventType.OPERATION_FAILED], "instance_glob": "sim-*",
                                           "subscribe": "1"})  # fmt: skip

    failed = record(None, action="sync", outcome=Outcome.FAILED, user=alice, instance="sim-1", kind="application",
                    name="payments-api", error="ComparisonError: boom", operation_id=77,
                    payload={"password": "hunter2-not-for-mail"})  # fmt: skip

    (mail,) = inbox.wait_for(1)
    message = mail["message"]
    assert sorted(mail["to"]) == ["oncall@example.test", "ops@example.test"]
    assert message["From"] == "portal@example.test"
    assert message["Subject"] == "[Argo CD Portal] operation.failed: sync application payments-api on sim-1"
    text = message.get_content()
    assert "Who: alice" in text and "Outcome: failed" in text and "Error: ComparisonError: boom" in text
    assert f"/audit/{failed.pk}/" in text
    for secret in (SECRET, Inbox.PASSWORD, "hunter2-not-for-mail"):
        assert secret.encode() not in mail["raw"]
    assert inbox.logins == [Inbox.USER], "the portal logs in to the mail server with its settings"
    delivery = wait_for_delivery(Delivery.objects.get(destination=dest, event_id=failed.pk).pk, "delivered")
    assert (delivery.attempts, delivery.last_status_code) == (1, None)

    assert admin_client.post(f"{URL}{dest.pk}/", {"send_test": "1"}).status_code == 302
    test_mail = inbox.wait_for(2)[1]
    assert test_mail["message"]["Subject"] == "[Argo CD Portal] Test notification"
    assert "test notification" in test_mail["message"].get_content()
    wait_for_delivery(Delivery.objects.get(destination=dest, event_id=None).pk, "delivered")
    page = admin_client.get(f"{URL}{dest.pk}/").content.decode()
    assert "ops@example.test, oncall@example.test" in page and page.count(">delivered<") == 2
    assert AuditEvent.objects.filter(action="send-test", name="ops-mail").exists()


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_that_refuses_the_login_fails_the_attempt_with_a_clear_error(inbox, settings):
    from apps.notifications.tasks import deliver

    settings.EMAIL_HOST_PASSWORD = "wrong-password"
    dest = Destination.objects.create(name="ops-mail", kind="email", recipients="ops@example.test")
    Subscription.objects.create(destination=dest, events=[EventType.ATTEMPT_DENIED])
    delivery = Delivery.objects.create(destination=dest, event_type="test")
    deliver.apply(args=[delivery.pk], retries=5)  # the last retry: no further attempt is scheduled
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert f"mail server 127.0.0.1:{inbox.port}" in delivery.last_error and "535" in delivery.last_error
    assert "wrong-password" not in delivery.last_error and not inbox.messages


def test_an_email_destination_needs_valid_addresses_and_changes_nothing_otherwise(admin_client, db):
    response = admin_client.post(URL, email_form(recipients="ops@example.test, not-an-address"))
    assert response.status_code == 200 and "&#x27;not-an-address&#x27; is not an email address" in (
        response.content.decode()
    )
    response = admin_client.post(URL, email_form(recipients=""))
    assert "needs at least one address" in response.content.decode()
    response = admin_client.post(URL, email_form(kind="webhook", recipients="ops@example.test"))
    assert "A webhook needs its URL" in response.content.decode()
    assert not Destination.objects.exists()
