"""Projects: structured and YAML create/edit, sync windows now, role tokens shown once, typed-name delete."""

from __future__ import annotations

import pytest
import yaml

from apps.audit.models import AuditEvent

from .conftest import events, shown_token

pytestmark = pytest.mark.django_db


def project_yaml(name: str, **spec) -> str:
    body = {
        "metadata": {"name": name},
        "spec": {
            "description": "made in a test",
            "sourceRepos": ["*"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": f"{name}-*"}],
            "roles": [{"name": "ci", "policies": [f"p, proj:{name}:ci, applications, sync, {name}/*, allow"]}],
            **spec,
        },
    }
    return yaml.safe_dump(body)


def make(client, name: str, **spec):
    return client.post("/kinds/projects/sim-k/new/?mode=yaml", {"yaml": project_yaml(name, **spec)})


def test_create_project_with_the_structured_form(admin_client, argo, sim, unique):
    name = f"p-{unique}"
    r = admin_client.post(
        "/kinds/projects/sim-k/new/",
        {
            "name": name,
            "description": "Team project",
            "sourceRepos": "https://github.com/acme/*\nhttps://charts.acme.io",
            "destinations": "https://kubernetes.default.svc team-*\n* - in-cluster",
        },
    )
    assert r.status_code == 302 and r["Location"] == f"/kinds/projects/sim-k/{name}/"
    spec = sim.state.projects[name]["spec"]
    assert spec["sourceRepos"] == ["https://github.com/acme/*", "https://charts.acme.io"]
    assert spec["destinations"] == [
        {"server": "https://kubernetes.default.svc", "namespace": "team-*"},
        {"server": "*", "name": "in-cluster"},
    ]
    event = events(kind="project", action="create")[-1]
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED and event.after["spec"]["description"] == "Team project"


def test_invalid_yaml_gets_a_clear_message_and_creates_nothing(admin_client, argo, sim, unique):
    r = admin_client.post(
        "/kinds/projects/sim-k/new/?mode=yaml", {"yaml": f"metadata:\n  name: x{unique}\nspec: [oops"}
    )
    body = r.content.decode()
    assert r.status_code == 400 and "Invalid YAML at line" in body
    assert f"x{unique}" not in sim.state.projects
    no_name = admin_client.post("/kinds/projects/sim-k/new/?mode=yaml", {"yaml": "spec: {}"})
    assert "metadata.name is required" in no_name.content.decode()
    assert not events(kind="project", action="create")


def test_argocd_validation_error_is_shown_and_nothing_is_created(admin_client, argo, sim, unique):
    name = f"bad-{unique}"
    text = project_yaml(name).replace(f"proj:{name}:ci", "proj:someone-else:ci")
    r = admin_client.post("/kinds/projects/sim-k/new/?mode=yaml", {"yaml": text})
    assert r.status_code == 400 and "policy subject must be" in r.content.decode()
    assert name not in sim.state.projects


def test_edit_as_yaml_records_before_and_after_and_keeps_tokens(admin_client, argo, sim, unique):
    name = f"e-{unique}"
    make(admin_client, name)
    admin_client.post(f"/kinds/projects/sim-k/{name}/", {"create-token": "1", "role": "ci", "token_id": "keep-me"})
    page = admin_client.get(f"/kinds/projects/sim-k/{name}/edit/?mode=yaml").content.decode()
    assert "made in a test" in page
    text = project_yaml(name, description="changed by yaml")
    r = admin_client.post(f"/kinds/projects/sim-k/{name}/edit/?mode=yaml", {"yaml": text})
    assert r.status_code == 302
    proj = sim.state.projects[name]
    assert proj["spec"]["description"] == "changed by yaml"
    assert [t["id"] for t in proj["spec"]["roles"][0]["jwtTokens"]] == ["keep-me"]
    event = events(kind="project", action="edit")[-1]
    assert event.before["spec"]["description"] == "made in a test"
    assert event.after["spec"]["description"] == "changed by yaml"


def test_structured_edit_changes_only_its_fields(admin_client, argo, sim, unique):
    name = f"s-{unique}"
    make(admin_client, name)
    r = admin_client.post(
        f"/kinds/projects/sim-k/{name}/edit/",
        {"description": "new words", "sourceRepos": "*", "destinations": f"https://kubernetes.default.svc {name}-*"},
    )
    assert r.status_code == 302
    spec = sim.state.projects[name]["spec"]
    assert spec["description"] == "new words" and spec["roles"][0]["name"] == "ci"
    assert events(kind="project", action="edit")[-1].request["updatedFields"] == ["spec"]


def test_detail_shows_which_sync_windows_are_active_now(admin_client, argo, unique):
    name = f"w-{unique}"
    windows = [
        {"kind": "allow", "schedule": "0 * * * *", "duration": "1h", "applications": ["*"]},
        {"kind": "deny", "schedule": "0 0 1 1 *", "duration": "1m", "applications": ["*"], "timeZone": "Europe/Paris"},
    ]
    assert make(admin_client, name, syncWindows=windows).status_code == 302
    body = admin_client.get(f"/kinds/projects/sim-k/{name}/").content.decode()
    assert body.count(">active</span>") == 1 and body.count(">inactive</span>") == 1
    assert "closes " in body and "Europe/Paris" in body
    # A deny window that is not in force yet "starts"; only allow windows open and close.
    assert "starts " in body and "opens " not in body


def test_an_active_deny_window_lifts_rather_than_closes(admin_client, argo, unique):
    name = f"wd-{unique}"
    windows = [{"kind": "deny", "schedule": "0 * * * *", "duration": "1h", "applications": ["*"]}]
    assert make(admin_client, name, syncWindows=windows).status_code == 302
    body = admin_client.get(f"/kinds/projects/sim-k/{name}/").content.decode()
    assert ">active</span>" in body and "lifts " in body
    assert "closes " not in body and "opens " not in body


def test_role_token_is_shown_once_and_never_audited(admin_client, argo, sim, unique):
    name = f"t-{unique}"
    make(admin_client, name)
    r = admin_client.post(
        f"/kinds/projects/sim-k/{name}/",
        {"create-token": "1", "role": "ci", "token_id": "ci-1", "expires_in": "3600"},
        headers={"HX-Request": "true"},
    )
    body = r.content.decode()
    assert r.status_code == 200 and "<html" not in body and "copy it now" in body
    token = shown_token(body)
    assert token.count(".") == 2
    again = admin_client.get(f"/kinds/projects/sim-k/{name}/").content.decode()
    assert token not in again and "ci-1" in again
    event = events(kind="project", action="create-token")[-1]
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED and token not in str(event.request)
    assert all(token not in str((e.request, e.before, e.after)) for e in AuditEvent.objects.all())
    iat = sim.state.projects[name]["spec"]["roles"][0]["jwtTokens"][0]["iat"]
    r = admin_client.post(
        f"/kinds/projects/sim-k/{name}/", {"delete-token": "1", "role": "ci", "iat": iat, "token_id": "ci-1"}
    )
    assert r.status_code == 302 and "deleted" in admin_client.get(r["Location"]).content.decode()
    assert not sim.state.projects[name]["spec"]["roles"][0].get("jwtTokens")


def test_token_for_an_unknown_role_is_refused_with_a_message(admin_client, argo, unique):
    name = f"r-{unique}"
    make(admin_client, name)
    r = admin_client.post(f"/kinds/projects/sim-k/{name}/", {"create-token": "1", "role": "nope"})
    assert "has no role" in r.content.decode()


def test_delete_project_asks_for_the_name(admin_client, argo, sim, unique):
    name = f"d-{unique}"
    make(admin_client, name)
    assert admin_client.post(f"/kinds/projects/sim-k/{name}/delete/", {"confirm_name": "no"}).status_code == 400
    assert name in sim.state.projects
    assert admin_client.post(f"/kinds/projects/sim-k/{name}/delete/", {"confirm_name": name}).status_code == 302
    assert name not in sim.state.projects
    assert events(kind="project", action="delete")[-1].before["metadata"]["name"] == name


def test_deleting_a_project_in_use_shows_argocds_refusal(admin_client, argo, sim):
    r = admin_client.post("/kinds/projects/sim-k/payments/delete/", {"confirm_name": "payments"})
    assert r.status_code == 400 and "referenced by" in r.content.decode()
    assert "payments" in sim.state.projects


def test_team_member_edits_own_project_but_cannot_create_elsewhere(client, alice, grant, argo, sim, unique):
    grant(alice, ["edit", "create"], project="payments")
    client.force_login(alice)
    assert client.get("/kinds/projects/sim-k/payments/edit/").status_code == 200
    assert client.get("/kinds/projects/sim-k/checkout/").status_code == 404
    r = client.post("/kinds/projects/sim-k/new/?mode=yaml", {"yaml": project_yaml(f"n-{unique}")})
    assert r.status_code == 404 and f"n-{unique}" not in sim.state.projects
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="project", action="create", actor="alice")


def test_rotation_with_too_long_a_grace_period_is_refused_before_starting(admin_client, argo, sim, unique):
    from apps.operations.models import Operation

    name = f"g-{unique}"
    make(admin_client, name)
    form = {"rotate-token": "1", "role": "ci", "iat": "1", "grace_seconds": "31", "grace_unit": "minutes"}
    r = admin_client.post(f"/kinds/projects/sim-k/{name}/", form, headers={"HX-Request": "true"})
    assert "between 0 and 30 minutes" in r.content.decode()
    assert not Operation.objects.filter(target=name).exists()


def test_viewer_of_a_project_cannot_create_role_tokens(client, bob, grant, argo, sim):
    grant(bob, ["view"], project="payments")
    client.force_login(bob)
    page = client.get("/kinds/projects/sim-k/payments/").content.decode()
    assert "Create a token" not in page and "Rotate…" not in page
    assert client.post("/kinds/projects/sim-k/payments/", {"create-token": "1", "role": "ci"}).status_code == 403
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="project", action="rotate", actor="bob")


def test_a_yaml_edit_may_not_rename_the_project(admin_client, argo, sim, unique):
    name = f"n-{unique}"
    make(admin_client, name)
    text = project_yaml(f"other-{unique}", description="renamed")
    r = admin_client.post(f"/kinds/projects/sim-k/{name}/edit/?mode=yaml", {"yaml": text})
    assert r.status_code == 400
    assert "A Project cannot be renamed; create a new one and delete this one" in r.content.decode()
    assert f"other-{unique}" not in sim.state.projects
    assert sim.state.projects[name]["spec"]["description"] == "made in a test"


def test_a_role_token_with_a_negative_expiry_is_refused(admin_client, argo, sim, unique):
    name = f"x-{unique}"
    make(admin_client, name)
    data = {"create-token": "1", "role": "ci", "token_id": "neg", "expires_in": "-5"}
    r = admin_client.post(f"/kinds/projects/sim-k/{name}/", data, headers={"HX-Request": "true"})
    assert "0 (never expires) or a positive number of seconds" in r.content.decode()
    assert not sim.state.projects[name]["spec"]["roles"][0].get("jwtTokens")


def test_the_form_does_not_empty_sources_or_destinations_by_a_slip(admin_client, argo, sim, unique):
    name = f"e-{unique}"
    make(admin_client, name)
    before = sim.state.projects[name]["spec"]
    r = admin_client.post(
        f"/kinds/projects/sim-k/{name}/edit/", {"description": "x", "sourceRepos": "", "destinations": ""}
    )
    assert r.status_code == 400
    assert "With no source repositories and no destinations, none of this project" in r.content.decode()
    assert sim.state.projects[name]["spec"] == before
