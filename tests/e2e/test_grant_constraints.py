"""A member whose grant is narrowed opens the sync dialog: the options they may not use are disabled with the
reason, and the form as shown starts a dry run (headless Chromium against the live server)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER, PASSWORD = "maria", "maria-password-123"


@pytest.fixture
def narrowed_member(django_user_model, e2e_instance):
    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    user = django_user_model.objects.create_user(MEMBER, "maria@example.com", PASSWORD)
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=user)
    Grant.objects.create(
        team=team, instance_glob=e2e_instance.name, project_glob="*", app_glob="payments-*", actions=["sync"],
        constraints={"prune": False, "replace": False, "dry_run_only": True},
    )  # fmt: skip
    return user


def test_the_sync_dialog_disables_what_the_grant_does_not_allow_and_submits_a_dry_run(
    page, shot, e2e_instance, e2e_sim, narrowed_member
):
    from apps.operations.models import Operation

    with e2e_instance.client() as client:
        name = next(
            a["metadata"]["name"] for a in client.list_applications() if a["metadata"]["name"].startswith("payments-")
        )
    login(page, MEMBER, PASSWORD)
    page.goto(f"/applications/{e2e_instance.name}/{name}/")
    page.get_by_role("button", name="Sync…").or_(page.get_by_role("link", name="Sync…")).click()
    dialog = page.locator("#sync-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator('input[name="prune"]')).to_be_disabled()
    expect(dialog.locator('input[type="checkbox"][name="dry_run"]')).to_be_disabled()
    expect(dialog.locator('input[type="checkbox"][name="dry_run"]')).to_be_checked()
    expect(dialog.locator('input[name="force"]')).to_be_enabled()
    expect(dialog.locator(".sync-limits")).to_contain_text("prune is not allowed")
    expect(dialog.locator(".sync-limits")).to_contain_text("only dry runs are allowed")
    dialog.locator("summary", has_text="Sync options").click()
    expect(dialog.locator('input[value="Replace=true"]')).to_be_disabled()
    shot(page, "grant-constraints-sync-dialog.png")

    dialog.get_by_role("button", name="Synchronize").click()
    expect(page.locator("#op-result .op-card")).to_be_visible()
    op = Operation.objects.get()
    assert op.params["dryRun"] is True and op.params["prune"] is False
