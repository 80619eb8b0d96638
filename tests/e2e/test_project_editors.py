"""The project form's structured editors in headless Chromium: a platform admin adds a deny window and a role,
removes an allowed cluster resource and saves; Argo CD holds exactly that, and the change is audited."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_edits_windows_roles_and_allow_lists_in_the_form(page, shot, admin_user, e2e_sim, e2e_instance):
    from apps.audit.models import AuditEvent

    name = sorted(e2e_sim.state.projects)[1]
    spec = e2e_sim.state.projects[name]["spec"]
    spec["clusterResourceWhitelist"] = [{"group": "", "kind": "Namespace"}, {"group": "rbac", "kind": "ClusterRole"}]
    windows_before = len(spec.get("syncWindows") or [])
    roles_before = [r["name"] for r in spec.get("roles") or []]
    login(page, "root", "root-password-123")
    page.goto(f"/kinds/projects/{e2e_instance.name}/{name}/edit/")

    windows = page.locator("#table-syncWindows tbody tr")
    new_window = windows.nth(windows_before)
    new_window.get_by_label(re.compile(r"^Kind, row")).select_option("deny")
    new_window.get_by_label(re.compile(r"^Schedule, row")).fill("0 22 * * *")
    new_window.get_by_label(re.compile(r"^Duration, row")).fill("8h")
    new_window.get_by_label(re.compile(r"^Applications, row")).fill("*-prod")
    new_window.get_by_label(re.compile(r"^Manual sync, row")).check()

    roles = page.locator("#table-roles tbody tr")
    new_role = roles.nth(len(roles_before))
    new_role.get_by_label(re.compile(r"^Name, row")).fill("release-managers")
    new_role.get_by_label(re.compile(r"^Policies, row")).fill(
        f"p, proj:{name}:release-managers, applications, sync, {name}/*, allow"
    )
    page.locator("#table-clusterResourceWhitelist tbody tr").nth(1).get_by_label("Remove row 2").check()
    shot(page, "project-structured-editors.png")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(rf"/kinds/projects/{e2e_instance.name}/{name}/$"))
    spec = e2e_sim.state.projects[name]["spec"]
    assert spec["syncWindows"][-1] == {"kind": "deny", "schedule": "0 22 * * *", "duration": "8h",
                                       "applications": ["*-prod"], "manualSync": True}  # fmt: skip
    assert len(spec["syncWindows"]) == windows_before + 1
    assert [r["name"] for r in spec["roles"]] == [*roles_before, "release-managers"]
    assert spec["clusterResourceWhitelist"] == [{"kind": "Namespace"}]
    event = AuditEvent.objects.filter(action="edit", kind="project", name=name).exclude(outcome="started").last()
    assert event.outcome == "succeeded" and event.after["spec"]["syncWindows"][-1]["duration"] == "8h"
