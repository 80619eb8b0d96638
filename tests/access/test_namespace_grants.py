"""Grants on the namespace an Application lives in (Argo CD's `project/namespace/name`)."""

from __future__ import annotations

import pytest
from django.utils.timezone import now

from apps.access.decide import Target, decide
from apps.access.models import Grant
from apps.access.rules import applications_q, can, teams_allowing
from apps.index.models import ApplicationSummary
from apps.instances.models import Instance
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod(db):
    return Instance.objects.create(name="prod-eu", url="https://prod-eu.example.com")


@pytest.fixture
def team_a_syncer(alice, prod):
    team = Team.objects.create(slug="team-a", name="Team A")
    Membership.objects.create(team=team, user=alice)
    Grant.objects.create(team=team, namespace_glob="team-a*", actions=["sync"])
    return alice


def test_a_grant_on_one_namespace_covers_only_apps_living_there(team_a_syncer, prod):
    alice = team_a_syncer
    assert can(alice, "sync", prod, "default", "web", "team-a")
    assert can(alice, "sync", prod, "default", "web", "team-a-staging")
    assert not can(alice, "sync", prod, "default", "web", "team-b")
    assert not can(alice, "sync", prod, "default", "web", "argocd")
    # An unknown namespace is covered only by a grant on every namespace.
    assert not can(alice, "sync", prod, "default", "web")
    assert decide(alice, "sync", Target(prod, "default", "web", namespace="team-b")).reason == "not granted"
    assert teams_allowing(alice, "sync", "prod-eu", "default", "web", "team-a") == ["team-a"]
    assert teams_allowing(alice, "sync", "prod-eu", "default", "web", "team-b") == []


def test_a_grant_without_a_namespace_covers_every_namespace(alice, prod):
    team = Team.objects.create(slug="ops", name="Ops")
    Membership.objects.create(team=team, user=alice)
    grant = Grant.objects.create(team=team, actions=["sync"])
    assert grant.namespace_glob == "*"
    assert can(alice, "sync", prod, "default", "web", "team-b")
    assert can(alice, "sync", prod, "default", "web", "argocd")
    assert str(grant) == "Ops: sync on */*/*"


def test_the_index_filter_keeps_apps_of_the_granted_namespace_only(team_a_syncer, prod):
    for ns in ("team-a", "team-b", "argocd"):
        ApplicationSummary.objects.create(instance=prod, namespace=ns, name="web", project="default", seen_at=now())
    visible = ApplicationSummary.objects.filter(applications_q(team_a_syncer, "sync"))
    assert list(visible.values_list("namespace", flat=True)) == ["team-a"]
