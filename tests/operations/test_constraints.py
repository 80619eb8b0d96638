"""Constraints on grants where operations start: bulk sync at submit, and the worker's re-check just before
Argo CD is called (a real Celery worker, a simulated Argo CD)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.teams.models import Membership, Team

from .conftest import final, live_app


def give(user, project: str, constraints: dict | None = None, instance: str = "*") -> Grant:
    team, _ = Team.objects.get_or_create(name=project, slug=project)
    Membership.objects.get_or_create(team=team, user=user)
    return Grant.objects.create(
        team=team, instance_glob=instance, project_glob=project, app_glob="*", actions=["sync"],
        constraints=constraints or {},
    )  # fmt: skip


# ---------------------------------------------------------------- bulk sync at submit


@pytest.fixture
def indexed(db):
    instance = Instance.objects.create(name="prod", url="http://127.0.0.1:9", token="t")
    now = timezone.now()
    for name in ("payments-api", "payments-web", "payments-db"):
        ApplicationSummary.objects.create(instance=instance, project="payments", name=name, seen_at=now)
    return instance


APPS = ["prod/payments-api", "prod/payments-web", "prod/payments-db"]


def test_bulk_sync_over_the_grants_size_limit_is_refused_naming_the_constraint_and_audited(client, alice, indexed):
    give(alice, "payments", {"bulk_limit": 2})
    client.force_login(alice)

    response = client.post("/operations/bulk-sync/", {"app": APPS})

    assert response.status_code == 403
    assert b"over the limit of 2" in response.content
    assert not Operation.objects.exists()
    denied = AuditEvent.objects.filter(outcome="denied", action="sync", actor="alice")
    assert denied.count() == 3 and all("constraint bulk_limit" in e.error for e in denied)


def test_bulk_sync_within_the_size_limit_starts(client, alice, indexed):
    give(alice, "payments", {"bulk_limit": 2})
    client.force_login(alice)
    response = client.post("/operations/bulk-sync/", {"app": APPS[:2]})
    assert response.status_code == 302
    assert Operation.objects.get(kind="bulk_sync").children.count() == 2


def test_bulk_sync_with_prune_under_a_no_prune_grant_is_refused_and_without_prune_starts(client, alice, indexed):
    give(alice, "payments", {"prune": False})
    client.force_login(alice)
    refused = client.post("/operations/bulk-sync/", {"app": APPS, "prune": "on"}, headers={"HX-Request": "true"})
    assert refused.status_code == 403 and b"prune is not allowed" in refused.content
    assert not Operation.objects.exists()
    assert client.post("/operations/bulk-sync/", {"app": APPS}).status_code == 302
    assert Operation.objects.get(kind="bulk_sync").children.count() == 3


# ---------------------------------------------------------------- the worker's re-check


def _history(sim, name: str) -> int:
    return len(live_app(sim, name)["status"].get("history") or [])


@pytest.mark.django_db(transaction=True)
def test_a_grant_narrowed_after_the_submit_fails_the_sync_in_the_worker_before_argocd_is_called(
    workers, make_sim, register, submit, alice, sim_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, project = sim_app(sim)
    grant = give(alice, project)
    history = _history(sim, name)
    # Queued while the grant allowed prune; no worker has it yet.
    op = submit(alice, kind="sync", instance=instance, project=project, target=name, params={"prune": True})
    grant.constraints = {"prune": False}
    grant.save()

    workers.start()
    op = final(op)

    assert op.state == Operation.State.FAILED
    assert "prune is not allowed" in op.error and "Refused when it was about to start" in op.error
    denied = AuditEvent.objects.get(operation_id=op.pk, outcome="denied")
    assert denied.actor == "alice" and "refused in the worker by prune" in denied.error
    assert AuditEvent.objects.get(operation_id=op.pk, outcome="failed").error == op.error
    assert _history(sim, name) == history and not live_app(sim, name).get("operation")  # Argo CD was not asked


@pytest.mark.django_db(transaction=True)
def test_a_grant_removed_after_the_submit_fails_the_sync_in_the_worker(
    workers, make_sim, register, submit, alice, sim_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, project = sim_app(sim)
    grant = give(alice, project)
    op = submit(alice, kind="sync", instance=instance, project=project, target=name, params={})
    grant.delete()

    workers.start()
    op = final(op)

    assert op.state == Operation.State.FAILED and "not granted" in op.error
    assert AuditEvent.objects.filter(operation_id=op.pk, outcome="denied").exists()


@pytest.mark.django_db(transaction=True)
def test_a_sync_within_its_grants_constraints_passes_the_worker_re_check(
    worker, make_sim, register, submit, alice, sim_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, project = sim_app(sim)
    give(alice, project, {"prune": False, "revision": "own", "force": False, "partial": False})
    op = submit(alice, kind="sync", instance=instance, project=project, target=name, params={"prune": False})

    op = final(op)

    assert op.state == Operation.State.SUCCEEDED, op.error
    assert not AuditEvent.objects.filter(operation_id=op.pk, outcome="denied").exists()


def test_a_bulk_limit_narrowed_after_the_submit_fails_each_child_in_the_worker(rf, alice, indexed):
    from apps.operations import runners
    from apps.operations.services import start_bulk_sync

    grant = give(alice, "payments", {"bulk_limit": 3})
    request = rf.post("/operations/bulk-sync/")
    request.user = alice
    parent = start_bulk_sync(request, [(indexed, "payments", a.split("/")[1]) for a in APPS], {"prune": False})
    grant.constraints = {"bulk_limit": 2}
    grant.save()
    child = parent.children.select_related("instance", "requested_by").first()

    with pytest.raises(runners.OperationFailed, match="over the limit of 2"):
        runners.recheck(child, "sync", {"spec": {"source": {"targetRevision": "HEAD"}}})
    assert AuditEvent.objects.filter(operation_id=child.pk, outcome="denied", error__contains="bulk_limit").exists()
