"""The audit log is append-only (model and database trigger) and its hash chain proves it."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from apps.audit.chain import GENESIS, verify
from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from tests.audit.personas import event

pytestmark = pytest.mark.django_db


@contextmanager
def triggers_off():
    """Let a test play the attacker with direct table access: bypass the append-only trigger."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET session_replication_role = origin")


def chain_of(n: int) -> list[AuditEvent]:
    return [event(instance="prod", project="payments", name=f"app-{i}") for i in range(n)]


def test_saving_an_existing_event_is_refused():
    e = event(name="x")
    e.name = "y"
    with pytest.raises(PermissionError):
        e.save()


def test_deleting_an_event_is_refused_by_the_model():
    with pytest.raises(PermissionError):
        event(name="x").delete()


def test_database_trigger_refuses_update():
    e = event(name="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=e.pk).update(name="y")
    e.refresh_from_db()
    assert e.name == "x"


def test_database_trigger_refuses_delete_even_in_bulk():
    e = event(name="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=e.pk)._raw_delete(connection.alias)
    assert AuditEvent.objects.filter(pk=e.pk).exists()


def test_deleting_a_user_keeps_their_events_and_the_chain(alice):
    from django.test import RequestFactory

    request = RequestFactory().post("/x")
    request.user = alice
    e = record(request, action="sync", outcome=Outcome.SUCCEEDED, instance="prod", name="pay-api")
    alice.delete()
    e.refresh_from_db()
    assert (e.actor, e.actor_user_id) == ("alice", None)
    assert verify()[1] is None


def test_each_event_links_to_the_hash_of_the_one_before():
    events = chain_of(3)
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash


def test_verify_command_passes_on_an_intact_chain(capsys):
    chain_of(5)
    call_command("audit_verify")
    assert "audit chain intact: 5 events verified" in capsys.readouterr().out


def test_verify_command_names_the_first_changed_event():
    events = chain_of(5)
    with triggers_off() as cursor:
        cursor.execute("UPDATE audit_auditevent SET outcome = 'failed' WHERE id = %s", [events[2].id])
    with pytest.raises(CommandError, match=rf"broken at event #{events[2].id} .*changed"):
        call_command("audit_verify")


def test_verify_command_names_the_event_after_a_deleted_one():
    events = chain_of(5)
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match=rf"broken at event #{events[2].id} .*prev_hash"):
        call_command("audit_verify")


def test_verify_command_catches_a_rewritten_event_with_a_recomputed_hash():
    from apps.audit.chain import compute_hash

    events = chain_of(4)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.outcome = "failed"
    with triggers_off() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET outcome = 'failed', hash = %s WHERE id = %s",
            [compute_hash(forged, forged.prev_hash), forged.pk],
        )
    with pytest.raises(CommandError, match=rf"broken at event #{events[2].id}"):
        call_command("audit_verify")


def test_verify_command_exits_non_zero_from_the_shell(transactional_db):
    import os
    import subprocess
    import sys

    events = chain_of(3)
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"}
    ok = subprocess.run([sys.executable, "manage.py", "audit_verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    with triggers_off() as cursor:
        cursor.execute("UPDATE audit_auditevent SET name = 'evil' WHERE id = %s", [events[1].id])
    bad = subprocess.run([sys.executable, "manage.py", "audit_verify"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert f"#{events[1].id}" in bad.stderr


@pytest.mark.slow
def test_eight_threads_recording_at_once_build_one_chain_without_forks(transactional_db):
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                event(actor=f"worker-{n}", instance="prod", project="p", name=f"app-{n}-{i}")
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert AuditEvent.objects.count() == 400
    prev_hashes = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(set(prev_hashes)) == 400  # no two events claim the same predecessor: no fork
    checked, bad, reason = verify()
    assert (checked, bad, reason) == (400, None, "")


def test_the_database_refuses_a_second_successor_to_the_same_event():
    from django.db import IntegrityError

    first, second = chain_of(2)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.create(
            at=second.at, actor="forger", action="sync", outcome="succeeded", prev_hash=first.hash, hash="f" * 64
        )


def test_event_times_never_go_backwards_along_the_chain():
    events = chain_of(20)
    times = [e.at for e in AuditEvent.objects.order_by("id")]
    assert times == sorted(times)
    assert events[-1].at >= events[0].at
