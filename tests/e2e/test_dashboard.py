"""The home dashboard in headless Chromium: a member of team payments lands on it after logging in, sees only
their project's applications counted, what is out of sync, what changed and what runs, and follows a count into
the filtered application list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER, PASSWORD = "maria", "maria-password-123"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords are hashed when created and again at login; the production hasher's cost buys nothing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def member(django_user_model, e2e_instance):
    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    user = django_user_model.objects.create_user(MEMBER, "maria@example.com", PASSWORD)
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=user)
    Grant.objects.create(team=team, instance_glob=e2e_instance.name, project_glob="payments", actions=["sync"])
    return user


@pytest.fixture
def indexed(e2e_instance):
    from apps.index.indexer import resync
    from apps.instances import services

    with e2e_instance.client() as client:
        resync(e2e_instance.pk, client, name=e2e_instance.name)
    services.check_instance(e2e_instance)  # version and last seen, as the periodic health check records them
    return e2e_instance


def test_a_member_reads_the_fleet_their_grants_show_and_follows_a_count_into_the_list(
    page, shot, e2e_instance, indexed, member, django_user_model
):
    from apps.audit.service import Outcome, record
    from apps.operations.models import Operation

    other = django_user_model.objects.create_user("olaf", "olaf@example.com", "olaf-password-123")
    sim = e2e_instance.name
    change = record(None, user=other, action="sync", outcome=Outcome.SUCCEEDED, instance=sim, kind="application",
                    project="payments", name="payments-api-prod")  # fmt: skip
    record(None, user=other, action="delete", outcome=Outcome.SUCCEEDED, instance=sim, kind="application",
           project="checkout", name="checkout-web-dev")  # fmt: skip
    running = Operation.objects.create(kind="sync", instance=e2e_instance, instance_name=sim, project="payments",
                                       target="payments-web-dev", requested_by=other, progress=40,
                                       state=Operation.State.RUNNING)  # fmt: skip

    login(page, MEMBER, PASSWORD)
    expect(page.locator("main h1")).to_have_text(f"Welcome, {MEMBER}")

    fleet = page.locator(f'#fleet [data-fleet="{sim}"]')
    expect(fleet.locator("td").nth(1)).to_have_text("6")  # the payments project's six apps, not checkout's
    expect(page.locator("#attention")).to_contain_text("payments-web-dev")
    expect(page.locator("#attention")).not_to_contain_text("checkout")
    expect(page.locator(f'#changes [data-change="{change.pk}"]')).to_contain_text("payments-api-prod")
    expect(page.locator("#changes")).not_to_contain_text("checkout-web-dev")
    expect(page.locator(f'#running-operations [data-operation="{running.pk}"]')).to_contain_text("payments-web-dev")
    health = page.locator(f'#instance-health [data-instance-health="{sim}"]')
    expect(health).to_contain_text("reachable")
    expect(health.locator("td").nth(2)).not_to_have_text("—")  # the version Argo CD reported
    expect(page.locator("#pending-approvals")).to_contain_text("Nothing waits for your approval.")
    shot(page, "dashboard-member.png")

    page.set_viewport_size({"width": 390, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a 390 px screen"
    shot(page, "dashboard-member-390.png")
    page.set_viewport_size({"width": 1400, "height": 1000})

    fleet.get_by_role("link", name=re.compile(r"^OutOfSync \d+$")).click()
    expect(page).to_have_url(re.compile(rf"/applications/\?instance={sim}&sync=OutOfSync$"))
    expect(page.locator("main")).to_contain_text("payments-web-dev")
    expect(page.locator("main")).not_to_contain_text("payments-api-prod")
