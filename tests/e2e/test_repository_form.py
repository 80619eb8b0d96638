"""A platform admin adds a repository in headless Chromium: Test connection, then Create. The password typed
before the test is never sent back to the page, so the form says to type it again and will not create the
repository without it; the simulated Argo CD ends up holding the password."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "typed-once-Zq9-secret"


def test_test_connection_then_create_asks_for_the_password_again_and_stores_it(
    page, shot, admin_user, e2e_sim, e2e_instance
):
    repo = "https://git.example.com/acme/e2e-form.git"
    login(page, "root", "root-password-123")
    page.goto(f"/kinds/repositories/{e2e_instance.name}/new/")
    page.get_by_label("Repository URL").fill(repo)
    page.get_by_label("Username").fill("bot")
    password = page.get_by_label("Password or token")
    password.fill(PASSWORD)
    page.get_by_role("button", name="Test connection").click()

    expect(page.locator(".flash-success")).to_contain_text(f"Argo CD reached {repo}")
    expect(password).to_have_value("")
    notice = page.locator("#retype-password")
    expect(notice).to_contain_text("Type the password or token again before you create")
    assert PASSWORD not in page.content()
    shot(page, "repository-retype.png")

    page.get_by_role("button", name="Create").click()  # the browser holds the form back: the field is required
    assert password.evaluate("input => input.validity.valueMissing") is True
    expect(page).to_have_url(re.compile(r"/new/$"))
    assert repo not in e2e_sim.state.repos

    password.fill(PASSWORD)
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/kinds/repositories/.+/"))
    expect(page.locator(".flash-success")).to_contain_text("created")
    assert e2e_sim.state.repos[repo]["password"] == PASSWORD and e2e_sim.state.repos[repo]["username"] == "bot"


def test_the_form_shows_only_the_fields_of_the_chosen_authentication_method(
    page, shot, admin_user, e2e_sim, e2e_instance
):
    repo = "git@git.example.com:acme/e2e-ssh.git"
    login(page, "root", "root-password-123")
    page.goto(f"/kinds/repositories/{e2e_instance.name}/new/")
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("SSH private key")).to_be_hidden()
    expect(page.get_by_label("App ID")).to_be_hidden()

    page.get_by_label("Username").fill("typed-before-switching")
    page.get_by_label("Authentication").select_option("ssh")
    expect(page.get_by_label("Username")).to_be_hidden()
    expect(page.get_by_label("SSH private key")).to_be_visible()
    expect(page.get_by_label("Proxy", exact=True)).to_be_visible()  # not tied to a method
    shot(page, "repository-auth-ssh.png")

    page.get_by_label("Authentication").select_option("github")
    expect(page.get_by_label("SSH private key")).to_be_hidden()
    expect(page.get_by_label("App ID")).to_be_visible()

    page.get_by_label("Authentication").select_option("ssh")
    page.get_by_label("Repository URL").fill(repo)
    page.get_by_label("SSH private key").fill(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nkey\n-----END OPENSSH PRIVATE KEY-----"
    )
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash-success")).to_contain_text("created")
    stored = e2e_sim.state.repos[repo]
    assert "PRIVATE KEY" in stored["sshPrivateKey"] and not stored.get("username")
