"""Approvals over the REST API: request, list, approve, reject and cancel through the pages' own services."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.governance.models import ApprovalPolicy, ApprovalRequest
from apps.operations.models import Operation
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def approver(django_user_model):
    carol = django_user_model.objects.create_user("carol", "carol@example.com", "carol-password-123")
    sre = Team.objects.create(name="sre", slug="sre")
    Membership.objects.create(team=sre, user=carol)
    p = ApprovalPolicy.objects.create(name="all-syncs", actions=["sync"], required=1)
    p.approver_teams.set([sre])
    return carol


def test_a_sync_under_a_policy_is_refused_and_requested_then_approved_over_the_api(
    alice, approver, make_token, api, instance, grant, fresh_app, argocd
):
    grant(alice, ["sync"])
    name = fresh_app()
    alices = api(make_token(alice, ["sync"]))
    refused = alices.post(f"/api/applications/{instance.name}/{name}/sync", {})
    assert refused.status_code == 403 and "needs 1 approval from team sre" in refused.json()["message"]
    assert not Operation.objects.exists()

    body = {"instance": instance.name, "application": name, "reason": "hotfix INC-9", "prune": True}
    created = alices.post("/api/approvals", body)
    assert created.status_code == 201, created.content
    req = created.json()
    assert (req["state"], req["requester"], req["params"]["prune"]) == ("pending", "alice", True)
    assert req["targets"][0]["sha"] == argocd.get_manifests(name)["revision"]
    assert alices.post(f"/api/approvals/{req['id']}/approve", {}).status_code == 409  # never their own
    assert AuditEvent.objects.filter(action="approve", outcome="denied", actor="alice").exists()

    carols = api(make_token(approver, ["view"]))
    assert [r["id"] for r in carols.get("/api/approvals", waiting="true").json()] == [req["id"]]
    approved = carols.post(f"/api/approvals/{req['id']}/approve", {"comment": "ok"})
    assert approved.status_code == 200 and approved.json()["state"] == "executed"
    assert approved.json()["approvers"] == ["carol"]
    op = Operation.objects.get(pk=approved.json()["operation"])
    assert op.params["revision"] == req["targets"][0]["sha"] and op.requested_by == alice


def test_reject_and_cancel_over_the_api_and_strangers_get_404(
    alice, bob, approver, make_token, api, instance, grant, fresh_app
):
    grant(alice, ["sync"])
    alices, carols = api(make_token(alice, ["sync"])), api(make_token(approver, ["view"]))
    body = {"instance": instance.name, "application": fresh_app(), "reason": "why not"}
    first, second = alices.post("/api/approvals", body).json(), alices.post("/api/approvals", body).json()

    assert carols.post(f"/api/approvals/{first['id']}/reject", {"comment": ""}).status_code == 409
    rejected = carols.post(f"/api/approvals/{first['id']}/reject", {"comment": "not today"})
    assert rejected.json()["state"] == "rejected" and rejected.json()["decided_reason"] == "not today"
    assert carols.post(f"/api/approvals/{second['id']}/cancel").status_code == 409
    assert alices.post(f"/api/approvals/{second['id']}/cancel").json()["state"] == "cancelled"
    assert api(make_token(bob, ["view"])).get(f"/api/approvals/{first['id']}").status_code == 404
    narrowed = api(make_token(approver, ["view"], app="other-*"))  # a token scoped away from the app
    assert narrowed.get(f"/api/approvals/{first['id']}").status_code == 404
    assert narrowed.get("/api/approvals").json() == []
    assert list(ApprovalRequest.objects.values_list("state", flat=True).order_by("pk")) == ["rejected", "cancelled"]


def test_a_request_that_needs_no_approval_is_refused_with_409(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["sync"])
    body = {"instance": instance.name, "application": fresh_app(), "reason": "why not"}
    response = api(make_token(alice, ["sync"])).post("/api/approvals", body)
    assert response.status_code == 409 and "needs no approval" in response.json()["message"]
    assert not ApprovalRequest.objects.exists()
