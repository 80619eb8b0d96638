"""A platform admin, in headless Chromium: opens Users from the navigation, makes alice a platform admin
(an HTMX swap of the user card), and finds the change with its before/after in the audit log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_makes_alice_a_platform_admin_and_the_audit_log_shows_it(page, shot, admin_user, alice):
    login(page, "root", "root-password-123")
    page.get_by_role("link", name="Users", exact=True).click()
    expect(page).to_have_url(re.compile(r"/users/$"))
    page.get_by_role("link", name="alice", exact=True).click()
    expect(page.locator('[data-field="admin"]')).to_have_text("no")

    page.get_by_role("button", name="Make platform admin").click()
    expect(page.get_by_role("status")).to_contain_text("alice is now a platform admin.")
    expect(page.locator('[data-field="admin"]')).to_have_text("yes")
    expect(page.get_by_role("button", name="Remove platform admin")).to_be_visible()
    alice.refresh_from_db()
    assert alice.is_superuser
    shot(page, "user-made-admin.png")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Kind").fill("user")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("#audit-rows tbody tr", has_text="make_admin")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("root")
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("Succeeded")
    row.get_by_role("link").first.click()
    expect(page.locator("main")).to_contain_text("is_superuser")
    shot(page, "user-made-admin-audit.png")
