"""The portal's pages under its Content-Security-Policy, in headless Chromium: a platform admin opens the main
pages and their HTMX parts, and the browser reports no blocked script or style, no error in the console, and the
interactive parts (dialogs, tabs, starting a live log follow, the list's polling pause) still work."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, PASSWORD = "root", "root-password-123"
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


@pytest.fixture
def indexed(e2e_instance):
    from apps.index.indexer import resync
    from apps.index.models import ApplicationSummary

    with e2e_instance.client() as client:
        resync(e2e_instance.pk, client, name=e2e_instance.name)
    return ApplicationSummary.objects.filter(instance=e2e_instance)


@pytest.fixture
def reports(page):
    """Everything the browser says in the console (CSP violations included) or throws while the test runs."""
    seen: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda msg: seen.append(f"{page.url} console.{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: seen.append(f"{page.url} uncaught: {exc}"))
    return seen


def visit(page, path: str, ready: str) -> None:
    page.goto(path)
    expect(page.locator(ready).first).to_be_visible()


def test_main_pages_and_their_htmx_parts_run_without_a_policy_violation(
    page, reports, e2e_instance, admin_user, indexed
):
    app = indexed.order_by("name").first().name
    login(page, ADMIN, PASSWORD)
    home = page.goto("/")
    policy = dict(part.strip().split(" ", 1) for part in home.headers.get("content-security-policy", "").split(";"))
    assert policy["script-src"] == "'self'"
    expect(page.locator("main h1")).to_be_visible()

    visit(page, "/applications/", "#app-rows tbody tr")
    page.get_by_label("Free text").press_sequentially(app[:6])  # an HTMX swap of the rows
    expect(page).to_have_url(re.compile(r"[?&]q="), timeout=TIMEOUT_MS)

    visit(page, f"/applications/{e2e_instance.name}/{app}/", "#tab .tree")  # the first tab loads by HTMX
    page.get_by_role("link", name="History", exact=True).click()
    expect(page).to_have_url(re.compile(r"tab=history"))
    page.get_by_role("button", name="Sync…").click()
    dialog = page.locator("#sync-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.get_by_role("link", name="Logs", exact=True).click()
    page.locator("#tab").get_by_label("Follow").check()
    page.locator("#tab").get_by_role("button", name="Show").click()
    live = page.locator("#logs-live")
    expect(live).to_have_attribute("data-started", "1")  # the follow script ran (a file, not inline)
    # The EventSource has connected (connect-src allows it). Lines themselves need an ASGI server, which this
    # test's live server is not: tests/applications/test_streams.py follows logs in a browser over uvicorn.

    visit(page, "/kinds/projects/", "main table tbody tr")
    page.locator("main table tbody tr a").first.click()
    expect(page).to_have_url(re.compile(rf"/kinds/projects/{e2e_instance.name}/[^/]+/$"))
    visit(page, f"/kinds/projects/{e2e_instance.name}/new/", "main form textarea, main form input[type=text]")
    visit(page, "/audit/", "#audit-rows")
    page.get_by_label("Action", exact=True).fill("login")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=login"))
    visit(page, f"/instances/{e2e_instance.name}/", ".cani")  # the can-i matrix loads by HTMX
    visit(page, "/operations/", "main h1")
    visit(page, "/governance/calendar/", "#calendar")
    visit(page, "/governance/windows/new/", "main form textarea[name=rrule]")
    assert reports == [], "\n".join(reports)

    visit(page, "/no/such/page/", "main article h2")  # the portal's 404 page: only its own status is reported
    assert [r for r in reports if "status of 404" not in r] == [], "\n".join(reports)
    # And the browser does enforce it: an injected inline script does not run, and the reporter above sees it.
    with page.expect_console_message(lambda m: "CSP violation: script-src" in m.text):
        ran = page.evaluate(
            """() => { const s = document.createElement("script"); s.textContent = "window.injected = true";
                       document.head.append(s); return window.injected === true; }"""
        )
    assert ran is False


def test_the_application_list_skips_its_refresh_while_rows_are_ticked(page, reports, e2e_instance, admin_user, indexed):
    # The 10 s refresh used an hx-trigger filter (eval); a listener in portal.js now pauses it. The test drives the
    # page's clock, so nothing waits for real seconds.
    def is_refresh(request) -> bool:
        return bool(request.headers.get("hx-request")) and "/applications/" in request.url

    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if is_refresh(r) else None)
    login(page, ADMIN, PASSWORD)
    page.clock.install()
    visit(page, "/applications/", "#app-rows tbody tr")
    box = page.locator("#app-rows tbody input[type=checkbox]").first
    box.check()
    page.clock.run_for(35_000)  # three refresh rounds
    expect(box).to_be_checked()
    assert refreshes == []
    box.uncheck()
    with page.expect_request(is_refresh):
        page.clock.run_for(11_000)
    assert reports == [], "\n".join(reports)
