"""Demo seed for `manage.py demo`: one change window, so a new user sees the calendar and a blocked button."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from django.db import transaction

from apps.audit.service import Outcome, record

from .models import ChangeWindow

SYSTEM = SimpleNamespace(username="system", is_authenticated=False)
NIGHTLY_FREEZE = {
    "kind": ChangeWindow.Kind.DENY,
    "rrule": "DTSTART:20260105T200000\nRRULE:FREQ=DAILY",
    "duration": timedelta(hours=10),
    "timezone": "Europe/Berlin",
    "app_glob": "*-prod",
    "actions": ["sync", "rollback"],
}


@transaction.atomic
def seed_windows() -> str:
    """A nightly freeze (20:00–06:00 Europe/Berlin) on production applications; returns its description."""
    window, created = ChangeWindow.objects.get_or_create(name="prod-nightly-freeze", defaults=NIGHTLY_FREEZE)
    if created:
        record(None, user=SYSTEM, action="create", outcome=Outcome.SUCCEEDED, kind="changewindow", name=window.name,
               payload={"source": "manage.py demo"}, after=window.snapshot())  # fmt: skip
    return "change window prod-nightly-freeze: no sync or rollback of *-prod apps 20:00–06:00 Europe/Berlin"


DEMO_SCHEDULE_APP = "payments-api-dev"  # the simulator's first application (apps/simulator/seed.py)


@transaction.atomic
def seed_approvals_and_schedule(member_password: str) -> list[tuple[str, str, str]]:
    """An approval policy on production syncs (one approver of team sre, from another team than the requester's),
    its approver, and a nightly scheduled sync of a payments dev app owned by `dev`; returns who may log in."""
    from django.contrib.auth import get_user_model

    from apps.instances.models import Instance
    from apps.teams.models import Membership, Team

    from . import schedules
    from .models import ApprovalPolicy, Schedule

    User = get_user_model()
    approver, _ = User.objects.get_or_create(username="approver", defaults={"email": "approver@example.com"})
    approver.set_password(member_password)
    approver.save()
    sre, _ = Team.objects.get_or_create(slug="sre", defaults={"name": "sre", "description": "Approves production."})
    Membership.objects.get_or_create(team=sre, user=approver)
    policy, created = ApprovalPolicy.objects.get_or_create(
        name="prod-needs-sre", defaults={"app_glob": "*-prod", "actions": ["sync", "rollback"], "required": 1,
                                         "other_team": True},
    )  # fmt: skip
    if created:
        policy.approver_teams.set([sre])
        record(None, user=SYSTEM, action="create", outcome=Outcome.SUCCEEDED, kind="approvalpolicy",
               name=policy.name, payload={"source": "manage.py demo"}, after=policy.snapshot())  # fmt: skip
    dev = User.objects.filter(username="dev").first()
    instance = Instance.objects.order_by("name").first()
    if dev is not None and instance is not None and not Schedule.objects.filter(owner=dev).exists():
        schedule = Schedule(owner=dev, instance_name=instance.name, project="payments", app=DEMO_SCHEDULE_APP,
                            kind="sync", params={"prune": False, "dryRun": False}, timezone="Europe/Berlin",
                            rrule="DTSTART:20260105T020000\nRRULE:FREQ=DAILY")  # fmt: skip
        schedule.next_run_at = schedules.first_due(schedule)
        schedule.save()
        record(None, user=SYSTEM, action="create", outcome=Outcome.SUCCEEDED, instance=instance.name,
               kind="application", project="payments", name=DEMO_SCHEDULE_APP, after=schedule.snapshot(),
               payload={"schedule": schedule.pk, "source": "manage.py demo"})  # fmt: skip
    return [("approver", member_password, "member of team sre: approves syncs and rollbacks of *-prod apps "
             "(policy prod-needs-sre); dev's production syncs wait for them")]  # fmt: skip
