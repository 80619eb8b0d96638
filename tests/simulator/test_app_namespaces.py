"""Applications in any namespace: `application.namespaces`, `appNamespace` and projects' `sourceNamespaces`."""

from __future__ import annotations

import pytest

from .helpers import Client, login, new_app_body, wait_for

POLICY = "p, bob, applications, *, ns-proj/team-a/*, allow\ng, bob, role:none\n"


@pytest.fixture(scope="module")
def anyns():
    """One simulator with `application.namespaces: team-*, /^ops-[0-9]+$/` and two same-named apps."""
    from apps.simulator.server import SimServer

    server = SimServer(
        port=0,
        name="sim-anyns",
        apps=4,
        projects=2,
        sync_seconds=0.2,
        policy_csv=POLICY,
        app_namespaces=("team-*", "/^ops-[0-9]+$/"),
    ).start()
    admin = login(server.url, "admin", "password")
    with server.state.lock:
        server.state.accounts["bob"] = type(server.state.accounts["alice"])("bob", "bob-password", ["login"])
    project = {
        "metadata": {"name": "ns-proj"},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "sourceNamespaces": ["team-a", "team-b", "ops-*"],
        },
    }
    assert admin.post("/api/v1/projects", {"project": project}).status_code == 200
    for ns in ("team-a", "team-b"):
        body = new_app_body("web", project="ns-proj")
        body["metadata"]["namespace"] = ns
        r = admin.post("/api/v1/applications", body)
        assert r.status_code == 200, r.text
    yield server, admin
    server.stop()


def test_two_apps_with_one_name_in_two_namespaces_are_distinct(anyns):
    server, admin = anyns
    a = admin.get("/api/v1/applications/web", params={"appNamespace": "team-a"}).json()
    b = admin.get("/api/v1/applications/web", params={"appNamespace": "team-b"}).json()
    assert (a["metadata"]["namespace"], b["metadata"]["namespace"]) == ("team-a", "team-b")
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert a["status"]["controllerNamespace"] == "argocd"
    # Without appNamespace the control plane's namespace is meant, where there is no "web".
    assert admin.get("/api/v1/applications/web").status_code == 403
    listed = admin.get("/api/v1/applications", params={"name": "web"}).json()["items"]
    assert sorted(i["metadata"]["namespace"] for i in listed) == ["team-a", "team-b"]
    only_b = admin.get("/api/v1/applications", params={"appNamespace": "team-b"}).json()["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in only_b] == [("team-b", "web")]
    assert admin.get("/api/v1/settings").json()["appsInAnyNamespaceEnabled"] is True


def test_sync_and_delete_address_the_app_of_the_given_namespace(anyns):
    server, admin = anyns
    r = admin.post("/api/v1/applications/web/sync", {"appNamespace": "team-b"})
    assert r.status_code == 200, r.text
    wait_for(
        lambda: (
            (server.state.get_app_json("web", "team-b")["status"].get("operationState") or {}).get("phase")
            == "Succeeded"
        ),
        what="team-b/web synced",
    )
    assert "operationState" not in server.state.get_app_json("web", "team-a")["status"]
    tree = admin.get("/api/v1/applications/web/resource-tree", params={"appNamespace": "team-b"})
    assert tree.status_code == 200 and tree.json()["nodes"]
    events = admin.get("/api/v1/applications/web/events", params={"appNamespace": "team-b"})
    assert events.status_code == 200


def test_rbac_objects_of_apps_outside_the_control_plane_carry_the_namespace(anyns):
    server, _ = anyns
    bob = login(server.url, "bob", "bob-password")
    assert bob.get("/api/v1/applications/web", params={"appNamespace": "team-a"}).status_code == 200
    assert bob.get("/api/v1/applications/web", params={"appNamespace": "team-b"}).status_code == 403
    r = bob.get("/api/v1/applications/web", params={"appNamespace": "team-b", "project": "ns-proj"})
    assert r.status_code == 403  # the given project/namespace/name is checked first
    listed = bob.get("/api/v1/applications").json()["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed] == [("team-a", "web")]
    assert bob.post("/api/v1/applications/web/sync", {"appNamespace": "team-b"}).status_code == 403


def test_a_namespace_not_enabled_is_refused(anyns):
    server, admin = anyns
    body = new_app_body("stray", project="ns-proj")
    body["metadata"]["namespace"] = "ops-x"  # allowed by the project's ops-*, not by /^ops-[0-9]+$/
    r = admin.post("/api/v1/applications", body)
    assert (r.status_code, r.json()["code"]) == (500, 2)
    assert r.json()["message"] == "namespace 'ops-x' is not permitted"
    body["metadata"]["namespace"] = "ops-12"
    assert admin.post("/api/v1/applications", body).status_code == 200
    # An app in a namespace no longer enabled is neither listed nor readable.
    with server.state.lock:
        server.state.app_namespaces = ["team-*"]
    try:
        names = [i["metadata"]["name"] for i in admin.get("/api/v1/applications").json()["items"]]
        assert "stray" not in names and "web" in names
        assert admin.get("/api/v1/applications/stray", params={"appNamespace": "ops-12"}).status_code == 403
    finally:
        with server.state.lock:
            server.state.app_namespaces = ["team-*", "/^ops-[0-9]+$/"]


def test_a_project_without_the_namespace_in_source_namespaces_is_refused(anyns):
    server, admin = anyns
    body = new_app_body("web", project="default")
    body["metadata"]["namespace"] = "team-a"
    r = admin.post("/api/v1/applications", body)
    assert r.status_code == 400
    assert r.json()["message"] == 'app is not allowed in project "default", or the project does not exist'
    # Narrowing the project's sourceNamespaces makes its existing app there unreachable (getAppProject).
    proj = admin.get("/api/v1/projects/ns-proj").json()
    proj["spec"]["sourceNamespaces"] = ["team-a", "ops-*"]
    assert admin.put("/api/v1/projects/ns-proj", {"project": proj}).status_code == 200
    try:
        r = admin.get("/api/v1/applications/web", params={"appNamespace": "team-b"})
        assert r.status_code == 400 and 'app is not allowed in project "ns-proj"' in r.json()["message"]
        assert admin.get("/api/v1/applications/web", params={"appNamespace": "team-a"}).status_code == 200
    finally:
        proj = admin.get("/api/v1/projects/ns-proj").json()
        proj["spec"]["sourceNamespaces"] = ["team-a", "team-b", "ops-*"]
        assert admin.put("/api/v1/projects/ns-proj", {"project": proj}).status_code == 200


def test_without_application_namespaces_only_the_control_plane_namespace_is_served(fresh):
    server = fresh(apps=2)
    admin = Client(server.url, server.login_token())
    body = new_app_body("elsewhere")
    body["metadata"]["namespace"] = "team-a"
    r = admin.post("/api/v1/applications", body)
    assert r.status_code == 400  # the default project has no sourceNamespaces
    assert admin.get("/api/v1/settings").json()["appsInAnyNamespaceEnabled"] is False
