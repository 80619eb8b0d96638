"""The diff component and the rollback preview in headless Chromium: the app's diff tab switched between
unified and side by side, the edit preview's toggles re-submitting the form, and a rollback chosen in the history,
previewed, confirmed, run by the worker and then credited to the person who started it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, PASSWORD = "root", "root-password-123"


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(ADMIN, "root@example.com", PASSWORD)


def test_the_diff_tab_and_the_edit_preview_switch_views_in_place(page, shot, e2e_instance, admin):
    app = "checkout-api-dev"  # OutOfSync in the seed
    login(page, ADMIN, PASSWORD)
    page.goto(f"/applications/{e2e_instance.name}/{app}/?tab=diff")
    unified = page.locator("#tab table.diff.unified").first
    expect(unified).to_be_visible()
    expect(unified.locator("tr.add").first).to_be_visible()
    expect(page.locator("#tab .diff-toolbar [aria-pressed=true]", has_text="Unified")).to_be_visible()
    shot(page, "diff-unified.png")

    page.locator("#tab .diff-toolbar").get_by_role("button", name="Side by side").click()
    expect(page).to_have_url(re.compile(r"diff_view=split"))
    split = page.locator("#tab table.diff.split").first
    expect(split).to_be_visible()
    expect(split.locator("td.add").first).to_be_visible()
    expect(page.locator("#tab table.diff.unified")).to_have_count(0)
    page.locator("#tab .diff-toolbar").get_by_role("button", name="Full").click()
    expect(page).to_have_url(re.compile(r"diff_full=1"))
    expect(page.locator("#tab table.diff.split tr.gap")).to_have_count(0)
    shot(page, "diff-split-full.png")

    # The edit preview: the toggles are the form's own buttons, so the edited document is previewed again.
    page.goto(f"/applications/{e2e_instance.name}/{app}/edit/")
    document = page.locator("#edit-form textarea")
    document.fill(document.input_value().replace("project: checkout", "project: checkout\n  revisionHistoryLimit: 7"))
    page.get_by_role("button", name="Preview changes").click()
    expect(page.locator("table.diff.unified tr.add")).to_contain_text("revisionHistoryLimit: 7")
    page.locator(".diff-toolbar").get_by_role("button", name="Side by side").click()
    expect(page.locator("table.diff.split td.add")).to_contain_text("revisionHistoryLimit: 7")
    expect(page.locator("#edit-form textarea")).to_have_value(re.compile(r"revisionHistoryLimit: 7"))
    shot(page, "edit-preview-split.png")


@pytest.mark.celery
def test_a_rollback_is_previewed_confirmed_and_credited_to_its_person(page, shot, celery_worker, e2e_instance, admin):
    from apps.operations.models import Operation

    app = "checkout-api-prod"  # manual sync, several deployments of different revisions
    with e2e_instance.client() as client:
        live = client.get_application(app)
    history = live["status"]["history"]
    old = next(h for h in history if h["revision"] != live["status"]["sync"]["revision"])

    login(page, ADMIN, PASSWORD)
    page.goto(f"/applications/{e2e_instance.name}/{app}/?tab=history")
    row = page.locator("#tab table.data tbody tr", has=page.locator(f"td:text-is('{old['id']}')"))
    row.get_by_role("button", name="Rollback…").click()
    expect(page).to_have_url(re.compile(rf"rollback={old['id']}"))
    preview = page.locator("#rollback-preview")
    expect(preview.get_by_role("heading")).to_have_text(f"Roll back to deployment {old['id']}?")
    expect(preview.locator("table.diff tr.add").first).to_contain_text(old["revision"][:7])
    assert not Operation.objects.exists()  # a preview starts nothing
    shot(page, "rollback-preview.png")

    preview.get_by_role("button", name="Roll back").click()
    state = page.locator("#op-result .op-card header .badge[data-state]")
    expect(state).to_have_text("Succeeded", timeout=30_000)
    op = Operation.objects.get(kind="rollback", target=app)
    assert op.requested_by == admin and op.params["id"] == old["id"]

    # The tab re-reads itself when the operation ends: the new deployment is credited to the portal user.
    newest = page.locator("#tab table.data tbody tr").first
    expect(newest.locator("td.initiator")).to_contain_text(f"{ADMIN} via portal", timeout=15_000)
    expect(newest.locator("td").nth(1)).to_have_text(re.compile("^" + old["revision"][:11]))
    shot(page, "rollback-history.png")
