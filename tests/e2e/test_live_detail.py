"""The application page follows its app while open, in headless Chromium with a real Celery worker: a sync
started from the page offers Terminate while it runs, a page reloaded during a sync turns to the final state by
itself, and a sync started by someone else straight through Argo CD shows up without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]


POLL_WAIT_MS = 20_000


@pytest.fixture
def long_sim():
    """A simulator whose syncs run until the test lets them end (by shortening them to nothing)."""
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-live-e2e", apps=8, projects=2, seed=5, sync_seconds=300.0).start()
    yield server
    server.stop()


@pytest.fixture
def app_page(page, admin_user, long_sim):
    """The detail page of a manually synced app whose sync succeeds, open and logged in as a platform admin."""
    from apps.argocd import ArgoCDClient
    from apps.instances.models import Instance

    Instance.objects.create(name=long_sim.name, url=long_sim.url, token=long_sim.portal_token(), verify_tls=False)
    with ArgoCDClient(long_sim.url, token=long_sim.portal_token()) as argo:
        name = next(
            a["metadata"]["name"]
            for a in argo.list_applications()
            if not (a["spec"].get("syncPolicy") or {}).get("automated")
            and "sim/fail-sync" not in (a["metadata"].get("labels") or {})
        )
    login(page, "root", "root-password-123")
    page.goto(f"/applications/{long_sim.name}/{name}/")
    expect(page.locator("#tab .tree")).to_be_visible()
    return name


def last_operation(page):
    return page.locator("#app-summary .operation-state .badge")


def terminate(page):
    return page.get_by_role("button", name="Terminate operation")


def sync_from_the_page(page) -> None:
    page.get_by_role("button", name="Sync…").click()
    page.locator("#sync-dialog").get_by_role("button", name="Synchronize").click()
    expect(page.locator("#sync-dialog")).to_be_hidden()


def test_a_sync_started_from_the_page_offers_terminate_while_it_runs(page, celery_worker, long_sim, app_page):
    sync_from_the_page(page)
    expect(page.locator("#op-result .op-card .badge[data-state]")).to_have_text("Running", timeout=POLL_WAIT_MS)
    expect(terminate(page)).to_be_visible()
    expect(last_operation(page)).to_have_text("Running", timeout=POLL_WAIT_MS)

    long_sim.faults.sync_seconds = 0.0
    expect(page.locator("#op-result .op-card .badge[data-state]")).to_have_text("Succeeded", timeout=POLL_WAIT_MS)
    expect(terminate(page)).to_have_count(0)
    expect(last_operation(page)).to_have_text("Succeeded", timeout=POLL_WAIT_MS)


def test_a_page_reloaded_during_a_sync_turns_to_the_final_state_by_itself(page, celery_worker, long_sim, app_page):
    sync_from_the_page(page)
    expect(page.locator("#op-result .op-card .badge[data-state]")).to_have_text("Running", timeout=POLL_WAIT_MS)
    page.reload()
    expect(last_operation(page)).to_have_text("Running", timeout=POLL_WAIT_MS)
    expect(terminate(page)).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page

    long_sim.faults.sync_seconds = 0.0
    expect(last_operation(page)).to_have_text("Succeeded", timeout=POLL_WAIT_MS)
    expect(terminate(page)).to_have_count(0)
    expect(page.locator("#app-summary h2 .badge").first).to_have_text("Synced", timeout=POLL_WAIT_MS)
    assert page.evaluate("window.sameDocument === true")


def test_a_sync_started_straight_through_argocd_shows_on_the_open_page(page, long_sim, app_page):
    from apps.argocd import ArgoCDClient

    page.evaluate("window.sameDocument = true")
    degraded = page.locator("#tab .tree .badge", has_text=re.compile("^Degraded$"))
    expect(degraded.first).to_be_visible()  # the seed app's pods are failing before the sync
    with ArgoCDClient(long_sim.url, token=long_sim.portal_token()) as argo:
        argo.sync_application(app_page)  # someone else, outside the portal
    # Nothing on the page asked for this: it shows at the next poll (5 s), later on a loaded machine.
    expect(last_operation(page)).to_have_text("Running", timeout=POLL_WAIT_MS)
    expect(terminate(page)).to_be_visible()

    long_sim.faults.sync_seconds = 0.0
    expect(last_operation(page)).to_have_text("Succeeded", timeout=POLL_WAIT_MS)
    expect(terminate(page)).to_have_count(0)
    expect(page.locator("#app-summary h2 .badge").first).to_have_text("Synced", timeout=POLL_WAIT_MS)
    expect(degraded).to_have_count(0)  # the open tree tab followed too
    assert page.evaluate("window.sameDocument === true")


SKIPS_NEXT_POLL = """() => {
  let skipped = null;
  const spy = (event) => { if (event.target.id === "app-live") skipped = event.defaultPrevented; };
  document.addEventListener("htmx:confirm", spy);
  document.body.dispatchEvent(new Event("app-changed"));
  document.removeEventListener("htmx:confirm", spy);
  return skipped;
}"""


def test_the_poll_waits_while_a_dialog_is_open_or_the_tab_is_hidden(page, app_page):
    assert page.evaluate(SKIPS_NEXT_POLL) is False
    page.get_by_role("button", name="Sync…").click()
    expect(page.locator("#sync-dialog")).to_be_visible()
    assert page.evaluate(SKIPS_NEXT_POLL) is True  # nothing is swapped under an open dialog
    page.locator("#sync-dialog").get_by_role("button", name="Cancel").click()
    expect(page.locator("#sync-dialog")).to_be_hidden()
    assert page.evaluate(SKIPS_NEXT_POLL) is False
    page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
    assert page.evaluate(SKIPS_NEXT_POLL) is True
