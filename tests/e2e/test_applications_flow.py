"""A team member's day, in headless Chromium against the live server: log in, filter the applications list,
open an app, sync it, watch the operation reach Succeeded, and find the sync in the audit log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, login

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

MEMBER, PASSWORD = "maria", "maria-password-123"


@pytest.fixture
def member(django_user_model, e2e_instance):
    """A payments engineer: may view and sync the payments-* apps of the e2e instance, nothing else."""
    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    user = django_user_model.objects.create_user(MEMBER, "maria@example.com", PASSWORD)
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=user)
    Grant.objects.create(
        team=team, instance_glob=e2e_instance.name, project_glob="*", app_glob="payments-*", actions=["view", "sync"]
    )
    return user


@pytest.fixture
def indexed(e2e_instance):
    """The index filled by one resync, as the indexer does on start (without its long-running watch)."""
    from apps.index.indexer import resync
    from apps.index.models import ApplicationSummary

    with e2e_instance.client() as client:
        resync(e2e_instance.pk, client, name=e2e_instance.name)
    return ApplicationSummary.objects.filter(instance=e2e_instance)


def test_a_team_member_filters_the_list_syncs_an_app_watches_it_succeed_and_finds_it_in_the_audit_log(
    page, shot, live_server, celery_worker, e2e_instance, member, indexed
):
    from apps.audit.models import AuditEvent
    from apps.operations.models import Operation

    # A plain dev app of the grant: not automated-failing, so the sync is expected to succeed.
    target = next(
        s.name
        for s in indexed.order_by("name")
        if s.name.startswith("payments-api-") and s.name.endswith("-dev") and "sim/fail-sync" not in s.labels
    )
    assert indexed.filter(name__startswith="checkout-api-").exists()  # the app outside the grant exists

    login(page, MEMBER, PASSWORD)
    page.goto("/applications/")
    rows = page.locator("#app-rows tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("#app-rows")).not_to_contain_text("checkout-")  # outside the grant: not listed at all

    # Free text, typed: htmx swaps the rows in place (no navigation) and pushes the filter into the URL.
    page.get_by_label("Free text").press_sequentially("api")
    expect(page).to_have_url(re.compile(r"[?&]q=api"), timeout=TIMEOUT_MS)
    expect(page.locator("#app-rows .counts strong")).to_have_text(re.compile(r"^\d+ applications?$"))
    names = page.locator("#app-rows tbody td:nth-child(4) a").all_inner_texts()
    assert names and all(n.startswith("payments-") and "-api-" in n for n in names), names
    assert target in names
    expect(page.get_by_role("link", name=re.compile(r"^checkout-api-"))).to_have_count(0)
    shot(page, "list.png")

    page.get_by_role("link", name=target, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/applications/{e2e_instance.name}/{target}/"))
    expect(page.locator("#tab .tree")).to_be_visible()  # the resource tree tab arrived
    shot(page, "detail.png")

    last_operation = page.locator("#app-summary .operation-state")
    before = last_operation.inner_text()
    page.get_by_role("button", name="Sync…").click()
    dialog = page.locator("#sync-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Synchronize").click()
    expect(dialog).to_be_hidden()

    card = page.locator("#op-result .op-card")
    state = card.locator("header .badge[data-state]")
    expect(state).to_have_text(re.compile(r"^(Queued|Running|Succeeded)$"))  # the card appears at once, then polls
    expect(state).to_have_text("Succeeded", timeout=30_000)
    expect(card.locator("progress")).to_have_attribute("value", "100")
    expect(last_operation).not_to_have_text(before)  # the summary was read again when the card ended
    op = Operation.objects.get(kind="sync", target=target)
    assert op.state == "succeeded" and op.requested_by == member

    card.get_by_role("link", name=f"#{op.pk}").click()  # the operation's own page
    expect(page).to_have_url(re.compile(rf"/operations/{op.pk}/$"))
    expect(page.locator(".op-card .badge[data-state]")).to_have_text("Succeeded")
    expect(page.locator(".op-card progress")).to_have_attribute("value", "100")
    shot(page, "operation.png")

    page.goto("/audit/")
    page.get_by_label("Name", exact=True).fill(target)
    page.get_by_label("Action", exact=True).fill("sync")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"name={target}"))
    done = page.locator("#audit-rows tbody tr", has=page.locator(".badge.succeeded"))
    expect(done).to_have_count(1)
    cells = done.locator("td")
    expect(cells.nth(2)).to_have_text(MEMBER)  # actor
    expect(cells.nth(7)).to_contain_text(target)
    expect(cells.nth(8)).to_have_text("sync")
    expect(cells.nth(9)).to_have_text("Succeeded")
    shot(page, "audit.png")
    started = page.locator("#audit-rows tbody tr", has=page.locator(".badge.started"))
    expect(started.locator("td").nth(2)).to_have_text(MEMBER)
    assert AuditEvent.objects.filter(action="sync", name=target, outcome="succeeded", actor=MEMBER).count() == 1


def test_a_sync_refused_after_the_page_was_loaded_says_so_in_the_page(page, e2e_instance, member, indexed):
    # The grant is taken away while the member's page is open: the sync's HTMX request is refused (404), and the
    # page must say so instead of leaving the dialog open with nothing happening.
    from apps.access.models import Grant

    target = indexed.filter(name__startswith="payments-").order_by("name").first().name
    login(page, MEMBER, PASSWORD)
    page.goto(f"/applications/{e2e_instance.name}/{target}/")
    page.get_by_role("button", name="Sync…").click()
    Grant.objects.filter(team__slug="payments").delete()
    page.locator("#sync-dialog").get_by_role("button", name="Synchronize").click()

    note = page.locator("main > .flash-error").first
    expect(note).to_contain_text("Not done (404)", timeout=TIMEOUT_MS)
    expect(page.locator("#sync-dialog")).to_be_hidden()
