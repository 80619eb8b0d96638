"""Fixtures for the resource-kind pages: an Instance on the shared simulator and team grants for personas."""

from __future__ import annotations

import uuid

import pytest

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.instances.models import Instance
from apps.teams.models import Membership, Team
from tests.simulator.helpers import pgp_public_key  # noqa: F401  (re-exported for the kinds tests)


@pytest.fixture
def argo(sim, db) -> Instance:
    """The shared simulator registered as instance `sim-k` with its own portal API key."""
    return Instance.objects.create(name="sim-k", url=sim.url, token=sim.portal_token())


@pytest.fixture
def grant(db):
    """grant(user, actions, instance="*", project="*", app="*"): put the user in a fresh team holding that grant."""

    def make(user, actions, instance="*", project="*", app="*") -> Grant:
        team = Team.objects.create(name=f"team-{uuid.uuid4().hex[:6]}", slug=f"t-{uuid.uuid4().hex[:8]}")
        Membership.objects.create(team=team, user=user)
        return Grant.objects.create(
            team=team, instance_glob=instance, project_glob=project, app_glob=app, actions=list(actions)
        )

    return make


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def events(**filters) -> list[AuditEvent]:
    """Outcome events, oldest first (each change to Argo CD also has its `started` intent just before it)."""
    return list(AuditEvent.objects.filter(**filters).exclude(outcome="started").order_by("id"))


def shown_token(body: str) -> str:
    """The one-time token a page shows, or "" when there is none."""
    import re

    m = re.search(r'<pre class="code token"[^>]*>(.*?)</pre>', body, re.S)
    return m.group(1).strip() if m else ""
