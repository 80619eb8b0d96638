"""Authentication (sessions, API keys, project tokens) and RBAC decisions, table-driven."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from apps.simulator import jwt as simjwt
from apps.simulator.rbac import Enforcer, glob_match

from .helpers import Client, login, new_app_body, unique


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_login_returns_jwt_and_cookie(sim):
    r = requests.post(sim.url + "/api/v1/session", json={"username": "admin", "password": "password"})
    assert r.status_code == 200
    token = r.json()["token"]
    claims = claims_of(token)
    assert claims["iss"] == "argocd" and claims["sub"] == "admin:login"
    assert claims["nbf"] == claims["iat"] and claims["exp"] == claims["iat"] + 86400 and claims["jti"]
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "HS256"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"argocd.token={token};") and "httpOnly" in cookie and "SameSite=lax" in cookie
    # The cookie alone authenticates.
    r2 = requests.get(sim.url + "/api/v1/session/userinfo", cookies={"argocd.token": token})
    assert r2.json() == {"loggedIn": True, "username": "admin", "iss": "argocd"}
    assert requests.get(sim.url + "/api/v1/applications", cookies={"argocd.token": token}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "admin", "password": "wrong"}, "Invalid username or password"),
        ({"username": "nobody", "password": "x"}, "Invalid username or password"),
        ({"username": "admin"}, "no credentials supplied"),
        ({"token": "abc"}, "token-based session creation no longer supported. please upgrade argocd cli to v0.7+"),
    ],
)
def test_bad_logins(sim, body, message):
    r = requests.post(sim.url + "/api/v1/session", json=body)
    assert r.status_code == 401
    assert r.json() == {"error": message, "code": 16, "message": message}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no session information"),
        ({"Authorization": "Bearer not-a-jwt"}, "no session information"),
        ({"Authorization": "Bearer a.b.c"}, "invalid session: token is malformed: could not base64 decode"),
    ],
)
def test_unauthenticated(sim, headers, message):
    r = requests.get(sim.url + "/api/v1/applications", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == 16
    assert r.json()["message"].startswith(message.split(":")[0])


def test_expired_and_forged_tokens(sim):
    now = int(time.time())
    expired = simjwt.encode(
        {"iss": "argocd", "sub": "admin:login", "exp": now - 10, "nbf": now - 100, "iat": now - 100, "jti": "x"},
        sim.state.secret_key,
    )
    r = requests.get(sim.url + "/api/v1/applications", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert r.json()["message"] == "invalid session: token has invalid claims: token is expired"
    forged = simjwt.encode(
        {"iss": "argocd", "sub": "admin:login", "iat": now, "jti": "y"}, b"another-32-byte-signing-key-here"
    )
    assert (
        requests.get(sim.url + "/api/v1/applications", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )


def test_logout_clears_the_cookie_but_leaves_the_token_valid_as_argocd_does(sim):
    c = login(sim.url, "admin", "password")
    assert c.get("/api/v1/account").status_code == 200
    r = c.delete("/api/v1/session")
    assert r.json() == {"token": ""}
    assert "argocd.token=;" in r.headers["Set-Cookie"] and "Max-Age=0" in r.headers["Set-Cookie"]
    assert c.get("/api/v1/account").status_code == 200, "only the web /auth/logout flow revokes a token"


def test_unauthenticated_endpoints(anon):
    assert anon.get("/api/version").json() == {"Version": "v3.1.0+03c4ad8"}
    assert anon.get("/api/v1/session/userinfo").json() == {"loggedIn": False}
    settings = anon.get("/api/v1/settings").json()
    assert "url" in settings and "passwordPattern" not in settings
    assert anon.get("/api/v1/settings/plugins").status_code == 401


def test_version_authenticated_has_build_fields(admin):
    body = admin.get("/api/version").json()
    assert {"Version", "BuildDate", "GitCommit", "GoVersion", "Platform", "HelmVersion", "KubectlVersion"} <= set(body)


def test_account_api_keys(sim, admin):
    r = admin.post("/api/v1/account/admin/token", {})
    assert r.status_code == 500
    assert r.json()["message"].endswith("account 'admin' does not have apiKey capability")

    tid = unique("key")
    r = admin.post("/api/v1/account/portal/token", {"id": tid, "expiresIn": 3600})
    assert r.status_code == 200
    token = r.json()["token"]
    claims = claims_of(token)
    assert claims["sub"] == "portal:apiKey" and claims["jti"] == tid and claims["exp"] == claims["iat"] + 3600
    key = Client(sim.url, token)
    assert key.get("/api/v1/applications").status_code == 200
    listed = {t["id"]: t for t in admin.get("/api/v1/account/portal").json()["tokens"]}
    assert listed[tid]["issuedAt"] == claims["iat"] and listed[tid]["expiresAt"] == claims["exp"]
    assert admin.delete(f"/api/v1/account/portal/token/{tid}").json() == {}
    r = key.get("/api/v1/applications")
    assert r.status_code == 401 and r.json()["message"].startswith("invalid session")
    assert admin.delete(f"/api/v1/account/portal/token/{tid}").status_code == 404


def test_portal_token_helper(sim, portal):
    assert claims_of(sim.portal_token())["sub"] == "portal:apiKey"
    assert portal.get("/api/v1/session/userinfo").json()["username"] == "portal"
    assert portal.get("/api/v1/account/can-i/clusters/delete/*").json() == {"value": "yes"}


def test_password_change_invalidates_old_sessions(fresh):
    sim = fresh()
    old = login(sim.url, "alice", "alice-password")
    time.sleep(1.05)  # iat has one-second resolution; the password change must be strictly later
    r = old.put("/api/v1/account/password", {"currentPassword": "alice-password", "newPassword": "alice-new-pass"})
    assert r.status_code == 200, r.text
    assert old.get("/api/v1/applications").status_code == 401
    login(sim.url, "alice", "alice-new-pass")
    r = old.put("/api/v1/account/password", {"currentPassword": "x", "newPassword": "short"})
    assert r.status_code == 401


def test_project_role_tokens(sim, admin):
    proj = unique("tokproj")
    project = {
        "metadata": {"name": proj},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "roles": [
                {
                    "name": "ci",
                    "policies": [
                        f"p, proj:{proj}:ci, applications, sync, {proj}/*, allow",
                        f"p, proj:{proj}:ci, applications, get, {proj}/*, allow",
                    ],
                }
            ],
        },
    }
    assert admin.post("/api/v1/projects", {"project": project}).status_code == 200
    app = unique("tokapp")
    assert admin.post("/api/v1/applications", new_app_body(app, project=proj)).status_code == 200
    r = admin.post(f"/api/v1/projects/{proj}/roles/ci/token", {"id": "ci-1", "expiresIn": 600})
    assert r.status_code == 200
    token = r.json()["token"]
    claims = claims_of(token)
    assert claims["sub"] == f"proj:{proj}:ci" and claims["jti"] == "ci-1"
    ci = Client(sim.url, token)
    names = [a["metadata"]["name"] for a in ci.get("/api/v1/applications").json()["items"]]
    assert names == [app]
    assert ci.post(f"/api/v1/applications/{app}/sync", {}).status_code == 200
    assert ci.get(f"/api/v1/projects/{proj}").status_code == 200
    assert ci.delete(f"/api/v1/applications/{app}").status_code == 403
    stored = admin.get(f"/api/v1/projects/{proj}").json()
    assert stored["status"]["jwtTokensByRole"]["ci"]["items"][0]["id"] == "ci-1"
    assert stored["spec"]["roles"][0]["jwtTokens"][0]["iat"] == claims["iat"]
    assert (
        admin.delete(f"/api/v1/projects/{proj}/roles/ci/token/{claims['iat']}", params={"id": "ci-1"}).status_code
        == 200
    )
    assert ci.get("/api/v1/applications").status_code == 401


ADMIN_ONLY = [
    ("POST", "/api/v1/projects", {"project": {"metadata": {"name": "rbac-x"}, "spec": {}}}),
    ("POST", "/api/v1/clusters", {"server": "https://rbac.example.com"}),
    ("POST", "/api/v1/repositories", {"repo": "https://github.com/acme/rbac.git"}),
    ("DELETE", "/api/v1/gpgkeys?keyID=994FCCE12C8A7203", None),
    ("POST", "/api/v1/account/portal/token", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_readonly_user_cannot_write(alice, method, path, body):
    r = alice.req(method, path, json=body if body is not None else {})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == 7
    assert r.json()["message"].startswith("permission denied")


@pytest.mark.parametrize(
    ("who", "resource", "action", "obj", "expected"),
    [
        ("admin", "applications", "sync", "*", "no"),  # builtin object is */*, which `*` does not match
        ("alice", "applications", "get", "*", "no"),
        ("alice", "projects", "get", "default", "yes"),
        ("alice", "clusters", "get", "*", "yes"),
        ("alice", "clusters", "delete", "*", "no"),
        ("portal", "projects", "delete", "payments", "yes"),
        ("portal", "accounts", "update", "alice", "yes"),
        ("alice", "accounts", "update", "portal", "no"),
    ],
)
def test_can_i(sim, admin, alice, portal, who, resource, action, obj, expected):
    client = {"admin": admin, "alice": alice, "portal": portal}[who]
    r = client.get(f"/api/v1/account/can-i/{resource}/{action}/{obj}")
    assert r.status_code == 200, r.text
    assert r.json() == {"value": expected}


def test_can_i_object_is_one_path_segment(admin):
    # grpc-gateway v1 matches the decoded path, so neither a slash nor %2F reaches the handler.
    for path in (
        "/api/v1/account/can-i/applications/get/default/x",
        "/api/v1/account/can-i/applications/get/default%2Fx",
    ):
        r = admin.get(path)
        assert r.status_code == 404 and r.text == "Not Found\n"


def test_can_i_rejects_unknown_resource(admin):
    assert admin.get("/api/v1/account/can-i/widgets/get/*").status_code == 400
    assert admin.get("/api/v1/account/can-i/applications/fly/*").status_code == 400


def test_readonly_sees_apps_but_cannot_sync(alice, admin):
    name = admin.get("/api/v1/applications").json()["items"][0]["metadata"]["name"]
    assert alice.get(f"/api/v1/applications/{name}").status_code == 200
    r = alice.post(f"/api/v1/applications/{name}/sync", {})
    assert r.status_code == 403
    assert r.json()["message"].startswith("permission denied: applications, sync, ")
    assert ", sub: alice, iat: " in r.json()["message"]


def test_404_vs_403_for_apps_and_clusters(admin, alice):
    assert admin.get("/api/v1/applications/missing").status_code == 403
    assert admin.get("/api/v1/applications/missing", params={"project": "default"}).status_code == 404
    some = admin.get("/api/v1/applications").json()["items"][0]
    other = "default" if some["spec"]["project"] != "default" else "payments"
    r = admin.get(f"/api/v1/applications/{some['metadata']['name']}", params={"project": other})
    assert r.status_code == 404
    assert admin.get("/api/v1/clusters/https%3A%2F%2Fnope.example.com").status_code == 403
    assert alice.get("/api/v1/clusters/https%3A%2F%2Fkubernetes.default.svc").status_code == 200


def test_explicit_deny_wins(fresh):
    policy = "p, alice, applications, get, */*-prod, deny\n"
    sim = fresh(policy_csv=policy, apps=12)
    alice = login(sim.url, "alice", "alice-password")
    admin = login(sim.url, "admin", "password")
    all_names = [a["metadata"]["name"] for a in admin.get("/api/v1/applications").json()["items"]]
    seen = [a["metadata"]["name"] for a in alice.get("/api/v1/applications").json()["items"]]
    assert seen == [n for n in all_names if not n.endswith("-prod")] and len(seen) < len(all_names)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "default/app", True),
        ("default/*", "default/a/b", True),
        ("*/*", "*", False),
        ("team-?", "team-a", True),
        ("{a,b}-prod", "b-prod", True),
        ("[ab]x", "cx", False),
        ("https://github.com/acme/*", "https://github.com/acme/x.git", True),
    ],
)
def test_glob(pattern, value, expected):
    assert glob_match(pattern, value) is expected


def test_enforcer_roles_and_deny():
    enf = Enforcer(
        "p, role:dev, applications, *, dev/*, allow\np, role:dev, applications, delete, dev/*, deny\ng, bob, role:dev"
    )
    assert enf.enforce("bob", "applications", "sync", "dev/app")
    assert not enf.enforce("bob", "applications", "delete", "dev/app")
    assert not enf.enforce("bob", "applications", "sync", "prod/app")
    assert enf.enforce("admin", "clusters", "delete", "https://x")


def test_login_token_close_to_expiry_is_renewed_via_cookie(sim):
    now = int(time.time())
    claims = {"iss": "argocd", "sub": "admin:login", "exp": now + 120, "nbf": now, "iat": now, "jti": unique("j")}
    token = simjwt.encode(claims, sim.state.secret_key)
    r = requests.get(sim.url + "/api/v1/account", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    renewed = r.cookies.get("argocd.token")
    assert renewed and claims_of(renewed)["exp"] > now + 3600
