"""Sync, rollback and terminate as operations, run by a real Celery worker against a simulated Argo CD."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.operations.models import Operation

from .conftest import final, live_app, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _infos(app: dict) -> dict[str, str]:
    state = app["status"].get("operationState") or {}
    return {i["name"]: i["value"] for i in (state.get("operation") or {}).get("info") or []}


def test_sync_goes_from_queued_to_succeeded_and_argocd_history_points_back_to_the_portal(
    worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=3.0)
    instance = register(sim)
    name, project = sim_app(sim)
    history_before = len(live_app(sim, name)["status"].get("history") or [])

    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name, params={"prune": True})
    assert op.state == Operation.State.QUEUED
    started = AuditEvent.objects.get(operation_id=op.pk, outcome="started")
    assert (started.action, started.instance, started.name) == ("sync", sim.name, name)
    assert started.request == {"prune": True}

    seen = set()

    def running_with_progress():
        op.refresh_from_db()
        seen.add(op.state)
        return op.state == "running" and op.argocd_phase == "Running"

    wait_for(running_with_progress, timeout=15, what="the sync to run in Argo CD")
    lengths = []

    def over():
        op.refresh_from_db()
        lengths.append(len(op.resources or []))
        return op.is_final

    wait_for(over, timeout=30, what="the sync to end")
    op = final(op)
    assert op.state == Operation.State.SUCCEEDED, op.error
    assert "running" in seen
    # The card's list grows as Argo CD reports each phase and wave: PreSync hook first, then the waves.
    assert any(0 < n < len(op.resources) for n in lengths), lengths
    first = op.resources[0]
    assert (first["syncPhase"], first["hookType"], first["hookPhase"]) == ("PreSync", "PreSync", "Succeeded")
    assert [r["kind"] for r in op.resources if r["syncPhase"] == "Sync"] == ["ConfigMap", "Service", "Deployment"]
    assert op.progress == 100 and op.argocd_phase == "Succeeded"
    assert op.resources and all(r["status"] in ("Synced", "Pruned") for r in op.resources)
    assert op.result["phase"] == "Succeeded" and op.result["revision"] and op.result["finishedAt"]
    assert op.started_at and op.finished_at and op.heartbeat_at and op.attempts == 1

    app = live_app(sim, name)
    assert len(app["status"]["history"]) == min(history_before + 1, 10)
    assert app["status"]["history"][-1]["revision"] == op.result["revision"]
    assert _infos(app) == {"portal-user": "root", "portal-audit-event": str(started.pk), "portal-operation": str(op.pk)}

    ended = AuditEvent.objects.get(operation_id=op.pk, outcome="succeeded")
    assert (ended.actor, ended.action, ended.error) == ("root", "sync", "")


def test_sync_that_argocd_fails_ends_failed_with_argocds_message(
    worker, make_sim, register, submit, admin_user, failing_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, project = failing_app(sim)

    op = final(submit(admin_user, kind="sync", instance=instance, project=project, target=name))

    assert op.state == Operation.State.FAILED
    assert op.argocd_phase == "Failed"
    assert "one or more objects failed to apply" in op.error
    assert any(r["status"] == "SyncFailed" for r in op.resources)
    event = AuditEvent.objects.get(operation_id=op.pk, outcome="failed")
    assert event.error == op.error


def test_rollback_redeploys_a_history_entry(worker, make_sim, register, submit, admin_user, sim_app):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, project = sim_app(sim, min_history=2)
    history = live_app(sim, name)["status"]["history"]
    oldest = history[0]
    assert oldest["revision"] != history[-1]["revision"]

    op = final(submit(admin_user, kind="rollback", instance=instance, project=project, target=name,
                      params={"id": oldest["id"], "prune": False}))  # fmt: skip

    assert op.state == Operation.State.SUCCEEDED, op.error
    assert op.result["revision"] == oldest["revision"]
    app = live_app(sim, name)
    assert app["status"]["history"][-1]["revision"] == oldest["revision"]
    assert AuditEvent.objects.filter(operation_id=op.pk, action="rollback", outcome="succeeded").exists()


def test_rollback_to_a_history_id_argocd_does_not_have_fails_with_its_message(
    worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim()
    instance = register(sim)
    name, project = sim_app(sim)

    op = final(submit(admin_user, kind="rollback", instance=instance, project=project, target=name, params={"id": 999}))

    assert op.state == Operation.State.FAILED
    assert op.error.startswith(f"{sim.name}: ") and "999" in op.error


def test_terminate_from_the_operation_page_stops_a_running_sync(
    worker, make_sim, register, submit, admin_user, admin_client, sim_app
):
    sim = make_sim(sync_seconds=6.0)
    instance = register(sim)
    name, project = sim_app(sim)
    sync = submit(admin_user, kind="sync", instance=instance, project=project, target=name)

    def running_in_argocd():
        sync.refresh_from_db()
        return sync.argocd_phase == "Running"

    wait_for(running_in_argocd, timeout=15, what="the sync to run in Argo CD")
    page = admin_client.get(f"/operations/{sync.pk}/")
    assert b'name="terminate"' in page.content

    response = admin_client.post(f"/operations/{sync.pk}/", {"terminate": "1"})

    assert response.status_code == 302
    terminate = Operation.objects.get(kind="terminate", target=name)
    assert response["Location"] == f"/operations/{terminate.pk}/"
    terminate = final(terminate)
    sync = final(sync)
    assert terminate.state == Operation.State.SUCCEEDED, terminate.error
    assert terminate.result["message"] == "Operation terminated"
    assert sync.state == Operation.State.CANCELLED
    assert sync.error == "Operation terminated"
    assert AuditEvent.objects.filter(operation_id=sync.pk, outcome="failed", error="Operation terminated").exists()
    assert AuditEvent.objects.filter(operation_id=terminate.pk, action="terminate", outcome="succeeded").exists()


def test_the_same_idempotency_key_twice_is_one_operation(worker, make_sim, register, submit, admin_user, sim_app):
    sim = make_sim(sync_seconds=0.3)
    instance = register(sim)
    name, project = sim_app(sim)

    first = submit(admin_user, kind="sync", instance=instance, project=project, target=name, idempotency_key="k-1")
    second = submit(admin_user, kind="sync", instance=instance, project=project, target=name, idempotency_key="k-1")

    assert first.pk == second.pk
    assert Operation.objects.count() == 1
    assert AuditEvent.objects.filter(action="sync", outcome="started").count() == 1
    assert final(first).state == Operation.State.SUCCEEDED


def test_card_polls_while_running_and_answers_286_with_a_fragment_once_final(
    worker, make_sim, register, submit, admin_user, admin_client, sim_app
):
    sim = make_sim(sync_seconds=1.5)
    instance = register(sim)
    name, project = sim_app(sim)
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)

    live = admin_client.get(f"/operations/{op.pk}/card", headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert b'hx-trigger="every 1s"' in live.content and b"<html" not in live.content
    assert b"<progress" in live.content

    final(op)
    done = admin_client.get(f"/operations/{op.pk}/card", headers={"HX-Request": "true"})
    assert done.status_code == 286
    assert b"<html" not in done.content and b"hx-trigger" not in done.content
    assert b"hx-swap-oob" not in done.content  # an application page has no operation buttons to empty
    done = admin_client.get(f"/operations/{op.pk}/card?actions=1", headers={"HX-Request": "true"})
    assert f'id="op-{op.pk}-actions" hx-swap-oob="true"'.encode() in done.content  # the operation page's go
    assert b"Succeeded" in done.content and name.encode() in done.content


def test_an_operation_on_a_disabled_instance_fails_with_a_clear_message(worker, make_sim, register, submit, admin_user):
    sim = make_sim()
    instance = register(sim)
    instance.enabled = False
    instance.save()

    op = final(submit(admin_user, kind="sync", instance=instance, project="default", target="whatever"))

    assert op.state == Operation.State.FAILED
    assert "disabled" in op.error


def test_sync_of_an_application_argocd_does_not_have_fails_with_a_not_found_message(
    worker, make_sim, register, submit, admin_user
):
    sim = make_sim()
    instance = register(sim)

    op = final(submit(admin_user, kind="sync", instance=instance, project="default", target="no-such-app"))

    assert op.state == Operation.State.FAILED
    assert op.error.startswith(f"{sim.name}: ") and "not found" in op.error


def test_terminate_when_nothing_runs_fails_with_argocds_message(
    worker, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim()
    instance = register(sim)
    name, project = sim_app(sim)

    op = final(submit(admin_user, kind="terminate", instance=instance, project=project, target=name))

    assert op.state == Operation.State.FAILED
    assert "No operation is in progress" in op.error


def test_a_sync_followed_at_once_by_another_operation_reports_its_own_result(
    worker, make_sim, register, submit, admin_user, sim_app
):
    # Ours succeeds; before the worker's next look, somebody else's sync starts and fails. The portal must
    # not report that one as ours: it reads its own result from Argo CD's history.
    from apps.argocd import ArgoCDClient

    sim = make_sim(sync_seconds=0.6)
    instance = register(sim)
    name, project = sim_app(sim)
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name, params={})

    def ours_ended_then_arm_failure():
        with sim.state.lock:
            rec = next(r for r in sim.state.apps.values() if r.name == name)
            state = rec.obj["status"].get("operationState") or {}
            infos = {i["name"]: i["value"] for i in (state.get("operation") or {}).get("info") or []}
            if (
                rec.obj.get("operation")
                or state.get("phase") != "Succeeded"
                or infos.get("portal-operation") != str(op.pk)
            ):
                return False
            rec.fail_sync = True  # the next sync of this app fails
            return True

    wait_for(ours_ended_then_arm_failure, timeout=20, interval=0.005, what="our sync to end in Argo CD")
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
        client.sync_application(name, infos={"portal-operation": "somebody-else"})

    op = final(op)
    assert op.state == Operation.State.SUCCEEDED, op.error
    assert op.result["phase"] == "Succeeded" and op.result["revision"]
    assert wait_for(lambda: (live_app(sim, name)["status"].get("operationState") or {}).get("phase") == "Failed")
