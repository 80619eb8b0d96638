"""Teams, grants and events shared by the audit and security tests.

alice is in team payments (grant: instance prod, project payments, any app; view + sync);
bob is in team search (grant: instance prod, project search, apps search-*; view);
carol is in team platform (grant: instance stage, every project and app; view) so she sees
instance-wide events on stage.
"""

from __future__ import annotations

import pytest

from apps.access.models import Grant
from apps.audit.models import AuditEvent
from apps.audit.service import Outcome, record
from apps.teams.models import Membership, Team


def event(**fields) -> AuditEvent:
    """Record an event as a named actor outside any request (the way tasks record)."""
    fields.setdefault("action", "sync")
    fields.setdefault("outcome", Outcome.SUCCEEDED)
    actor = fields.pop("actor", "system")
    return record(None, actor=actor, **fields)


def _team(slug: str, user, **grant) -> Team:
    team = Team.objects.create(name=slug.title(), slug=slug)
    Membership.objects.create(team=team, user=user)
    Grant.objects.create(team=team, **grant)
    return team


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.com", "carol-password-123")


@pytest.fixture
def teams(alice, bob, carol) -> dict[str, Team]:
    return {
        "payments": _team("payments", alice, instance_glob="prod", project_glob="payments", actions=["sync"]),
        "search": _team("search", bob, instance_glob="prod", project_glob="search", app_glob="search-*", actions=[]),
        "platform": _team("platform", carol, instance_glob="stage", actions=[]),
    }


@pytest.fixture
def events(teams) -> dict[str, AuditEvent]:
    """One event of each visibility class, oldest first."""
    return {
        "pay_app": event(instance="prod", kind="application", project="payments", name="pay-api", team="payments"),
        "search_app": event(instance="prod", kind="application", project="search", name="search-web", team="search"),
        "search_other": event(instance="prod", kind="application", project="search", name="crawler"),
        "prod_cluster": event(instance="prod", kind="cluster", name="in-cluster", action="edit"),
        "stage_repo": event(instance="stage", kind="repository", name="https://git.example.com/r.git", action="create"),
        "stage_app": event(instance="stage", kind="application", project="web", name="web-ui"),
        "team_change": event(kind="team", name="payments", action="edit", actor="root"),
        "alice_own": event(
            instance="prod", kind="application", project="search", name="crawler", actor="alice", outcome=Outcome.DENIED
        ),  # fmt: skip
    }
