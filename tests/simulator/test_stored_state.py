"""What create-with-upsert, update, patch and delete leave in stored state, field by field, as in Argo CD."""

from __future__ import annotations

import base64
import copy

from .helpers import enc, login, new_app_body, self_signed_pem, unique


def _project(name: str, **meta) -> dict:
    return {
        "metadata": {"name": name, **meta},
        "spec": {
            "description": "first",
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "roles": [{"name": "ci", "policies": [f"p, proj:{name}:ci, applications, get, {name}/*, allow"]}],
        },
    }


def test_project_upsert_writes_only_the_spec(admin):
    name = unique("st-proj")
    body = _project(name, labels={"team": "a"}, annotations={"note": "kept"})
    assert admin.post("/api/v1/projects", {"project": body}).status_code == 200
    changed = copy.deepcopy(body)
    changed["metadata"] = {"name": name, "labels": {"other": "b"}}
    changed["spec"]["description"] = "second"
    r = admin.post("/api/v1/projects", {"project": changed})
    assert r.status_code == 400 and "use upsert flag" in r.json()["message"]
    r = admin.post("/api/v1/projects", {"project": changed, "upsert": True})
    assert r.status_code == 200, r.text
    got = admin.get(f"/api/v1/projects/{name}").json()
    assert got["spec"]["description"] == "second"
    assert got["metadata"]["labels"] == {"team": "a"}
    assert got["metadata"]["annotations"] == {"note": "kept"}


def test_project_update_is_checked_against_resource_version(admin):
    name = unique("st-rv")
    assert admin.post("/api/v1/projects", {"project": _project(name, labels={"team": "a"})}).status_code == 200
    stored = admin.get(f"/api/v1/projects/{name}").json()

    no_rv = copy.deepcopy(stored)
    del no_rv["metadata"]["resourceVersion"]
    r = admin.put(f"/api/v1/projects/{name}", {"project": no_rv})
    assert r.status_code == 400 and r.json()["code"] == 3
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in r.json()["message"]

    stale = copy.deepcopy(stored)
    stale["metadata"]["resourceVersion"] = "1"
    r = admin.put(f"/api/v1/projects/{name}", {"project": stale})
    assert r.status_code == 409 and r.json()["code"] == 10
    assert r.json()["message"] == (
        f'Operation cannot be fulfilled on appprojects.argoproj.io "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert admin.get(f"/api/v1/projects/{name}").json()["spec"]["description"] == "first"

    # Labels left out are taken from the stored project; annotations are written as sent.
    current = copy.deepcopy(stored)
    del current["metadata"]["labels"]
    current["metadata"]["annotations"] = {"a": "1"}
    current["spec"]["description"] = "second"
    r = admin.put(f"/api/v1/projects/{name}", {"project": current})
    assert r.status_code == 200, r.text
    got = admin.get(f"/api/v1/projects/{name}").json()
    assert got["spec"]["description"] == "second"
    assert got["metadata"]["labels"] == {"team": "a"} and got["metadata"]["annotations"] == {"a": "1"}
    # The same (now stale) version cannot be written twice.
    assert admin.put(f"/api/v1/projects/{name}", {"project": current}).status_code == 409


def test_project_role_token_edge_cases(admin):
    name = unique("st-tok")
    assert admin.post("/api/v1/projects", {"project": _project(name)}).status_code == 200
    assert admin.post(f"/api/v1/projects/{name}/roles/ci/token", {"id": "t1"}).status_code == 200
    r = admin.post(f"/api/v1/projects/{name}/roles/ci/token", {"id": "t1"})
    assert r.status_code == 400 and r.json() == {
        "error": "Token id 't1' has been used. ",
        "code": 3,
        "message": "Token id 't1' has been used. ",
    }
    # Deleting from a role that does not exist is an empty success.
    r = admin.delete(f"/api/v1/projects/{name}/roles/nobody/token/0", params={"id": "t1"})
    assert r.status_code == 200 and r.json() == {}
    r = admin.delete(f"/api/v1/projects/{name}/roles/ci/token/0", params={"id": "t1"})
    assert r.status_code == 200
    assert admin.get(f"/api/v1/projects/{name}").json()["spec"]["roles"][0].get("jwtTokens") is None


def test_cluster_update_without_updated_fields_writes_the_whole_cluster(sim, admin):
    server = f"https://{unique('st-cluster')}.example.com:6443"
    body = {
        "server": server,
        "name": "st-full",
        "namespaces": ["a", "b"],
        "labels": {"env": "prod"},
        "annotations": {"owner": "ops"},
        "config": {"bearerToken": "secret-token", "tlsClientConfig": {"insecure": True}},
    }
    assert admin.post("/api/v1/clusters", body).status_code == 200
    r = admin.put(f"/api/v1/clusters/{enc(server)}", {"server": server, "name": "st-renamed"})
    assert r.status_code == 200, r.text
    got = admin.get(f"/api/v1/clusters/{enc(server)}").json()
    assert got["name"] == "st-renamed"
    assert "namespaces" not in got and "labels" not in got and "annotations" not in got
    stored = sim.state.clusters[server]
    assert "bearerToken" not in stored["config"]

    # With updatedFields only the named fields are written; an emptied name becomes the server URL.
    admin.put(
        f"/api/v1/clusters/{enc(server)}",
        {"server": server, "namespaces": ["z"], "labels": {"x": "y"}},
        params={"updatedFields": ["namespaces"]},
    )
    got = admin.get(f"/api/v1/clusters/{enc(server)}").json()
    assert got["namespaces"] == ["z"] and "labels" not in got and got["name"] == "st-renamed"
    admin.put(f"/api/v1/clusters/{enc(server)}", {"server": server}, params={"updatedFields": ["name"]})
    assert admin.get(f"/api/v1/clusters/{enc(server)}").json()["name"] == server
    # A comma-joined value is one unknown field name: nothing is written.
    admin.put(
        f"/api/v1/clusters/{enc(server)}",
        {"server": server, "name": "nope", "namespaces": ["q"]},
        params={"updatedFields": "name,namespaces"},
    )
    got = admin.get(f"/api/v1/clusters/{enc(server)}").json()
    assert got["name"] == server and got["namespaces"] == ["z"]
    assert admin.delete(f"/api/v1/clusters/{enc(server)}").status_code == 200


def _appset(name: str, **meta) -> dict:
    return {
        "metadata": {"name": name, **meta},
        "spec": {
            "generators": [{"list": {"elements": [{"cluster": "in-cluster"}]}}],
            "template": {
                "metadata": {"name": "{{cluster}}-" + name},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://github.com/acme/addons.git", "path": "x", "targetRevision": "HEAD"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"},
                },
            },
        },
    }


def test_appset_upsert_merges_labels_and_keeps_finalizers(admin):
    name = unique("st-set")
    body = _appset(name, labels={"a": "1"}, annotations={"n": "1"}, finalizers=["keep.example.com/f"])
    assert admin.post("/api/v1/applicationsets", body).status_code == 200
    relabelled = _appset(name, labels={"b": "2"})
    # Same spec, different labels: not identical, so upsert is needed.
    r = admin.post("/api/v1/applicationsets", relabelled)
    assert r.status_code == 400 and "use upsert flag" in r.json()["message"]
    r = admin.post("/api/v1/applicationsets", relabelled, params={"upsert": "true"})
    assert r.status_code == 200, r.text
    meta = admin.get(f"/api/v1/applicationsets/{name}").json()["metadata"]
    assert meta["labels"] == {"a": "1", "b": "2"}
    assert meta["annotations"] == {"n": "1"}
    assert meta["finalizers"] == ["keep.example.com/f"]
    assert admin.delete(f"/api/v1/applicationsets/{name}").status_code == 200


def test_app_upsert_merges_labels_while_update_replaces_them(admin):
    name = unique("st-app")
    body = new_app_body(name)
    body["metadata"]["annotations"] = {"note": "1"}
    assert admin.post("/api/v1/applications", body).status_code == 200
    changed = new_app_body(name, namespace="other")
    changed["metadata"]["labels"] = {"tier": "gold"}
    r = admin.post("/api/v1/applications", changed, params={"upsert": "true"})
    assert r.status_code == 200, r.text
    meta = admin.app(name)["metadata"]
    assert meta["labels"] == {"team": "test", "env": "dev", "tier": "gold"}
    assert meta["annotations"] == {"note": "1"}
    assert admin.app(name)["spec"]["destination"]["namespace"] == "other"
    app = admin.app(name)
    app["metadata"]["labels"] = {"only": "this"}
    del app["metadata"]["annotations"]
    assert admin.put(f"/api/v1/applications/{name}", app).status_code == 200
    meta = admin.app(name)["metadata"]
    assert meta["labels"] == {"only": "this"} and "annotations" not in meta


def test_certificate_conflict_without_upsert_is_a_plain_error(admin):
    host = f"{unique('st-cert')}.example.com"
    first = base64.b64encode(self_signed_pem(host).encode()).decode()
    second = base64.b64encode(self_signed_pem(host).encode()).decode()
    item = {"serverName": host, "certType": "https", "certData": first}
    assert admin.post("/api/v1/certificates", {"items": [item]}).status_code == 200
    r = admin.post("/api/v1/certificates", {"items": [{**item, "certData": second}]})
    assert r.status_code == 500 and r.json()["code"] == 2
    assert r.json()["message"] == f"TLS certificate for server '{host}' already exist and upsert was not specified."
    r = admin.post("/api/v1/certificates", {"items": [{**item, "certData": second}]}, params={"upsert": "true"})
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    r = admin.post("/api/v1/certificates", {"items": [{**item, "certType": "pgp"}]})
    assert r.status_code == 500 and r.json()["message"] == "Unknown certificate type: pgp"
    admin.delete("/api/v1/certificates", params={"hostNamePattern": host})


def test_account_password_and_token_edges(fresh):
    sim = fresh()
    alice = login(sim.url, "alice", "alice-password")
    # The current password is checked first.
    r = alice.put("/api/v1/account/password", {"currentPassword": "wrong", "newPassword": "x"})
    assert r.status_code == 400 and r.json()["message"] == "current password does not match"
    r = alice.put("/api/v1/account/password", {"currentPassword": "alice-password", "newPassword": "x"})
    assert r.status_code == 500 and r.json()["code"] == 2
    assert r.json()["message"] == "new password does not match the following expression: ^.{8,32}$"
    r = alice.put("/api/v1/account/password", {"currentPassword": "alice-password", "newPassword": "alice-pass-2"})
    assert r.status_code == 200 and r.json() == {}
    assert "set-cookie" not in {k.lower() for k in r.headers}
    admin = login(sim.url, "admin", "password")
    r = admin.delete("/api/v1/account/portal/token/nope")
    assert r.status_code == 404 and r.json()["message"] == "token with id 'nope' does not exist"


def test_a_project_update_that_takes_away_what_its_apps_use_is_refused(admin):
    name = unique("st-use")
    assert admin.post("/api/v1/projects", {"project": _project(name)}).status_code == 200
    app = unique("st-use-app")
    assert admin.post("/api/v1/applications", new_app_body(app, project=name)).status_code == 200
    stored = admin.get(f"/api/v1/projects/{name}").json()

    narrowed = copy.deepcopy(stored)
    narrowed["spec"]["sourceRepos"] = ["https://github.com/other/*"]
    narrowed["spec"]["destinations"] = [{"server": "https://elsewhere.example.com", "namespace": "*"}]
    r = admin.put(f"/api/v1/projects/{name}", {"project": narrowed})
    assert r.status_code == 400 and r.json()["message"] == (
        "as a result of project update 1 applications source became invalid and "
        "1 applications destination became invalid"
    )
    assert admin.get(f"/api/v1/projects/{name}").json()["spec"]["sourceRepos"] == ["*"]

    widened = copy.deepcopy(stored)
    widened["spec"]["sourceRepos"] = ["https://github.com/acme/*"]
    assert admin.put(f"/api/v1/projects/{name}", {"project": widened}).status_code == 200
    admin.delete(f"/api/v1/applications/{app}?cascade=false")
