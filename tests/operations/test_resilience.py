"""Nothing is lost: a worker SIGKILLed mid-sync, Redis flushed under queued work (Argo CD gone: test_outage)."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.operations.models import Operation
from apps.operations.tasks import reap_operations

from .conftest import final, live_app, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_killed_mid_sync_is_replaced_and_the_reaper_reattaches_without_syncing_twice(
    workers, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=5.0)
    instance = register(sim)
    name, project = sim_app(sim)
    history_before = len(live_app(sim, name)["status"].get("history") or [])
    first = workers.start()
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)

    def running_in_argocd():
        op.refresh_from_db()
        return op.argocd_phase == "Running" and op.resources

    wait_for(running_in_argocd, timeout=20, what="Argo CD to be running the sync")
    workers.kill(first)
    op.refresh_from_db()
    assert op.state == Operation.State.RUNNING  # the dead worker ended nothing

    workers.start()
    # The reaper (here called the way beat calls it, with a short staleness threshold) notices the silence.
    wait_for(lambda: reap_operations(stale_after=1.5)["reattached"], timeout=15, interval=0.3, what="the reaper")
    op = final(op, timeout=30)

    assert op.state == Operation.State.SUCCEEDED, op.error
    assert op.attempts == 2
    assert op.result["phase"] == "Succeeded"
    app = live_app(sim, name)
    assert len(app["status"]["history"]) == min(history_before + 1, 10), "the re-run followed, it did not sync again"
    infos = {i["name"]: i["value"] for i in app["status"]["operationState"]["operation"]["info"]}
    assert infos["portal-operation"] == str(op.pk)
    assert AuditEvent.objects.filter(operation_id=op.pk, outcome="succeeded").count() == 1


def test_operations_queued_when_redis_is_flushed_are_requeued_by_the_reaper_and_run(
    workers, redis_db, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    ops = []
    for i in range(3):
        name, project = sim_app(sim, skip=i)
        ops.append(submit(admin_user, kind="sync", instance=instance, project=project, target=name))
    assert redis_db.llen("celery") == 3  # no worker yet: the messages wait in Redis

    redis_db.flushdb()
    workers.start()
    assert redis_db.llen("celery") == 0
    assert all(o.state == Operation.State.QUEUED for o in Operation.objects.all())

    counts = reap_operations(queued_after=0)

    assert counts["requeued"] == 3
    for op in ops:
        assert final(op).state == Operation.State.SUCCEEDED, op.error


def test_argocd_down_before_the_sync_starts_fails_at_once(worker, make_sim, register, submit, admin_user):
    sim = make_sim(name="sim-gone")
    instance = register(sim)
    sim.stop()

    op = final(submit(admin_user, kind="sync", instance=instance, project="default", target="api"), timeout=20)

    assert op.state == Operation.State.FAILED
    assert op.error.startswith("sim-gone is unavailable: ")


def test_the_reaper_fails_an_operation_running_longer_than_the_maximum_age(
    workers, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=60.0)
    instance = register(sim)
    name, project = sim_app(sim)
    workers.start()
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)
    wait_for(lambda: Operation.objects.filter(pk=op.pk, argocd_phase="Running").exists(), timeout=20)

    wait_for(lambda: reap_operations(max_age=0.5)["failed"], timeout=10, interval=0.2, what="the reaper to give up")

    op.refresh_from_db()
    assert op.state == Operation.State.FAILED and "Gave up" in op.error
    # The worker still following it notices it lost the operation and writes nothing more.
    final_events = AuditEvent.objects.filter(operation_id=op.pk).exclude(outcome="started")
    assert final_events.count() == 1


def test_beat_runs_the_reaper_every_15_seconds():
    from portal.celery import app

    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == "apps.operations.tasks.reap_operations")
    assert entry["schedule"] <= 15
    assert "apps.operations.tasks.reap_operations" in app.tasks
