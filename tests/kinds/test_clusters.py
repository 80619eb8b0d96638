"""Clusters: config options, edits through updatedFields, write-only credentials, invalidate cache, delete."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from apps.audit.models import AuditEvent

from .conftest import events

pytestmark = pytest.mark.django_db
TOKEN = "bearer-secret-Xy7-never-shown"


def url_of(server: str, suffix: str = "") -> str:
    return f"/kinds/clusters/sim-k/{quote(server, safe='')}/{suffix}"


def new_cluster(client, server: str, **extra):
    data = {
        "server": server,
        "name": server.split("//")[1].split(".")[0],
        "bearerToken": TOKEN,
        "namespaces": "team-a\nteam-b",
        "labels": "env=dev\ntier=web",
        "serverName": "kube.internal",
        **extra,
    }
    return client.post("/kinds/clusters/sim-k/new/", data)


def test_create_cluster_with_config_options_and_no_token_on_any_page(admin_client, argo, sim, unique):
    server = f"https://c{unique}.example.com:6443"
    r = new_cluster(admin_client, server, execCommand="", awsClusterName="")
    assert r.status_code == 302
    stored = sim.state.clusters[server]
    assert stored["config"]["bearerToken"] == TOKEN
    assert stored["namespaces"] == ["team-a", "team-b"] and stored["labels"] == {"env": "dev", "tier": "web"}
    assert stored["config"]["tlsClientConfig"]["serverName"] == "kube.internal"
    for page in (url_of(server), url_of(server, "edit/"), "/kinds/clusters/"):
        assert TOKEN not in admin_client.get(page).content.decode()
    event = events(kind="cluster", action="create")[-1]
    assert event.after["config"]["bearerToken"] == "***"


def test_exec_provider_and_aws_options_reach_argocd(admin_client, argo, sim, unique):
    server = f"https://e{unique}.example.com"
    r = new_cluster(
        admin_client,
        server,
        bearerToken="",
        execCommand="argocd-k8s-auth",
        execArgs="aws\n--cluster-name\nprod",
        execEnv="AWS_PROFILE=ops",
        execApiVersion="client.authentication.k8s.io/v1beta1",
        awsRoleARN="arn:aws:iam::1:role/x",
    )
    assert r.status_code == 302
    cfg = sim.state.clusters[server]["config"]
    assert cfg["execProviderConfig"]["args"] == ["aws", "--cluster-name", "prod"]
    assert cfg["execProviderConfig"]["env"] == {"AWS_PROFILE": "ops"}
    assert cfg["awsAuthConfig"]["roleARN"] == "arn:aws:iam::1:role/x"


def test_edit_sends_only_the_changed_fields_and_keeps_the_token(admin_client, argo, sim, unique):
    server = f"https://u{unique}.example.com"
    new_cluster(admin_client, server)
    name = sim.state.clusters[server]["name"]
    r = admin_client.post(
        url_of(server, "edit/"),
        {"name": name, "namespaces": "team-a\nteam-b", "labels": "env=prod", "serverName": "kube.internal"},
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    stored = sim.state.clusters[server]
    assert stored["labels"] == {"env": "prod"} and stored["namespaces"] == ["team-a", "team-b"]
    assert stored["config"]["bearerToken"] == TOKEN
    event = events(kind="cluster", action="edit")[-1]
    assert event.request["updatedFields"] == ["labels"]
    assert event.before["labels"] == {"env": "dev", "tier": "web"} and event.after["labels"] == {"env": "prod"}


def test_changing_config_without_the_token_is_refused_before_calling_argocd(admin_client, argo, sim, unique):
    server = f"https://t{unique}.example.com"
    new_cluster(admin_client, server)
    name = sim.state.clusters[server]["name"]
    base = {"name": name, "namespaces": "team-a\nteam-b", "labels": "env=dev\ntier=web"}
    r = admin_client.post(url_of(server, "edit/"), {**base, "serverName": "other.internal"})
    assert r.status_code == 400 and "enter the bearer token" in r.content.decode()
    assert sim.state.clusters[server]["config"]["tlsClientConfig"]["serverName"] == "kube.internal"
    ok = admin_client.post(url_of(server, "edit/"), {**base, "serverName": "other.internal", "bearerToken": "t2"})
    assert ok.status_code == 302
    assert sim.state.clusters[server]["config"]["bearerToken"] == "t2"
    assert events(kind="cluster", action="edit")[-1].request["updatedFields"] == ["config"]


def test_invalidate_cache_refreshes_the_page_with_a_message(admin_client, argo, sim):
    server = next(s for s, c in sim.state.clusters.items() if c.get("name") != "in-cluster")
    r = admin_client.post(url_of(server), {"invalidate-cache": "1"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Refresh"] == "true"
    assert "Cache invalidated" in admin_client.get(url_of(server)).content.decode()
    assert sim.state.clusters[server].get("refreshRequestedAt")
    assert events(kind="cluster", action="invalidate-cache")[-1].outcome == AuditEvent.Outcome.SUCCEEDED


def test_delete_cluster_needs_its_server_typed(admin_client, argo, sim, unique):
    server = f"https://d{unique}.example.com"
    new_cluster(admin_client, server)
    assert admin_client.post(url_of(server, "delete/"), {"confirm_name": "x"}).status_code == 400
    assert server in sim.state.clusters
    assert admin_client.post(url_of(server, "delete/"), {"confirm_name": server}).status_code == 302
    assert server not in sim.state.clusters
    assert events(kind="cluster", action="delete")[-1].before["server"] == server


def test_member_with_view_only_cannot_edit_and_is_audited(client, bob, grant, argo, sim):
    grant(bob, ["view"])
    client.force_login(bob)
    server = next(iter(sim.state.clusters))
    assert client.get(url_of(server)).status_code == 200
    assert client.post(url_of(server, "edit/"), {"name": "hijack"}).status_code == 403
    assert sim.state.clusters[server]["name"] != "hijack"
    assert events(outcome=AuditEvent.Outcome.DENIED, kind="cluster", action="edit", actor="bob")


def test_clearing_labels_and_namespaces_on_edit_removes_them_and_keeps_the_token(admin_client, argo, sim, unique):
    server = f"https://k{unique}.example.com"
    new_cluster(admin_client, server)
    name = sim.state.clusters[server]["name"]
    r = admin_client.post(url_of(server, "edit/"), {"name": name, "serverName": "kube.internal"})
    assert r.status_code == 302
    stored = sim.state.clusters[server]
    assert not stored.get("labels") and not stored.get("namespaces")
    assert stored["config"]["bearerToken"] == TOKEN
