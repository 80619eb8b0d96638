"""Audit events reach subscribed webhooks through a real Celery worker, signed, retried, and never with secrets."""

from __future__ import annotations

import time

import pytest

from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from apps.notifications.models import Delivery, Destination, EventType, Subscription

from .conftest import SECRET, Receiver


def wait_for_delivery(pk: int, status: str, timeout: float = 60) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = Delivery.objects.get(pk=pk)
        if delivery.status == status:
            return delivery
        time.sleep(0.1)
    raise AssertionError(f"delivery #{pk} is {Delivery.objects.get(pk=pk).status}, expected {status}")


def webhook(url: str, events: list[str], **fields) -> Destination:
    dest = Destination.objects.create(name="ops-hook", url=url, secret=SECRET, **fields)
    Subscription.objects.create(destination=dest, events=events, instance_glob="sim-*")
    return dest


@pytest.mark.django_db(transaction=True)
def test_failed_operation_and_denied_attempt_reach_a_signed_webhook(celery_worker, receiver, alice):
    dest = webhook(receiver.url, [EventType.OPERATION_FAILED, EventType.ATTEMPT_DENIED])

    failed = record(None, action="sync", outcome=Outcome.FAILED, user=alice, instance="sim-1", kind="application",
                    name="payments-api", error="ComparisonError: boom", operation_id=4242)  # fmt: skip
    denied = record(None, action="delete", outcome=Outcome.DENIED, user=alice, instance="sim-1",
                    kind="application", name="payments-db", error="no grant allows delete")  # fmt: skip
    # Not subscribed (succeeded), or on an instance the glob leaves out: nobody is told.
    quiet = record(None, action="sync", outcome=Outcome.SUCCEEDED, user=alice, instance="sim-1", kind="application",
                   name="payments-api", operation_id=4243)  # fmt: skip
    elsewhere = record(None, action="sync", outcome=Outcome.DENIED, user=alice, instance="prod-1", name="x")

    received = receiver.wait_for(2)
    assert all(r["signed"] and r["timestamp"] for r in received)
    by_type = {r["json"]["type"]: r["json"] for r in received}
    assert by_type["operation.failed"]["event"] == failed.pk
    assert by_type["operation.failed"]["error"] == "ComparisonError: boom"
    assert by_type["operation.failed"]["url"].endswith(f"/audit/{failed.pk}/")
    assert by_type["attempt.denied"] == {**by_type["attempt.denied"], "event": denied.pk, "actor": "alice",
                                         "instance": "sim-1", "name": "payments-db", "outcome": "denied"}  # fmt: skip
    assert all(SECRET.encode() not in r["raw"] for r in received)
    for event in (failed, denied):
        delivery = Delivery.objects.get(destination=dest, event_id=event.pk)
        assert wait_for_delivery(delivery.pk, "delivered").attempts == 1
    assert not Delivery.objects.filter(event_id__in=[quiet.pk, elsewhere.pk]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_answering_500_is_retried_and_the_log_shows_each_attempt(celery_worker, admin_client):
    failing = Receiver(SECRET, codes=[500])
    try:
        dest = webhook(failing.url, [EventType.OPERATION_FAILED])
        response = admin_client.post(f"/notifications/{dest.pk}/", {"send_test": "1"})
        assert response.status_code == 302
        received = failing.wait_for(2)
        assert [r["code"] for r in received] == [500, 200]
        assert all(r["signed"] and r["json"]["type"] == "test" for r in received)
        delivery = wait_for_delivery(Delivery.objects.get(destination=dest).pk, "delivered")
        assert (delivery.attempts, delivery.last_status_code) == (2, 200)
        assert "HTTP 500" in delivery.last_error
        page = admin_client.get(f"/notifications/{dest.pk}/").content.decode()
        assert "delivered" in page and "HTTP 500" in page and SECRET not in page
        assert AuditEvent.objects.filter(action="send-test", name="ops-hook", outcome="succeeded").exists()
    finally:
        failing.stop()


@pytest.mark.django_db(transaction=True)
def test_a_slack_destination_gets_a_text_summary(celery_worker, receiver, alice):
    webhook(receiver.url, [EventType.ROTATION_FAILED], kind=Destination.Kind.SLACK)
    record(None, action="rotate-token", outcome=Outcome.FAILED, user=alice, instance="sim-2", kind="project",
           name="payments", error="permission denied")  # fmt: skip
    (message,) = receiver.wait_for(1)
    assert list(message["json"]) == ["text"]
    assert "rotation.failed" in message["json"]["text"] and "permission denied" in message["json"]["text"]
    assert message["signed"]


@pytest.mark.django_db(transaction=True)
def test_an_operation_that_fails_in_the_worker_is_told_to_the_team_that_subscribed(celery_worker, receiver, rf,
                                                                                  admin_user):  # fmt: skip
    from apps.instances.models import Instance
    from apps.operations.models import Operation
    from apps.operations.services import start_operation

    dest = webhook(receiver.url, [EventType.OPERATION_FAILED, EventType.OPERATION_SUCCEEDED])
    instance = Instance.objects.create(name="sim-off", url="http://127.0.0.1:9", enabled=False)
    request = rf.post("/applications/x/sync")
    request.user = admin_user
    op = start_operation(request, kind="sync", instance=instance, project="default", target="payments-api")

    (message,) = receiver.wait_for(1)
    body = message["json"]
    assert message["signed"] and body["type"] == "operation.failed" and body["name"] == "payments-api"
    assert Operation.objects.get(pk=op.pk).state == Operation.State.FAILED and "disabled" in body["error"]
    final = AuditEvent.objects.get(pk=body["event"])
    assert (final.operation_id, final.outcome) == (op.pk, "failed")
    assert wait_for_delivery(Delivery.objects.get(destination=dest).pk, "delivered").event_id == final.pk
