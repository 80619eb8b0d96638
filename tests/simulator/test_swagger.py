"""Every endpoint's success body validates against Argo CD's swagger.json (with Go-encoding quirks applied)."""

from __future__ import annotations

import base64
import json

import pytest

from .helpers import Client, enc, login, new_app_body, pgp_public_key, validate, wait_for

IN_CLUSTER = "https://kubernetes.default.svc"


@pytest.fixture(scope="module")
def env(fresh_module):
    sim = fresh_module
    admin = login(sim.url, "admin", "password")
    portal = Client(sim.url, sim.portal_token())
    apps = admin.get("/api/v1/applications").json()["items"]
    name = next(
        a["metadata"]["name"]
        for a in apps
        if "automated" not in (a["spec"].get("syncPolicy") or {})
        and a["metadata"]["labels"].get("sim/fail-sync") != "true"
    )
    # Run one full sync so operationState/syncResult/history are populated with controller output.
    assert admin.post(f"/api/v1/applications/{name}/sync", {}).status_code == 200
    wait_for(lambda: "operation" not in admin.app(name), what="sync to finish")
    tree = admin.get(f"/api/v1/applications/{name}/resource-tree").json()
    deploy = next(n for n in tree["nodes"] if n["kind"] == "Deployment")
    pod = next(n for n in tree["nodes"] if n["kind"] == "Pod")
    return {"sim": sim, "admin": admin, "portal": portal, "app": name, "deploy": deploy, "pod": pod}


@pytest.fixture(scope="module")
def fresh_module():
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-swagger", apps=12, projects=3, seed=3, sync_seconds=0.2).start()
    yield server
    server.stop()


def res_query(node: dict) -> dict:
    return {
        "namespace": node["namespace"],
        "resourceName": node["name"],
        "kind": node["kind"],
        "group": node.get("group", ""),
        "version": node["version"],
    }


def current(e: dict, kind: str) -> dict:
    tree = e["admin"].get(f"/api/v1/applications/{e['app']}/resource-tree").json()
    return next(n for n in tree["nodes"] if n["kind"] == kind)


def ndjson(resp) -> list[dict]:
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


# (method, swagger path, builder(env) -> (url path, kwargs)); run in order: later cases may delete things.
CASES = [
    ("GET", "/api/version", lambda e: ("/api/version", {})),
    ("GET", "/api/v1/settings", lambda e: ("/api/v1/settings", {})),
    ("GET", "/api/v1/settings/plugins", lambda e: ("/api/v1/settings/plugins", {})),
    ("GET", "/api/v1/session/userinfo", lambda e: ("/api/v1/session/userinfo", {})),
    ("POST", "/api/v1/session", lambda e: ("/api/v1/session", {"json": {"username": "admin", "password": "password"}})),
    ("GET", "/api/v1/account", lambda e: ("/api/v1/account", {})),
    ("GET", "/api/v1/account/{name}", lambda e: ("/api/v1/account/portal", {})),
    (
        "GET",
        "/api/v1/account/can-i/{resource}/{action}/{subresource}",
        lambda e: ("/api/v1/account/can-i/applications/sync/*", {}),
    ),
    (
        "POST",
        "/api/v1/account/{name}/token",
        lambda e: ("/api/v1/account/portal/token", {"json": {"id": "swagger-tok", "expiresIn": 3600}}),
    ),
    ("DELETE", "/api/v1/account/{name}/token/{id}", lambda e: ("/api/v1/account/portal/token/swagger-tok", {})),
    ("GET", "/api/v1/applications", lambda e: ("/api/v1/applications", {})),
    (
        "GET",
        "/api/v1/applications",
        lambda e: ("/api/v1/applications", {"params": {"fields": "items.metadata.name,items.status.sync.status"}}),
    ),
    (
        "GET",
        "/api/v1/applications/{name}",
        lambda e: (f"/api/v1/applications/{e['app']}", {"params": {"refresh": "normal"}}),
    ),
    ("POST", "/api/v1/applications", lambda e: ("/api/v1/applications", {"json": new_app_body("swagger-app")})),
    (
        "PUT",
        "/api/v1/applications/{application.metadata.name}",
        lambda e: ("/api/v1/applications/swagger-app", {"json": new_app_body("swagger-app", namespace="other")}),
    ),
    (
        "PUT",
        "/api/v1/applications/{name}/spec",
        lambda e: (
            "/api/v1/applications/swagger-app/spec",
            {"json": new_app_body("swagger-app", namespace="third")["spec"]},
        ),
    ),
    (
        "PATCH",
        "/api/v1/applications/{name}",
        lambda e: (
            "/api/v1/applications/swagger-app",
            {
                "json": {
                    "patch": json.dumps([{"op": "replace", "path": "/spec/source/targetRevision", "value": "main"}]),
                    "patchType": "json",
                }
            },
        ),
    ),
    (
        "POST",
        "/api/v1/applications/{name}/sync",
        lambda e: (
            "/api/v1/applications/swagger-app/sync",
            {"json": {"infos": [{"name": "reason", "value": "swagger"}]}},
        ),
    ),
    (
        "GET",
        "/api/v1/applications/{applicationName}/resource-tree",
        lambda e: (f"/api/v1/applications/{e['app']}/resource-tree", {}),
    ),
    (
        "GET",
        "/api/v1/applications/{applicationName}/managed-resources",
        lambda e: (f"/api/v1/applications/{e['app']}/managed-resources", {}),
    ),
    (
        "GET",
        "/api/v1/applications/{appName}/server-side-diff",
        lambda e: (f"/api/v1/applications/{e['app']}/server-side-diff", {}),
    ),
    ("GET", "/api/v1/applications/{name}/events", lambda e: (f"/api/v1/applications/{e['app']}/events", {})),
    (
        "GET",
        "/api/v1/applications/{name}/events",
        lambda e: (
            f"/api/v1/applications/{e['app']}/events",
            {
                "params": {
                    "resourceName": e["pod"]["name"],
                    "resourceNamespace": e["pod"]["namespace"],
                    "resourceUID": e["pod"]["uid"],
                }
            },
        ),
    ),
    (
        "GET",
        "/api/v1/applications/{name}/revisions/{revision}/metadata",
        lambda e: (f"/api/v1/applications/{e['app']}/revisions/{'a' * 40}/metadata", {}),
    ),
    (
        "GET",
        "/api/v1/applications/{name}/revisions/{revision}/chartdetails",
        lambda e: (f"/api/v1/applications/{e['app']}/revisions/1.0.0/chartdetails", {}),
    ),
    ("GET", "/api/v1/applications/{name}/syncwindows", lambda e: (f"/api/v1/applications/{e['app']}/syncwindows", {})),
    ("GET", "/api/v1/applications/{name}/links", lambda e: (f"/api/v1/applications/{e['app']}/links", {})),
    ("GET", "/api/v1/applications/{name}/manifests", lambda e: (f"/api/v1/applications/{e['app']}/manifests", {})),
    (
        "GET",
        "/api/v1/applications/{name}/resource",
        lambda e: (f"/api/v1/applications/{e['app']}/resource", {"params": res_query(e["deploy"])}),
    ),
    (
        "GET",
        "/api/v1/applications/{name}/logs",
        lambda e: (f"/api/v1/applications/{e['app']}/logs", {"params": {"tailLines": "3"}}),
    ),
    (
        "GET",
        "/api/v1/applications/{name}/pods/{podName}/logs",
        lambda e: (f"/api/v1/applications/{e['app']}/pods/{e['pod']['name']}/logs", {"params": {"tailLines": "2"}}),
    ),
    (
        "GET",
        "/api/v1/applications/{name}/resource/actions",
        lambda e: (f"/api/v1/applications/{e['app']}/resource/actions", {"params": res_query(e["deploy"])}),
    ),
    (
        "POST",
        "/api/v1/applications/{name}/resource/actions",
        lambda e: (
            f"/api/v1/applications/{e['app']}/resource/actions",
            {"params": res_query(e["deploy"]), "json": "restart"},
        ),
    ),
    (
        "POST",
        "/api/v1/applications/{name}/resource/actions/v2",
        lambda e: (
            f"/api/v1/applications/{e['app']}/resource/actions/v2",
            {
                "json": {
                    **res_query(e["deploy"]),
                    "action": "scale",
                    "resourceActionParameters": [{"name": "replicas", "value": "2"}],
                }
            },
        ),
    ),
    (
        "POST",
        "/api/v1/applications/{name}/resource",
        lambda e: (
            f"/api/v1/applications/{e['app']}/resource",
            {
                "params": {**res_query(e["deploy"]), "patchType": "application/merge-patch+json"},
                "json": json.dumps({"metadata": {"annotations": {"x": "y"}}}),
            },
        ),
    ),
    (
        "DELETE",
        "/api/v1/applications/{name}/resource",
        lambda e: (f"/api/v1/applications/{e['app']}/resource", {"params": res_query(current(e, "Pod"))}),
    ),
    (
        "POST",
        "/api/v1/applications/{name}/rollback",
        lambda e: (
            f"/api/v1/applications/{e['app']}/rollback",
            {"json": {"id": e["sim"].state.get_app_json(e["app"])["status"]["history"][0]["id"], "dryRun": True}},
        ),
    ),
    (
        "DELETE",
        "/api/v1/applications/{name}/operation",
        lambda e: (f"/api/v1/applications/{e['app']}/operation", {"_wait_running": True}),
    ),
    (
        "DELETE",
        "/api/v1/applications/{name}",
        lambda e: ("/api/v1/applications/swagger-app", {"params": {"cascade": "false"}}),
    ),
    ("GET", "/api/v1/applicationsets", lambda e: ("/api/v1/applicationsets", {})),
    ("POST", "/api/v1/applicationsets", lambda e: ("/api/v1/applicationsets", {"json": APPSET})),
    ("GET", "/api/v1/applicationsets/{name}", lambda e: ("/api/v1/applicationsets/swagger-set", {})),
    (
        "POST",
        "/api/v1/applicationsets/generate",
        lambda e: ("/api/v1/applicationsets/generate", {"json": {"applicationSet": APPSET}}),
    ),
    ("GET", "/api/v1/applicationsets/{name}/events", lambda e: ("/api/v1/applicationsets/swagger-set/events", {})),
    (
        "GET",
        "/api/v1/applicationsets/{name}/resource-tree",
        lambda e: ("/api/v1/applicationsets/swagger-set/resource-tree", {}),
    ),
    ("DELETE", "/api/v1/applicationsets/{name}", lambda e: ("/api/v1/applicationsets/swagger-set", {})),
    ("GET", "/api/v1/projects", lambda e: ("/api/v1/projects", {})),
    ("POST", "/api/v1/projects", lambda e: ("/api/v1/projects", {"json": {"project": PROJECT, "upsert": True}})),
    ("GET", "/api/v1/projects/{name}", lambda e: ("/api/v1/projects/swagger-proj", {})),
    (
        "PUT",
        "/api/v1/projects/{project.metadata.name}",
        lambda e: (
            "/api/v1/projects/swagger-proj",
            {"json": {"project": _changed_project(e)}},
        ),
    ),
    ("GET", "/api/v1/projects/{name}/detailed", lambda e: ("/api/v1/projects/swagger-proj/detailed", {})),
    ("GET", "/api/v1/projects/{name}/globalprojects", lambda e: ("/api/v1/projects/swagger-proj/globalprojects", {})),
    ("GET", "/api/v1/projects/{name}/syncwindows", lambda e: ("/api/v1/projects/swagger-proj/syncwindows", {})),
    ("GET", "/api/v1/projects/{name}/events", lambda e: ("/api/v1/projects/swagger-proj/events", {})),
    ("GET", "/api/v1/projects/{name}/links", lambda e: ("/api/v1/projects/swagger-proj/links", {})),
    (
        "POST",
        "/api/v1/projects/{project}/roles/{role}/token",
        lambda e: ("/api/v1/projects/swagger-proj/roles/ci/token", {"json": {"id": "t1", "expiresIn": 600}}),
    ),
    (
        "DELETE",
        "/api/v1/projects/{project}/roles/{role}/token/{iat}",
        lambda e: ("/api/v1/projects/swagger-proj/roles/ci/token/0", {"params": {"id": "t1"}}),
    ),
    ("DELETE", "/api/v1/projects/{name}", lambda e: ("/api/v1/projects/swagger-proj", {})),
    ("GET", "/api/v1/repositories", lambda e: ("/api/v1/repositories", {})),
    (
        "POST",
        "/api/v1/repositories",
        lambda e: (
            "/api/v1/repositories",
            {"json": {"repo": "https://github.com/acme/swagger.git", "username": "u", "password": "p"}},
        ),
    ),
    (
        "GET",
        "/api/v1/repositories/{repo}",
        lambda e: (f"/api/v1/repositories/{enc('https://github.com/acme/swagger.git')}", {}),
    ),
    (
        "PUT",
        "/api/v1/repositories/{repo.repo}",
        lambda e: (
            f"/api/v1/repositories/{enc('https://github.com/acme/swagger.git')}",
            {"json": {"repo": "https://github.com/acme/swagger.git", "name": "sw"}},
        ),
    ),
    (
        "POST",
        "/api/v1/repositories/{repo}/validate",
        lambda e: (f"/api/v1/repositories/{enc('https://github.com/acme/swagger.git')}/validate", {}),
    ),
    (
        "GET",
        "/api/v1/repositories/{repo}/apps",
        lambda e: (f"/api/v1/repositories/{enc('https://github.com/acme/swagger.git')}/apps", {}),
    ),
    (
        "GET",
        "/api/v1/repositories/{repo}/refs",
        lambda e: (f"/api/v1/repositories/{enc('https://github.com/acme/swagger.git')}/refs", {}),
    ),
    (
        "GET",
        "/api/v1/repositories/{repo}/helmcharts",
        lambda e: (f"/api/v1/repositories/{enc('https://charts.example.com/stable')}/helmcharts", {}),
    ),
    (
        "DELETE",
        "/api/v1/repositories/{repo}",
        lambda e: (f"/api/v1/repositories/{enc('https://github.com/acme/swagger.git')}", {}),
    ),
    ("GET", "/api/v1/write-repositories", lambda e: ("/api/v1/write-repositories", {})),
    ("GET", "/api/v1/repocreds", lambda e: ("/api/v1/repocreds", {})),
    (
        "POST",
        "/api/v1/repocreds",
        lambda e: (
            "/api/v1/repocreds",
            {"json": {"url": "https://github.com/swag/", "username": "u", "password": "p"}},
        ),
    ),
    (
        "PUT",
        "/api/v1/repocreds/{creds.url}",
        lambda e: (f"/api/v1/repocreds/{enc('https://github.com/swag/')}", {"json": {"username": "v"}}),
    ),
    ("DELETE", "/api/v1/repocreds/{url}", lambda e: (f"/api/v1/repocreds/{enc('https://github.com/swag/')}", {})),
    ("GET", "/api/v1/clusters", lambda e: ("/api/v1/clusters", {})),
    (
        "POST",
        "/api/v1/clusters",
        lambda e: (
            "/api/v1/clusters",
            {
                "json": {
                    "server": "https://swagger.example.com:6443",
                    "name": "swagger",
                    "config": {"bearerToken": "secret"},
                }
            },
        ),
    ),
    ("GET", "/api/v1/clusters/{id.value}", lambda e: (f"/api/v1/clusters/{enc(IN_CLUSTER)}", {})),
    ("GET", "/api/v1/clusters/{id.value}", lambda e: ("/api/v1/clusters/swagger", {"params": {"id.type": "name"}})),
    (
        "PUT",
        "/api/v1/clusters/{id.value}",
        lambda e: (
            f"/api/v1/clusters/{enc('https://swagger.example.com:6443')}",
            {"params": {"updatedFields": "labels"}, "json": {"labels": {"env": "x"}}},
        ),
    ),
    (
        "POST",
        "/api/v1/clusters/{id.value}/rotate-auth",
        lambda e: (f"/api/v1/clusters/{enc('https://swagger.example.com:6443')}/rotate-auth", {}),
    ),
    (
        "POST",
        "/api/v1/clusters/{id.value}/invalidate-cache",
        lambda e: (f"/api/v1/clusters/{enc('https://swagger.example.com:6443')}/invalidate-cache", {}),
    ),
    (
        "DELETE",
        "/api/v1/clusters/{id.value}",
        lambda e: (f"/api/v1/clusters/{enc('https://swagger.example.com:6443')}", {}),
    ),
    ("GET", "/api/v1/certificates", lambda e: ("/api/v1/certificates", {"params": {"certType": "ssh"}})),
    (
        "POST",
        "/api/v1/certificates",
        lambda e: (
            "/api/v1/certificates",
            {
                "json": {
                    "items": [
                        {
                            "serverName": "swagger.example.com",
                            "certType": "ssh",
                            "certSubType": "ssh-ed25519",
                            "certData": base64.b64encode(
                                b"AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
                            ).decode(),
                        }
                    ]
                }
            },
        ),
    ),
    (
        "DELETE",
        "/api/v1/certificates",
        lambda e: (
            "/api/v1/certificates",
            {"params": {"hostNamePattern": "swagger.example.com", "certType": "ssh", "certSubType": "ssh-ed25519"}},
        ),
    ),
    ("GET", "/api/v1/gpgkeys", lambda e: ("/api/v1/gpgkeys", {})),
    ("GET", "/api/v1/gpgkeys/{keyID}", lambda e: ("/api/v1/gpgkeys/994FCCE12C8A7203", {})),
    (
        "POST",
        "/api/v1/gpgkeys",
        lambda e: (
            "/api/v1/gpgkeys",
            {"json": {"keyData": pgp_public_key("swagger")}},
        ),
    ),
    ("DELETE", "/api/v1/gpgkeys", lambda e: ("/api/v1/gpgkeys", {"params": {"keyID": "994FCCE12C8A7203"}})),
    ("GET", "/api/v1/notifications/services", lambda e: ("/api/v1/notifications/services", {})),
    ("GET", "/api/v1/notifications/templates", lambda e: ("/api/v1/notifications/templates", {})),
    ("GET", "/api/v1/notifications/triggers", lambda e: ("/api/v1/notifications/triggers", {})),
    (
        "PUT",
        "/api/v1/account/password",
        lambda e: (
            "/api/v1/account/password",
            {"json": {"name": "alice", "currentPassword": "password", "newPassword": "alice-password-2"}},
        ),
    ),
    ("DELETE", "/api/v1/session", lambda e: ("/api/v1/session", {})),
]

APPSET = {
    "metadata": {"name": "swagger-set"},
    "spec": {
        "goTemplate": True,
        "generators": [{"list": {"elements": [{"cluster": "in-cluster", "url": IN_CLUSTER}]}}],
        "template": {
            "metadata": {"name": "{{.cluster}}-guestbook"},
            "spec": {
                "project": "default",
                "source": {"repoURL": "https://github.com/acme/x.git", "path": "guestbook", "targetRevision": "HEAD"},
                "destination": {"server": "{{.url}}", "namespace": "guestbook"},
            },
        },
    },
}
PROJECT = {
    "metadata": {"name": "swagger-proj"},
    "spec": {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "roles": [{"name": "ci", "policies": ["p, proj:swagger-proj:ci, applications, get, swagger-proj/*, allow"]}],
        "syncWindows": [{"kind": "allow", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}],
    },
}


def _changed_project(e: dict) -> dict:
    # A project update carries the resourceVersion it was read at.
    project = e["admin"].get("/api/v1/projects/swagger-proj").json()
    project["spec"]["description"] = "changed"
    return project


def test_every_endpoint_body_matches_swagger(env):
    admin: Client = env["admin"]
    covered = set()
    for method, swagger_path, build in CASES:
        path, kw = build(env)
        if kw.pop("_wait_running", False):
            admin.post(f"/api/v1/applications/{env['app']}/sync", {})
            wait_for(
                lambda: (admin.app(env["app"])["status"].get("operationState") or {}).get("phase") == "Running",
                what="operation running",
            )
        if method == "DELETE":
            kw.setdefault("headers", {"Content-Type": "application/json"})
        elif method != "GET" and "json" not in kw:
            kw["json"] = {}
        resp = admin.req(method, path, **kw)
        assert resp.status_code == 200, f"{method} {path}: {resp.status_code} {resp.text[:300]}"
        if swagger_path.endswith("/logs"):
            frames = ndjson(resp)
            assert frames and frames[-1]["result"]["last"] is True
            for frame in frames:
                validate(method, swagger_path, frame)
        else:
            validate(method, swagger_path, resp.json())
        covered.add((method, swagger_path))
    # Streams are validated frame by frame.
    with admin.get("/api/v1/stream/applications", params={"name": env["app"]}, stream=True) as resp:
        line = next(resp.iter_lines())
        validate("GET", "/api/v1/stream/applications", json.loads(line))
    covered.add(("GET", "/api/v1/stream/applications"))
    with admin.get(f"/api/v1/stream/applications/{env['app']}/resource-tree", stream=True) as resp:
        line = next(resp.iter_lines())
        validate("GET", "/api/v1/stream/applications/{applicationName}/resource-tree", json.loads(line))
    with admin.get("/api/v1/stream/applicationsets", stream=True) as resp:
        line = next(resp.iter_lines())
        validate("GET", "/api/v1/stream/applicationsets", json.loads(line))
    assert len(covered) >= 80


def test_error_bodies_match_runtime_error(env):
    admin = Client(env["sim"].url, env["sim"].portal_token())
    r = admin.get("/api/v1/applications/does-not-exist")
    assert r.status_code == 403
    assert r.json() == {"error": "permission denied", "code": 7, "message": "permission denied"}
    from .helpers import validate_def

    validate_def("runtimeError", r.json())
    r = admin.get("/api/v1/applications/does-not-exist/logs")
    assert r.status_code == 403
    validate_def("runtimeStreamError", r.json()["error"])
    assert r.json()["error"] == {
        "grpc_code": 7,
        "http_code": 403,
        "message": "permission denied",
        "http_status": "Forbidden",
    }


def test_secrets_are_never_returned(env):
    admin = Client(env["sim"].url, env["sim"].portal_token())
    admin.post(
        "/api/v1/repositories",
        {
            "repo": "https://github.com/acme/secret.git",
            "password": "hunter2",
            "sshPrivateKey": "KEY",
            "tlsClientCertKey": "TLSKEY",
        },
    )
    admin.post(
        "/api/v1/clusters",
        {
            "server": "https://secret.example.com",
            "name": "secret",
            "config": {
                "bearerToken": "tok",
                "password": "pw",
                "tlsClientConfig": {"keyData": "S0VZ", "caData": "Q0E="},
            },
        },
    )
    text = (
        admin.get("/api/v1/repositories").text
        + admin.get("/api/v1/clusters").text
        + admin.get("/api/v1/repocreds").text
    )
    for secret in ("hunter2", 'KEY"', "TLSKEY", '"tok"', '"pw"', "S0VZ", "s3cret", "sim-bearer"):
        assert secret not in text
    assert "Q0E=" in text  # CA data is public
