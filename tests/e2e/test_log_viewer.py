"""The log viewer in headless Chromium: two pods at once with their lines prefixed, timestamps, a filter, wrap,
full screen and the download (following live is tested over the production server in
tests/applications/test_streams.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN, PASSWORD = "root", "root-password-123"
APP = "checkout-api-dev"  # three pods in the e2e simulator


def test_two_pods_filtered_with_timestamps_wrapped_full_screen_and_downloaded(
    page, shot, e2e_instance, django_user_model
):
    django_user_model.objects.create_superuser(ADMIN, "root@example.com", PASSWORD)
    with e2e_instance.client() as client:
        pods = [n["name"] for n in client.get_resource_tree(APP)["nodes"] if n["kind"] == "Pod"][:2]

    login(page, ADMIN, PASSWORD)
    page.goto(f"/applications/{e2e_instance.name}/{APP}/?tab=logs")
    logs = page.locator("#logs")
    expect(logs).not_to_contain_text("(no log lines)")
    page.get_by_label("Pods").select_option(pods)
    page.get_by_label("Filter").fill("status=200")
    page.get_by_label("Tail lines").fill("20")
    page.get_by_label("Timestamps").check()
    page.get_by_label("Wrap lines").check()
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"pod=.*&pod=.*filter=status%3D200"))

    expect(page.locator("#logs-viewer .logs-sources")).to_contain_text("2 sources")
    expect(logs).to_have_class(re.compile(r"\bwrap\b"))
    for pod in pods:
        expect(logs.locator(".log-src", has_text=pod).first).to_be_visible()
    expect(logs.locator(".log-ts").first).to_have_text(re.compile(r"^20\d\d-\d\d-\d\dT"))
    text = logs.inner_text()
    lines = text.strip().splitlines()
    assert len(lines) == 40 and all("status=200" in line for line in lines), text[:500]
    shot(page, "logs-two-pods.png")

    page.get_by_role("button", name="Full screen").click()
    viewer = page.locator("#logs-viewer")
    expect(viewer).to_have_class(re.compile(r"\bfullscreen\b"))
    box = viewer.bounding_box()
    assert box and box["y"] == 0 and box["width"] >= 1390  # it covers the window
    shot(page, "logs-full-screen.png")
    page.keyboard.press("Escape")
    expect(viewer).not_to_have_class(re.compile(r"\bfullscreen\b"))

    with page.expect_download() as info:
        page.get_by_role("button", name="Download").click()
    download = info.value
    assert re.match(rf"{e2e_instance.name}-{APP}-logs-\d{{8}}t\d{{6}}z\.log$", download.suggested_filename)
    body = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert len(body) == 40 and {line.split(" ", 1)[0] for line in body} == set(pods)
    assert all("status=200" in line for line in body)
