"""Fixtures for the browser end-to-end tests: one headless Chromium for the e2e package, a fresh browser
context per test, a simulated Argo CD of each test's own registered as an Instance, and a login helper that
goes through the real login form."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
TIMEOUT_MS = 15_000


# Package scope rather than session: while Playwright's sync API is alive, its event loop runs in this thread,
# which makes Django refuse ORM calls (SynchronousOnlyOperation) in every later test of a full-suite run.
# Closing it when the e2e package ends keeps the rest of the suite untouched.
@pytest.fixture(scope="package")
def browser() -> Iterator:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"headless Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # our ORM calls run beside Playwright's event loop
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            yield chromium
            chromium.close()
    finally:
        # Under the running loop Django keys connections to that context: close them, or the test database
        # cannot be dropped at the end.
        connections.close_all()
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.goto("about:blank")  # stop the operation cards' polling before the live server's data goes away
    context.close()
    connections.close_all()


@pytest.fixture
def shot():
    """Save a full-page screenshot under tests/e2e/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def e2e_sim():
    """A simulator of this test's own: short syncs, and state no other test changes."""
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-e2e", apps=12, projects=3, seed=11, sync_seconds=2.0).start()
    yield server
    server.stop()


@pytest.fixture
def e2e_instance(transactional_db, e2e_sim):
    from apps.instances.models import Instance

    return Instance.objects.create(name=e2e_sim.name, url=e2e_sim.url, token=e2e_sim.portal_token(), verify_tls=False)


def login(page, username: str, password: str) -> None:
    """Log in the way a person does: the login form, typed, then the button."""
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
