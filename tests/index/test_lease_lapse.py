"""A killed indexer leaves no false "connected": once its lease lapses, the instance says so and its rows are stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.index.models import IndexState

from .conftest import register, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def indexer_process(transactional_db):
    """Start `manage.py run_indexer` as a real process on the test database and Redis; killed afterwards."""
    if not settings.REDIS_URL:
        pytest.skip("the lease lives in Redis (make test sets REDIS_URL)")
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter("portal:indexer:*"):
        r.delete(key)
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"}
    started: list[subprocess.Popen] = []

    def start(*names: str) -> subprocess.Popen:
        args = [a for name in names for a in ("--instance", name)]
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_indexer", "--lease-ttl", "2", "--refresh-seconds", "1", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_killed_indexer_is_shown_as_no_longer_holding_the_watch_and_its_rows_turn_stale(
    indexer_process, admin_client, make_sim
):
    server = make_sim(apps=6)
    instance = register(server, "orphaned")
    proc = indexer_process("orphaned")
    state = wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).first(), timeout=60)
    assert f":{proc.pid}:" in state.holder

    page = admin_client.get("/instances/orphaned/").content.decode()
    assert f"held by {state.holder}" in page and "not held" not in page
    listed = admin_client.get("/applications/", {"instance": "orphaned"})
    assert len(listed.context["result"].rows) == 6 and not any(r["stale"] for r in listed.context["result"].rows)
    assert "no indexer holds" not in listed.content.decode()

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    killed_at = datetime.now(UTC)

    page = wait_for(
        lambda: (body := admin_client.get("/instances/orphaned/").content.decode()) and "not held" in body and body, 15
    )
    assert "connected" not in page.split("Watch stream", 1)[1].split("</dd>", 1)[0]
    assert f"the lease of {state.holder} ended" in page
    since = datetime.strptime(page.split("not held</span> since ", 1)[1][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs((since - killed_at).total_seconds()) < 10  # the last renewal's expiry, not some other moment

    listed = admin_client.get("/applications/", {"instance": "orphaned"})
    rows = listed.context["result"].rows
    assert len(rows) == 6 and all(r["stale"] for r in rows)
    body = listed.content.decode()
    assert "Instance <strong>orphaned</strong>: no indexer holds its watch stream since" in body
    instances = admin_client.get("/instances/").content.decode()
    assert "not watched" in instances


def test_another_indexer_taking_over_clears_the_staleness(indexer_process, admin_client, make_sim):
    server = make_sim(apps=3)
    instance = register(server, "adopted")
    first = indexer_process("adopted")
    wait_for(lambda: IndexState.objects.filter(instance=instance, connected=True).exists(), timeout=60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    wait_for(lambda: "not held" in admin_client.get("/instances/adopted/").content.decode(), 15)

    second = indexer_process("adopted")
    wait_for(lambda: f":{second.pid}:" in IndexState.objects.get(instance=instance).holder, timeout=60)
    page = admin_client.get("/instances/adopted/").content.decode()
    assert "not held" not in page and f":{second.pid}:" in page
    rows = admin_client.get("/applications/", {"instance": "adopted"}).context["result"].rows
    assert len(rows) == 3 and not any(r["stale"] for r in rows)


def test_without_redis_the_lease_in_the_django_cache_tells_held_and_since_when_released(db, settings):
    from apps.index.locks import Lease, lease_key, lease_states

    settings.REDIS_URL = ""  # the embedded default keeps the lease in the (database) cache
    key = lease_key(999_999, f"cache-{uuid.uuid4().hex[:6]}")
    lease = Lease(key, ttl=5, holder="demo")
    assert lease.acquire()
    try:
        assert lease_states([key])[key].holder == lease.token
    finally:
        lease.release()
    state = lease_states([key])[key]
    assert not state.held and state.last_holder == lease.token
    assert abs((state.since - datetime.now(UTC)).total_seconds()) < 5
