"""Demo seed for `manage.py demo`: single sign-on through the demo provider, and an API token for the member."""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import RequestFactory

from apps.audit.service import Outcome, record
from apps.teams.models import Membership, Team

from . import tokens
from .oidc_models import GroupMapping

SYSTEM = SimpleNamespace(username="system", is_authenticated=False)
SSO_GROUP = "payments-devs"
SSO_TEAM = "payments"


@transaction.atomic
def seed_sso_mapping() -> GroupMapping:
    """Members of the provider's group payments-devs join team payments at sign-in (the team is seeded first)."""
    team = Team.objects.get(slug=SSO_TEAM)
    rule, created = GroupMapping.objects.get_or_create(
        group=SSO_GROUP, team=team, defaults={"role": Membership.Role.MEMBER}
    )
    if created:
        record(None, user=SYSTEM, action="create", outcome=Outcome.SUCCEEDED, kind="group_mapping", name=rule.group,
               team=team.slug, payload={"source": "manage.py demo"},
               after={"group": rule.group, "team": team.slug, "role": rule.role})  # fmt: skip
    return rule


def create_member_token(username: str = "dev") -> str:
    """One API token of the demo member, made by the token service as the API tokens page would (audited as
    theirs); returns the secret, which is stored nowhere."""
    request = RequestFactory().post("/account/tokens/", REMOTE_ADDR="127.0.0.1")
    request.user = get_user_model().objects.get(username=username)
    _, secret = tokens.create(
        request, name="demo token", actions=["sync"], expires_at=tokens.default_expiry(), project_glob="payments"
    )
    return secret
