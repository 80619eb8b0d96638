"""Change windows where work starts: the sync and rollback views refuse (audited) or let an override through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.governance.models import ChangeWindow
from apps.operations.models import Operation

from .test_operations import HX, sync_form, u

pytestmark = pytest.mark.django_db
ALWAYS = "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"


@pytest.fixture
def freeze(db):
    return ChangeWindow.objects.create(
        name="freeze", kind="deny", rrule=ALWAYS, duration=timedelta(days=1), actions=["sync", "rollback"]
    )


def test_member_sync_inside_a_deny_window_is_refused_and_audited(client, alice, grant, instance, fresh_app, freeze):
    grant(alice, ["sync"])
    client.force_login(alice)
    name = fresh_app()
    response = client.post(u("sync", instance, name), sync_form(override_reason="let me"), **HX)
    assert response.status_code == 403
    assert "blocked by window freeze until" in response.content.decode()
    assert not Operation.objects.exists()
    denied = AuditEvent.objects.get(action="sync", outcome="denied", name=name)
    assert denied.error.startswith("blocked by window freeze until") and denied.actor == "alice"
    assert not AuditEvent.objects.filter(action="override").exists()  # a reason without the grant is no override


def test_override_holder_must_give_a_reason(client, alice, grant, instance, fresh_app, freeze):
    grant(alice, ["sync", "override"])
    client.force_login(alice)
    name = fresh_app()
    response = client.post(u("sync", instance, name), sync_form(override_reason="   "), **HX)
    assert response.status_code == 403 and b"give a written reason" in response.content
    assert not Operation.objects.exists()


def test_override_with_a_reason_runs_flagged_and_audited(client, alice, grant, instance, fresh_app, freeze):
    grant(alice, ["sync", "override"])
    client.force_login(alice)
    name = fresh_app()
    response = client.post(u("sync", instance, name), sync_form(override_reason="hotfix INC-42"), **HX)
    assert response.status_code == 200
    op = Operation.objects.get()
    assert op.override_reason == "hotfix INC-42"
    assert "Override" in response.content.decode() and "hotfix INC-42" in response.content.decode()
    event = AuditEvent.objects.get(action="override")
    assert (event.operation_id, event.name, event.actor) == (op.pk, name, "alice")
    assert event.request["reason"] == "hotfix INC-42" and event.request["window"] == "freeze"
    card = client.get(reverse("operations:card", args=[op.pk]), **HX).content.decode()
    assert "op-override" in card and "hotfix INC-42" in card


def test_rollback_inside_a_deny_window_is_refused(client, alice, grant, instance, synced_app, freeze):
    grant(alice, ["rollback"])
    client.force_login(alice)
    name = synced_app()
    data = {"id": "0", "nonce": "0f4c6a3e9d8b4f1a8c2e7b5d3a1f9e6c"}
    response = client.post(u("rollback", instance, name), data, **HX)
    assert response.status_code == 403 and b"blocked by window freeze" in response.content
    assert AuditEvent.objects.filter(action="rollback", outcome="denied", error__contains="freeze").exists()


def test_app_page_says_the_sync_button_is_blocked_and_offers_the_override(
    client, alice, grant, instance, fresh_app, freeze
):
    grant(alice, ["sync", "override"])
    client.force_login(alice)
    name = fresh_app()
    page = client.get(u("detail", instance, name)).content.decode()
    assert "blocked by window freeze until" in page and "(you may override)" in page
    assert 'name="override_reason"' in page


def test_app_page_shows_no_block_outside_windows(client, alice, grant, instance, fresh_app):
    grant(alice, ["sync"])
    client.force_login(alice)
    page = client.get(u("detail", instance, fresh_app())).content.decode()
    assert "blocked by window" not in page and 'name="override_reason"' not in page


def test_rollback_override_with_a_reason_runs_flagged_and_shows_in_the_audit_log(
    admin_client, instance, synced_app, freeze
):
    name = synced_app()
    page = admin_client.get(u("detail", instance, name) + "?tab=history&rollback=0", **HX).content.decode()
    assert 'name="override_reason"' in page  # the rollback preview offers the break glass
    data = {"id": "0", "nonce": "1f4c6a3e9d8b4f1a8c2e7b5d3a1f9e6c", "override_reason": "revert bad release"}
    response = admin_client.post(u("rollback", instance, name), data, **HX)
    assert response.status_code == 200
    op = Operation.objects.get(kind="rollback")
    assert op.override_reason == "revert bad release"
    event = AuditEvent.objects.get(action="override", operation_id=op.pk)
    assert event.request["operation"] == "rollback"
    log = admin_client.get("/audit/", {"action": "override"}).content.decode()
    assert "data-override" in log and "break glass" in log
