"""ApplicationSets: YAML create/edit with a preview of the generated applications, owned apps, delete."""

from __future__ import annotations

import time
from unittest.mock import ANY

import pytest
import yaml

from apps.audit.models import AuditEvent

from .conftest import events

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _leave_no_generated_apps(sim, unique):
    """The simulator is shared by the whole session: drop this test's sets and the apps they generated."""
    yield
    from apps.simulator import appset_controller

    with sim.state.lock:
        for key, appset in list(sim.state.appsets.items()):
            if unique in key[1]:
                del sim.state.appsets[key]
                for rec in appset_controller.owned_apps(sim.state, appset):
                    sim.state.delete_app(rec, False, "", "test")
        for rec in [r for r in sim.state.apps.values() if unique in r.name]:
            sim.state.delete_app(rec, False, "", "test")


def appset_yaml(name: str, envs=("dev", "staging"), project: str = "default") -> str:
    return yaml.safe_dump(
        {
            "metadata": {"name": name},
            "spec": {
                "goTemplate": True,
                "generators": [{"list": {"elements": [{"env": e} for e in envs]}}],
                "template": {
                    "metadata": {"name": f"{name}-{{{{.env}}}}"},
                    "spec": {
                        "project": project,
                        "source": {"repoURL": "https://github.com/acme/x.git", "path": "apps/{{.env}}"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{.env}}"},
                    },
                },
            },
        }
    )


def test_preview_lists_the_generated_applications_without_creating_anything(admin_client, argo, sim, unique):
    name = f"as-{unique}"
    r = admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name), "preview": "1"})
    body = r.content.decode()
    assert r.status_code == 200
    assert "Applications this would generate (2)" in body
    assert f"{name}-dev" in body and f"{name}-staging" in body
    assert ("argocd", name) not in sim.state.appsets
    assert not events(kind="applicationset")


def test_create_and_edit_an_applicationset_with_audit(admin_client, argo, sim, unique):
    name = f"as-{unique}"
    r = admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name), "save": "1"})
    assert r.status_code == 302 and r["Location"] == f"/kinds/applicationsets/sim-k/{name}/"
    assert ("argocd", name) in sim.state.appsets
    assert "list" in admin_client.get(r["Location"]).content.decode()
    r = admin_client.post(f"/kinds/applicationsets/sim-k/{name}/edit/", {"yaml": appset_yaml(name, envs=("prod",))})
    assert r.status_code == 302
    elements = sim.state.appsets[("argocd", name)]["spec"]["generators"][0]["list"]["elements"]
    assert elements == [{"env": "prod"}]
    create, edit = events(kind="applicationset")
    assert create.action == "create" and create.outcome == AuditEvent.Outcome.SUCCEEDED
    assert edit.before["spec"]["generators"][0]["list"]["elements"][0] == {"env": "dev"}
    assert edit.after["spec"]["generators"][0]["list"]["elements"] == [{"env": "prod"}]


def test_bad_yaml_and_argocd_refusals_are_shown_and_change_nothing(admin_client, argo, sim, unique):
    r = admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": "metadata: {name: x\nspec:"})
    assert r.status_code == 400 and "Invalid YAML at line" in r.content.decode()
    name = f"as-{unique}"
    r = admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name, project="no-such-project")})
    assert r.status_code == 400 and "does not exist" in r.content.decode()
    assert ("argocd", name) not in sim.state.appsets
    assert events(kind="applicationset", action="create")[-1].outcome == AuditEvent.Outcome.FAILED


def test_detail_lists_the_generated_applications_from_the_live_list_with_links(admin_client, argo, sim, unique):
    name = f"as-{unique}"
    admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name)})
    with sim.state.lock:
        # A progressive-sync step shows next to its app; an app merely named like the set's is not its.
        sim.state.appsets[("argocd", name)]["status"]["applicationStatus"] = [
            {"application": f"{name}-dev", "status": "Healthy", "step": "1", "message": "rolled out"}
        ]
    body = admin_client.get(f"/kinds/applicationsets/sim-k/{name}/").content.decode()
    assert "Generators" in body and "Template" in body
    assert "Applications it owns (2)" in body
    assert f'<a href="/applications/sim-k/{name}-dev/">{name}-dev</a>' in body
    assert f'<a href="/applications/sim-k/{name}-staging/">{name}-staging</a>' in body
    assert "rolled out" in body


def test_delete_dialog_names_the_applications_that_go_with_the_set(admin_client, argo, sim, unique):
    name = f"as-{unique}"
    admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name)})
    page = admin_client.get(f"/kinds/applicationsets/sim-k/{name}/").content.decode()
    dialog = page[page.index('<dialog id="confirm-delete"') :]
    assert "deletes the 2 applications it owns with it" in dialog
    assert f"<strong>{name}-dev</strong>" in dialog and f"<strong>{name}-staging</strong>" in dialog
    standalone = admin_client.get(f"/kinds/applicationsets/sim-k/{name}/delete/").content.decode()
    assert f"<strong>{name}-dev</strong>" in standalone and "what they deployed in their clusters" in standalone


def test_delete_dialog_says_which_applications_stay_when_the_policy_forbids_deletes(admin_client, argo, sim, unique):
    name = f"as-{unique}"
    doc = yaml.safe_load(appset_yaml(name))
    doc["spec"]["syncPolicy"] = {"applicationsSync": "create-update", "preserveResourcesOnDeletion": True}
    admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": yaml.safe_dump(doc)})
    page = admin_client.get(f"/kinds/applicationsets/sim-k/{name}/delete/").content.decode()
    assert "forbids deletes" in page and "applications it owns stay" in page
    assert f"<strong>{name}-dev</strong>" in page and "deletes the" not in page
    r = admin_client.post(f"/kinds/applicationsets/sim-k/{name}/delete/", {"delete": "1"})
    assert r.status_code == 302
    with sim.state.lock:
        kept = sim.state.apps.get(("argocd", f"{name}-dev"))
        assert kept is not None and "ownerReferences" not in kept.obj["metadata"]
    event = events(kind="applicationset", action="delete")[-1]
    assert event.request == {"applications_kept": [f"{name}-dev", f"{name}-staging"], "request_id": ANY}


def test_deleting_a_set_through_the_portal_deletes_its_applications_and_is_audited(admin_client, argo, sim, unique):
    name = f"as-{unique}"
    admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name)})
    with sim.state.lock:
        assert ("argocd", f"{name}-dev") in sim.state.apps
    r = admin_client.post(f"/kinds/applicationsets/sim-k/{name}/delete/", {"delete": "1"})
    assert r.status_code == 302 and ("argocd", name) not in sim.state.appsets

    def gone() -> bool:
        with sim.state.lock:
            return not any(key in sim.state.apps for key in (("argocd", f"{name}-dev"), ("argocd", f"{name}-staging")))

    deadline = time.monotonic() + 10
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(), "the generated applications were garbage collected"
    event = events(kind="applicationset", action="delete")[-1]
    assert event.before["metadata"]["name"] == name and event.outcome == AuditEvent.Outcome.SUCCEEDED
    assert event.request == {"applications_deleted": [f"{name}-dev", f"{name}-staging"], "request_id": ANY}


def test_member_sees_only_appsets_of_granted_projects_and_cannot_create_in_others(
    client, bob, grant, argo, sim, unique
):
    grant(bob, ["view", "create"], project="payments")
    client.force_login(bob)
    body = client.get("/kinds/applicationsets/").content.decode()
    assert ">payments-envs</a>" in body
    r = client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(f"as-{unique}", project="default")})
    assert r.status_code == 404 and ("argocd", f"as-{unique}") not in sim.state.appsets
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="applicationset", actor="bob")
    ok = client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(f"as-{unique}", project="payments")})
    assert ok.status_code == 302


def test_a_viewer_cannot_run_the_generator_preview_on_a_foreign_project(client, alice, grant, argo, unique):
    grant(alice, ["view"], project="team-a")
    client.force_login(alice)
    data = {"yaml": appset_yaml(f"as-{unique}", project="other"), "preview": "1"}
    r = client.post("/kinds/applicationsets/sim-k/new/", data)
    assert r.status_code in (403, 404)
    assert "would generate" not in r.content.decode()
    assert events(kind="applicationset", outcome=AuditEvent.Outcome.DENIED)


@pytest.mark.parametrize("project", ["", "default"])
def test_an_empty_template_project_counts_as_default_for_grants(client, alice, grant, argo, project, unique):
    grant(alice, ["view", "create", "edit"], project="team-a")
    client.force_login(alice)
    r = client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(f"as-{unique}", project=project)})
    assert r.status_code in (403, 404)
    assert events(kind="applicationset", outcome=AuditEvent.Outcome.DENIED)


def test_a_template_patch_may_not_set_the_project(admin_client, argo, unique):
    doc = yaml.safe_load(appset_yaml(f"as-{unique}"))
    doc["spec"]["templatePatch"] = "spec:\n  project: other\n"
    r = admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": yaml.safe_dump(doc)})
    assert r.status_code == 400 and "templatePatch may not set the project" in r.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("name", "renamed", "cannot be renamed"), ("namespace", "elsewhere", "cannot be moved to another namespace")],
)
def test_an_edit_may_not_rename_or_move_the_applicationset(admin_client, argo, sim, unique, field, value, message):
    name = f"as-{unique}"
    admin_client.post("/kinds/applicationsets/sim-k/new/", {"yaml": appset_yaml(name)})
    before = {key: dict(v) for key, v in sim.state.appsets.items()}
    doc = yaml.safe_load(appset_yaml(name, envs=("prod",)))
    doc["metadata"][field] = f"{value}-{unique}"
    r = admin_client.post(f"/kinds/applicationsets/sim-k/{name}/edit/", {"yaml": yaml.safe_dump(doc)})
    body = r.content.decode()
    assert r.status_code == 400 and f"An ApplicationSet {message}; create a new one and delete this one" in body
    assert sim.state.appsets.keys() == before.keys()
    assert sim.state.appsets[("argocd", name)]["spec"] == before[("argocd", name)]["spec"]
    assert not events(kind="applicationset", action="edit")
    ok = admin_client.post(f"/kinds/applicationsets/sim-k/{name}/edit/", {"yaml": appset_yaml(name, envs=("prod",))})
    assert ok.status_code == 302


def test_a_member_sees_only_the_generated_apps_they_may_view_and_a_count_of_the_rest(
    client, alice, grant, argo, sim, unique
):
    name = f"as-{unique}"
    doc = yaml.safe_load(appset_yaml(name, project="payments"))
    doc["spec"]["syncPolicy"] = {"applicationsSync": "create-only"}
    grant(alice, ["view", "create", "delete"], project="payments")
    client.force_login(alice)
    assert client.post("/kinds/applicationsets/sim-k/new/", {"yaml": yaml.safe_dump(doc)}).status_code == 302
    with sim.state.lock:
        # One generated app ends up in a project alice has no grant on (as a templatePatch could put it).
        sim.state.apps[("argocd", f"{name}-staging")].obj["spec"]["project"] = "search"
    page = client.get(f"/kinds/applicationsets/sim-k/{name}/").content.decode()
    assert "Applications it owns (2)" in page and f"{name}-dev</a>" in page
    assert f"{name}-staging" not in page and "and 1 more you may not view" in page
    r = client.post(f"/kinds/applicationsets/sim-k/{name}/delete/", {"delete": "1"})
    assert r.status_code == 302
    # The audit log names everything that went, seen by alice or not.
    assert events(kind="applicationset", action="delete")[-1].request == {
        "applications_kept": [f"{name}-dev", f"{name}-staging"],
        "request_id": ANY,
    }
