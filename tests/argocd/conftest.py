"""Fixtures for the Argo CD client tests: every test talks real HTTP to the simulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from apps.argocd import ArgoCDClient


class CountingSession(requests.Session):
    """A requests.Session that records every request it actually puts on the wire (retries included)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs):  # type: ignore[override]
        self.sent.append((request.method or "", urlsplit(request.url or "").path))
        return super().send(request, **kwargs)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.sent if m == method and p == path)


@pytest.fixture
def counting() -> CountingSession:
    return CountingSession()


@pytest.fixture(scope="session")
def client(sim) -> Iterator[ArgoCDClient]:
    """Admin-level client (the seeded `portal` API key) on the shared simulator."""
    c = ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name, read_timeout=10)
    yield c
    c.close()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., object]]:
    """Start private SimServers (for faults or pristine state); all are stopped after the test."""
    from apps.simulator.server import SimServer

    started: list[SimServer] = []

    def start(**kwargs):
        opts = {"port": 0, "name": f"sim-{len(started)}", "apps": 5, "projects": 2, "seed": 3, "sync_seconds": 0.2}
        opts.update(kwargs)
        server = SimServer(**opts).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def some_app(client) -> dict:
    """An application that exists on the shared simulator (read-only use)."""
    return client.list_applications()[0]


def app_body(name: str, template: dict) -> dict:
    """A new Application with `template`'s project, source and destination (valid on the simulator)."""
    spec = template["spec"]
    keep = {k: spec[k] for k in ("project", "source", "sources", "destination") if k in spec}
    return {"metadata": {"name": name, "namespace": template["metadata"].get("namespace", "argocd")}, "spec": keep}
