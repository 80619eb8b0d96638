"""Bulk sync: one parent, a child per app, a per-instance concurrency limit, failures that stop nothing."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from apps.audit.models import AuditEvent
from apps.operations.models import Operation
from apps.operations.services import start_bulk_sync

from .conftest import final, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def max_concurrent(children) -> dict[str, int]:
    """Per instance, the most children whose [started_at, finished_at] intervals overlapped."""
    events = defaultdict(list)
    for c in children:
        events[c.instance_name] += [(c.started_at, 1), (c.finished_at, -1)]
    peaks = {}
    for name, evs in events.items():
        running = peak = 0
        for _, delta in sorted(evs, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
            running += delta
            peak = max(peak, running)
        peaks[name] = peak
    return peaks


def test_bulk_sync_of_20_apps_on_2_instances_keeps_3_per_instance_and_failures_do_not_stop_the_rest(
    workers, make_sim, register, admin_user, rf, sim_app, failing_app
):
    targets = []
    for i in range(2):
        sim = make_sim(name=f"bulk-{i}", apps=24, seed=20 + i, sync_seconds=0.4)
        instance = register(sim)
        bad, bad_project = failing_app(sim, name=f"broken-{i}")
        targets.append((instance, bad_project, bad))
        for skip in range(9):
            name, project = sim_app(sim, skip=skip)
            targets.append((instance, project, name))
    workers.start(concurrency=10)  # more threads than 2 x 3 so the limit, not the pool, is what holds them back
    request = rf.post("/operations/bulk-sync/")
    request.user = admin_user

    parent = start_bulk_sync(request, targets, {"limit": 3, "prune": False})
    parent = final(parent, timeout=90)

    children = list(parent.children.all())
    assert len(children) == 20
    states = sorted(c.state for c in children)
    assert states.count("succeeded") == 18 and states.count("failed") == 2
    assert {c.target for c in children if c.state == "failed"} == {"broken-0", "broken-1"}
    assert parent.state == Operation.State.FAILED
    assert parent.progress == 100
    assert parent.error.startswith("2 of 20 syncs failed")
    assert parent.result["succeeded"] == 18 and parent.result["total"] == 20
    peaks = max_concurrent(children)
    assert set(peaks) == {"bulk-0", "bulk-1"}
    assert all(peak <= 3 for peak in peaks.values()), peaks
    assert max(peaks.values()) == 3, f"the limit was reached, not just respected: {peaks}"
    assert AuditEvent.objects.filter(action="sync", outcome="started").count() == 20
    assert AuditEvent.objects.filter(operation_id=parent.pk, action="bulk_sync", outcome="failed").exists()


def test_bulk_sync_where_all_succeed_ends_succeeded(workers, make_sim, register, admin_user, rf, sim_app):
    sim = make_sim(name="bulk-ok", sync_seconds=0.3)
    instance = register(sim)
    targets = [(instance, *reversed(sim_app(sim, skip=i))) for i in range(4)]
    workers.start()
    request = rf.post("/operations/bulk-sync/")
    request.user = admin_user

    parent = start_bulk_sync(request, targets, {"limit": 2})
    assert parent.target == "4 applications"
    seen = set()

    def ended():
        parent.refresh_from_db()
        seen.add(parent.message)
        return parent.is_final

    wait_for(ended, timeout=60, interval=0.05, what="the bulk sync to end")

    assert parent.state == Operation.State.SUCCEEDED, parent.error
    assert parent.message.startswith("4/4 done: 4 succeeded")
    assert any(re.match(r"0/4 done: .*, [12] running, ", m) for m in seen), seen  # counted as they start
    assert max_concurrent(parent.children.all())["bulk-ok"] <= 2


def test_a_bulk_sync_holds_no_worker_so_one_thread_is_enough(workers, make_sim, register, admin_user, rf, sim_app):
    # The parent releases children and steps aside; finishing children end it. With the old waiting parent, a
    # single worker thread would have been taken by the parent and no child could ever run.
    sim = make_sim(name="bulk-one", sync_seconds=0.3)
    instance = register(sim)
    targets = [(instance, *reversed(sim_app(sim, skip=i))) for i in range(3)]
    workers.start(concurrency=1)
    request = rf.post("/operations/bulk-sync/")
    request.user = admin_user

    parent = final(start_bulk_sync(request, targets, {"limit": 1}), timeout=60)

    assert parent.state == Operation.State.SUCCEEDED, parent.error
    assert parent.progress == 100 and parent.result["succeeded"] == 3


def test_a_child_refused_for_want_of_a_slot_is_sent_again_by_the_next_sibling(
    redis_db, make_sim, register, admin_user, rf
):
    # Four children, limit 3: three run, the fourth's message arrives early and is refused. The next sibling to
    # finish must send it again at once; a lingering "already sent" mark would strand it until the reaper came.
    from django.core.cache import cache

    from apps.operations import runners, tasks

    instance = register(make_sim(name="bulk-turn"))
    request = rf.post("/operations/bulk-sync/")
    request.user = admin_user
    parent = start_bulk_sync(request, [(instance, "default", f"app-{i}") for i in range(4)], {"limit": 3})
    Operation.objects.filter(pk=parent.pk).update(state=Operation.State.RUNNING)
    *first, last = parent.children.order_by("id")
    Operation.objects.filter(pk__in=[c.pk for c in first]).update(state=Operation.State.RUNNING)

    tasks.dispatch(last.pk)
    assert cache.get(f"operations:dispatch:{last.pk}") is not None
    assert tasks._claim(last.pk) is None  # no free slot: refused, still queued
    assert Operation.objects.get(pk=last.pk).state == Operation.State.QUEUED

    Operation.objects.filter(pk=first[0].pk).update(state=Operation.State.SUCCEEDED)
    redis_db.delete("celery")  # drop the messages sent so far: only a new send puts one on the queue
    assert runners.release_children(parent.pk, instance.pk) == [last.pk]
    assert redis_db.llen("celery") == 1, "the refused child was not sent again"
