"""Scheduled operations under a real `celery beat` and worker: a due time fires once across a beat restart,
and a schedule whose owner lost the grant is refused (audited) instead of reaching Argo CD."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import pytest
from django.db import connection
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.governance.models import Schedule, ScheduleRun
from apps.operations.models import Operation
from apps.teams.models import Membership, Team

from .conftest import final, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beats():
    """`celery beat` processes on the test Redis, looking for due schedules every second; SIGKILLed at will."""
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="beat-")

    def start() -> subprocess.Popen:
        db = connection.settings_dict
        env = {**os.environ, "SCHEDULES_BEAT_SECONDS": "1",
               "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "beat", "--loglevel=WARNING", "--pidfile=",
             f"--schedule={tmp}/beat-{len(procs)}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        procs.append(proc)
        return proc

    def kill(proc: subprocess.Popen) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    start.kill = kill
    yield start
    for proc in procs:
        if proc.poll() is None:
            kill(proc)


def once_now(owner, instance, project: str, name: str) -> Schedule:
    now = timezone.now()
    return Schedule.objects.create(owner=owner, instance_name=instance.name, project=project, app=name, kind="sync",
                                   params={"prune": False, "dryRun": False}, once_at=now, next_run_at=now)  # fmt: skip


def test_a_schedule_fires_once_across_a_beat_restart_and_is_refused_once_the_grant_is_gone(
    worker, beats, make_sim, register, sim_app, alice
):
    sim = make_sim(sync_seconds=0.2)
    instance = register(sim)
    name, project = sim_app(sim)
    team = Team.objects.create(name="payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    grant = Grant.objects.create(team=team, instance_glob=sim.name, actions=["view", "sync"])

    first = once_now(alice, instance, project, name)
    beat = beats()
    run = wait_for(lambda: ScheduleRun.objects.filter(schedule=first).first(), timeout=60, what="the first run")
    op = final(run.operation, timeout=60)
    assert (op.state, op.requested_by, op.target) == (Operation.State.SUCCEEDED, alice, name), op.error
    beats.kill(beat)

    beats()  # a fresh beat with no memory of the first one
    second = once_now(alice, instance, project, name)
    run = wait_for(lambda: ScheduleRun.objects.filter(schedule=second).first(), timeout=60, what="the restarted beat")
    assert final(run.operation, timeout=60).state == Operation.State.SUCCEEDED
    assert ScheduleRun.objects.filter(schedule=first).count() == 1
    assert Operation.objects.filter(kind="sync").count() == 2, "the refused schedule started nothing"

    grant.delete()
    third = once_now(alice, instance, project, name)
    refused = wait_for(lambda: ScheduleRun.objects.filter(schedule=third).first(), timeout=60, what="the refusal")
    assert refused.outcome == "refused" and "not granted" in refused.error and refused.operation is None
    denied = AuditEvent.objects.get(outcome="denied", action="sync", request__schedule=third.pk)
    assert (denied.actor, denied.request["schedule"], denied.error) == ("alice", third.pk, refused.error)
    assert Operation.objects.filter(kind="sync").count() == 2, "the refused schedule started nothing"
