"""Demo seed for `manage.py demo`: one delegated team on the simulated instances.

The simulator names applications `<team>-<component>-<env>` in the project named after the team
(apps/simulator/seed.py), so `payments` / `payments-*` is exactly the payments team's applications.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.access.models import Grant
from apps.audit.service import Outcome, record

from .models import Membership, Team

SYSTEM = SimpleNamespace(username="system", is_authenticated=False)
DEMO_ACTIONS = ["sync", "rollback", "terminate", "logs", "action", "refresh"]
# What the demo's delegation may not do: force a sync, or sync a revision other than the app's own or a release
# branch (apps/access/decide.py); the sync form shows these options disabled with the reason.
DEMO_CONSTRAINTS = {"force": False, "revision": "globs", "revision_globs": ["release-*"]}


@transaction.atomic
def seed_teams(member_password: str) -> list[tuple[str, str, str]]:
    User = get_user_model()
    dev, _ = User.objects.get_or_create(username="dev", defaults={"email": "dev@example.com"})
    dev.set_password(member_password)
    dev.is_active = True
    dev.save()
    team, _ = Team.objects.get_or_create(
        slug="payments", defaults={"name": "payments", "description": "Owns the payments applications."}
    )
    Membership.objects.get_or_create(team=team, user=dev)
    grant, created = Grant.objects.get_or_create(
        team=team, instance_glob="*", project_glob="payments", app_glob="payments-*",
        defaults={"actions": DEMO_ACTIONS, "constraints": DEMO_CONSTRAINTS},
    )  # fmt: skip
    if created:
        record(None, user=SYSTEM, action="create", outcome=Outcome.SUCCEEDED, kind="grant", name=team.slug,
               team=team.slug, payload={"source": "manage.py demo"},
               after={"instance_glob": grant.instance_glob, "project_glob": grant.project_glob,
                      "app_glob": grant.app_glob, "actions": grant.actions,
                      "constraints": grant.constraints})  # fmt: skip
    what = (
        f"member of team payments: may {', '.join(DEMO_ACTIONS)} (and view) payments-* apps in project payments; "
        "no force, revisions: the app's own or release-*"
    )
    return [("dev", member_password, what)]
