"""Operation pages: who sees which operations, bulk sync from the application list, terminate permission."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.operations.models import Operation
from apps.teams.models import Membership, Team


@pytest.fixture
def instance(db):
    return Instance.objects.create(name="prod", url="http://127.0.0.1:9", token="t")


@pytest.fixture
def indexed(instance):
    now = timezone.now()
    for project, name in [("payments", "payments-api"), ("payments", "payments-web"), ("search", "search-api")]:
        ApplicationSummary.objects.create(instance=instance, project=project, name=name, seen_at=now)


def grant(user, *, actions: list[str], project: str = "payments", app: str = "*") -> None:
    team, _ = Team.objects.get_or_create(name=project, slug=project)
    Membership.objects.get_or_create(team=team, user=user)
    Grant.objects.create(team=team, instance_glob="prod", project_glob=project, app_glob=app, actions=actions)


def operation(instance, project: str, target: str, **fields) -> Operation:
    return Operation.objects.create(
        kind="sync", instance=instance, instance_name=instance.name, project=project, target=target, **fields
    )


def test_member_without_sync_cannot_bulk_sync_and_the_denial_is_audited(client, alice, indexed):
    grant(alice, actions=["view"])
    client.force_login(alice)

    response = client.post("/operations/bulk-sync/", {"app": ["prod/payments-api", "prod/payments-web"]})

    assert response.status_code == 403
    assert b"you may not sync it" in response.content
    assert Operation.objects.count() == 0
    denied = AuditEvent.objects.filter(outcome="denied", action="sync", actor="alice")
    assert sorted(denied.values_list("name", flat=True)) == ["payments-api", "payments-web"]


def test_bulk_sync_starts_children_only_for_permitted_apps_and_reports_the_rest(client, alice, indexed):
    grant(alice, actions=["sync"])
    client.force_login(alice)

    response = client.post(
        "/operations/bulk-sync/",
        {"app": ["prod/payments-api", "prod/search-api", "prod/nope"], "limit": "2", "prune": "on"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert b"<html" not in response.content
    parent = Operation.objects.get(kind="bulk_sync")
    assert parent.params["limit"] == 2 and parent.params["prune"] is True
    assert [(c.instance_name, c.project, c.target) for c in parent.children.all()] == [
        ("prod", "payments", "payments-api")
    ]
    assert b"prod/search-api" in response.content and b"prod/nope" in response.content
    assert f'id="op-{parent.pk}"'.encode() in response.content
    denied = AuditEvent.objects.filter(outcome="denied", actor="alice").values_list("name", flat=True)
    assert sorted(denied) == ["nope", "search-api"]


def test_bulk_sync_with_nothing_selected_says_so(admin_client, db):
    response = admin_client.post("/operations/bulk-sync/", {})

    assert response.status_code == 400
    assert b"Select at least one application" in response.content


def test_bulk_sync_needs_post(admin_client, db):
    assert admin_client.get("/operations/bulk-sync/").status_code == 405


def test_member_sees_operations_on_apps_they_may_view_and_admin_sees_all(client, admin_user, alice, instance):
    grant(alice, actions=["view"])
    mine = operation(instance, "payments", "payments-api")
    other = operation(instance, "search", "search-api", state="failed", error="boom")
    client.force_login(alice)

    listing = client.get("/operations/")

    assert listing.status_code == 200
    assert f'href="/operations/{mine.pk}/"'.encode() in listing.content
    assert f'href="/operations/{other.pk}/"'.encode() not in listing.content
    assert client.get(f"/operations/{other.pk}/").status_code == 404
    assert client.get(f"/operations/{other.pk}/card").status_code == 404
    assert client.get(f"/operations/{mine.pk}/").status_code == 200
    client.force_login(admin_user)
    everything = client.get("/operations/")
    assert f'href="/operations/{other.pk}/"'.encode() in everything.content


def test_operation_list_filters_by_state_and_answers_htmx_with_the_rows_fragment(admin_client, instance):
    ok = operation(instance, "payments", "payments-api", state="succeeded")
    bad = operation(instance, "payments", "payments-web", state="failed")

    response = admin_client.get("/operations/?state=failed", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert b"<html" not in response.content and b'id="op-rows"' in response.content
    assert f'href="/operations/{bad.pk}/"'.encode() in response.content
    assert f'href="/operations/{ok.pk}/"'.encode() not in response.content


def test_queued_card_polls_every_second(admin_client, instance):
    op = operation(instance, "payments", "payments-api")

    response = admin_client.get(f"/operations/{op.pk}/card", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert b'hx-trigger="every 1s"' in response.content and b"<html" not in response.content


def test_argocd_text_in_a_card_is_escaped(admin_client, instance):
    rows = [{"kind": "Deployment", "name": "<b>x</b>", "status": "SyncFailed", "message": "m"}]
    error = "<script>alert(1)</script>"
    op = operation(instance, "payments", "payments-api", state="failed", error=error, resources=rows)

    response = admin_client.get(f"/operations/{op.pk}/card")

    assert response.status_code == 286
    assert b"<script>alert" not in response.content and b"&lt;script&gt;" in response.content
    assert b"<b>x</b>" not in response.content


def test_member_who_may_view_but_not_terminate_gets_no_button_and_a_403(client, alice, instance):
    grant(alice, actions=["view", "sync"])
    op = operation(instance, "payments", "payments-api", state="running")
    client.force_login(alice)

    page = client.get(f"/operations/{op.pk}/")
    assert page.status_code == 200 and b'name="terminate"' not in page.content

    response = client.post(f"/operations/{op.pk}/", {"terminate": "1"})

    assert response.status_code == 403
    assert not Operation.objects.filter(kind="terminate").exists()
    assert AuditEvent.objects.filter(outcome="denied", action="terminate", actor="alice").exists()


def test_member_who_may_terminate_sees_the_button(client, alice, instance):
    grant(alice, actions=["terminate"])
    op = operation(instance, "payments", "payments-api", state="running")
    client.force_login(alice)

    page = client.get(f"/operations/{op.pk}/")

    assert b'name="terminate"' in page.content and b"<dialog" in page.content


def test_bulk_parent_page_lists_its_children(admin_client, admin_user, instance):
    parent = Operation.objects.create(kind="bulk_sync", target="2 applications", requested_by=admin_user)
    child = operation(instance, "payments", "payments-api", parent=parent)

    page = admin_client.get(f"/operations/{parent.pk}/")
    rows = admin_client.get(f"/operations/{parent.pk}/?part=children", headers={"HX-Request": "true"})

    assert page.status_code == 200 and f'href="/operations/{child.pk}/"'.encode() in page.content
    assert rows.status_code == 200 and b"<html" not in rows.content and b"payments-api" in rows.content


def test_a_double_submitted_bulk_sync_is_one_parent(admin_client, indexed):
    form = {"app": ["prod/payments-api", "prod/search-api"], "idempotency_key": uuid.uuid4().hex}

    first = admin_client.post("/operations/bulk-sync/", form)
    second = admin_client.post("/operations/bulk-sync/", form)

    parent = Operation.objects.get(kind="bulk_sync")
    assert first["Location"] == second["Location"] == f"/operations/{parent.pk}/"
    assert parent.children.count() == 2
    assert Operation.objects.count() == 3


def test_the_same_form_sent_again_with_another_selection_is_another_bulk_sync(admin_client, indexed):
    # The browser's Back button brings the form back with its nonce: a new selection must not be answered
    # with the earlier bulk sync.
    nonce = uuid.uuid4().hex
    admin_client.post("/operations/bulk-sync/", {"app": ["prod/payments-api"], "idempotency_key": nonce})
    admin_client.post("/operations/bulk-sync/", {"app": ["prod/search-api"], "idempotency_key": nonce})
    parents = Operation.objects.filter(kind="bulk_sync").order_by("id")
    assert [p.children.get().target for p in parents] == ["payments-api", "search-api"]
