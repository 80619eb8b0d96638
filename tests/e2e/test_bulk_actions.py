"""Bulk actions in headless Chromium: tick applications on two instances in the list, open the bulk panel, choose
the sync options, read the confirmation (apps, instances, and who is refused why), confirm; then a hard refresh
the same way."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER, PASSWORD = "maria", "maria-password-123"


@pytest.fixture
def two_instances(e2e_sim, e2e_instance):
    """The e2e simulator registered twice (east and west), both indexed."""
    from apps.index.indexer import resync
    from apps.instances.models import Instance

    west = Instance.objects.create(name="argocd-west", url=e2e_sim.url, token=e2e_sim.portal_token(), verify_tls=False)
    for inst in (e2e_instance, west):
        with inst.client() as client:
            resync(inst.pk, client, name=inst.name)
    return e2e_instance, west


@pytest.fixture
def member(django_user_model):
    """May sync and refresh payments-api-*; may sync payments-web-* but never with force, and not refresh them."""
    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    user = django_user_model.objects.create_user(MEMBER, "maria@example.com", PASSWORD)
    for slug, app, actions, constraints in [
        ("payments-api", "payments-api-*", ["view", "sync", "refresh"], {}),
        ("payments-web", "payments-web-*", ["view", "sync"], {"force": False}),
    ]:
        team = Team.objects.create(name=slug, slug=slug)
        Membership.objects.create(team=team, user=user)
        Grant.objects.create(team=team, instance_glob="*", project_glob="payments", app_glob=app, actions=actions,
                             constraints=constraints)  # fmt: skip
    return user


def _select(page, keys: list[str]) -> None:
    page.goto("/applications/")
    for key in keys:
        page.get_by_label(f"Select {key}", exact=True).check()
    page.get_by_role("button", name="Bulk actions…").click()
    expect(page.locator("h2")).to_contain_text(f"{len(keys)} applications selected")


def test_bulk_sync_with_options_confirms_names_and_refusals_then_hard_refresh(page, shot, two_instances, member):
    from apps.audit.models import AuditEvent
    from apps.operations.models import Operation

    east, west = two_instances
    keys = [f"{east.name}/payments-api-dev", f"{west.name}/payments-api-dev", f"{east.name}/payments-web-dev"]
    login(page, MEMBER, PASSWORD)

    _select(page, keys)
    page.get_by_label("Sync", exact=True).check()
    page.get_by_label("Dry run").check()
    page.get_by_label("Force").check()
    shot(page, "bulk-panel-options.png")
    page.get_by_role("button", name="Review…").click()

    confirm = page.locator("#bulk-confirm")
    expect(confirm.locator("h3")).to_have_text("Confirm: Sync 2 applications on 2 instances with dry run, force")
    expect(confirm.locator(f'li[data-instance="{east.name}"]')).to_contain_text("payments-api-dev")
    expect(confirm.locator(f'li[data-instance="{west.name}"]')).to_contain_text("payments-api-dev")
    expect(page.locator("#bulk-refused")).to_contain_text(f"{east.name}/payments-web-dev — force is not allowed")
    assert not Operation.objects.exists()  # the confirmation changes nothing
    shot(page, "bulk-sync-confirm.png")

    page.get_by_role("button", name="Sync 2 applications").click()
    expect(page.locator(".op-card").first).to_be_visible()
    parent = Operation.objects.get(kind="bulk_sync")
    assert parent.params["force"] is True and parent.params["dryRun"] is True
    assert sorted((c.instance_name, c.target) for c in parent.children.all()) == [
        (west.name, "payments-api-dev"),
        (east.name, "payments-api-dev"),
    ]
    assert AuditEvent.objects.filter(action="sync", outcome="denied", name="payments-web-dev").count() == 1

    _select(page, keys)
    page.get_by_label("Hard refresh").check()
    page.get_by_role("button", name="Review…").click()
    expect(page.locator("#bulk-confirm h3")).to_have_text("Confirm: Hard refresh 2 applications on 2 instances")
    expect(page.locator("#bulk-refused")).to_contain_text("payments-web-dev — you may not refresh it")
    page.get_by_role("button", name="Hard refresh 2 applications").click()
    expect(page.locator("#refresh-results tbody tr")).to_have_count(2)
    expect(page.locator("#refresh-results")).to_contain_text("refreshed")
    shot(page, "bulk-refresh-done.png")
    done = AuditEvent.objects.filter(action="refresh", outcome="succeeded")
    assert sorted(done.values_list("instance", flat=True)) == sorted([east.name, west.name])
