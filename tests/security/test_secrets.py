"""Secrets are write-only: never in a page, an export, an audit event or a log line."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from apps.instances.models import Instance

pytestmark = pytest.mark.django_db
SECRET = "Sup3r-S3cret-Value-9f8e7d"


@pytest.fixture
def leaky_event(admin_user, sim):
    from django.test import RequestFactory

    Instance.objects.create(name="vault", url=sim.url, token=SECRET, username="admin", password=SECRET)
    request = RequestFactory().post("/kinds/vault/repositories/new/")
    request.user = admin_user
    return record(
        request, action="create", outcome=Outcome.SUCCEEDED, instance="vault", kind="repository",
        name="https://git.example.com/r.git",
        payload={"password": SECRET, "bearerToken": SECRET, "nested": {"sshPrivateKey": SECRET, "url": "ok"}},
        before={"password": SECRET, "username": "git"}, after={"password": SECRET, "username": "git2"},
    )  # fmt: skip


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_secrets_are_stored_redacted_and_encrypted(leaky_event):
    stored = json.dumps([leaky_event.request, leaky_event.before, leaky_event.after])
    assert SECRET not in stored and "***" in stored
    with connection.cursor() as cursor:
        cursor.execute("SELECT token, password FROM instances_instance WHERE name = 'vault'")
        token, password = cursor.fetchone()
    assert SECRET not in token and SECRET not in password
    assert Instance.objects.get(name="vault").token == SECRET  # still usable by the client


def test_secrets_never_appear_in_pages_exports_or_logs(admin_client, leaky_event, caplog):
    caplog.set_level(logging.DEBUG)
    e = leaky_event
    pages = {
        "/audit/": True,
        f"/audit/{e.id}/": True,
        "/audit/export.csv": True,
        "/audit/export.jsonl": True,
        "/audit/?q=Sup3r": False,  # searching for the secret finds nothing
        "/instances/": False,
        "/instances/vault/": False,
        "/instances/vault/edit/": False,
    }
    for url, shows_stars in pages.items():
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = body_of(response)
        assert SECRET not in body, url
        if shows_stars:
            assert "***" in body, url
    record(None, actor="system", action="edit", outcome=Outcome.FAILED, payload={"token": SECRET})
    assert caplog.records, "the audit log writes one line per event"
    assert SECRET not in caplog.text
    assert "***" in caplog.text


def test_a_failed_login_with_a_secret_password_leaves_no_trace(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/login/", {"username": "alice", "password": SECRET})
    rows = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert "alice" in rows
    assert SECRET not in rows
    assert SECRET not in caplog.text
    from axes.models import AccessAttempt

    attempts = json.dumps(list(AccessAttempt.objects.values()), default=str)
    assert "alice" in attempts and SECRET not in attempts  # django-axes masks the password it keeps
