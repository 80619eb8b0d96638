"""Fixtures for operations: workers we can start and SIGKILL, our own simulators, a way to submit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import pytest


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1, what: str = ""):
    """Poll until `predicate()` is truthy (and return it) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture
def redis_db():
    """The test Redis database (REDIS_URL), emptied first so no message of an earlier test is delivered."""
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.skip("operations tests need REDIS_URL (make test sets it)")
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    r.flushdb()
    yield r
    r.close()


class Workers:
    """Real `celery worker` subprocesses on the test database and Redis, started and killed at will."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.logs: list = []

    def output(self, proc: subprocess.Popen) -> str:
        log = self.logs[self.procs.index(proc)]
        log.flush()
        with open(log.name, errors="replace") as f:
            return f.read()

    def start(self, concurrency: int = 4, env: dict | None = None) -> subprocess.Popen:
        from django.db import connection

        from portal.celery import app

        full_env = dict(os.environ)
        db = connection.settings_dict
        full_env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
        full_env.update(env or {})
        log = tempfile.NamedTemporaryFile(prefix="ops-worker-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=threads",
                f"--concurrency={concurrency}", "--loglevel=WARNING", "--without-heartbeat",
                "--without-mingle", "--without-gossip", f"--hostname=ops{len(self.procs)}-{os.getpid()}@%h",
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        self.logs.append(log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {proc.returncode}: {self.output(proc)[-3000:]}")
            replies = app.control.ping(timeout=0.5) or []
            if any(name.startswith(f"ops{len(self.procs) - 1}-{os.getpid()}@") for r in replies for name in r):
                return proc
        raise RuntimeError("celery worker did not answer a ping within 30 s")

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL: the worker gets no chance to ack, requeue or clean anything up."""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self.logs:
            log.close()
            os.unlink(log.name)


@pytest.fixture
def workers(transactional_db, redis_db):
    w = Workers()
    yield w
    w.stop_all()


@pytest.fixture
def worker(workers):
    return workers.start()


@pytest.fixture
def make_sim():
    from apps.simulator.server import SimServer

    started = []

    def make(name: str = "sim-ops", **kwargs) -> SimServer:
        options = {"apps": 12, "projects": 3, "seed": 11, "sync_seconds": 1.0, **kwargs}
        server = SimServer(port=0, name=name, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def register():
    """Register a simulator as a portal Instance (token auth as the `portal` account)."""
    from apps.instances.models import Instance

    def reg(sim, name: str | None = None) -> Instance:
        return Instance.objects.create(name=name or sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)

    return reg


@pytest.fixture
def submit(rf):
    """Start an operation as `user` the way a view does (a real request object, real services)."""
    from apps.operations.services import start_operation

    def do(user, **kwargs):
        request = rf.post("/applications/x/sync")
        request.user = user
        return start_operation(request, **kwargs)

    return do


@pytest.fixture
def sim_app():
    """The first application of a simulator (name and project) that is not seeded to fail."""

    def pick(sim, *, failing: bool = False, skip: int = 0, min_history: int = 0) -> tuple[str, str]:
        with sim.state.lock:
            recs = [r for r in sim.state.apps.values() if r.fail_sync == failing]
            recs = [r for r in recs if not (r.obj["spec"].get("syncPolicy") or {}).get("automated")]
            recs = [r for r in recs if len(r.obj["status"].get("history") or []) >= min_history]
            recs.sort(key=lambda r: r.name)
            rec = recs[skip]
            return rec.name, rec.project

    return pick


@pytest.fixture
def failing_app():
    """Create an application the simulator fails to sync (label sim/fail-sync), over Argo CD's API."""

    def make(sim, name: str = "broken-api") -> tuple[str, str]:
        import copy

        from apps.argocd import ArgoCDClient

        with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
            apps = client.list_applications()
            model = next(a for a in apps if not (a["spec"].get("syncPolicy") or {}).get("automated"))
            spec = copy.deepcopy(model["spec"])
            spec.pop("syncPolicy", None)
            meta = {"name": name, "namespace": "argocd", "labels": {"sim/fail-sync": "true"}}
            client.create_application({"metadata": meta, "spec": spec})
        return name, spec.get("project", "default")

    return make


def live_app(sim, name: str) -> dict:
    from apps.argocd import ArgoCDClient

    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
        return client.get_application(name)


def final(op, timeout: float = 30.0):
    """Wait until the operation has ended; returns it fresh from the database."""

    def done():
        op.refresh_from_db()
        return op if op.is_final else None

    try:
        return wait_for(done, timeout=timeout, interval=0.1, what=f"operation {op.pk} to end")
    except AssertionError as exc:  # say where it stood, children included: a hang is otherwise hard to read
        children = list(op.children.values_list("pk", "instance_name", "target", "state", "message"))
        raise AssertionError(f"{exc}; it is {op.state}: {op.message!r}; children: {children}") from None
