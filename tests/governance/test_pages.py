"""Platform admins manage change windows; every change is audited with before/after; bad input changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.governance.models import ChangeWindow
from apps.teams.models import Team

pytestmark = pytest.mark.django_db


def form(**kw):
    data = {
        "name": "friday-freeze",
        "kind": "deny",
        "rrule": "DTSTART:20260102T160000\r\nRRULE:FREQ=WEEKLY;BYDAY=FR",
        "duration": "3 00:00:00",
        "timezone": "Europe/Berlin",
        "instance_glob": "prod-*",
        "project_glob": "*",
        "app_glob": "*",
        "actions": ["sync", "rollback"],
        "enabled": "on",
    }
    return {**data, **kw}


def test_admin_creates_edits_and_deletes_a_window_each_audited(admin_client):
    team = Team.objects.create(name="SRE", slug="sre")
    response = admin_client.post("/governance/windows/new/", form(exempt_teams=[team.pk]))
    assert response.status_code == 302
    w = ChangeWindow.objects.get()
    assert (w.duration, w.actions, list(w.exempt_teams.all())) == (timedelta(days=3), ["sync", "rollback"], [team])
    assert w.rrule == "DTSTART:20260102T160000\nRRULE:FREQ=WEEKLY;BYDAY=FR"
    created = AuditEvent.objects.get(action="create", kind="changewindow")
    assert created.after["exempt_teams"] == ["sre"] and created.before is None

    admin_client.post(f"/governance/windows/{w.pk}/", form(kind="allow", instance_glob="*"))
    edited = AuditEvent.objects.get(action="edit", kind="changewindow")
    assert (edited.before["kind"], edited.after["kind"]) == ("deny", "allow")
    assert (edited.before["exempt_teams"], edited.after["exempt_teams"]) == (["sre"], [])

    admin_client.post(f"/governance/windows/{w.pk}/", {"delete": "1"})
    assert not ChangeWindow.objects.exists()
    deleted = AuditEvent.objects.get(action="delete", kind="changewindow")
    assert deleted.before["name"] == "friday-freeze"
    assert "No change window yet" in admin_client.get("/governance/windows/").content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rrule", "RRULE:FREQ=WEEKLY", "DTSTART"),
        ("rrule", "DTSTART:20260102T160000\nRRULE:FREQ=FORTNIGHTLY", "cannot be read"),
        ("timezone", "Europe/Atlantis", "not a known time zone"),
        ("instance_glob", "prod-{a", "not a valid glob"),
        ("duration", "00:00:00", "positive duration"),
    ],
)
def test_bad_window_input_is_explained_and_saves_nothing(admin_client, field, value, message):
    response = admin_client.post("/governance/windows/new/", form(**{field: value}))
    assert response.status_code == 200 and message in response.content.decode()
    assert not ChangeWindow.objects.exists()
    assert AuditEvent.objects.get(kind="changewindow").outcome == "failed"


def test_members_may_not_manage_windows_but_may_read_the_calendar(client, alice):
    client.force_login(alice)
    assert client.get("/governance/windows/").status_code == 403
    assert client.post("/governance/windows/new/", form()).status_code == 403
    assert not ChangeWindow.objects.exists()
    assert client.get("/governance/calendar/").status_code == 200


def test_demo_seeds_one_audited_window_once(alice):
    from apps.governance.demo import seed_windows

    seed_windows()
    seed_windows()
    w = ChangeWindow.objects.get()
    assert (w.name, w.kind, w.app_glob) == ("prod-nightly-freeze", "deny", "*-prod")
    assert AuditEvent.objects.filter(kind="changewindow", action="create", name=w.name).count() == 1
    from apps.governance import windows

    assert windows.load()  # it parses and evaluates
