"""Fixtures shared by the whole suite: the simulated Argo CD, personas and a real Celery worker."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sim():
    """One simulated Argo CD instance over real HTTP for the whole test session.

    Tests that change shared state create their own objects with unique names; tests that need a
    pristine or broken server start their own SimServer (port 0 is cheap).
    """
    from apps.simulator.server import SimServer

    server = SimServer(port=0, name="sim-test", apps=30, projects=4, seed=7, sync_seconds=0.5).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _empty_test_redis():
    """Start from an empty Redis database of this test process: a message an interrupted earlier run left in the
    queue would otherwise reach this run's workers (make test gives the suite Redis databases of its own)."""
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        with redis.Redis.from_url(settings.REDIS_URL) as r:
            r.flushdb()


@pytest.fixture(autouse=True)
def _checkpoints_of_this_test(settings, tmp_path):
    """Each test anchors the audit chain in a file of its own, never in a checkpoint file a demo left in var/."""
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "root-password-123")


@pytest.fixture
def alice(django_user_model):
    """A member of team payments."""
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password-123")


@pytest.fixture
def bob(django_user_model):
    """A member of team search."""
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password-123")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def celery_worker(transactional_db, django_db_setup):
    """A real `celery worker` subprocess on the test database and the test Redis.

    Tests using it must use `transactional_db` so the worker sees committed rows.
    """
    import os
    import subprocess
    import sys
    import time

    from django.conf import settings
    from django.db import connection

    if not settings.REDIS_URL:
        pytest.skip("a real Celery worker needs REDIS_URL (make test sets it)")
    env = dict(os.environ)
    db = connection.settings_dict
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    from portal.celery import app

    deadline = time.monotonic() + 60  # a loaded machine starts Python slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited: {proc.stdout.read().decode()[-2000:]}")
        if app.control.ping(timeout=0.5):
            break
    else:
        proc.kill()
        raise RuntimeError("celery worker did not answer a ping within 60 s")
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
