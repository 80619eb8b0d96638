"""A member asks to sync a production app; an approver from another team reads the diff and approves; the sync
runs at the approved commit, and the audit log shows request, approval and result (headless Chromium, a real
Celery worker, a simulated Argo CD)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER, APPROVER, PASSWORD = "maria", "sam", "approvals-password-123"
APP = "payments-api-prod"  # a manual-sync production app of the e2e simulator


@pytest.fixture
def people(django_user_model, e2e_instance):
    from apps.access.models import Grant
    from apps.governance.models import ApprovalPolicy
    from apps.teams.models import Membership, Team

    maria = django_user_model.objects.create_user(MEMBER, "maria@example.com", PASSWORD)
    sam = django_user_model.objects.create_user(APPROVER, "sam@example.com", PASSWORD)
    payments = Team.objects.create(name="payments", slug="payments")
    sre = Team.objects.create(name="sre", slug="sre")
    Membership.objects.create(team=payments, user=maria)
    Membership.objects.create(team=sre, user=sam)
    Grant.objects.create(team=payments, project_glob="payments", app_glob="payments-*", actions=["sync"])
    policy = ApprovalPolicy.objects.create(name="prod-needs-sre", app_glob="*-prod", actions=["sync"], required=1,
                                           other_team=True)  # fmt: skip
    policy.approver_teams.set([sre])
    return maria, sam


def test_a_production_sync_is_requested_approved_by_another_team_and_runs_at_the_approved_revision(
    page, browser, live_server, shot, celery_worker, e2e_instance, e2e_sim, people
):
    from apps.governance.models import ApprovalRequest

    with e2e_instance.client() as client:  # a new commit on the branch: the app is out of sync, the diff shows it
        e2e_sim.state.new_commit(client.get_application(APP)["spec"]["source"]["repoURL"])

    login(page, MEMBER, PASSWORD)
    page.goto(f"/applications/{e2e_instance.name}/{APP}/")
    page.get_by_role("button", name="Sync…").click()
    dialog = page.locator("#sync-dialog")
    expect(dialog.locator(".approval-note")).to_contain_text("This sync needs 1 approval from team sre")
    dialog.get_by_role("button", name="Synchronize").click()
    form = page.locator("#approval-request")
    expect(form).to_contain_text("needs 1 approval from team sre")
    form.get_by_label("Reason").fill("Release 2.3 of the payments API (CHG-1234)")
    form.get_by_role("button", name="Request approval").click()
    expect(page).to_have_url(re.compile(r"/governance/approvals/\d+/$"))
    expect(page.locator(".approval-state")).to_have_text("Pending")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)  # the requester never approves
    req = ApprovalRequest.objects.get()
    sha = req.first["sha"]
    assert len(sha) == 40

    approver = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live_server.url).new_page()
    approver.set_default_timeout(TIMEOUT_MS)
    try:
        login(approver, APPROVER, PASSWORD)
        expect(approver.locator("#approvals-waiting")).to_have_text("1")  # the count in the navigation
        approver.goto("/governance/approvals/")
        approver.get_by_role("link", name=f"#{req.pk}").click()
        expect(approver.locator(".approval-reason")).to_contain_text("CHG-1234")
        expect(approver.locator(".approval-sha")).to_have_text(sha)
        expect(approver.locator(".approval-diff .add").first).to_be_visible()  # the diff Argo CD reported
        shot(approver, "approval-detail.png")
        approver.get_by_role("button", name="Approve").click()
        expect(approver.locator(".approval-state")).to_have_text("Executed")
    finally:
        approver.context.close()

    page.reload()  # the requester follows the operation her request started
    expect(page.locator(".approval-state")).to_have_text("Executed")
    page.get_by_role("link", name=re.compile(r"^#\d+$")).last.click()
    expect(page.locator(".op-card .badge[data-state]")).to_have_text("Succeeded", timeout=30_000)

    req.refresh_from_db()
    assert req.operation.state == "succeeded" and req.operation.params["revision"] == sha
    with e2e_instance.client() as client:
        assert client.get_application(APP)["status"]["operationState"]["syncResult"]["revision"] == sha

    page.goto(f"/audit/?name={APP}")
    rows = page.locator("#audit-rows tbody")
    for action in ("request_approval", "approve", "approved", "run_approval"):
        expect(rows.locator("tr", has_text=action).first).to_be_visible()
    expect(rows.locator("tr", has=page.locator(".badge.succeeded"), has_text="sync").first).to_be_visible()
    shot(page, "approval-audit.png")
