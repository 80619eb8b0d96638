"""Approvals bound to what was seen, end to end through the pages, a real Celery worker and a simulated Argo CD
over HTTP: the requester can't approve, N approvals run the sync at the approved commit SHA, a spec change voids
the approval, requests expire, are rejected and cancelled, the another-team rule, a bulk sync asks once, and every
refused or probing request is audited."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import ANY

import pytest
from django.utils import timezone

from apps.access.decide import Target, decide
from apps.access.models import Grant
from apps.argocd import ArgoCDClient
from apps.audit.models import AuditEvent
from apps.governance import approvals
from apps.governance.models import ApprovalPolicy, ApprovalRequest
from apps.index.models import ApplicationSummary
from apps.operations.models import Operation
from apps.teams.models import Membership, Team
from tests.operations.conftest import final, live_app

State = ApprovalRequest.State


@pytest.fixture
def carol(django_user_model):
    """An SRE: approves production syncs."""
    return django_user_model.objects.create_user("carol", "carol@example.com", "carol-password-123")


@pytest.fixture
def erin(django_user_model):
    """Another SRE."""
    return django_user_model.objects.create_user("erin", "erin@example.com", "erin-password-123")


@pytest.fixture
def dave(django_user_model):
    """In both payments and sre."""
    return django_user_model.objects.create_user("dave", "dave@example.com", "dave-password-123")


@pytest.fixture
def teams(alice, carol, erin, dave):
    payments = Team.objects.create(name="payments", slug="payments")
    sre = Team.objects.create(name="sre", slug="sre")
    for user, team in ((alice, payments), (dave, payments), (carol, sre), (erin, sre), (dave, sre)):
        Membership.objects.create(team=team, user=user)
    Grant.objects.create(team=payments, actions=["view", "sync", "rollback"])
    return payments, sre


def policy(sre: Team, *, required: int = 1, app_glob: str = "*", other_team: bool = False) -> ApprovalPolicy:
    p = ApprovalPolicy.objects.create(name=f"prod-{required}-{app_glob}", app_glob=app_glob, actions=["sync"],
                                      required=required, other_team=other_team)  # fmt: skip
    p.approver_teams.set([sre])
    return p


def login(client, user):
    client.force_login(user)
    return client


def sync_form(**kw) -> dict:
    return {"nonce": "0" * 32, "strategy": "hook", **kw}


def ask(client, instance: str, name: str, params: dict, reason: str = "release 1.4 for INC-7"):
    data = {"instance": instance, "app": name, "kind": "sync", "params": approvals.as_json(params), "reason": reason}
    return client.post("/governance/approvals/new/", data)


def pending_row(requester, **kw) -> ApprovalRequest:
    """A request row as `create()` leaves it (no Argo CD needed for the transitions themselves)."""
    fields = {"requester": requester, "requester_teams": ["payments"], "kind": "sync", "reason": "why not",
              "targets": [{"instance": "prod", "project": "payments", "app": "payments-api", "namespace": "argocd",
                           "revision": "", "sha": "a" * 40, "spec_hash": "h", "diff": []}],
              "params": {"prune": False}, "policy_name": "prod", "required": 1, "approver_teams": ["sre"],
              "expires_at": timezone.now() + timedelta(hours=24), **kw}  # fmt: skip
    return ApprovalRequest.objects.create(**fields)


def actions_of(req: ApprovalRequest) -> list[tuple[str, str, str]]:
    events = AuditEvent.objects.filter(request__approval_request=req.pk).order_by("id")
    return [(e.action, e.outcome, e.actor) for e in events]


# ---------------------------------------------------------------- the whole flow with a real worker


@pytest.mark.django_db(transaction=True)
def test_two_approvals_run_the_sync_at_the_approved_sha_and_the_requester_never_counts(
    worker, make_sim, register, sim_app, client, alice, carol, erin, teams
):
    sim = make_sim(sync_seconds=0.3)
    instance = register(sim)
    name, project = sim_app(sim)
    policy(teams[1], required=2, app_glob=name)

    # The sync dialog's POST answers with the request form, and starts nothing.
    login(client, alice)
    answer = client.post(f"/applications/{instance.name}/{name}/sync/", sync_form(), HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and b"needs 2 approvals from team sre" in answer.content
    assert b"<html" not in answer.content and not Operation.objects.exists()

    response = ask(client, instance.name, name, {"prune": False, "dryRun": False, "strategy": "hook"})
    req = ApprovalRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/governance/approvals/{req.pk}/"
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as c:
        approved_sha = c.get_manifests(name)["revision"]
    t = req.first
    assert (req.state, t["sha"], t["project"]) == (State.PENDING, approved_sha, project)
    assert t["spec_hash"] == approvals.spec_hash(live_app(sim, name)) and t["meta"]["author"]

    # The requester's own approval is refused, audited, and counts for nothing.
    client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"})
    assert req.approvals.count() == 0
    refused = AuditEvent.objects.get(action="approve", outcome="denied")
    assert refused.actor == "alice" and "never approves their own" in refused.error

    # The branch moves on after the request: the approved commit is what runs, not the new head.
    repo = live_app(sim, name)["spec"]["source"]["repoURL"]
    sim.state.new_commit(repo)

    login(client, carol)
    page = client.get(f"/governance/approvals/{req.pk}/").content.decode()
    assert approved_sha in page and "release 1.4 for INC-7" in page and 'name="approve"' in page
    client.post(f"/governance/approvals/{req.pk}/", {"approve": "1", "comment": "diff looks right"})
    req.refresh_from_db()
    assert req.state == State.PENDING and not Operation.objects.exists()
    login(client, erin)
    client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"})
    req.refresh_from_db()
    assert req.state == State.EXECUTED

    op = final(req.operation)
    assert op.state == Operation.State.SUCCEEDED, op.error
    assert op.requested_by == alice and op.params["revision"] == approved_sha
    ran = live_app(sim, name)["status"]["operationState"]
    assert ran["operation"]["sync"]["revision"] == approved_sha
    assert ran["syncResult"]["revision"] == approved_sha
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as c:
        assert c.get_manifests(name)["revision"] != approved_sha  # the head had moved on
    result = AuditEvent.objects.get(operation_id=op.pk, outcome="succeeded", action="sync")
    assert result.request["approvers"] == ["carol", "erin"] and result.actor == "alice"
    assert actions_of(req) == [
        ("request_approval", "succeeded", "alice"),
        ("approve", "denied", "alice"),
        ("approve", "succeeded", "carol"),
        ("approve", "succeeded", "erin"),
        ("approved", "succeeded", "system"),
        ("run_approval", "succeeded", "alice"),
        ("sync", "succeeded", "alice"),  # the operation's final event names the request and its approvers
    ]
    assert AuditEvent.objects.filter(action="request_approval").get().request["request_id"] == ANY


@pytest.mark.django_db(transaction=True)
def test_a_spec_changed_after_the_request_voids_the_approval_and_argocd_is_not_asked(
    worker, make_sim, register, sim_app, client, alice, carol, teams
):
    sim = make_sim(sync_seconds=0.3)
    instance = register(sim)
    name, project = sim_app(sim, skip=1)
    policy(teams[1], app_glob=name)
    login(client, alice)
    ask(client, instance.name, name, {"prune": False, "dryRun": False})
    req = ApprovalRequest.objects.get()
    history = live_app(sim, name)["status"].get("history") or []

    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as c:
        c.patch_application(name, {"spec": {"source": {"path": "changed/after/request"}}}, patch_type="merge")
    login(client, carol)
    client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"})

    op = final(ApprovalRequest.objects.get().operation)
    req.refresh_from_db()
    assert op.state == Operation.State.FAILED and "approval is void" in op.error
    assert req.state == State.VOID and "spec changed" in req.decided_reason
    assert ("void_approval", "succeeded", "system") in actions_of(req)
    assert (live_app(sim, name)["status"].get("history") or []) == history


# ---------------------------------------------------------------- the decision


@pytest.mark.django_db
def test_decide_answers_needs_approval_for_a_real_sync_but_not_for_a_dry_run_or_a_yes_no_question(alice, teams):
    from apps.instances.models import Instance

    prod = Instance.objects.create(name="prod", url="http://127.0.0.1:9", token="t")
    policy(teams[1], required=2, app_glob="payments-*")
    target = Target(prod, "payments", "payments-api")

    decision = decide(alice, "sync", target, {"prune": False})
    assert not decision.allowed and decision.needs_approval and decision.approval["required"] == 2
    assert decision.reason.startswith("needs 2 approvals from team sre")
    assert decide(alice, "sync", target, {"dryRun": True}).allowed
    assert decide(alice, "sync", target).allowed  # can(): is the action open at all
    assert decide(alice, "sync", Target(prod, "payments", "search-api"), {}).allowed  # outside the policy


@pytest.mark.django_db
def test_params_naming_an_approval_pass_only_as_the_exact_approved_plan(alice, carol, teams):
    from apps.instances.models import Instance

    prod = Instance.objects.create(name="prod", url="http://127.0.0.1:9", token="t")
    policy(teams[1])
    req = pending_row(alice)
    target = Target(prod, "payments", "payments-api")
    plan = approvals.run_params(req, req.first)

    assert "is pending, not approved" in decide(alice, "sync", target, plan).reason
    ApprovalRequest.objects.filter(pk=req.pk).update(state=State.APPROVED)
    assert decide(alice, "sync", target, plan).allowed
    assert not decide(alice, "sync", target, {**plan, "prune": True}).allowed  # not what was approved
    assert not decide(alice, "sync", target, {**plan, "revision": "b" * 40}).allowed
    assert not decide(carol, "sync", target, plan).allowed  # someone else's approval
    assert not decide(alice, "sync", Target(prod, "payments", "payments-web"), plan).allowed


# ---------------------------------------------------------------- transitions


@pytest.mark.django_db
def test_an_expired_request_can_no_longer_be_approved_and_its_expiry_is_audited(client, alice, carol, teams):
    req = pending_row(alice, expires_at=timezone.now() - timedelta(minutes=1))
    login(client, carol)
    response = client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"}, follow=True)
    req.refresh_from_db()
    assert req.state == State.EXPIRED and req.approvals.count() == 0
    assert "is expired" in response.content.decode()
    assert actions_of(req) == [("expire_approval", "succeeded", "system")]


@pytest.mark.django_db
def test_expiry_follows_the_setting_and_the_beat_expires_what_is_due(rf, settings, alice, teams):
    settings.APPROVAL_TTL_HOURS = 2
    request = rf.post("/")
    request.user = alice
    need = {"policy": "p", "policy_id": None, "required": 1, "teams": ["sre"], "other_team": False}
    req = approvals.create(request, "sync", pending_row(alice).targets, {}, "why", need)
    assert timedelta(hours=1, minutes=59) < req.expires_at - timezone.now() <= timedelta(hours=2)
    ApprovalRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now())
    from apps.governance.tasks import expire_approvals

    assert expire_approvals() == 1
    assert ApprovalRequest.objects.get(pk=req.pk).state == State.EXPIRED
    assert ApprovalRequest.objects.exclude(pk=req.pk).get().state == State.PENDING  # not due yet


@pytest.mark.django_db
def test_an_approver_rejects_with_a_reason_and_a_reason_is_required(client, alice, carol, teams):
    req = pending_row(alice)
    login(client, carol)
    client.post(f"/governance/approvals/{req.pk}/", {"reject": "1", "reason": "  "})
    req.refresh_from_db()
    assert req.state == State.PENDING
    client.post(f"/governance/approvals/{req.pk}/", {"reject": "1", "reason": "not during the sale"})
    req.refresh_from_db()
    assert (req.state, req.decided_reason) == (State.REJECTED, "not during the sale")
    assert actions_of(req) == [("reject", "denied", "carol"), ("reject", "succeeded", "carol")]
    client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"})
    req.refresh_from_db()
    assert req.state == State.REJECTED and req.approvals.count() == 0


@pytest.mark.django_db
def test_only_the_requester_cancels(client, alice, carol, teams):
    req = pending_row(alice)
    login(client, carol)
    client.post(f"/governance/approvals/{req.pk}/", {"cancel": "1"})
    req.refresh_from_db()
    assert req.state == State.PENDING
    login(client, alice)
    client.post(f"/governance/approvals/{req.pk}/", {"cancel": "1"})
    req.refresh_from_db()
    assert req.state == State.CANCELLED
    assert actions_of(req) == [("cancel_approval", "denied", "carol"), ("cancel_approval", "succeeded", "alice")]


@pytest.mark.django_db
def test_with_the_another_team_rule_a_member_of_the_requesters_team_may_not_approve(client, alice, carol, dave, teams):
    req = pending_row(alice, other_team=True, required=1)
    login(client, dave)  # in sre, but also in payments with alice
    response = client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"}, follow=True)
    assert "another team than the requester" in response.content.decode()
    assert req.approvals.count() == 0
    assert approvals.waiting_count(dave) == 0 and approvals.waiting_count(carol) == 1


@pytest.mark.django_db
def test_a_stranger_probing_a_request_gets_404_and_the_probe_is_audited(client, alice, bob, teams):
    req = pending_row(alice)
    login(client, bob)
    assert client.get(f"/governance/approvals/{req.pk}/").status_code == 404
    assert client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"}).status_code == 404
    assert client.get("/governance/approvals/999999/").status_code == 404
    probes = AuditEvent.objects.filter(actor="bob", outcome="denied", kind="approvalrequest")
    assert probes.count() == 3 and req.approvals.count() == 0


@pytest.mark.django_db
def test_the_inbox_and_the_navigation_count_what_waits_for_the_approver(client, alice, carol, teams):
    req = pending_row(alice)
    login(client, carol)
    page = client.get("/governance/approvals/").content.decode()
    assert f"/governance/approvals/{req.pk}/" in page and 'id="approvals-waiting">1<' in page
    login(client, alice)
    page = client.get("/governance/approvals/").content.decode()
    assert 'id="approvals-waiting"' not in page and f"#{req.pk}" in page  # her own request, not one to approve


# ---------------------------------------------------------------- policies


@pytest.mark.django_db
def test_admin_creates_a_policy_audited_and_members_may_not(admin_client, client, alice, teams):
    data = {"name": "prod", "instance_glob": "prod-*", "project_glob": "*", "app_glob": "*", "actions": ["sync"],
            "required": "2", "approver_teams": [teams[1].pk], "enabled": "on"}  # fmt: skip
    assert admin_client.post("/governance/approval-policies/new/", {**data, "required": "0"}).status_code == 200
    assert not ApprovalPolicy.objects.exists()
    assert admin_client.post("/governance/approval-policies/new/", data).status_code == 302
    created = AuditEvent.objects.get(action="create", kind="approvalpolicy", outcome="succeeded")
    assert created.after["approver_teams"] == ["sre"] and created.after["required"] == 2
    assert "prod-*" in admin_client.get("/governance/approval-policies/").content.decode()
    login(client, alice)
    assert client.post("/governance/approval-policies/new/", {**data, "name": "x"}).status_code == 403
    assert client.get("/governance/approval-policies/").status_code == 403


# ---------------------------------------------------------------- bulk sync: once for the set


@pytest.mark.django_db(transaction=True)
def test_a_bulk_sync_asks_approval_once_and_runs_each_app_at_its_approved_sha(
    worker, make_sim, register, sim_app, client, alice, carol, teams
):
    sim = make_sim(sync_seconds=0.3)
    instance = register(sim)
    apps = [sim_app(sim, skip=i) for i in (2, 3)]
    for name, project in apps:
        ApplicationSummary.objects.create(instance=instance, name=name, project=project, seen_at=timezone.now())
    policy(teams[1])
    specs = [f"{instance.name}/{name}" for name, _ in apps]
    login(client, alice)

    form = client.post("/operations/bulk-sync/", {"app": specs})
    assert b"needs 1 approval from team sre" in form.content and not Operation.objects.exists()
    client.post("/governance/approvals/new-bulk/", {"app": specs, "reason": "quarterly rollout", "limit": "5"})
    req = ApprovalRequest.objects.get()
    assert (req.kind, len(req.targets)) == ("bulk_sync", 2)
    login(client, carol)
    client.post(f"/governance/approvals/{req.pk}/", {"approve": "1"})

    parent = final(ApprovalRequest.objects.get().operation)
    assert parent.state == Operation.State.SUCCEEDED, parent.error
    for t in req.targets:
        child = parent.children.get(target=t["app"])
        assert child.params["revision"] == t["sha"]
        assert live_app(sim, t["app"])["status"]["operationState"]["syncResult"]["revision"] == t["sha"]
    final_event = AuditEvent.objects.get(operation_id=parent.pk, outcome="succeeded", action="bulk_sync")
    assert final_event.request["approvers"] == ["carol"]


# ---------------------------------------------------------------- the demo


@pytest.mark.django_db
def test_the_demo_seeds_one_policy_its_approver_and_one_schedule_once(django_user_model):
    from apps.governance.demo import seed_approvals_and_schedule
    from apps.governance.models import Schedule
    from apps.instances.models import Instance

    Instance.objects.create(name="sim-a", url="http://127.0.0.1:9", token="t")
    dev = django_user_model.objects.create_user("dev")
    people = seed_approvals_and_schedule("pw-123456789")
    seed_approvals_and_schedule("pw-123456789")
    p = ApprovalPolicy.objects.get()
    assert (p.app_glob, p.required, p.other_team) == ("*-prod", 1, True)
    assert [t.slug for t in p.approver_teams.all()] == ["sre"] and people[0][0] == "approver"
    s = Schedule.objects.get()
    assert (s.owner, s.app, s.instance_name, s.next_run_at is not None) == (dev, "payments-api-dev", "sim-a", True)
    assert AuditEvent.objects.filter(kind="approvalpolicy", action="create").count() == 1


@pytest.mark.django_db
def test_a_governed_rollback_asks_approval_with_the_history_entrys_commit(make_sim, register, sim_app, client, alice,
                                                                          teams):  # fmt: skip
    sim = make_sim()
    instance = register(sim)
    name, _project = sim_app(sim, min_history=1)
    entry = live_app(sim, name)["status"]["history"][0]
    ApprovalPolicy.objects.create(name="rollbacks", actions=["rollback"], required=1).approver_teams.set([teams[1]])
    login(client, alice)

    form = client.post(f"/applications/{instance.name}/{name}/rollback/", {"id": entry["id"], "nonce": "0" * 32},
                       HTTP_HX_REQUEST="true")  # fmt: skip
    assert b"This rollback needs 1 approval from team sre" in form.content and not Operation.objects.exists()
    params = {"id": entry["id"], "prune": False, "dryRun": False}
    data = {"instance": instance.name, "app": name, "kind": "rollback", "params": approvals.as_json(params),
            "reason": "bad release"}  # fmt: skip
    client.post("/governance/approvals/new/", data)
    req = ApprovalRequest.objects.get()
    assert (req.kind, req.first["sha"], req.params) == ("rollback", entry["revision"], params)
    assert approvals.run_params(req, req.first) == {**params, "approval": req.pk}


@pytest.mark.django_db
def test_asking_approval_for_what_the_grant_refuses_is_refused_naming_the_constraint_and_audited(
    make_sim, register, sim_app, client, alice, teams
):
    sim = make_sim()
    instance = register(sim)
    name, _project = sim_app(sim)
    Grant.objects.filter(team=teams[0]).update(constraints={"prune": False})
    policy(teams[1])
    login(client, alice)

    response = ask(client, instance.name, name, {"prune": True, "dryRun": False}, reason="prune it all")
    assert response.status_code == 302 and not ApprovalRequest.objects.exists()
    denied = AuditEvent.objects.get(action="request_approval", outcome="denied")
    assert denied.actor == "alice" and "constraint prune" in denied.error
    assert ask(client, instance.name, name, {"prune": False, "dryRun": True}).status_code == 302  # a dry run
    assert not ApprovalRequest.objects.exists()  # needs no approval: nothing to ask
