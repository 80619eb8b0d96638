"""A platform admin writes a grant in headless Chromium: a mistyped instance name is warned about as it is typed,
the preview then lists the applications the grant covers, and deleting the grant or removing a member waits for
the confirmation dialog."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, PASSWORD = "root", "root-password-123"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords are hashed when created and again at login; the production hasher's cost buys nothing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team(admin_user, django_user_model, e2e_instance):
    from apps.index.indexer import resync
    from apps.teams.models import Membership, Team

    with e2e_instance.client() as client:
        resync(e2e_instance.pk, client, name=e2e_instance.name)
    team = Team.objects.create(name="Payments", slug="payments")
    member = django_user_model.objects.create_user("maria", "maria@example.com", "maria-password-123")
    Membership.objects.create(team=team, user=member)
    return team


def test_the_admin_sees_what_a_grant_covers_while_typing_and_confirms_before_deleting(page, shot, team, e2e_instance):
    from apps.access.models import Grant
    from apps.audit.models import AuditEvent

    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sim = e2e_instance.name
    login(page, ADMIN, PASSWORD)
    page.goto("/teams/payments/")
    form = page.locator("#new-grant")
    preview = page.locator("#grant-preview-new")
    expect(form.get_by_label("Instances")).to_have_value("")
    expect(form.locator('input[name="actions"]:checked')).to_have_count(0)

    form.get_by_label("Instances").fill("sim-e2f")  # a typo
    form.get_by_label("Projects").fill("payments")
    form.get_by_label("Applications").fill("*")
    expect(preview.locator("[data-preview-warning]")).to_contain_text(
        f"no registered instance matches 'sim-e2f'. Did you mean {sim}?"
    )
    form.get_by_label("Instances").fill(sim)
    expect(preview.locator("[data-preview-count]")).to_have_text("6 indexed applications")
    expect(preview.locator("[data-preview-warning]")).to_have_count(0)
    expect(preview.locator(".grant-preview-apps li")).to_have_count(6)
    expect(preview).to_contain_text(f"{sim}/payments-api-dev")
    form.get_by_label("Applications").fill("payments-web-*")
    expect(preview.locator("[data-preview-count]")).to_have_text("3 indexed applications")
    form.get_by_label("Sync", exact=True).check()
    shot(page, "grant-form-preview.png")

    form.get_by_role("button", name="Add grant").click()
    expect(page.locator(".flash-success")).to_contain_text("Granted sync to Payments")
    grant = Grant.objects.get(team=team)
    assert (grant.instance_glob, grant.app_glob, grant.actions) == (sim, "payments-web-*", ["sync"])
    expect(page.locator(f'[data-covers="{grant.pk}"]')).to_have_text("3 apps")

    # Delete… opens a dialog naming what the members lose; Cancel changes nothing.
    page.get_by_role("button", name="Delete…").click()
    dialog = page.locator(f"#delete-grant-{grant.pk}")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("3 indexed applications")
    shot(page, "grant-delete-dialog.png")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Grant.objects.filter(pk=grant.pk).exists()
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete grant").click()
    expect(page.locator(".flash-success")).to_contain_text("Deleted the grant of sync")
    assert not Grant.objects.filter(pk=grant.pk).exists()

    page.get_by_role("button", name="Remove…").click()
    member_dialog = page.locator("dialog[open]")
    expect(member_dialog).to_contain_text("Remove maria from Payments?")
    member_dialog.get_by_role("button", name="Remove maria").click()
    expect(page.locator(".flash-success")).to_contain_text("Removed maria from Payments")
    assert not team.memberships.exists()
    assert AuditEvent.objects.filter(kind="team", action="remove_member").exists()
    assert not [e for e in errors if re.search(r"Content Security Policy|Refused", e)], errors
