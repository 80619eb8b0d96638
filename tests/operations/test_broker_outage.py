"""Redis goes away and comes back: workers survive, /readyz and queued operations say when no worker consumes,
every page still answers, and a sync asked for meanwhile is queued (truthfully) exactly once.

The module runs its own redis-server on a free port, points the web side (settings, the Celery app) and real
workers at it, and stops and restarts it; the shared Redis is never touched.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core import status
from apps.operations.models import Operation
from apps.operations.services import BROKER_DOWN
from apps.operations.tasks import reap_operations
from apps.operations.templatetags.operations import NO_WORKER

from .conftest import final, live_app, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

HX = {"HTTP_HX_REQUEST": "true"}
HEARTBEAT = 0.5  # seconds between worker heartbeats here: "no worker" shows 1.5 s after the last one stopped


class PrivateRedis:
    """A redis-server of this module's own, without persistence, on a port picked once (so a restart keeps it)."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        import redis

        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, timeout=10, what="the private redis-server to answer")
        client.close()

    def flush(self) -> None:
        import redis

        with redis.Redis(port=self.port) as client:
            client.flushall()

    def stop(self) -> None:
        if self.running():
            self.proc.terminate()
            self.proc.wait(timeout=10)
        status.forget()  # the page banner checks again at once


@pytest.fixture(scope="module")
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def on_private_redis(private_redis, settings):
    """The web side (cache, broker, readiness) and the Celery app in this process use the private Redis."""
    from portal.celery import app

    # Read first: the app loads its configuration from the Django settings lazily, and they change below.
    saved = app.conf.broker_url
    if not private_redis.running():
        private_redis.start()
    private_redis.flush()  # no message or heartbeat of an earlier test
    url = private_redis.url
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}
    }
    settings.WORKER_HEARTBEAT_SECONDS = HEARTBEAT
    app.conf.update(broker_url=url)
    drop_pooled_connections(app)
    status.forget()
    yield private_redis
    app.conf.update(broker_url=saved)
    drop_pooled_connections(app)
    status.forget()


def drop_pooled_connections(app) -> None:
    """The app's connection and producer pools were made for the previous broker URL: the next use makes new ones."""
    app._pool = None
    app.amqp._producer_pool = None


def worker_env(redis) -> dict:
    return {"REDIS_URL": redis.url, "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT)}


def answers_ping(index: int) -> bool:
    from portal.celery import app

    prefix = f"ops{index}-{os.getpid()}@"
    try:
        replies = app.control.ping(timeout=0.5) or []
    except Exception:  # this process's pooled connection died with the old redis-server: take a new one
        drop_pooled_connections(app)
        return False
    return any(name.startswith(prefix) for reply in replies for name in reply)


def test_a_worker_survives_redis_going_away_mid_sync_and_takes_new_work_when_it_is_back(
    on_private_redis, workers, make_sim, register, submit, admin_user, sim_app
):
    sim = make_sim(sync_seconds=4.0)
    instance = register(sim)
    name, project = sim_app(sim)
    worker = workers.start(env=worker_env(on_private_redis))
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)
    wait_for(lambda: Operation.objects.filter(pk=op.pk, argocd_phase="Running").exists(), timeout=20)

    on_private_redis.stop()
    wait_for(lambda: "Connection to broker lost" in workers.output(worker), timeout=20, what="the worker to notice")
    on_private_redis.start()

    wait_for(lambda: answers_ping(0), timeout=30, what="the same worker to answer again")
    assert worker.poll() is None
    assert "Unrecoverable error" not in workers.output(worker)
    assert final(op, timeout=40).state == Operation.State.SUCCEEDED, op.error
    other, other_project = sim_app(sim, skip=1)
    later = submit(admin_user, kind="sync", instance=instance, project=other_project, target=other)
    assert final(later, timeout=30).state == Operation.State.SUCCEEDED, later.error


def test_readyz_fails_while_no_worker_consumes_and_recovers_when_one_does(on_private_redis, workers, admin_client):
    response = admin_client.get("/readyz")
    assert response.status_code == 503
    assert "workers" in response.content.decode()
    assert admin_client.get("/readyz?skip=workers").status_code == 200  # what a web replica's probe asks

    worker = workers.start(env=worker_env(on_private_redis))
    wait_for(lambda: admin_client.get("/readyz").status_code == 200, timeout=15, what="/readyz to see the worker")

    workers.kill(worker)
    wait_for(lambda: admin_client.get("/readyz").status_code == 503, timeout=15, what="/readyz to miss the worker")
    assert "workers" in admin_client.get("/readyz").content.decode()


def test_a_queued_operation_says_it_waits_for_a_worker_until_one_takes_it(
    on_private_redis, workers, make_sim, register, submit, admin_user, admin_client, sim_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, project = sim_app(sim)
    op = submit(admin_user, kind="sync", instance=instance, project=project, target=name)
    card = reverse("operations:card", args=[op.pk])

    assert NO_WORKER in admin_client.get(card, **HX).content.decode()
    assert NO_WORKER in admin_client.get(reverse("operations:detail", args=[op.pk])).content.decode()

    workers.start(env=worker_env(on_private_redis))
    assert final(op).state == Operation.State.SUCCEEDED, op.error
    assert NO_WORKER not in admin_client.get(card, **HX).content.decode()


def test_every_page_answers_while_redis_is_down_and_says_what_is_unavailable(
    on_private_redis, make_sim, register, sim_app, admin_client, client, alice
):
    sim = make_sim(apps=6)
    instance = register(sim)
    app_name, _project = sim_app(sim)
    on_private_redis.stop()

    pages = ["/", "/applications/", "/applications/?q=api", "/operations/", "/audit/", "/instances/", "/kinds/",
             "/kinds/projects/", "/teams/", reverse("applications:detail", args=[instance.name, app_name])]  # fmt: skip
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert "Redis is unreachable" in response.content.decode(), page
    assert admin_client.get("/applications/", **HX).status_code == 200
    # Signing in needs no Redis either (sessions and lockout counters live in the database).
    response = client.post("/login/", {"username": "alice", "password": "alice-password-123"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_sync_asked_for_while_the_broker_is_down_is_queued_truthfully_and_a_retry_is_the_same_operation(
    on_private_redis, workers, make_sim, register, admin_client, sim_app
):
    sim = make_sim(sync_seconds=0.5)
    instance = register(sim)
    name, _project = sim_app(sim)
    history_before = len(live_app(sim, name)["status"].get("history") or [])
    url = reverse("applications:sync", args=[instance.name, name])
    form = {"nonce": "5e0c1d2b3a4f4e6d8c7b9a0f1e2d3c4b", "strategy": "hook", "backoff_duration": "5s",
            "backoff_factor": "2", "backoff_max_duration": "3m"}  # fmt: skip
    on_private_redis.stop()

    first = admin_client.post(url, form, **HX)

    assert first.status_code == 200
    body = first.content.decode()
    op = Operation.objects.get()
    assert op.state == Operation.State.QUEUED and op.message == BROKER_DOWN
    assert f"#{op.pk}" in body and "Queued" in body and "the task queue (Redis) is unreachable" in body
    assert 'hx-swap-oob="true"' not in body  # the form keeps its nonce: sending it again is this operation
    again = admin_client.post(url, form, **HX)
    plain = admin_client.post(url, form)
    assert again.status_code == 200 and f"#{op.pk}" in again.content.decode()
    assert plain.status_code == 302 and plain["Location"] == reverse("operations:detail", args=[op.pk])
    assert Operation.objects.count() == 1
    assert AuditEvent.objects.filter(operation_id=op.pk, outcome="started").count() == 1

    on_private_redis.start()
    workers.start(env=worker_env(on_private_redis))
    assert reap_operations(queued_after=0)["requeued"] == 1  # what beat does every 15 s
    assert final(op).state == Operation.State.SUCCEEDED, op.error
    assert len(live_app(sim, name)["status"]["history"]) == min(history_before + 1, 10), "synced exactly once"
