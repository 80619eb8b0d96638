"""Applications in any namespace through the portal: two apps named `web` in two namespaces of one instance,
addressed with `?appNamespace=`, indexed apart, and a grant on one namespace only."""

from __future__ import annotations

from unittest.mock import ANY

import pytest
from django.urls import reverse

from apps.access.models import Grant
from apps.argocd import ArgoCDClient
from apps.audit.models import AuditEvent
from apps.index.indexer import resync
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.teams.models import Membership, Team

from .conftest import wait_for

HX = {"HTTP_HX_REQUEST": "true"}
NONCE = "5e0c1b2a3d4f5a6b7c8d9e0f1a2b3c4d"


@pytest.fixture(scope="module")
def anyns():
    """A simulator with `application.namespaces: team-*`, a project allowing team-a and team-b, and `web` in both."""
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-anyns", apps=3, projects=1, sync_seconds=0.2, app_namespaces=("team-*",))
    server.start()
    with ArgoCDClient(server.url, token=server.portal_token(), name=server.name) as client:
        client.create_project(
            {
                "metadata": {"name": "shop"},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "sourceNamespaces": ["team-a", "team-b"],
                },
            }
        )
        for ns in ("team-a", "team-b"):
            client.create_application(
                {
                    "metadata": {"name": "web", "namespace": ns},
                    "spec": {
                        "project": "shop",
                        "source": {"repoURL": "https://github.com/acme/shop-deploy.git", "path": "web"},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": f"{ns}-web"},
                    },
                }
            )
    yield server
    server.stop()


@pytest.fixture
def ns_instance(db, anyns):
    return Instance.objects.create(name=anyns.name, url=anyns.url, token=anyns.portal_token(), verify_tls=False)


@pytest.fixture
def team_a_member(alice):
    """alice's team may view and sync apps living in namespace team-a, and nothing else."""
    team = Team.objects.create(slug="team-a", name="Team A")
    Membership.objects.create(team=team, user=alice)
    Grant.objects.create(team=team, namespace_glob="team-a", actions=["sync"])
    return alice


def url(view: str, instance: Instance, namespace: str = "") -> str:
    base = reverse(f"applications:{view}", args=[instance.name, "web"])
    return f"{base}?appNamespace={namespace}" if namespace else base


def sync_form(**extra) -> dict:
    return {"nonce": NONCE, "strategy": "apply", "backoff_duration": "5s", "backoff_factor": "2",
            "backoff_max_duration": "3m", **extra}  # fmt: skip


@pytest.mark.django_db
def test_the_page_of_each_namespace_shows_its_own_app_and_keeps_the_namespace_in_every_link(admin_client, ns_instance):
    response = admin_client.get(url("detail", ns_instance, "team-b"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "team-b-web" in body and "team-a-web" not in body  # the destination of the team-b app
    assert "<li>team-b</li>" in body  # the breadcrumb names the namespace
    for view in ("sync", "refresh", "edit", "delete", "live"):
        assert f"{reverse(f'applications:{view}', args=[ns_instance.name, 'web'])}?appNamespace=team-b" in body
    assert "?appNamespace=team-b&amp;tab=tree" in body
    # Without the namespace the control plane's namespace is meant, where there is no `web`: a 404, audited.
    assert admin_client.get(url("detail", ns_instance)).status_code == 404
    assert AuditEvent.objects.filter(action="view", outcome="denied", name="web").exists()


@pytest.mark.django_db
def test_a_malformed_namespace_is_a_404_without_asking_argo_cd(admin_client, ns_instance):
    response = admin_client.get(reverse("applications:detail", args=[ns_instance.name, "web"]) + "?appNamespace=A/b")
    assert response.status_code == 404
    event = AuditEvent.objects.get(action="view", outcome="denied")
    assert "malformed namespace" in event.error


@pytest.mark.django_db
def test_a_member_granted_one_namespace_sees_that_app_and_is_refused_the_other_audited(
    client, ns_instance, team_a_member
):
    client.force_login(team_a_member)
    assert client.get(url("detail", ns_instance, "team-a")).status_code == 200
    assert client.get(url("detail", ns_instance, "team-b")).status_code == 404
    refused = AuditEvent.objects.get(action="view", outcome="denied")
    assert (refused.namespace, refused.name, refused.project) == ("team-b", "web", "shop")
    response = client.post(url("sync", ns_instance, "team-b"), sync_form(), **HX)
    assert response.status_code == 404
    assert not Operation.objects.exists()
    denied = AuditEvent.objects.filter(action="sync", outcome="denied").get()
    assert (denied.namespace, denied.name, denied.error) == ("team-b", "web", "not granted")
    assert denied.request == {"request_id": ANY}


@pytest.mark.django_db
def test_the_index_keeps_both_apps_and_links_each_with_its_namespace(admin_client, ns_instance, team_a_member, client):
    with ns_instance.client() as argocd:
        resync(ns_instance.pk, argocd)
    rows = ApplicationSummary.objects.filter(instance=ns_instance, name="web")
    assert sorted(rows.values_list("namespace", "dest_namespace")) == [
        ("team-a", "team-a-web"),
        ("team-b", "team-b-web"),
    ]
    body = admin_client.get("/applications/", {"q": "web"}).content.decode()
    assert f"/applications/{ns_instance.name}/web/?appNamespace=team-a" in body
    assert f"/applications/{ns_instance.name}/web/?appNamespace=team-b" in body
    client.force_login(team_a_member)
    body = client.get("/applications/", {"q": "web"}).content.decode()
    assert "?appNamespace=team-a" in body and "?appNamespace=team-b" not in body


@pytest.mark.celery
def test_a_member_syncs_the_app_of_the_granted_namespace_only(client, alice, celery_worker, anyns):
    instance = Instance.objects.create(name=anyns.name, url=anyns.url, token=anyns.portal_token(), verify_tls=False)
    team = Team.objects.create(slug="team-a", name="Team A")
    Membership.objects.create(team=team, user=alice)
    Grant.objects.create(team=team, namespace_glob="team-a", actions=["sync"])
    client.force_login(alice)
    before_b = anyns.state.get_app_json("web", "team-b")["status"].get("operationState")
    response = client.post(url("sync", instance, "team-a"), sync_form(), **HX)
    assert response.status_code == 200 and 'class="op-card"' in response.content.decode()
    op = Operation.objects.get()
    assert (op.target, op.project, op.params["appNamespace"]) == ("web", "shop", "team-a")
    started = AuditEvent.objects.get(action="sync", outcome="started")
    assert (started.namespace, started.name) == ("team-a", "web")
    try:
        wait_for(lambda: Operation.objects.get(pk=op.pk).is_final, timeout=30)
    finally:
        op.refresh_from_db()
    assert op.state == "succeeded", (op.state, op.message, op.error)
    state_a = anyns.state.get_app_json("web", "team-a")["status"]["operationState"]
    assert state_a["phase"] == "Succeeded" and state_a["operation"]["initiatedBy"]["username"] == "portal"
    assert anyns.state.get_app_json("web", "team-b")["status"].get("operationState") == before_b
    assert client.post(url("sync", instance, "team-b"), sync_form(nonce="f" * 32), **HX).status_code == 404
    assert Operation.objects.count() == 1
    assert AuditEvent.objects.filter(action="sync", outcome="denied", namespace="team-b").count() == 1


@pytest.mark.django_db
def test_the_api_starts_a_sync_of_the_app_in_the_given_namespace(admin_user, ns_instance):
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    from apps.identity.tokens import ApiToken, digest, new_secret

    secret = new_secret()
    ApiToken.objects.create(user=admin_user, name="ci", digest=digest(secret), hint=secret[:10], actions=["sync"],
                            expires_at=timezone.now() + timedelta(days=1))  # fmt: skip
    headers = {"Authorization": f"Bearer {secret}"}
    path = f"/api/applications/{ns_instance.name}/web/sync"
    r = Client().post(f"{path}?appNamespace=team-b", {}, content_type="application/json", headers=headers)
    assert r.status_code == 202, r.content
    assert r.json()["params"]["appNamespace"] == "team-b"
    detail = Client().get(f"/api/applications/{ns_instance.name}/web", {"appNamespace": "team-a"}, headers=headers)
    assert detail.status_code == 200 and detail.json()["namespace"] == "team-a"


@pytest.mark.django_db
def test_a_schedule_keeps_the_apps_namespace_and_is_refused_on_the_other(client, ns_instance, team_a_member):
    from apps.governance.models import Schedule
    from apps.governance.schedules import _refusal

    with ns_instance.client() as argocd:
        resync(ns_instance.pk, argocd)
    client.force_login(team_a_member)
    new = reverse("governance:schedule_new")
    form = {"instance": ns_instance.name, "app": "web", "kind": "sync", "once_at": "2099-01-01T02:00",
            "timezone": "UTC"}  # fmt: skip
    page = client.get(new, {"instance": ns_instance.name, "app": "web", "appNamespace": "team-a"})
    assert 'name="appNamespace" value="team-a"' in page.content.decode()
    client.post(new, {**form, "appNamespace": "team-a"})
    schedule = Schedule.objects.get()
    assert schedule.params["appNamespace"] == "team-a" and not _refusal(schedule, team_a_member, ns_instance, None)
    assert client.get(new, {"instance": ns_instance.name, "app": "web", "appNamespace": "team-b"}).status_code == 404
    schedule.params["appNamespace"] = "team-b"  # the same schedule aimed at the other namespace: refused when due
    assert "refused" in _refusal(schedule, team_a_member, ns_instance, None)


@pytest.mark.django_db
def test_a_member_granted_one_namespace_sees_only_the_operations_of_apps_living_there(
    client, ns_instance, team_a_member, bob
):
    from apps.operations.views import visible_operations

    ops = {ns: Operation.objects.create(kind="sync", instance=ns_instance, instance_name=ns_instance.name,
                                        project="shop", target="web", params={"appNamespace": ns}, requested_by=bob)
           for ns in ("team-a", "team-b")}  # fmt: skip
    assert list(visible_operations(team_a_member)) == [ops["team-a"]]
    client.force_login(team_a_member)
    assert client.get(reverse("operations:detail", args=[ops["team-b"].pk])).status_code == 404
    assert client.get(reverse("operations:detail", args=[ops["team-a"].pk])).status_code == 200
