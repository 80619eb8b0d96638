"""Change windows on the list pages: rows say "blocked by window W until T", bulk sync skips them (audited), and the
calendar lists the windows that govern what the viewer can see."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from apps.audit.models import AuditEvent
from apps.governance.models import ChangeWindow
from apps.index.models import ApplicationSummary
from apps.operations.models import Operation

from .conftest import grant

ALWAYS = "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"


@pytest.fixture
def payments_freeze(db):
    return ChangeWindow.objects.create(name="payments-freeze", kind="deny", rrule=ALWAYS, duration=timedelta(days=1),
                                       project_glob="payments", actions=["sync"])  # fmt: skip


def blocked_rows(body: str) -> list[str]:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [re.search(r'name="app" value="([^"]+)"', r).group(1) for r in rows if "data-window-block" in r]


def test_list_rows_say_which_window_blocks_them(client, alice, indexed, payments_freeze):
    grant(alice, "ops", actions=("view", "sync"))
    client.force_login(alice)
    body = client.get("/applications/", {"project": "payments"}).content.decode()
    expected = ApplicationSummary.objects.filter(project="payments").count()
    assert expected and len(blocked_rows(body)) == min(expected, 50)
    assert "blocked by window payments-freeze until" in body
    other = client.get("/applications/", {"project": "search"}).content.decode()
    assert blocked_rows(other) == [] and "blocked by window" not in other


def test_bulk_sync_skips_blocked_applications_and_audits_each(client, alice, indexed, payments_freeze):
    grant(alice, "ops", actions=("view", "sync"))
    client.force_login(alice)
    blocked = ApplicationSummary.objects.filter(project="payments").first()
    response = client.post("/operations/bulk-sync/", {"app": [f"sim-test/{blocked.name}"]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert "blocked by window payments-freeze" in response.content.decode()
    assert not Operation.objects.exists()
    event = AuditEvent.objects.get(action="sync", outcome="denied", name=blocked.name)
    assert "blocked by window payments-freeze" in event.error


def test_calendar_lists_the_windows_over_what_the_viewer_can_see(client, alice, bob, indexed, payments_freeze):
    ChangeWindow.objects.create(name="weekend-freeze", kind="deny", timezone="Europe/Berlin", actions=["sync"],
                                rrule="DTSTART:20260103T000000\nRRULE:FREQ=WEEKLY;BYDAY=SA", duration=timedelta(days=2),
                                instance_glob="nowhere-*")  # fmt: skip
    grant(alice, "payments", project="payments")
    client.force_login(alice)
    body = client.get("/governance/calendar/", {"tz": "Europe/Berlin"}).content.decode()
    rows = re.findall(r'<tr data-window="([^"]+)"', body)
    assert rows.count("payments-freeze") in (14, 15)  # one a day for 14 days (15 when today's is still open)
    assert "weekend-freeze" not in rows  # it governs no instance alice can see
    assert "CET" in body and "(UTC)" in body  # the viewer's zone and the window's own
    client.force_login(bob)  # no grant: nothing to show
    assert re.findall(r'<tr data-window="', client.get("/governance/calendar/").content.decode()) == []


def test_calendar_refuses_an_unknown_time_zone_with_a_message(client, alice, indexed):
    client.force_login(alice)
    response = client.get("/governance/calendar/", {"tz": "Mars/Olympus"})
    assert response.status_code == 200 and b"not a known time zone" in response.content
