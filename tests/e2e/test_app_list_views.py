"""The application list's views in headless Chromium: facets with multi-select kept in the URL, list, tiles and
summary views, a favourite pinned, and a per-row Refresh."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from .conftest import TIMEOUT_MS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER, PASSWORD = "lena", "lena-password-123"


@pytest.fixture
def member(django_user_model, e2e_instance):
    """Views everything on the e2e instance; may sync and refresh the payments-* apps only."""
    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    user = django_user_model.objects.create_user(MEMBER, "lena@example.com", PASSWORD)
    team = Team.objects.create(name="Platform", slug="platform")
    Membership.objects.create(team=team, user=user)
    Grant.objects.create(team=team, instance_glob=e2e_instance.name, actions=["view"])
    Grant.objects.create(team=team, instance_glob=e2e_instance.name, app_glob="payments-*", actions=["sync", "refresh"])
    return user


@pytest.fixture
def indexed(e2e_instance):
    from apps.index.indexer import resync
    from apps.index.models import ApplicationSummary

    with e2e_instance.client() as client:
        resync(e2e_instance.pk, client, name=e2e_instance.name)
    return ApplicationSummary.objects.filter(instance=e2e_instance)


def facet(page, key: str, value: str):
    return page.locator(f'[data-facet="{key}"] a[data-facet-value="{quote(value, safe="")}"]')


def test_switch_views_pick_facets_keep_them_in_the_url_and_pin_a_favourite(page, shot, e2e_instance, member, indexed):
    from apps.index.models import Favourite

    healthy = indexed.filter(health_status="Healthy")
    assert healthy.exists() and indexed.exclude(health_status="Healthy").exists()
    login(page, MEMBER, PASSWORD)
    page.goto("/applications/")
    expect(page.locator("#app-rows tbody tr").first).to_be_visible()
    expect(page.locator(".facets")).to_contain_text("Health")
    shot(page, "app-list-facets.png")

    # Pick a health value: htmx swaps the list and pushes the filter into the URL.
    facet(page, "health", "Healthy").click()
    expect(page).to_have_url(re.compile(r"[?&]health=Healthy"), timeout=TIMEOUT_MS)
    expect(facet(page, "health", "Healthy")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#app-rows .counts strong")).to_have_text(f"{healthy.count()} applications")
    # A second value of the same facet adds to it (its counts ignore its own selection, so it is still offered).
    other = indexed.exclude(health_status="Healthy").values_list("health_status", flat=True).first()
    facet(page, "health", other).click()
    expect(page).to_have_url(re.compile(rf"health=Healthy.*health={other}|health={other}.*health=Healthy"))
    both = indexed.filter(health_status__in=["Healthy", other])
    expect(page.locator("#app-rows .counts strong")).to_have_text(f"{both.count()} applications")
    # A label value narrows further; the URL keeps all three.
    label = "env=prod"
    facet(page, "label", label).click()
    expect(page).to_have_url(re.compile(r"label=env%3Dprod"))
    expected = both.filter(labels__contains={"env": "prod"})
    expect(page.locator("#app-rows .counts strong")).to_have_text(re.compile(rf"^{expected.count()} applications?$"))
    assert "health=Healthy" in page.url and f"health={other}" in page.url

    # Tiles: the filters stay.
    page.locator('.view-switch a[data-view="tiles"]').click()
    expect(page).to_have_url(re.compile(r"view=tiles"))
    assert "health=Healthy" in page.url and "label=env%3Dprod" in page.url
    tiles = page.locator("article.tile")
    expect(tiles).to_have_count(expected.count())
    shot(page, "app-list-tiles.png")

    # Pin the first tile's application: back on the same URL, listed under Pinned.
    name = tiles.first.locator("header a").inner_text()
    tiles.first.get_by_role("button", name=f"Pin {e2e_instance.name}/{name}").click()
    expect(page.locator(".pinned")).to_contain_text(name)
    assert "view=tiles" in page.url and "health=Healthy" in page.url
    assert Favourite.objects.filter(user=member, name=name).exists()
    shot(page, "app-list-pinned.png")

    # The summary view of the same selection, and a reload keeps everything.
    page.locator('.view-switch a[data-view="summary"]').click()
    expect(page.locator('table[data-summary="instances"]')).to_contain_text(e2e_instance.name)
    page.reload()
    expect(page.locator('table[data-summary="projects"]')).to_be_visible()
    expect(facet(page, "label", label)).to_have_attribute("aria-checked", "true")
    shot(page, "app-list-summary.png")


def test_per_row_refresh_shows_only_where_granted_and_refreshes(page, e2e_instance, member, indexed):
    login(page, MEMBER, PASSWORD)
    page.goto("/applications/?q=payments-")
    row = page.locator("#app-rows tbody tr").first
    expect(row.locator("[data-row-refresh]")).to_be_visible()
    name = row.locator("td:nth-child(4) a").inner_text()
    page.goto("/applications/?q=checkout-")
    expect(page.locator("#app-rows tbody tr").first).to_be_visible()
    expect(page.locator("#app-rows [data-row-refresh]")).to_have_count(0)
    expect(page.locator("#app-rows [data-row-sync]")).to_have_count(0)
    page.goto("/applications/?q=payments-")
    page.locator("#app-rows tbody tr").first.locator("[data-row-refresh]").click()
    expect(page).to_have_url(re.compile(rf"/applications/{e2e_instance.name}/{name}/"))
    expect(page.locator("body")).to_contain_text(f"refreshed {name}")
