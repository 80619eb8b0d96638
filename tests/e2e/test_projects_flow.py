"""A platform admin, in headless Chromium: creates a project with a CI role from YAML, issues a role token
(shown once), rotates it with a short grace period and reveals the new token once; the simulated Argo CD ends
up holding the new token only."""

from __future__ import annotations

import base64
import json
import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

PROJECT = "e2e-shop"
GRACE_SECONDS = 4
PROJECT_YAML = f"""\
metadata:
  name: {PROJECT}
spec:
  description: Shop front, created by the browser test
  sourceRepos: ["https://github.com/acme/shop-*"]
  destinations:
    - server: https://kubernetes.default.svc
      namespace: "shop-*"
  roles:
    - name: ci
      description: CI pipeline
      policies:
        - p, proj:{PROJECT}:ci, applications, sync, {PROJECT}/*, allow
"""


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def ci_tokens(sim) -> list[dict]:
    project = sim.state.projects[PROJECT]
    role = next(r for r in project["spec"]["roles"] if r["name"] == "ci")
    return list(role.get("jwtTokens") or [])


def test_an_admin_creates_a_project_with_a_role_issues_a_token_and_rotates_it(
    page, shot, live_server, celery_worker, admin_user, e2e_sim, e2e_instance
):
    from apps.operations.models import Operation

    login(page, "root", "root-password-123")

    # Create: the page offers a form and YAML; roles only exist in the YAML.
    page.goto(f"/kinds/projects/{e2e_instance.name}/new/")
    page.get_by_role("link", name="Edit as YAML").click()
    page.get_by_label("YAML (metadata and spec)").fill(PROJECT_YAML)
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(rf"/kinds/projects/{e2e_instance.name}/{PROJECT}/$"))
    expect(page.get_by_role("status").first).to_contain_text(f"Project {PROJECT} created")
    role = page.locator("article.role", has=page.locator("header strong", has_text="ci"))
    expect(role).to_contain_text(f"p, proj:{PROJECT}:ci, applications, sync, {PROJECT}/*, allow")
    expect(role.locator("tbody")).to_contain_text("No tokens.")
    shot(page, "project.png")

    # Issue a token: shown once in place, gone on reload.
    role.locator("summary", has_text="Create a token for ci").click()
    role.get_by_label("Token ID").fill("ci-1")
    role.get_by_role("button", name="Create (shown once)").click()
    first = page.locator("#action-result pre.token")
    expect(first).to_be_visible()
    old_token = first.inner_text().strip()
    assert claims(old_token)["sub"] == f"proj:{PROJECT}:ci"
    assert [t.get("id") for t in ci_tokens(e2e_sim)] == ["ci-1"]
    expect(role.locator("tbody")).to_contain_text("ci-1")  # the token table refreshed itself
    shot(page, "token.png")
    page.reload()
    expect(page.locator("pre.token")).to_have_count(0)
    assert old_token not in page.content()
    expect(role.locator("tbody")).to_contain_text("ci-1")

    # Rotate with a short grace period; the card polls itself until the runner is done.
    role.get_by_role("button", name="Rotate…").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Grace period").fill(str(GRACE_SECONDS))
    dialog.get_by_label("Unit").select_option("seconds")
    dialog.get_by_role("button", name="Rotate", exact=True).click()
    card = page.locator("#action-result .op-card")
    expect(card).to_be_visible()
    op = Operation.objects.get(kind="rotate_project_token", target=PROJECT)
    new_id = f"rotated-{op.pk}"
    # Within the grace period both tokens work; the old one goes when it ends.
    expect(card.locator(".badge[data-state]")).to_have_text("Running", timeout=10_000)
    expect(card).to_contain_text("New token ready", timeout=10_000)
    assert {t.get("id") for t in ci_tokens(e2e_sim)} == {"ci-1", new_id}
    expect(card.locator(".badge[data-state]")).to_have_text("Succeeded", timeout=GRACE_SECONDS * 1000 + 20_000)
    expect(card.locator("progress")).to_have_attribute("value", "100")
    expect(card).to_contain_text("the old token of")
    shot(page, "rotation.png")
    assert [t.get("id") for t in ci_tokens(e2e_sim)] == [new_id]
    expect(role.locator("tbody")).not_to_contain_text("ci-1")  # refreshed when the operation finished

    # Reveal the new token: once.
    page.get_by_role("link", name="Reveal the new token (once)").click()
    expect(page).to_have_url(re.compile(rf"/kinds/token/{op.pk}/$"))
    page.get_by_role("button", name="Show the token once").click()
    revealed = page.locator("pre.token")
    expect(revealed).to_be_visible()
    new_token = revealed.inner_text().strip()
    shot(page, "reveal.png")
    assert new_token != old_token
    assert claims(new_token)["jti"] == new_id and claims(new_token)["sub"] == f"proj:{PROJECT}:ci"
    page.goto(f"/kinds/token/{op.pk}/")
    expect(page.locator("pre.token")).to_have_count(0)
    expect(page.locator("article")).to_contain_text("No token is waiting")
    expect(page.get_by_role("button", name="Show the token once")).to_have_count(0)
