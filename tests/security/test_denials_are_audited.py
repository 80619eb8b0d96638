"""Every denial through `access.guards.require` answers 404/403 and leaves a `denied` audit event."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.instances.models import Instance

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.security.fake_urls")]


@pytest.fixture
def prod(teams):
    return Instance.objects.create(name="prod", url="https://prod.example.com", token="t")


def test_acting_inside_the_grant_is_allowed_and_not_denied(client, alice, prod):
    client.force_login(alice)
    response = client.get("/fake/prod/payments/pay-api/sync/")
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(outcome="denied").exists()


def test_other_teams_app_is_404_and_the_attempt_is_audited(client, alice, prod, settings):
    settings.DEBUG = False
    client.force_login(alice)
    response = client.get("/fake/prod/search/search-web/view/", REMOTE_ADDR="10.7.7.7")
    assert response.status_code == 404
    denied = AuditEvent.objects.get(outcome="denied")
    assert (denied.actor, denied.action, denied.instance, denied.project, denied.name, denied.ip) == (
        "alice", "view", "prod", "search", "search-web", "10.7.7.7"
    )  # fmt: skip


def test_an_action_beyond_the_grant_is_403_and_audited(client, alice, prod, settings):
    settings.DEBUG = False
    client.force_login(alice)
    response = client.get("/fake/prod/payments/pay-api/delete/")
    assert response.status_code == 403
    assert b"You may not delete" in response.content
    denied = AuditEvent.objects.get(outcome="denied")
    assert (denied.action, denied.name, denied.error) == ("delete", "pay-api", "not granted")


def test_a_disabled_instance_is_404_for_everyone_including_admins(client, admin_user, prod):
    Instance.objects.filter(pk=prod.pk).update(enabled=False)
    client.force_login(admin_user)
    assert client.get("/fake/prod/payments/pay-api/view/").status_code == 404


def test_denied_events_are_visible_to_admins_in_the_audit_list(client, alice, admin_user, prod):
    client.force_login(alice)
    client.get("/fake/prod/search/search-web/sync/")
    client.force_login(admin_user)
    body = client.get("/audit/?outcome=denied&actor=alice").content.decode()
    assert "search-web" in body and "badge denied" in body


@pytest.mark.parametrize(
    ("action", "sentence"),
    [
        ("logs", "You may not read the logs of application pay-api on prod."),
        ("terminate", "You may not terminate the operation of application pay-api on prod."),
        ("action", "You may not run resource actions on application pay-api on prod."),
        ("rollback", "You may not roll back application pay-api on prod."),
    ],
)
def test_a_refusal_says_in_words_what_was_refused(client, alice, prod, settings, action, sentence):
    settings.DEBUG = False
    client.force_login(alice)
    response = client.get(f"/fake/prod/payments/pay-api/{action}/")
    assert response.status_code == 403 and sentence in response.content.decode()
