"""Validation errors answer with Argo CD's code and message, and change nothing."""

from __future__ import annotations

import json

import pytest
import requests

from .helpers import new_app_body, unique


def body_with(name: str, **changes) -> dict:
    body = new_app_body(name)
    for path, value in changes.items():
        cur = body
        parts = path.split("__")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        if value is None:
            cur.pop(parts[-1], None)
        else:
            cur[parts[-1]] = value
    return body


@pytest.mark.parametrize(
    ("changes", "status", "code", "fragment"),
    [
        ({"spec__project": "nope"}, 400, 3, 'app is not allowed in project "nope", or the project does not exist'),
        (
            {"spec__destination": {"server": "https://unknown.example.com", "namespace": "x"}},
            400,
            3,
            "there are no clusters with this URL: https://unknown.example.com",
        ),
        (
            {"spec__destination": {"name": "ghost", "namespace": "x"}},
            400,
            3,
            "there are no clusters with this name: ghost",
        ),
        ({"spec__destination": {"namespace": "x"}}, 400, 3, "either destination server or name must be set"),
        ({"spec__source": None}, 400, 3, "Application must have at least one source"),
        ({"spec__source": {"path": "x"}}, 400, 3, "spec.source.repoURL"),
        ({"metadata__name": ""}, 400, 3, "resource name may not be empty"),
    ],
)
def test_create_validation(admin, changes, status, code, fragment):
    name = unique("val")
    r = admin.post("/api/v1/applications", body_with(name, **changes))
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and fragment in r.json()["message"]
    assert r.json()["error"] == r.json()["message"]
    assert admin.get(f"/api/v1/applications/{name}", params={"project": "default"}).status_code == 404


def test_repo_and_destination_must_be_permitted_by_project(admin):
    projects = {p["metadata"]["name"]: p for p in admin.get("/api/v1/projects").json()["items"]}
    team = next(n for n in projects if n != "default")
    body = new_app_body(unique("val-perm"), project=team, namespace="elsewhere")
    body["spec"]["source"]["repoURL"] = "https://gitlab.com/evil/repo.git"
    r = admin.post("/api/v1/applications", body)
    assert r.status_code == 400
    msg = r.json()["message"]
    assert f"application repo https://gitlab.com/evil/repo.git is not permitted in project '{team}'" in msg
    assert "do not match any of the allowed destinations" in msg


def test_create_existing_needs_upsert(admin):
    name = unique("val-up")
    body = new_app_body(name)
    assert admin.post("/api/v1/applications", body).status_code == 200
    assert admin.post("/api/v1/applications", body).status_code == 200  # identical => returns existing
    changed = new_app_body(name, namespace="changed")
    r = admin.post("/api/v1/applications", changed)
    assert r.status_code == 400
    assert r.json() == {
        "error": "existing application spec is different, use upsert flag to force update",
        "code": 3,
        "message": "existing application spec is different, use upsert flag to force update",
    }
    assert admin.app(name)["spec"]["destination"]["namespace"] == "default"
    r = admin.post("/api/v1/applications", changed, params={"upsert": "true"})
    assert r.status_code == 200 and r.json()["spec"]["destination"]["namespace"] == "changed"


def test_update_and_merge_patch(admin):
    name = unique("val-upd")
    admin.post("/api/v1/applications", new_app_body(name))
    body = admin.app(name)
    body["spec"]["source"]["targetRevision"] = "release-1.x"
    body["metadata"]["labels"]["tier"] = "gold"
    r = admin.put(f"/api/v1/applications/{name}", body)
    assert r.status_code == 200
    assert (
        r.json()["spec"]["source"]["targetRevision"] == "release-1.x"
        and r.json()["metadata"]["labels"]["tier"] == "gold"
    )
    patch = {
        "patch": json.dumps({"spec": {"source": {"path": "apps/other"}}, "metadata": {"labels": {"tier": None}}}),
        "patchType": "merge",
    }
    r = admin.patch(f"/api/v1/applications/{name}", patch)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["source"]["path"] == "apps/other" and "tier" not in r.json()["metadata"]["labels"]
    events = [e["message"] for e in admin.get(f"/api/v1/applications/{name}/events").json()["items"]]
    assert "admin updated application spec" in events


@pytest.mark.parametrize(
    ("patch", "patch_type", "status", "fragment"),
    [
        ("not json", "json", 500, "error decoding json patch"),
        (json.dumps({"op": "replace"}), "json", 500, "error decoding json patch"),
        (json.dumps([{"op": "replace", "path": "/spec/nope/x", "value": 1}]), "json", 500, "error applying patch"),
        (json.dumps([{"op": "test", "path": "/spec/project", "value": "other"}]), "json", 500, "error applying patch"),
        (
            json.dumps([{"op": "remove", "path": "/spec/destination"}]),
            "json",
            400,
            "either destination server or name must be set",
        ),
        (
            json.dumps([{"op": "replace", "path": "/spec/project", "value": "ghost"}]),
            "json",
            400,
            'app is not allowed in project "ghost"',
        ),
        ("{}", "strategic", 400, "Patch type 'strategic' is not supported"),
    ],
)
def test_bad_patches_change_nothing(admin, patch, patch_type, status, fragment):
    name = unique("val-patch")
    admin.post("/api/v1/applications", new_app_body(name))
    before = admin.app(name)
    r = admin.patch(f"/api/v1/applications/{name}", {"patch": patch, "patchType": patch_type})
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]
    after = admin.app(name)
    assert (
        after["spec"] == before["spec"]
        and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    )


def test_json_patch_all_ops(admin):
    name = unique("val-ops")
    admin.post("/api/v1/applications", new_app_body(name))
    ops = [
        {"op": "test", "path": "/spec/project", "value": "default"},
        {"op": "add", "path": "/spec/syncPolicy", "value": {"syncOptions": ["A=1"]}},
        {"op": "add", "path": "/spec/syncPolicy/syncOptions/-", "value": "B=2"},
        {"op": "copy", "from": "/spec/syncPolicy/syncOptions/0", "path": "/spec/syncPolicy/syncOptions/0"},
        {"op": "move", "from": "/metadata/labels/env", "path": "/metadata/labels/stage"},
        {"op": "remove", "path": "/spec/syncPolicy/syncOptions/0"},
        {"op": "replace", "path": "/spec/source/targetRevision", "value": "v2.0.0"},
    ]
    r = admin.patch(f"/api/v1/applications/{name}", {"patch": json.dumps(ops), "patchType": "json"})
    assert r.status_code == 200, r.text
    app = r.json()
    assert app["spec"]["syncPolicy"]["syncOptions"] == ["A=1", "B=2"]
    assert app["metadata"]["labels"] == {"team": "test", "stage": "dev"}
    assert app["spec"]["source"]["targetRevision"] == "v2.0.0"


def test_http_level_errors(sim, admin):
    r = requests.post(
        sim.url + "/api/v1/applications", data="{}", headers={"Authorization": admin.s.headers["Authorization"]}
    )
    assert (
        r.status_code == 415
        and r.text == "Invalid content type\n"
        and r.headers["Content-Type"].startswith("text/plain")
    )
    r = requests.delete(sim.url + "/api/v1/session")
    assert r.status_code == 415
    r = admin.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.text == "Not Found\n" and r.headers["Content-Type"].startswith("text/plain")
    r = admin.req("PATCH", "/api/v1/projects", json={})
    assert r.status_code == 405
    r = admin.post("/api/v1/applications", data=b"{broken", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == 3


def test_rollback_without_id_is_internal_error(admin):
    name = admin.get("/api/v1/applications").json()["items"][0]["metadata"]["name"]
    r = admin.post(f"/api/v1/applications/{name}/rollback", {"dryRun": True})
    assert r.status_code == 500 and r.json()["code"] == 13


def test_project_validation(admin):
    bad = {
        "metadata": {"name": unique("badproj")},
        "spec": {"roles": [{"name": "r", "policies": ["p, someone, applications, get, x/*, allow"]}]},
    }
    r = admin.post("/api/v1/projects", {"project": bad})
    assert r.status_code == 400 and "policy subject must be" in r.json()["message"]
    r = admin.post("/api/v1/projects", {"project": {"metadata": {"name": "default"}, "spec": {"description": "x"}}})
    assert r.status_code == 400 and "use upsert flag" in r.json()["message"]
    r = admin.delete("/api/v1/projects/default")
    assert r.status_code == 400 and r.json()["message"] == "name 'default' is reserved and cannot be deleted"


def test_clusters_and_repos_round_trip(admin):
    from .helpers import enc

    server = "https://val-cluster.example.com:6443"
    assert admin.post("/api/v1/clusters", {"server": server, "name": "val-c", "namespaces": ["a"]}).status_code == 200
    r = admin.post("/api/v1/clusters", {"server": server, "name": "val-c", "namespaces": ["b"]})
    assert r.status_code == 400 and "upsert" in r.json()["message"]
    r = admin.put(
        f"/api/v1/clusters/{enc(server)}",
        {"name": "renamed", "namespaces": ["z"]},
        params={"updatedFields": ["namespaces", "labels"]},
    )
    assert r.json()["name"] == "val-c" and r.json()["namespaces"] == ["z"]
    assert admin.get("/api/v1/clusters/val-c", params={"id.type": "name"}).json()["server"] == server
    assert [c["name"] for c in admin.get("/api/v1/clusters", params={"name": "val-c"}).json()["items"]] == ["val-c"]
    assert admin.delete(f"/api/v1/clusters/{enc(server)}").status_code == 200
    assert admin.get(f"/api/v1/clusters/{enc(server)}").status_code == 403

    repo = "https://github.com/acme/val+plus.git"
    assert admin.post("/api/v1/repositories", {"repo": repo}).status_code == 200
    assert admin.get(f"/api/v1/repositories/{enc(repo)}").json()["repo"] == repo
    assert admin.get(f"/api/v1/repositories/{enc('https://github.com/acme/none.git')}").status_code == 404
    refs = admin.get(f"/api/v1/repositories/{enc(repo)}/refs").json()
    assert "main" in refs["branches"]
