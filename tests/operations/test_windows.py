"""The worker re-checks change windows just before it asks Argo CD (a real Celery worker, a simulated Argo CD)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.governance.models import ChangeWindow
from apps.operations.models import Operation

from .conftest import final, live_app

pytestmark = pytest.mark.django_db(transaction=True)

ALWAYS = "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"


def test_an_operation_blocked_while_queued_fails_with_the_window_and_argocd_is_never_asked(
    worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim()
    instance = register(sim)
    name, project = sim_app(sim)
    history_before = live_app(sim, name)["status"].get("history") or []
    # Started as a view would have before the freeze; the freeze is on by the time a worker takes it.
    ChangeWindow.objects.create(name="freeze", kind="deny", rrule=ALWAYS, duration=timedelta(days=1),
                                instance_glob=sim.name, actions=["sync"])  # fmt: skip
    op = final(submit(admin_user, kind="sync", instance=instance, project=project, target=name))
    assert op.state == Operation.State.FAILED
    assert "blocked by window freeze until" in op.error
    assert AuditEvent.objects.get(operation_id=op.pk, outcome="failed").error == op.error
    app = live_app(sim, name)
    assert (app["status"].get("history") or []) == history_before
    assert "portal-operation" not in str((app["status"].get("operationState") or {}).get("operation"))


def test_an_overridden_operation_runs_through_the_window(worker, make_sim, register, submit, admin_user, sim_app):
    sim = make_sim(sync_seconds=0.3)
    instance = register(sim)
    name, project = sim_app(sim)
    ChangeWindow.objects.create(name="freeze", kind="deny", rrule=ALWAYS, duration=timedelta(days=1),
                                actions=["sync"])  # fmt: skip
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name,
                override_reason="hotfix for INC-42")  # fmt: skip
    op = final(op)
    assert op.state == Operation.State.SUCCEEDED, op.error
