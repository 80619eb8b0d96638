"""Fixtures for the application pages: the session simulator registered as an Instance, a client to arrange
and read back state in Argo CD, fresh apps to mutate, and grants for the personas."""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
import uuid

import pytest

from apps.access.models import Grant
from apps.argocd import ArgoCDClient, errors
from apps.instances.models import Instance
from apps.teams.models import Membership, Team

_counter = itertools.count()


@pytest.fixture
def instance(db, sim):
    return Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)


@pytest.fixture(scope="session")
def argocd(sim):
    with ArgoCDClient(sim.url, token=sim.portal_token(), name=sim.name) as client:
        yield client


@pytest.fixture(scope="session")
def seed_apps(argocd):
    return {a["metadata"]["name"]: a for a in argocd.list_applications()}


def app_body(argocd, name: str, *, project: str = "payments", automated: bool = False, labels=None) -> dict:
    """A new Application modelled on a seed app of `project` (so the simulator renders real resources)."""
    model = next(a for a in argocd.list_applications(projects=[project]) if a["metadata"]["name"].endswith("-dev"))
    spec = copy.deepcopy(model["spec"])
    spec["syncPolicy"] = {"automated": {"prune": True}} if automated else {}
    meta = {"name": name, "namespace": "argocd", "labels": labels or {"team": project}}
    return {"metadata": meta, "spec": spec}


@pytest.fixture
def fresh_app(argocd):
    """Create throw-away apps in the shared simulator; removed afterwards."""
    made: list[str] = []

    def make(project: str = "payments", **kw) -> str:
        name = f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"
        argocd.create_application(app_body(argocd, name, project=project, **kw))
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(errors.ArgoCDError):  # already deleted by the test
            argocd.delete_application(name, cascade=False)


def wait_for(condition, timeout: float = 15.0, interval: float = 0.1):
    """Poll `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def synced_app(fresh_app, argocd):
    """A fresh app, synced once so its resources are live (manual sync policy)."""

    def make(**kw) -> str:
        name = fresh_app(**kw)
        argocd.sync_application(name)
        wait_for(
            lambda: (
                not argocd.get_application(name).get("operation")
                and argocd.get_application(name)["status"]["sync"]["status"] == "Synced"
            )
        )
        return name

    return make


@pytest.fixture
def grant(db):
    def give(user, actions, *, instance="*", project="*", app="*") -> Grant:
        team, _ = Team.objects.get_or_create(slug=f"team-{user.username}", defaults={"name": f"Team {user.username}"})
        Membership.objects.get_or_create(team=team, user=user)
        return Grant.objects.create(
            team=team, instance_glob=instance, project_glob=project, app_glob=app, actions=list(actions)
        )

    return give
