"""Token rotations as Operations, run by a real Celery worker against a simulator of their own."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.instances.models import Instance
from apps.kinds.rotations import claims
from apps.kinds.tasks import rotate_expiring_instance_tokens
from apps.operations.models import Operation
from apps.operations.services import start_operation
from apps.simulator.server import SimServer

from .conftest import shown_token

HX = {"HX-Request": "true"}


def wait_final(op_id: int, timeout: float = 30.0) -> Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = Operation.objects.get(pk=op_id)
        if op.is_final:
            return op
        time.sleep(0.1)
    raise AssertionError(f"operation {op_id} not final after {timeout} s: {op.state} {op.message}")


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def own_sim():
    with SimServer(port=0, name="rot", apps=4, projects=3, seed=3, sync_seconds=0.2) as server:
        yield server


@pytest.fixture
def rot_instance(own_sim, transactional_db) -> Instance:
    return Instance.objects.create(name="rot", url=own_sim.url, token=own_sim.portal_token(token_id="initial"))


def no_secret_in_audit(secret: str) -> bool:
    return all(secret not in str((e.request, e.before, e.after, e.error)) for e in AuditEvent.objects.all())


def portal_token_ids(sim) -> list[str]:
    return [t["id"] for t in sim.state.accounts["portal"].tokens]


@pytest.mark.usefixtures("celery_worker")
def test_instance_token_rotation_replaces_the_portal_credential(admin_client, rot_instance, own_sim):
    old_token = rot_instance.token
    r = admin_client.post("/kinds/settings/rot/settings/", {"rotate-portal-token": "1"}, headers=HX)
    assert r.status_code == 200 and "op-card" in r.content.decode() or "Operation" in r.content.decode()
    op = wait_final(Operation.objects.get(kind=Operation.Kind.ROTATE_INSTANCE_TOKEN).pk)
    assert op.state == Operation.State.SUCCEEDED, op.error
    inst = Instance.objects.get(pk=rot_instance.pk)
    assert inst.token != old_token and inst.token_id == op.result["new_token_id"]
    assert inst.token_expires_at and inst.token_expires_at > timezone.now() + timedelta(days=80)
    assert "initial" not in portal_token_ids(own_sim) and inst.token_id in portal_token_ids(own_sim)
    with inst.client() as c:
        assert c.userinfo()["username"] == "portal"
    outcomes = [e.outcome for e in AuditEvent.objects.filter(operation_id=op.pk).order_by("id")]
    assert outcomes == [AuditEvent.Outcome.STARTED, AuditEvent.Outcome.SUCCEEDED]
    assert no_secret_in_audit(inst.token) and no_secret_in_audit(old_token)


@pytest.mark.usefixtures("celery_worker")
def test_failure_half_way_leaves_a_working_credential(admin_user, rot_instance, own_sim):
    # The stored id of the old token is not one Argo CD knows: deleting it fails after the new one is stored.
    Instance.objects.filter(pk=rot_instance.pk).update(token_id="lost-id")
    op = start_operation(None, kind=Operation.Kind.ROTATE_INSTANCE_TOKEN, instance=rot_instance, target="rot")
    op = wait_final(op.pk)
    assert op.state == Operation.State.FAILED
    assert "stored and works" in op.error and "lost-id" in op.error
    inst = Instance.objects.get(pk=rot_instance.pk)
    assert inst.token != rot_instance.token and inst.token_id.startswith("portal-")
    with inst.client() as c:
        assert c.userinfo()["loggedIn"] is True


@pytest.mark.usefixtures("celery_worker")
def test_failure_before_the_new_token_exists_keeps_the_old_credential(own_sim, transactional_db):
    # `admin` may log in but has no apiKey capability: Argo CD refuses to create a token for it.
    inst = Instance.objects.create(name="rot-pw", url=own_sim.url, username="admin", password="password")
    op = wait_final(start_operation(None, kind=Operation.Kind.ROTATE_INSTANCE_TOKEN, instance=inst, target="x").pk)
    assert op.state == Operation.State.FAILED and "apiKey" in op.error
    inst.refresh_from_db()
    assert inst.token == "" and inst.password == "password"
    with inst.client() as c:
        assert c.userinfo()["username"] == "admin"


@pytest.mark.usefixtures("celery_worker")
def test_project_token_rotation_shows_the_new_token_once_and_deletes_the_old_after_grace(
    admin_client, rot_instance, own_sim
):
    project = next(n for n in own_sim.state.projects if n != "default")
    with rot_instance.client() as c:
        c.create_project_token(project, "ci", token_id="ci-old")
    iat = own_sim.state.projects[project]["spec"]["roles"][0]["jwtTokens"][0]["iat"]
    r = admin_client.post(
        f"/kinds/projects/rot/{project}/",
        {"rotate-token": "1", "role": "ci", "iat": iat, "token_id": "ci-old", "grace_seconds": "2"},
        headers=HX,
    )
    assert r.status_code == 200 and "Reveal the new token" in r.content.decode()
    op = Operation.objects.get(kind=Operation.Kind.ROTATE_PROJECT_TOKEN)
    wait_for(lambda: Operation.objects.get(pk=op.pk).result.get("token_ready"))
    ids = lambda: [t["id"] for t in own_sim.state.projects[project]["spec"]["roles"][0].get("jwtTokens") or []]  # noqa: E731
    assert "ci-old" in ids() and f"rotated-{op.pk}" in ids()  # both work during the grace period
    page = admin_client.get(f"/kinds/token/{op.pk}/")
    assert "Show the token once" in page.content.decode()
    shown = admin_client.post(f"/kinds/token/{op.pk}/").content.decode()
    token = shown_token(shown)
    assert claims(token)["jti"] == f"rotated-{op.pk}"
    assert token not in admin_client.post(f"/kinds/token/{op.pk}/").content.decode()
    op = wait_final(op.pk)
    assert op.state == Operation.State.SUCCEEDED, op.error
    assert ids() == [f"rotated-{op.pk}"]
    assert no_secret_in_audit(token) and token not in str(op.result)
    assert AuditEvent.objects.filter(operation_id=op.pk, outcome=AuditEvent.Outcome.SUCCEEDED, kind="project").exists()


@pytest.mark.usefixtures("celery_worker")
def test_project_token_rotation_that_cannot_create_keeps_the_old_token(admin_user, rot_instance, own_sim):
    project = next(n for n in own_sim.state.projects if n != "default")
    with rot_instance.client() as c:
        c.create_project_token(project, "ci", token_id="ci-keep")
    op = start_operation(
        None,
        kind=Operation.Kind.ROTATE_PROJECT_TOKEN,
        instance=rot_instance,
        project=project,
        target=project,
        params={"role": "ghost", "old_iat": 1, "old_id": "ci-keep", "grace_seconds": 0},
    )
    op = wait_final(op.pk)
    assert op.state == Operation.State.FAILED and "ghost" in op.error
    assert [t["id"] for t in own_sim.state.projects[project]["spec"]["roles"][0]["jwtTokens"]] == ["ci-keep"]


def test_only_the_requester_may_reveal_a_rotated_token(client, alice, admin_user, rot_instance):
    op = Operation.objects.create(
        kind=Operation.Kind.ROTATE_PROJECT_TOKEN, instance=rot_instance, requested_by=admin_user
    )
    client.force_login(alice)
    assert client.get(f"/kinds/token/{op.pk}/").status_code == 404
    assert client.post(f"/kinds/token/{op.pk}/").status_code == 404


@pytest.mark.usefixtures("celery_worker")
def test_cluster_auth_rotation_runs_as_an_operation_and_checks_the_cluster(admin_client, rot_instance, own_sim):
    server = next(s for s, c in own_sim.state.clusters.items() if c["config"].get("bearerToken"))
    old = own_sim.state.clusters[server]["config"]["bearerToken"]
    r = admin_client.post(f"/kinds/clusters/rot/{quote(server, safe='')}/", {"rotate-auth": "1"})
    op = Operation.objects.get(kind=Operation.Kind.ROTATE_CLUSTER_AUTH)
    assert r.status_code == 302 and r["Location"].endswith(f"/operations/{op.pk}/")
    op = wait_final(op.pk)
    assert op.state == Operation.State.SUCCEEDED and op.result == {"connection": "Successful"}
    assert own_sim.state.clusters[server]["config"]["bearerToken"] not in (old, "")
    in_cluster = next(s for s, c in own_sim.state.clusters.items() if not c["config"].get("bearerToken"))
    admin_client.post(f"/kinds/clusters/rot/{quote(in_cluster, safe='')}/", {"rotate-auth": "1"})
    failed = wait_final(Operation.objects.filter(target=in_cluster).get().pk)
    assert failed.state == Operation.State.FAILED and "bearer token" in failed.error


def test_expiring_instance_tokens_get_one_rotation_each(own_sim, transactional_db):
    soon = Instance.objects.create(
        name="soon", url=own_sim.url, token=own_sim.portal_token(), token_expires_at=timezone.now() + timedelta(days=3)
    )
    Instance.objects.create(
        name="later",
        url=own_sim.url,
        token=own_sim.portal_token(),
        token_expires_at=timezone.now() + timedelta(days=60),
    )
    started = rotate_expiring_instance_tokens(days=14)
    assert [Operation.objects.get(pk=pk).instance for pk in started] == [soon]
    assert rotate_expiring_instance_tokens(days=14) == []
    assert Operation.objects.filter(kind=Operation.Kind.ROTATE_INSTANCE_TOKEN).count() == 1
