"""The approval events subscriptions can choose: a request, and its decision, fed from the audit events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.governance import approvals
from apps.governance.models import ApprovalRequest
from apps.notifications import services
from apps.notifications.models import Delivery, Destination, EventType, Subscription
from apps.teams.models import Membership, Team


def test_approval_audit_events_are_requested_and_decided_news():
    def ev(action: str, outcome: str = "succeeded", operation_id=None):
        return AuditEvent(action=action, outcome=outcome, operation_id=operation_id)

    assert services.event_type(ev("request_approval")) == EventType.APPROVAL_REQUESTED
    for action in ("approved", "reject", "cancel_approval", "expire_approval"):
        assert services.event_type(ev(action)) == EventType.APPROVAL_DECIDED
    assert services.event_type(ev("void_approval", operation_id=7)) == EventType.APPROVAL_DECIDED
    assert services.event_type(ev("run_approval", operation_id=7)) is None  # not an operation's end
    assert services.event_type(ev("approve", "denied")) == EventType.ATTEMPT_DENIED


@pytest.mark.django_db
def test_the_approver_teams_destination_hears_of_a_request_and_its_rejection(rf, alice, bob):
    sre = Team.objects.create(name="sre", slug="sre")
    Membership.objects.create(team=sre, user=bob)
    dest = Destination.objects.create(name="sre-hook", url="https://hooks.example.com/sre", team=sre)
    Subscription.objects.create(destination=dest, events=[EventType.APPROVAL_REQUESTED, EventType.APPROVAL_DECIDED])
    request = rf.post("/")
    request.user = alice
    target = {"instance": "prod", "project": "payments", "app": "payments-api", "namespace": "", "revision": "",
              "sha": "a" * 40, "spec_hash": "h", "diff": []}  # fmt: skip
    need = {"policy": "prod", "policy_id": None, "required": 1, "teams": ["sre"], "other_team": False}
    req = approvals.create(request, "sync", [target], {}, "hotfix", need)
    requested = AuditEvent.objects.get(action="request_approval")
    assert services.plan(requested.pk) and Delivery.objects.get().event_type == EventType.APPROVAL_REQUESTED

    request.user = bob
    approvals.reject(request, req.pk, "not now")
    rejected = AuditEvent.objects.get(action="reject")
    assert services.plan(rejected.pk)
    assert list(Delivery.objects.order_by("pk").values_list("event_type", flat=True)) == [
        EventType.APPROVAL_REQUESTED, EventType.APPROVAL_DECIDED,
    ]  # fmt: skip
    assert ApprovalRequest.objects.get().expires_at > timezone.now() + timedelta(hours=23)
