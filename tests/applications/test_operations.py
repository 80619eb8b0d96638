"""Sync, rollback and terminate start Operations; resource actions and deletes act at once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.operations.models import Operation

from .conftest import wait_for

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def u(view, instance, name):
    return reverse(f"applications:{view}", args=[instance.name, name])


def sync_form(nonce="0f4c6a3e9d8b4f1a8c2e7b5d3a1f9e6c", **extra):
    return {
        "nonce": nonce,
        "strategy": "hook",
        "backoff_duration": "5s",
        "backoff_factor": "2",
        "backoff_max_duration": "3m",
        **extra,
    }


def test_sync_over_htmx_answers_with_the_operation_card(admin_client, instance, fresh_app):
    name = fresh_app()
    data = sync_form(
        prune="on",
        sync_options=["CreateNamespace=true"],
        prune_propagation="background",
        retry_limit="2",
        resources=["apps/Deployment/payments-dev/api"],
    )
    response = admin_client.post(u("sync", instance, name), data, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'class="op-card"' in body
    # A fresh nonce replaces the form's, so the same dialog can start another sync later.
    assert 'id="id_nonce"' in body and 'hx-swap-oob="true"' in body and "0f4c6a3e9d8b4f1a8c2e7b5d3a1f9e6c" not in body
    op = Operation.objects.get()
    assert (op.kind, op.target, op.project, op.instance_name) == ("sync", name, "payments", instance.name)
    assert op.params["prune"] is True and op.params["strategy"] == "hook"
    assert op.params["syncOptions"] == ["CreateNamespace=true", "PrunePropagationPolicy=background"]
    assert op.params["retryStrategy"] == {"limit": 2, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
    assert op.params["resources"] == [
        {"group": "apps", "kind": "Deployment", "namespace": "payments-dev", "name": "api"}
    ]
    assert AuditEvent.objects.filter(action="sync", outcome="started", name=name).count() == 1


def test_a_double_submitted_sync_form_makes_one_operation(admin_client, instance, fresh_app):
    name = fresh_app()
    first = admin_client.post(u("sync", instance, name), sync_form())
    second = admin_client.post(u("sync", instance, name), sync_form())
    assert Operation.objects.count() == 1
    op = Operation.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/operations/{op.pk}/"


def test_a_sync_form_with_a_bad_backoff_is_refused_and_starts_nothing(admin_client, instance, fresh_app):
    name = fresh_app()
    response = admin_client.post(u("sync", instance, name), sync_form(backoff_duration="five seconds"))
    assert response.status_code == 200
    assert b"Go duration" in response.content
    response = admin_client.post(u("sync", instance, name), sync_form(backoff_duration="5 s"), **HX)
    assert response.status_code == 200 and b"<html" not in response.content
    assert b"Sync not started" in response.content and b"Backoff duration: Use a Go duration" in response.content
    assert not Operation.objects.exists()


def test_rollback_is_refused_up_front_while_automated_sync_is_on(admin_client, instance, fresh_app, argocd):
    name = fresh_app(automated=True)
    response = admin_client.post(u("rollback", instance, name), {"id": "0", "nonce": "a" * 32}, **HX)
    assert response.status_code == 200
    assert b"automated sync on" in response.content
    assert not Operation.objects.exists()
    assert AuditEvent.objects.exclude(outcome="started").get(action="rollback", name=name).outcome == "failed"


def test_rollback_to_a_history_entry_starts_a_rollback_operation(admin_client, instance, seed_apps):
    app = next(
        a
        for a in seed_apps.values()
        if a["status"].get("history") and not (a["spec"].get("syncPolicy") or {}).get("automated")
    )
    entry = app["status"]["history"][0]
    data = {"id": str(entry["id"]), "prune": "on", "nonce": "b" * 32}
    response = admin_client.post(u("rollback", instance, app["metadata"]["name"]), data)
    op = Operation.objects.get()
    assert response.status_code == 302 and op.kind == "rollback"
    assert op.params == {"id": entry["id"], "prune": True, "dryRun": False}


def test_terminate_starts_a_terminate_operation(admin_client, instance, fresh_app):
    name = fresh_app()
    response = admin_client.post(u("terminate", instance, name), {"nonce": "c" * 32}, **HX)
    assert response.status_code == 200
    assert Operation.objects.get().kind == "terminate"


def test_running_the_scale_action_changes_the_live_deployment(admin_client, instance, synced_app, argocd):
    name = synced_app()
    target = {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "namespace": "payments-dev",
        "resource_name": "api",
    }
    response = admin_client.post(
        u("resource", instance, name), {**target, "action": "scale", "param_replicas": "5", "run_action": ""}, **HX
    )
    assert response.status_code == 200
    assert b"Ran scale on Deployment api" in response.content and b"<html" not in response.content
    live = argocd.get_resource(
        name, resource_name="api", version="v1", kind="Deployment", group="apps", namespace="payments-dev"
    )
    assert live["spec"]["replicas"] == 5
    event = AuditEvent.objects.exclude(outcome="started").get(action="action", name=name)
    assert event.outcome == "succeeded" and event.request["parameters"] == {"replicas": "5"}


def test_an_action_argocd_refuses_shows_its_message(admin_client, instance, synced_app):
    name = synced_app()
    target = {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "namespace": "payments-dev",
        "resource_name": "nope",
    }
    response = admin_client.post(u("resource", instance, name), {**target, "action": "restart", "run_action": ""}, **HX)
    assert response.status_code == 200
    assert b'class="flash flash-error"' in response.content
    assert AuditEvent.objects.exclude(outcome="started").get(action="action", name=name).outcome == "failed"


def test_deleting_a_resource_removes_it_from_the_tree(admin_client, instance, synced_app, argocd):
    name = synced_app()
    target = {
        "group": "",
        "version": "v1",
        "kind": "ConfigMap",
        "namespace": "payments-dev",
        "resource_name": "api-config",
    }
    assert any(n["kind"] == "ConfigMap" for n in argocd.get_resource_tree(name)["nodes"])
    response = admin_client.post(u("resource", instance, name), {**target, "orphan": "on", "delete_resource": ""})
    assert response.status_code == 302 and response["Location"].endswith("?tab=actions")
    assert not any(n["kind"] == "ConfigMap" for n in argocd.get_resource_tree(name)["nodes"])
    event = AuditEvent.objects.exclude(outcome="started").get(action="delete_resource", name=name)
    assert event.outcome == "succeeded" and event.request["orphan"] is True


@pytest.mark.celery
def test_a_sync_started_from_the_page_runs_to_completion(client, admin_user, celery_worker, sim, argocd, fresh_app):
    from apps.instances.models import Instance

    client.force_login(admin_user)
    instance = Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)
    name = fresh_app()
    response = client.post(u("sync", instance, name), sync_form(nonce="d" * 32), **HX)
    assert response.status_code == 200
    op = Operation.objects.get()
    try:
        wait_for(lambda: Operation.objects.get(pk=op.pk).is_final, timeout=30)
    finally:
        op.refresh_from_db()
    assert op.state == "succeeded", (op.state, op.message, op.error)
    assert argocd.get_application(name)["status"]["sync"]["status"] == "Synced"
