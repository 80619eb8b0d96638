"""The project form edits roles, policies, sync windows and allow/deny lists row by row: the same update call
as the YAML editor, audited, keeping what the rows do not show (a role's tokens, a window's other keys)."""

from __future__ import annotations

import pytest

from .conftest import events
from .test_projects import make

pytestmark = pytest.mark.django_db


def edit_form(admin_client, name: str) -> dict:
    """The edit form as the page posts it, from the rendered inputs (what a browser would send untouched)."""
    from html.parser import HTMLParser

    data: dict[str, list[str]] = {}

    class Inputs(HTMLParser):
        select = ""
        textarea = ""

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "input" and a.get("name") and a.get("name") != "csrfmiddlewaretoken":
                if a.get("type") == "checkbox" and "checked" not in a:
                    return
                default = "on" if a.get("type") == "checkbox" else ""
                data.setdefault(a["name"], []).append(a.get("value") or default)
            elif tag == "select":
                self.select = a.get("name", "")
                data.setdefault(self.select, [""])
            elif tag == "option" and self.select and "selected" in a:
                data[self.select] = [a.get("value", "")]
            elif tag == "textarea":
                self.textarea = a.get("name", "")
                data[self.textarea] = [""]

        def handle_data(self, text):
            if self.textarea:
                data[self.textarea] = [data[self.textarea][0] + text]

        def handle_endtag(self, tag):
            if tag == "select":
                self.select = ""
            elif tag == "textarea":
                self.textarea = ""

    Inputs().feed(admin_client.get(f"/kinds/projects/sim-k/{name}/edit/").content.decode())
    return {k: [v.removeprefix("\n") for v in vs] for k, vs in data.items()}


def test_the_form_shows_each_role_window_and_list_entry_as_a_row(admin_client, argo, sim, unique):
    name = f"r-{unique}"
    window = {"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "applications": ["*"]}
    make(admin_client, name, syncWindows=[window], clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}])
    form = edit_form(admin_client, name)
    assert form["roles-0-name"] == ["ci"] and form["roles-0-policies"][0].startswith(f"p, proj:{name}:ci")
    assert form["syncWindows-0-kind"] == ["deny"] and form["syncWindows-0-schedule"] == ["0 22 * * *"]
    assert form["clusterResourceWhitelist-0-kind"] == ["Namespace"]
    assert form["roles-count"] == ["3"]  # the role and two blank rows to add more


def test_structured_edits_reach_argo_cd_through_the_audited_update_and_keep_tokens(admin_client, argo, sim, unique):
    name = f"t-{unique}"
    make(admin_client, name, syncWindows=[{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
                                           "applications": ["*"], "description": "nightly freeze"}])  # fmt: skip
    admin_client.post(f"/kinds/projects/sim-k/{name}/", {"create-token": "1", "role": "ci", "token_id": "keep-me"})
    form = edit_form(admin_client, name)
    form.update({
        "roles-0-policies": [f"p, proj:{name}:ci, applications, get, {name}/*, allow"],
        "roles-1-name": ["viewer"], "roles-1-groups": ["acme:viewers\nacme:auditors"],
        "syncWindows-0-duration": ["2h"], "syncWindows-0-manualSync": ["on"],
        "syncWindows-1-kind": ["allow"], "syncWindows-1-schedule": ["0 8 * * 1-5"], "syncWindows-1-duration": ["10h"],
        "syncWindows-1-applications": ["*-prod"],
        "namespaceResourceBlacklist-0-group": [""], "namespaceResourceBlacklist-0-kind": ["ResourceQuota"],
    })  # fmt: skip
    response = admin_client.post(f"/kinds/projects/sim-k/{name}/edit/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    spec = sim.state.projects[name]["spec"]
    ci, viewer = spec["roles"]
    assert ci["policies"] == [f"p, proj:{name}:ci, applications, get, {name}/*, allow"]
    assert [t["id"] for t in ci["jwtTokens"]] == ["keep-me"]
    assert viewer == {"name": "viewer", "groups": ["acme:viewers", "acme:auditors"]}
    assert spec["syncWindows"][0] == {"kind": "deny", "schedule": "0 22 * * *", "duration": "2h", "manualSync": True,
                                      "description": "nightly freeze", "applications": ["*"]}  # fmt: skip
    assert spec["syncWindows"][1] == {"kind": "allow", "schedule": "0 8 * * 1-5", "duration": "10h",
                                      "applications": ["*-prod"]}  # fmt: skip
    assert spec["namespaceResourceBlacklist"] == [{"kind": "ResourceQuota"}]
    event = events(kind="project", action="edit")[-1]
    assert event.outcome == "succeeded" and len(event.after["spec"]["syncWindows"]) == 2
    assert len(event.before["spec"]["syncWindows"]) == 1


def test_removing_a_row_removes_the_entry(admin_client, argo, sim, unique):
    name = f"x-{unique}"
    make(
        admin_client,
        name,
        syncWindows=[{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "applications": ["*"]}],
    )
    form = edit_form(admin_client, name)
    form["syncWindows-0-_remove"] = ["on"]
    assert admin_client.post(f"/kinds/projects/sim-k/{name}/edit/", form).status_code == 302
    assert not sim.state.projects[name]["spec"].get("syncWindows")


def test_an_incomplete_row_is_a_message_and_changes_nothing(admin_client, argo, sim, unique):
    name = f"i-{unique}"
    make(admin_client, name)
    before = sim.state.projects[name]["spec"]
    form = edit_form(admin_client, name)
    form.update({"syncWindows-0-kind": ["sometimes"], "syncWindows-0-schedule": ["0 1 * * *"],
                 "syncWindows-0-applications": ["*"]})  # fmt: skip
    response = admin_client.post(f"/kinds/projects/sim-k/{name}/edit/", form)
    body = response.content.decode()
    assert response.status_code in (400, 422) and "Row 1: Duration required" in body
    assert "row 1: Kind must be allow or deny" in body
    assert 'value="0 1 * * *"' in body  # what was typed is shown again
    assert sim.state.projects[name]["spec"] == before
