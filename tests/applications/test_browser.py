"""What a person clicks through on the detail page, in headless Chromium against a live server."""

from __future__ import annotations

import os
import shutil

import pytest
from django.db import connections

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page(live_server, monkeypatch):
    if not os.path.exists(CHROMIUM):
        pytest.skip("headless Chromium is not installed")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page()
        page.set_default_timeout(10_000)
        yield page
        page.goto("about:blank")  # stop the op cards' polling before the live server goes away
        browser.close()
        # Under Playwright's running event loop, Django keys connections to that context: close the one the test
        # opened there, or the test database cannot be dropped.
        connections.close_all()


def login(page, live_server, username, password):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def test_syncing_twice_from_the_dialog_starts_two_operations_and_delete_needs_the_name(
    page, live_server, admin_user, instance, fresh_app
):
    from apps.operations.models import Operation

    name = fresh_app()
    login(page, live_server, "root", "root-password-123")
    page.goto(f"{live_server.url}/applications/{instance.name}/{name}/")
    page.wait_for_selector("#tab .tree")  # the lazy tab arrived
    seen = "none"
    for expected in (1, 2):
        page.click("text=Sync…")
        page.click("#sync-dialog button[name=sync]")
        card = page.wait_for_selector(f"#op-result .op-card:not(#{seen})")
        seen = card.get_attribute("id")
        assert Operation.objects.filter(target=name, kind="sync").count() == expected
    page.click("text=Delete…")
    button = page.locator("#delete-dialog button[name=delete]")
    assert button.is_disabled()
    page.fill("#delete-dialog input[name=confirm_name]", name)
    assert button.is_enabled()
