from __future__ import annotations

import pytest

from .helpers import Client, login


@pytest.fixture(scope="session")
def admin(sim) -> Client:
    return login(sim.url, "admin", "password")


@pytest.fixture(scope="session")
def portal(sim) -> Client:
    return Client(sim.url, sim.portal_token())


@pytest.fixture(scope="session")
def alice(sim) -> Client:
    return login(sim.url, "alice", "alice-password")


@pytest.fixture(scope="session")
def anon(sim) -> Client:
    return Client(sim.url)


@pytest.fixture
def fresh():
    """A private simulator for tests that need pristine or broken state."""
    from apps.simulator.server import SimServer

    servers = []

    def make(**kw):
        kw.setdefault("apps", 10)
        kw.setdefault("projects", 3)
        kw.setdefault("sync_seconds", 0.3)
        server = SimServer(port=0, name="sim-fresh", **kw).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
