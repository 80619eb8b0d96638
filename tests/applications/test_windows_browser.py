"""Change windows as a person meets them on the application page, in headless Chromium."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.governance.models import ChangeWindow

from .test_browser import login, page  # noqa: F401  (the Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ALWAYS = "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"


@pytest.fixture
def freeze():
    return ChangeWindow.objects.create(
        name="freeze", kind="deny", rrule=ALWAYS, duration=timedelta(days=1), actions=["sync"]
    )


def test_a_member_is_told_the_window_and_an_override_holder_breaks_glass_with_a_reason(
    page,  # noqa: F811
    live_server,
    alice,
    admin_user,
    grant,
    instance,
    fresh_app,
    freeze,
):
    from apps.operations.models import Operation

    grant(alice, ["sync"])
    name = fresh_app()
    login(page, live_server, "alice", "alice-password-123")
    page.goto(f"{live_server.url}/applications/{instance.name}/{name}/")
    assert "blocked by window freeze until" in page.locator("[data-window-block]").inner_text()
    page.click("text=Sync…")
    assert page.locator("#sync-dialog textarea[name=override_reason]").count() == 0
    page.click("#sync-dialog button[name=sync]")
    alert = page.wait_for_selector("main > p.flash-error[role=alert]")
    assert "Not done (403)" in alert.inner_text() and "blocked by window freeze" in alert.inner_text()
    assert not Operation.objects.exists()

    page.context.clear_cookies()
    login(page, live_server, "root", "root-password-123")
    page.goto(f"{live_server.url}/applications/{instance.name}/{name}/")
    assert "(you may override)" in page.locator("[data-window-block]").inner_text()
    page.click("text=Sync…")
    page.fill("#sync-dialog textarea[name=override_reason]", "hotfix INC-42")
    page.click("#sync-dialog button[name=sync]")
    card = page.wait_for_selector("#op-result .op-card .op-override")
    assert "hotfix INC-42" in card.inner_text()
    assert Operation.objects.get().override_reason == "hotfix INC-42"
