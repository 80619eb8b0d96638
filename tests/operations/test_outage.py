"""Argo CD out of reach while an operation is pending: result unknown, so keep checking and never sync twice.

A paused Argo CD is a real simulator process (`manage.py runsim`) stopped with SIGSTOP: it accepts connections
and answers nothing, as a hung server does. A lost answer is the simulator's `lose_answers` fault: nginx's 502
page for the next POST, sent either instead of handling it or after the change was made.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from apps.argocd import ArgoCDClient
from apps.audit.models import AuditEvent
from apps.operations.models import Operation

from .conftest import final, live_app, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
OLD_GIVE_UP_SECONDS = 30  # before: a 10 s read timeout, then 10 s more of failed reads, and the operation failed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sim_process():
    """A `manage.py runsim` process of its own; yields (process, url, portal token). Resumed and ended after."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="runsim-", suffix=".log", delete=False)  # noqa: SIM115
    keys = Path(log.name).with_suffix(".keys.json")
    proc = subprocess.Popen(
        [sys.executable, str(MANAGE), "runsim", "--port", str(port), "--apps", "6", "--projects", "2",
         "--seed", "7", "--sync-seconds", "6", "--bootstrap-key-file", str(keys)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def token() -> str:
        if proc.poll() is not None:
            raise AssertionError(f"runsim exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
        return next(iter(json.loads(keys.read_text()).values()))["token"] if keys.exists() else ""

    yield proc, f"http://127.0.0.1:{port}", wait_for(token, timeout=60, what="runsim to start")
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()
    os.unlink(log.name)
    keys.unlink(missing_ok=True)


def _plain_app(url: str, token: str) -> tuple[str, str]:
    """A seeded app without auto-sync that syncs fine (no sim/fail-sync label)."""
    with ArgoCDClient(url, token=token, name="paused") as client:
        apps = sorted(client.list_applications(), key=lambda a: a["metadata"]["name"])
    for app in apps:
        labels = app["metadata"].get("labels") or {}
        if labels.get("sim/fail-sync") != "true" and not (app["spec"].get("syncPolicy") or {}).get("automated"):
            return app["metadata"]["name"], app["spec"].get("project") or "default"
    raise AssertionError("the simulator seeded no plain application")


def _argocd_record(url: str, token: str, name: str) -> tuple[int, int]:
    """(last history id, number of operations started) as Argo CD records them for the app."""
    with ArgoCDClient(url, token=token, name="check") as client:
        app = client.get_application(name)
        events = client.list_application_events(name)
    history = app["status"].get("history") or []
    return (history[-1]["id"] if history else -1), sum(1 for e in events if e.get("reason") == "OperationStarted")


def _audit_trail(op: Operation) -> list[str]:
    return list(AuditEvent.objects.filter(operation_id=op.pk).order_by("id").values_list("outcome", flat=True))


def _card(client, op: Operation) -> str:
    return client.get(f"/operations/{op.pk}/card", headers={"HX-Request": "true"}).content.decode()


# ---------------------------------------------------------------- 8: unreachable while following


@pytest.mark.timeout(300)
def test_a_sync_outlives_argocd_paused_longer_than_the_old_give_up_time_and_ends_as_argocd_reports(
    sim_process, worker, admin_user, admin_client, submit
):
    from apps.instances.models import Instance

    proc, url, token = sim_process
    instance = Instance.objects.create(name="paused", url=url, token=token, verify_tls=False)
    name, project = _plain_app(url, token)
    history_id, started = _argocd_record(url, token, name)
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)
    wait_for(lambda: Operation.objects.filter(pk=op.pk, argocd_phase="Running").exists(), timeout=30,
             what="Argo CD to be running the sync")  # fmt: skip

    os.kill(proc.pid, signal.SIGSTOP)
    paused_at = time.monotonic()

    def checking():
        op.refresh_from_db()
        return "unreachable since" in op.message

    wait_for(checking, timeout=40, interval=0.5, what="the card to say Argo CD is unreachable")
    card = _card(admin_client, op)
    assert 'data-state="running"' in card
    assert "Argo CD (paused) unreachable since" in card and "still checking" in card
    # Stay paused past the time the operation used to give up after; the scenario, not an assertion.
    time.sleep(max(0.0, OLD_GIVE_UP_SECONDS + 5 - (time.monotonic() - paused_at)))
    op.refresh_from_db()
    assert op.state == Operation.State.RUNNING, op.error
    os.kill(proc.pid, signal.SIGCONT)

    op = final(op, timeout=60)
    assert op.state == Operation.State.SUCCEEDED, op.error
    assert (op.argocd_phase, op.result["phase"]) == ("Succeeded", "Succeeded")
    assert "unreachable" not in op.message
    assert _argocd_record(url, token, name) == (history_id + 1, started + 1)
    assert _audit_trail(op) == ["started", "succeeded"]
    card = _card(admin_client, op)
    assert 'data-state="succeeded"' in card and "still checking" not in card


def test_argocd_unreachable_past_the_grace_ends_result_unknown_and_the_card_agrees_with_itself(
    workers, make_sim, register, submit, admin_user, admin_client, sim_app
):
    workers.start(env={"OPERATION_UNREACHABLE_GRACE": "2"})
    sim = make_sim(name="sim-down", sync_seconds=60.0)
    instance = register(sim)
    name, project = sim_app(sim)
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)
    wait_for(lambda: Operation.objects.filter(pk=op.pk, argocd_phase="Running").exists(), timeout=20)

    sim.stop()
    op = final(op, timeout=40)

    assert op.state == Operation.State.FAILED
    assert op.error.startswith("Result unknown: sim-down has been unreachable since "), op.error
    assert op.argocd_phase == "Unknown"
    assert "still" not in op.message and "Stopped checking" in op.message
    card = _card(admin_client, op)
    assert 'data-state="failed"' in card
    assert "Running" not in card and "still checking" not in card and "still trying" not in card
    assert AuditEvent.objects.filter(operation_id=op.pk, outcome="failed", error=op.error).exists()


# ---------------------------------------------------------------- 9: a sync or rollback whose answer is lost


@pytest.mark.parametrize(
    ("after", "note"),
    [(False, "had not started it: sent again"), (True, "had started it, so it was not sent again")],
    ids=["502-before-applying", "502-after-applying"],
)
def test_a_sync_post_answered_502_runs_exactly_one_sync(
    after, note, worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=1.0)
    instance = register(sim)
    name, project = sim_app(sim)
    token = sim.portal_token()
    history_id, started = _argocd_record(sim.url, token, name)
    sim.faults.lose_answers("/sync", 1, after=after)

    op = final(submit(admin_user, kind="sync", instance=instance, project=project, target=name))

    assert op.state == Operation.State.SUCCEEDED, op.error
    assert sim.faults.bad_gateway_times == 0, "the 502 was served"
    assert note in op.result["note"] and "HTTP 502" in op.result["note"]
    assert _argocd_record(sim.url, token, name) == (history_id + 1, started + 1)
    infos = {i["name"]: i["value"] for i in live_app(sim, name)["status"]["operationState"]["operation"]["info"]}
    assert infos["portal-operation"] == str(op.pk)
    assert _audit_trail(op) == ["started", "succeeded"]
    assert note in AuditEvent.objects.get(operation_id=op.pk, outcome="succeeded").request["result"]["note"]


def test_a_sync_post_that_never_gets_an_answer_gives_up_and_says_nothing_was_started(
    worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim()
    instance = register(sim)
    name, project = sim_app(sim)
    token = sim.portal_token()
    before = _argocd_record(sim.url, token, name)
    sim.faults.lose_answers("/sync", 10)

    op = final(submit(admin_user, kind="sync", instance=instance, project=project, target=name), timeout=60)

    assert op.state == Operation.State.FAILED
    assert "got no answer 3 times" in op.error and "nothing was started" in op.error, op.error
    assert sim.faults.bad_gateway_times == 7
    assert _argocd_record(sim.url, token, name) == before
    assert _audit_trail(op) == ["started", "failed"]


@pytest.mark.parametrize("after", [False, True], ids=["502-before-applying", "502-after-applying"])
def test_a_rollback_post_answered_502_runs_exactly_one_rollback(
    after, worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=1.0)
    instance = register(sim)
    name, project = sim_app(sim, min_history=2)
    token = sim.portal_token()
    oldest = live_app(sim, name)["status"]["history"][0]
    history_id, started = _argocd_record(sim.url, token, name)
    sim.faults.lose_answers("/rollback", 1, after=after)

    op = final(submit(admin_user, kind="rollback", instance=instance, project=project, target=name,
                      params={"id": oldest["id"]}))  # fmt: skip

    assert op.state == Operation.State.SUCCEEDED, op.error
    assert op.result["revision"] == oldest["revision"]
    assert ("not sent again" in op.result["note"]) is after
    assert _argocd_record(sim.url, token, name) == (history_id + 1, started + 1)
    assert live_app(sim, name)["status"]["history"][-1]["revision"] == oldest["revision"]
    assert _audit_trail(op) == ["started", "succeeded"]


# ---------------------------------------------------------------- the pieces, without a worker


class _Flaky:
    """A client whose first `failures` reads find Argo CD unreachable, then answer `app`."""

    def __init__(self, failures: int, app: dict) -> None:
        self.failures, self.app = failures, app

    def get_application(self, name: str, **scope) -> dict:
        from apps.argocd import errors

        if self.failures:
            self.failures -= 1
            raise errors.Unavailable("no answer within 10s", instance="sim", method="GET", path="/x")
        return self.app


def test_a_rerun_whose_first_read_finds_argocd_unreachable_keeps_checking_instead_of_failing(monkeypatch):
    from apps.operations import runners

    monkeypatch.setattr(runners, "POLL_SECONDS", 0.01)
    op = Operation.objects.create(kind="sync", state="running", attempts=2, target="a", instance_name="sim")
    app = {"status": {"operationState": {"phase": "Running"}}}

    assert runners._first_read(op, _Flaky(3, app)) == app
    op.refresh_from_db()
    assert "unreachable since" in op.message and "still checking" in op.message

    first = Operation.objects.create(kind="sync", state="running", attempts=1, target="a", instance_name="sim")
    with pytest.raises(runners.OperationFailed, match="sim is unavailable"):
        runners._first_read(first, _Flaky(1, app))  # nothing was sent yet: fail at once


def test_an_operation_ended_while_argocd_showed_it_running_does_not_end_with_running_or_still_checking():
    from apps.operations.services import finish

    op = Operation.objects.create(
        kind="sync", state="running", attempts=1, target="a", argocd_phase="Running",
        message="Argo CD unreachable since 10:00:00 UTC (no answer): the result unknown, still checking.",
    )  # fmt: skip

    assert finish(op, Operation.State.FAILED, error="Gave up: still running after 3900 s.")

    op.refresh_from_db()
    assert op.argocd_phase == "Unknown"
    assert op.message == "Ended without Argo CD's result (last seen: Running)."
    event = AuditEvent.objects.get(operation_id=op.pk, outcome="failed")
    assert event.request["argocd_phase"] == "Unknown"
