"""Projects, ApplicationSets, repositories, clusters, accounts, certificates, GPG keys, notifications."""

from __future__ import annotations

import pytest

from apps.argocd import ArgoCDClient, errors

from .conftest import CountingSession, app_body

# ---------------------------------------------------------------- accounts


def test_accounts(client):
    accounts = {a["name"]: a for a in client.list_accounts()}
    assert {"admin", "portal", "alice"} <= set(accounts)
    assert client.get_account("portal")["name"] == "portal"
    assert client.can_i("projects", "create", "anything") is True
    with pytest.raises(ValueError):
        client.can_i("applications", "sync", "default/guestbook")
    with pytest.raises(errors.InvalidArgument):
        client.can_i("nonsense", "get", "x")


def test_can_i_for_readonly(sim):
    with ArgoCDClient(sim.url, username="alice", password="alice-password", name="ro") as c:
        assert c.can_i("projects", "get", "default") is True
        assert c.can_i("projects", "create", "default") is False


def test_duplicate_token_id_is_internal(client, uid):
    client.create_account_token("portal", token_id=f"dup-{uid}")
    try:
        with pytest.raises(errors.Internal) as ei:
            client.create_account_token("portal", token_id=f"dup-{uid}")
        assert ei.value.http_status == 500 and f"dup-{uid}" in ei.value.message
    finally:
        client.delete_account_token("portal", f"dup-{uid}")


def test_account_token_create_use_delete(sim, client, uid):
    token = client.create_account_token("portal", expires_in=3600, token_id=f"tok-{uid}")
    assert token.count(".") == 2
    with ArgoCDClient(sim.url, token=token, name="key") as c:
        assert c.userinfo()["username"] == "portal"
        client.delete_account_token("portal", f"tok-{uid}")
        with pytest.raises(errors.Unauthenticated):
            c.list_applications()


def test_update_password(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, username="alice", password="alice-password", name="a") as c:
        c.update_password("alice-password-2", "alice-password")
    # A new session: tokens issued before a password change may stop working once the clock passes the change.
    with ArgoCDClient(sim.url, username="alice", password="alice-password-2", name="a2") as c:
        assert c.userinfo()["username"] == "alice"
        with pytest.raises(errors.InvalidArgument):
            c.update_password("x-new-password-1", "wrong-current")


# ---------------------------------------------------------------- projects


def test_projects_crud_detailed_windows_events(client, uid):
    name = f"proj-{uid}"
    project = {
        "metadata": {"name": name},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
            "roles": [{"name": "ci", "policies": [f"p, proj:{name}:ci, applications, get, {name}/*, allow"]}],
            "syncWindows": [{"kind": "allow", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]}],
        },
    }
    created = client.create_project(project)
    assert created["metadata"]["name"] == name
    assert client.create_project(project, upsert=True)["metadata"]["name"] == name
    assert name in {p["metadata"]["name"] for p in client.list_projects()}
    got = client.get_project(name)
    got["spec"]["description"] = "updated"
    assert client.update_project(got)["spec"]["description"] == "updated"
    assert client.get_project_detailed(name)["project"]["metadata"]["name"] == name
    assert [w["kind"] for w in client.get_project_syncwindows(name)] == ["allow"]
    assert isinstance(client.list_project_events(name), list)

    token = client.create_project_token(name, "ci", expires_in=600, token_id=f"jti-{uid}", description="ci")
    assert token.count(".") == 2
    role = next(r for r in client.get_project(name)["spec"]["roles"] if r["name"] == "ci")
    iat = next(t["iat"] for t in role["jwtTokens"] if t.get("id") == f"jti-{uid}")
    client.delete_project_token(name, "ci", iat, token_id=f"jti-{uid}")
    role = next(r for r in client.get_project(name)["spec"]["roles"] if r["name"] == "ci")
    assert not [t for t in role.get("jwtTokens") or [] if t.get("id") == f"jti-{uid}"]

    client.delete_project(name)
    assert name not in {p["metadata"]["name"] for p in client.list_projects()}


# ---------------------------------------------------------------- applicationsets


def test_applicationsets(client, some_app, uid):
    name = f"set-{uid}"
    template = app_body("{{name}}-" + uid, some_app)
    appset = {
        "metadata": {"name": name},
        "spec": {
            "generators": [{"list": {"elements": [{"name": "a"}, {"name": "b"}]}}],
            "template": {"metadata": {"name": "{{name}}-" + uid}, "spec": template["spec"]},
        },
    }
    preview = client.generate_applicationset(appset)
    assert sorted(a["metadata"]["name"] for a in preview) == [f"a-{uid}", f"b-{uid}"]
    assert client.create_applicationset(appset)["metadata"]["name"] == name
    assert client.create_applicationset(appset, upsert=True)["metadata"]["name"] == name
    assert name in {s["metadata"]["name"] for s in client.list_applicationsets()}
    assert client.get_applicationset(name)["metadata"]["name"] == name
    client.delete_applicationset(name)
    with pytest.raises((errors.NotFound, errors.PermissionDenied)):
        client.get_applicationset(name)


# ---------------------------------------------------------------- repositories


def test_repositories_and_path_encoding(client, uid):
    url = f"https://git.example.com/org/repo+{uid}.git"
    session = CountingSession()
    c = ArgoCDClient(client.url, token=client._t._token, name="enc", session=session)
    created = c.create_repository({"repo": url, "type": "git", "name": f"r-{uid}"})
    assert created["repo"] == url
    c.create_repository({"repo": url, "type": "git", "name": f"r-{uid}"}, upsert=True)
    assert url in {r["repo"] for r in c.list_repositories()}
    assert c.get_repository(url)["repo"] == url
    # One path segment, `+` as %2B (Argo CD QueryUnescapes the value).
    encoded = url.replace(":", "%3A").replace("/", "%2F").replace("+", "%2B")
    raw_paths = [p for _, p in session.sent]
    assert f"/api/v1/repositories/{encoded}" in raw_paths
    assert c.update_repository({"repo": url, "type": "git", "name": f"renamed-{uid}"})["name"] == f"renamed-{uid}"
    c.validate_repository(url, username="u", password="p")
    assert isinstance(c.list_repository_apps(url), list)
    refs = c.list_repository_refs(url)
    assert "branches" in refs
    c.delete_repository(url)
    assert url not in {r["repo"] for r in c.list_repositories()}
    c.close()


def test_repocreds(client, uid):
    prefix = f"https://git.example.com/creds-{uid}"
    client.create_repocreds({"url": prefix, "username": "bot", "password": "s3cret"})
    client.create_repocreds({"url": prefix, "username": "bot", "password": "s3cret"}, upsert=True)
    assert prefix in {r["url"] for r in client.list_repocreds()}
    assert client.update_repocreds({"url": prefix, "username": "bot2"}) == {"url": prefix}  # Argo CD answers the URL
    assert client.list_repocreds(url=prefix)[0]["username"] == "bot2"
    client.delete_repocreds(prefix)
    assert prefix not in {r["url"] for r in client.list_repocreds()}


# ---------------------------------------------------------------- clusters


def test_clusters(client, uid):
    server = f"https://k8s-{uid}.example.com:6443"
    cluster = {"server": server, "name": f"c-{uid}", "config": {"bearerToken": "t"}}
    assert client.create_cluster(cluster)["server"] == server
    assert client.create_cluster(cluster, upsert=True)["server"] == server
    assert [c["server"] for c in client.list_clusters(server=server)] == [server]
    assert [c["name"] for c in client.list_clusters(name=f"c-{uid}")] == [f"c-{uid}"]
    assert client.get_cluster(server)["name"] == f"c-{uid}"
    assert client.get_cluster(f"c-{uid}", id_type="name")["server"] == server
    updated = client.update_cluster({"server": server, "name": f"c2-{uid}", "namespaces": ["a"]},
                                    updated_fields=["name"])  # fmt: skip
    assert updated["name"] == f"c2-{uid}" and not updated.get("namespaces")
    assert client.invalidate_cluster_cache(server)["server"] == server
    client.rotate_cluster_auth(server)
    client.delete_cluster(server)
    with pytest.raises(errors.PermissionDenied):
        client.get_cluster(server)


# ---------------------------------------------------------------- certificates, gpg keys, notifications

SSH_KEY = b"AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_certificates(client, uid):
    host = f"git-{uid}.example.com"
    added = client.create_certificates(
        [{"serverName": host, "certType": "ssh", "certSubType": "ssh-ed25519", "certData": SSH_KEY}]
    )
    assert [c["serverName"] for c in added] == [host]
    assert [c["serverName"] for c in client.list_certificates(host_name_pattern=host)] == [host]
    assert client.list_certificates(cert_type="ssh")
    deleted = client.delete_certificates(host_name_pattern=host, cert_type="ssh")
    assert [c["serverName"] for c in deleted] == [host]
    assert not client.list_certificates(host_name_pattern=host)
    with pytest.raises(ValueError):
        client.delete_certificates()


def test_gpg_keys(client):
    keys = client.list_gpg_keys()
    assert isinstance(keys, list)
    if not keys:
        pytest.skip("simulator seeds no GPG keys")
    key_id = keys[0]["keyID"]
    assert client.get_gpg_key(key_id)["keyID"] == key_id
    assert [k["keyID"] for k in client.list_gpg_keys(key_id=key_id)] == [key_id]


def test_gpg_key_create_delete(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="g") as c:
        existing = c.list_gpg_keys()
        if not existing:
            pytest.skip("simulator seeds no GPG key to copy")
        key_id = existing[0]["keyID"]
        session = CountingSession()
        c2 = ArgoCDClient(sim.url, token=sim.portal_token(), name="g", session=session)
        c2.delete_gpg_key(key_id)
        assert key_id not in {k["keyID"] for k in c2.list_gpg_keys()}
        assert ("DELETE", "/api/v1/gpgkeys") in session.sent
        created = c2.create_gpg_key(existing[0]["keyData"])["created"]["items"]
        new_id = created[0]["keyID"]
        assert new_id in {k["keyID"] for k in c2.list_gpg_keys()}
        assert c2.create_gpg_key(existing[0]["keyData"])["skipped"] == [new_id]
        c2.close()


@pytest.mark.parametrize(
    "method", ["list_notification_services", "list_notification_templates", "list_notification_triggers"]
)
def test_notifications(client, method):
    got = getattr(client, method)()
    assert isinstance(got, list) and got and "name" in got[0]


def test_update_cluster_with_several_updated_fields(client, uid):
    server = f"https://k8s-multi-{uid}.example.com"
    client.create_cluster({"server": server, "name": f"m-{uid}", "config": {}})
    try:
        updated = client.update_cluster(
            {"server": server, "name": f"m2-{uid}", "namespaces": ["a", "b"], "labels": {"x": "y"}},
            updated_fields=["name", "namespaces"],
        )
        assert updated["name"] == f"m2-{uid}" and updated["namespaces"] == ["a", "b"]
        assert not updated.get("labels")
    finally:
        client.delete_cluster(server)
