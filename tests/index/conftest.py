"""Fixtures for the index tests: instances registered on simulators, indexers run in-process, personas."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from apps.access.models import Grant
from apps.index.indexer import Indexer, Options, resync
from apps.instances.models import Instance
from apps.teams.models import Membership, Team


def wait_for(condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.05) -> object:
    """Poll until `condition()` is truthy; fail with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")


def register(server, name: str | None = None) -> Instance:
    return Instance.objects.create(name=name or server.name, url=server.url, token=server.portal_token())


def index_now(instance: Instance) -> None:
    with instance.client() as client:
        resync(instance.pk, client)


def grant(user, slug: str, instance: str = "*", project: str = "*", app: str = "*", actions=("view",)) -> Team:
    team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    Membership.objects.get_or_create(team=team, user=user)
    Grant.objects.create(team=team, instance_glob=instance, project_glob=project, app_glob=app, actions=list(actions))
    return team


@pytest.fixture
def make_sim() -> Iterator[Callable[..., object]]:
    """Private SimServers for a test (pristine, broken or stopped at will); all stopped afterwards."""
    from apps.simulator.server import SimServer

    started: list = []

    def start(**kwargs):
        kwargs.setdefault("port", 0)
        kwargs.setdefault("name", f"sim-{uuid.uuid4().hex[:6]}")
        kwargs.setdefault("apps", 10)
        kwargs.setdefault("projects", 3)
        kwargs.setdefault("seed", 3)
        kwargs.setdefault("sync_seconds", 0.3)
        server = SimServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def indexed(db, sim) -> Instance:
    """The shared `sim-test` simulator registered and indexed once (no watcher running)."""
    instance = register(sim, "sim-test")
    index_now(instance)
    return instance


@pytest.fixture
def fast_options() -> Options:
    return Options(resync_seconds=600, refresh_seconds=0.5, lease_ttl=2.0, lease_retry_seconds=0.2, backoff_cap=1.0)


@pytest.fixture
def run_indexer(transactional_db, fast_options) -> Iterator[Callable[..., Indexer]]:
    """Start in-process indexers (their threads write to the test database); all stopped afterwards."""
    import threading

    from django.conf import settings

    running: list[tuple[Indexer, threading.Thread]] = []

    def start(holder: str = "", **overrides) -> Indexer:
        options = Options(**{**fast_options.__dict__, "holder": holder or f"test-{uuid.uuid4().hex[:6]}", **overrides})
        indexer = Indexer(options)
        thread = threading.Thread(target=indexer.run, daemon=True)
        thread.start()
        running.append((indexer, thread))
        return indexer

    if settings.REDIS_URL:
        import redis

        r = redis.Redis.from_url(settings.REDIS_URL)
        for key in r.scan_iter("portal:indexer:*"):
            r.delete(key)
    yield start
    for indexer, _thread in running:
        indexer.stop()
    for _indexer, thread in running:
        thread.join(timeout=15)
