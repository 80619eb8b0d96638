"""Sync progress in headless Chromium with a real Celery worker: a sync started from the app page shows its
results by phase and wave on the operation card, and they stay on the operation page after the end; a sync whose
PreSync hook fails shows the failed hook with its message on the operation and on the app page."""

from __future__ import annotations

import copy
import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]
WAIT_MS = 30_000


def sync_from_the_page(page) -> None:
    page.get_by_role("button", name="Sync…").click()
    page.locator("#sync-dialog").get_by_role("button", name="Synchronize").click()


def test_sync_progress_shows_the_waves_and_a_failed_hook(page, shot, admin_user, celery_worker, e2e_instance):
    from apps.operations.models import Operation

    with e2e_instance.client() as argo:
        apps = argo.list_applications()
        model = next(
            a
            for a in apps
            if not (a["spec"].get("syncPolicy") or {}).get("automated")
            and "sim/fail-sync" not in (a["metadata"].get("labels") or {})
        )
        spec = copy.deepcopy(model["spec"])
        spec.pop("syncPolicy", None)
        spec["syncPolicy"] = {"retry": {"limit": 0}}
        meta = {"name": "hook-fails", "namespace": "argocd", "labels": {"sim/fail-hook": "true"}}
        argo.create_application({"metadata": meta, "spec": spec})
    name = model["metadata"]["name"]
    login(page, "root", "root-password-123")

    page.goto(f"/applications/{e2e_instance.name}/{name}/")
    sync_from_the_page(page)
    card = page.locator("#op-result .op-card")
    # While it runs, the card grows wave by wave (the simulator takes a step per tick).
    expect(card.locator('.sync-step[data-phase="Sync"]').first).to_be_visible(timeout=WAIT_MS)
    expect(card.locator("header .badge[data-state]")).to_have_text("Succeeded", timeout=WAIT_MS)
    op = Operation.objects.get(kind="sync", target=name)
    page.goto(f"/operations/{op.pk}/")
    steps = page.locator(".op-card .sync-step")
    expect(steps.first).to_have_attribute("data-phase", "PreSync")
    for wave in ("-1", "0", "1"):
        expect(page.locator(f'.op-card .sync-step[data-phase="Sync"][data-wave="{wave}"]')).to_have_count(1)
    expect(page.locator('.sync-step[data-wave="1"]')).to_contain_text("Deployment")
    shot(page, "sync-progress.png")

    page.goto(f"/applications/{e2e_instance.name}/hook-fails/")
    sync_from_the_page(page)
    card = page.locator("#op-result .op-card")
    expect(card.locator("header .badge[data-state]")).to_have_text("Failed", timeout=WAIT_MS)
    failed = card.locator("[data-failed-hook]")
    expect(failed).to_contain_text(re.compile(r"PreSync hook Job \S+-migrate failed"))
    expect(failed).to_contain_text("backoff limit")
    # The app page's own summary (read from Argo CD) shows the same after its poll.
    expect(page.locator("#app-summary [data-failed-hook]")).to_contain_text("backoff limit", timeout=WAIT_MS)
    shot(page, "sync-failed-hook.png")
