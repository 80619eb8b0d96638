"""Every endpoint of /api/ against the simulator: the same services as the pages, JSON errors with codes."""

from __future__ import annotations

import json
import uuid

import pytest
from openapi_spec_validator import validate

from apps.audit.models import AuditEvent
from apps.identity.tokens import ApiToken
from apps.index.indexer import resync
from apps.operations.models import Operation

pytestmark = pytest.mark.django_db


def app_url(instance, name, action=""):
    return f"/api/applications/{instance.name}/{name}" + (f"/{action}" if action else "")


def index(instance):
    with instance.client() as client:
        resync(instance.pk, client)


def test_the_openapi_document_validates_and_the_docs_page_answers(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    validate(document)
    assert {"/api/applications", "/api/operations/{op_id}", "/api/bulk-sync", "/api/audit"} <= set(document["paths"])
    assert {"/api/audit/export.csv", "/api/audit/export.jsonl"} <= set(document["paths"])
    assert client.get("/api/docs").status_code == 200


def test_the_list_is_the_index_with_the_pages_filters_sort_and_paging(alice, make_token, api, instance, grant):
    grant(alice, ["view"], project="payments")
    index(instance)
    token = api(make_token(alice))
    body = token.get("/api/applications", sort="-name").json()
    names = [row["name"] for row in body["items"]]
    assert body["total"] > 0 and names == sorted(names, reverse=True)
    assert {row["project"] for row in body["items"]} == {"payments"}
    assert {row["instance"] for row in body["items"]} == {instance.name}
    search = token.get("/api/applications", project="search").json()
    assert search["total"] == 0 and search["items"] == []
    narrow = api(make_token(alice, app="*-dev")).get("/api/applications").json()
    assert 0 < narrow["total"] < body["total"] and all(r["name"].endswith("-dev") for r in narrow["items"])
    bad = token.get("/api/applications", selector="a in (")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid"


def test_the_detail_is_read_live_and_says_what_the_caller_may_do(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["view", "sync"])
    name = fresh_app()
    body = api(make_token(alice, ["view", "sync"])).get(app_url(instance, name)).json()
    assert (body["name"], body["project"], body["instance"]) == (name, "payments", instance.name)
    assert body["summary"]["sync_status"] in ("Synced", "OutOfSync", "Unknown")
    assert body["permissions"]["sync"] is True and body["permissions"]["rollback"] is False


def test_unknown_things_answer_json_not_found(alice, make_token, api, instance, grant):
    grant(alice, ["view"])
    token = api(make_token(alice))
    for path in (app_url(instance, "no-such-app"), "/api/applications/no-such-instance/x", "/api/operations/999999"):
        response = token.get(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found", path
        assert response.json()["message"]


def test_bad_input_answers_json_invalid_and_starts_nothing(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["sync"])
    name = fresh_app()
    token = api(make_token(alice, ["sync"]))
    response = token.post(app_url(instance, name, "sync"), {"prune": "maybe", "idempotency_key": "x"})
    assert response.status_code == 422 and response.json()["code"] == "invalid"
    assert "idempotency_key" in response.json()["message"]
    assert token.get("/api/operations/1", wait=31).json()["code"] == "invalid"
    assert not Operation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_ci_job_syncs_and_waits_for_the_result(alice, make_token, api, instance, grant, fresh_app, celery_worker):
    grant(alice, ["sync"])
    name = fresh_app()
    secret = make_token(alice, ["sync"])
    token = api(secret)
    key = str(uuid.uuid4())
    started = token.post(app_url(instance, name, "sync"), {"prune": True, "idempotency_key": key})
    assert started.status_code == 202, started.content
    op = started.json()
    assert (op["kind"], op["target"], op["state"], op["params"]["prune"]) == ("sync", name, "queued", True)
    again = token.post(app_url(instance, name, "sync"), {"prune": True, "idempotency_key": key}).json()
    assert again["id"] == op["id"] and Operation.objects.count() == 1  # a retried CI step is one sync
    for _ in range(10):
        status = token.get(f"/api/operations/{op['id']}", wait=30).json()
        if status["done"]:
            break
    assert status["state"] == "succeeded", status
    event = AuditEvent.objects.get(operation_id=op["id"], outcome="started")
    assert event.actor == "alice" and event.request["api_key_id"] == ApiToken.objects.get().pk


def test_terminate_and_rollback_go_through_the_same_checks(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["rollback", "terminate"])
    name = fresh_app(automated=True)
    token = api(make_token(alice, ["rollback", "terminate"]))
    stopped = token.post(app_url(instance, name, "terminate"))
    assert stopped.status_code == 202 and stopped.json()["kind"] == "terminate"
    refused = token.post(app_url(instance, name, "rollback"), {"id": 0})
    assert refused.status_code == 409 and refused.json()["code"] == "conflict"
    assert "automated sync" in refused.json()["message"]
    assert AuditEvent.objects.filter(action="rollback", outcome="failed", name=name).exists()
    assert not Operation.objects.filter(kind="rollback").exists()


def test_rollback_to_a_history_entry_starts_an_operation(alice, make_token, api, instance, grant, fresh_app, argocd):
    grant(alice, ["rollback"])
    name = fresh_app()
    argocd.sync_application(name)
    from .conftest import wait_for

    history = wait_for(lambda: (argocd.get_application(name).get("status") or {}).get("history"))
    response = api(make_token(alice, ["rollback"])).post(app_url(instance, name, "rollback"), {"id": history[0]["id"]})
    assert response.status_code == 202 and response.json()["params"]["id"] == history[0]["id"]


def test_bulk_sync_starts_what_is_allowed_and_lists_refusals(alice, make_token, api, instance, grant, fresh_app):
    grant(alice, ["sync"], project="payments")
    grant(alice, ["view"], project="search")
    mine, theirs = fresh_app(), fresh_app(project="search")
    index(instance)
    token = api(make_token(alice, ["sync"]))
    body = {"applications": [f"{instance.name}/{mine}", f"{instance.name}/{theirs}"], "limit": 2}
    response = token.post("/api/bulk-sync", body)
    assert response.status_code == 202, response.content
    parent = Operation.objects.get(pk=response.json()["operation"]["id"])
    assert parent.kind == "bulk_sync" and [c.target for c in parent.children.all()] == [mine]
    assert response.json()["refused"] == [{"application": f"{instance.name}/{theirs}", "reason": "you may not sync it"}]
    nothing = token.post("/api/bulk-sync", {"applications": [f"{instance.name}/{theirs}"]})
    assert nothing.status_code == 403 and nothing.json()["code"] == "forbidden"


def test_audit_query_shows_what_the_audit_page_would(alice, bob, make_token, api, instance, grant):
    grant(alice, ["view"], project="payments")
    from apps.audit.service import record

    record(None, action="sync", outcome="succeeded", user=bob, instance=instance.name, kind="application",
           project="payments", name="pay-api")  # fmt: skip
    record(None, action="sync", outcome="succeeded", user=bob, instance=instance.name, kind="application",
           project="search", name="search-api")  # fmt: skip
    token = api(make_token(alice))
    names = [e["name"] for e in token.get("/api/audit", actor="bob").json()["items"]]
    assert names == ["pay-api"]
    first = token.get("/api/audit", actor="bob", outcome="succeeded").json()
    assert first["next_before"] is None
    bad = token.get("/api/audit", **{"from": "yesterday"}).json()
    assert bad["notes"] and "not a date" in bad["notes"][0]


def test_audit_exports_hold_only_the_owners_visible_events_and_are_audited_with_the_token(
    alice, bob, make_token, api, instance, grant
):
    from apps.audit.service import record
    from tests.audit.test_pages import export_rows

    grant(alice, ["view"], project="payments")
    seen = record(None, action="sync", outcome="succeeded", user=bob, instance=instance.name, kind="application",
                  project="payments", name="pay-api", error="=HYPERLINK(1)")  # fmt: skip
    record(None, action="sync", outcome="succeeded", user=bob, instance=instance.name, kind="application",
           project="search", name="search-api")  # fmt: skip
    secret = make_token(alice)
    token = api(secret)
    csv_response = token.get("/api/audit/export.csv", actor="bob")
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    rows = export_rows(csv_response)
    assert [r["name"] for r in rows] == ["pay-api"] and int(rows[0]["id"]) == seen.id
    assert rows[0]["error"] == "'=HYPERLINK(1)"  # formula-safe, as on the page
    exported = AuditEvent.objects.get(action="export", actor="alice")
    api_key_id = ApiToken.objects.get(user=alice).pk
    assert exported.request["api_key_id"] == api_key_id
    assert exported.request["format"] == "csv" and exported.request["filters"] == "actor=bob"
    assert exported.request["through_id"] == seen.id

    lines = export_rows(token.get("/api/audit/export.jsonl", instance=instance.name))
    names = {r["name"] for r in lines}
    assert "search-api" not in names and "pay-api" in names
    assert secret not in json.dumps(lines)
    assert AuditEvent.objects.filter(action="export", actor="alice", request__format="jsonl").count() == 1
    assert api("acp_nope").get("/api/audit/export.csv").status_code == 401


def test_a_change_window_holds_for_the_api_as_for_the_pages(alice, make_token, api, instance, grant, fresh_app):
    from datetime import timedelta

    from apps.governance.models import ChangeWindow

    ChangeWindow.objects.create(
        name="freeze", kind="deny", rrule="DTSTART:20260101T000000\nRRULE:FREQ=DAILY", duration=timedelta(days=1),
        actions=["sync"],
    )  # fmt: skip
    grant(alice, ["view", "sync"])
    name = fresh_app()
    response = api(make_token(alice, ["view", "sync"])).post(app_url(instance, name, "sync"), {})
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert "blocked by window freeze" in response.json()["message"]
    assert not Operation.objects.exists()
    assert AuditEvent.objects.filter(action="sync", outcome="denied", name=name, actor="alice").exists()
