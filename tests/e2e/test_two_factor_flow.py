"""alice, in headless Chromium: sets up two-factor login by reading the authenticator's secret from the page (as an
app would from the QR code), saves her recovery codes, logs out, and logs in again with password then code."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code(secret_b32: str, ahead: int = 0) -> str:
    from base64 import b32decode

    return f"{TOTP(b32decode(secret_b32), drift=ahead).token():06d}"


def test_alice_sets_up_two_factor_login_and_logs_in_with_a_code(page, shot, alice):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, "alice", "alice-password-123")
    page.get_by_role("link", name="Two-factor").click()
    page.get_by_role("button", name="Set up two-factor login").click()
    qr = page.locator("figure.otp-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100  # drawn, not blanked by the CSP
    page.get_by_text("Cannot scan?").click()
    uri = page.locator("#otp-uri").inner_text()
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    shot(page, "two-factor-enrol.png")

    page.get_by_label("2. Type the code it shows").fill(code(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").first).to_contain_text("Two-factor login is on.")
    codes = page.locator("#recovery-codes").inner_text().split()
    assert len(codes) == 10

    page.get_by_role("button", name="Log out").first.click()
    login(page, "alice", "alice-password-123")
    expect(page).to_have_url(re.compile(r"/account/two-factor/verify/"))
    page.goto("/teams/")
    expect(page).to_have_url(re.compile(r"/account/two-factor/verify/\?next="))
    page.get_by_label("Code").fill("000000" if code(secret, 1) != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not valid")
    shot(page, "two-factor-wrong-code.png")
    page.get_by_label("Code").fill(codes[0])  # the authenticator is throttled for a moment: a recovery code
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/teams/$"))
    page.get_by_role("link", name="Two-factor").click()
    expect(page.locator('[data-field="otp-status"]')).to_contain_text("9 recovery codes left")
    assert not [e for e in errors if "Content Security Policy" in e], errors
