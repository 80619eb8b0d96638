"""The chain head is anchored outside the database, so `audit_verify` sees a cut tail."""

from __future__ import annotations

import io
import json
import socket

import pytest
from django.core.management import CommandError, call_command

from apps.audit import checkpoints
from apps.audit.models import AuditEvent
from apps.audit.tasks import checkpoint as checkpoint_task
from portal.celery import app
from tests.audit.test_chain import chain_of, triggers_off

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "sink" / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_KEY = "a key the database never holds"
    settings.AUDIT_CHECKPOINT_SYSLOG = ""
    return settings.AUDIT_CHECKPOINT_FILE


def verify_output() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def test_deleting_the_newest_events_is_detected_against_the_checkpoint(sink):
    events = chain_of(5)
    call_command("audit_checkpoint", stdout=io.StringIO())
    assert f"reaching the checkpoint of event #{events[-1].pk}" in verify_output()
    with triggers_off() as cursor:
        cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id >= %s", [events[3].pk])
    with pytest.raises(CommandError, match=rf"#{events[-1].pk}.*missing.*ends at #{events[2].pk}.*tail was cut"):
        call_command("audit_verify", stdout=io.StringIO())


def test_events_written_after_the_checkpoint_keep_the_chain_valid(sink):
    first = chain_of(2)
    checkpoint_task()  # what beat runs
    chain_of(3)
    assert f"intact: 5 events verified, reaching the checkpoint of event #{first[-1].pk}" in verify_output()
    lines = sink.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["hash"] == first[-1].hash


def test_a_rewritten_checkpointed_event_is_detected(sink):
    events = chain_of(3)
    checkpoints.write()
    with triggers_off() as cursor:
        # The attacker rewrites the head and re-hashes it so that the chain alone still verifies.
        cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s", [events[-1].pk])
    replacement = chain_of(1)[0]
    with triggers_off() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET id = %s WHERE id = %s", [events[-1].pk, replacement.pk])
    with pytest.raises(CommandError, match="does not have the hash checkpointed"):
        call_command("audit_verify", stdout=io.StringIO())


def test_a_checkpoint_not_made_with_the_key_is_refused(sink, settings):
    chain_of(2)
    checkpoints.write()
    forged = json.loads(sink.read_text().splitlines()[-1]) | {"id": 1}
    with sink.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    with pytest.raises(CommandError, match="does not carry a valid MAC"):
        call_command("audit_verify", stdout=io.StringIO())


def test_without_a_checkpoint_verify_says_a_cut_tail_cannot_be_seen(sink):
    chain_of(1)
    assert "a cut tail cannot be detected" in verify_output()


def test_checkpoints_also_go_to_syslog(sink, settings):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    settings.AUDIT_CHECKPOINT_SYSLOG = f"127.0.0.1:{receiver.getsockname()[1]}"
    try:
        head = chain_of(1)[0]
        checkpoints.write()
        datagram = receiver.recv(4096).decode()
    finally:
        receiver.close()
    assert "audit-checkpoint" in datagram and head.hash in datagram


def test_beat_checkpoints_every_configured_interval(settings):
    entry = app.conf.beat_schedule["audit-checkpoint"]
    assert entry["task"] == checkpoint_task.name and entry["schedule"] == float(settings.AUDIT_CHECKPOINT_SECONDS)
