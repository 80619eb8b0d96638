"""In headless Chromium: keyboard shortcuts ("/" and "?"), the dark theme that follows the system setting, and
layout at a phone's width (the "New application" button, the breadcrumb's separator)."""

from __future__ import annotations

import pytest
from django.db import connections
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, PASSWORD = "root", "root-password-123"


@pytest.fixture
def open_page(browser, live_server, admin_user, e2e_instance):
    """open_page(width=…, color_scheme=…): a logged-in page of a browser context of its own."""
    contexts = []

    def make(width: int = 1400, color_scheme: str = "light"):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, base_url=live_server.url, color_scheme=color_scheme
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        login(page, ADMIN, PASSWORD)
        return page

    yield make
    for context in contexts:
        context.close()
    connections.close_all()


def luminance(rgb: str) -> float:
    r, g, b = (int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_slash_focuses_the_search_and_question_mark_lists_the_shortcuts(open_page):
    page = open_page()
    page.goto("/applications/")
    search = page.locator("input[type=search][name=q]")
    page.locator("h1").click()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    page.keyboard.type("pay/")
    expect(search).to_have_value("pay/")  # typing "/" in a field types it, it does not jump

    page.locator("h1").click()
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Focus the search box of the page")
    expect(dialog.locator("kbd")).to_have_text(["/", "?", "Esc"])
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_the_dark_theme_follows_the_system_setting(open_page, shot):
    dark = open_page(color_scheme="dark")
    dark.goto("/applications/")
    body_bg = dark.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    text = dark.evaluate("getComputedStyle(document.documentElement).color")
    assert luminance(body_bg) < 0.2 and luminance(text) > 0.6, (body_bg, text)
    dark.goto("/audit/")
    badge_bg = dark.evaluate("getComputedStyle(document.querySelector('.badge')).backgroundColor")
    assert luminance(badge_bg) < 0.35, badge_bg
    path = shot(dark, "dark-theme-audit.png")
    assert path.stat().st_size > 10_000

    light = open_page(color_scheme="light")
    light.goto("/applications/")
    assert luminance(light.evaluate("getComputedStyle(document.documentElement).backgroundColor")) > 0.9


def test_the_new_application_button_stays_inside_a_390px_screen(open_page, shot):
    page = open_page(width=390)
    page.goto("/applications/")
    button = page.get_by_role("button", name="New application")
    expect(button).to_be_visible()
    box = button.bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    shot(page, "applications-390px.png")


def test_the_breadcrumb_separator_has_room_after_a_plain_item(open_page, e2e_instance):
    page = open_page()
    with e2e_instance.client() as client:
        name = client.list_applications()[0]["metadata"]["name"]
    page.goto(f"/applications/{e2e_instance.name}/{name}/")
    item = page.locator("nav[aria-label=breadcrumb] li").nth(1)
    expect(item).to_have_text(e2e_instance.name)
    gap = item.evaluate(
        """li => {
            const range = document.createRange();
            range.selectNodeContents(li);
            const text = range.getBoundingClientRect();
            const box = li.getBoundingClientRect();
            return box.right - parseFloat(getComputedStyle(li).paddingRight) - text.right;
        }"""
    )
    # The separator now flows after the text: a margin and the glyph sit between the name and the next item.
    assert gap >= 12, gap
