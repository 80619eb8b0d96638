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
