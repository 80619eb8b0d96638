"""The change-window decision: recurrences, durations across daylight saving, deny over allow, exemptions, globs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.access.models import Grant
from apps.governance import windows
from apps.governance.models import ChangeWindow
from apps.teams.models import Membership, Team

BERLIN_NIGHTLY = "DTSTART:20260301T010000\nRRULE:FREQ=DAILY"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window(**kw) -> windows.Window:
    values = {
        "name": "w",
        "kind": "deny",
        "rrule": BERLIN_NIGHTLY,
        "duration": timedelta(hours=3),
        "timezone": "Europe/Berlin",
        "actions": ["sync", "rollback"],
    }
    return windows.Window(**{**values, **kw})


def test_occurrence_starts_at_wall_clock_time_in_its_zone_before_and_after_daylight_saving():
    w = window()
    # Winter (CET, +1): 01:00 Berlin is 00:00 UTC; summer (CEST, +2): 23:00 UTC the day before.
    assert [o.start for o in w.occurrences(utc(2026, 3, 10, 0), utc(2026, 3, 10, 1))] == [utc(2026, 3, 10, 0)]
    assert [o.start for o in w.occurrences(utc(2026, 4, 9, 22), utc(2026, 4, 9, 23, 30))] == [utc(2026, 4, 9, 23)]


def test_duration_is_elapsed_time_on_the_spring_forward_day():
    """29 March 2026: Berlin's clocks jump 02:00 → 03:00. 01:00 CET + 3 h ends at 05:00 CEST (03:00 UTC)."""
    w = window()
    (occ,) = w.occurrences(utc(2026, 3, 29, 0), utc(2026, 3, 29, 0, 1))
    assert occ.start == utc(2026, 3, 29, 0)
    assert occ.end == utc(2026, 3, 29, 3)
    assert w.active_until(utc(2026, 3, 29, 2, 59)) == utc(2026, 3, 29, 3)
    assert w.active_until(utc(2026, 3, 29, 3)) is None  # the end is exclusive


def test_a_start_inside_the_spring_forward_gap_reads_with_the_offset_before_the_change():
    w = window(rrule="DTSTART:20260301T023000\nRRULE:FREQ=DAILY", duration=timedelta(minutes=30))
    (occ,) = w.occurrences(utc(2026, 3, 29, 0), utc(2026, 3, 29, 4))
    assert occ.start == utc(2026, 3, 29, 1, 30)  # 02:30 CET, which the clock shows as 03:30 CEST


def test_occurrences_end_with_count_and_next_start_is_none_after_the_last():
    w = window(rrule="DTSTART:20260301T010000\nRRULE:FREQ=DAILY;COUNT=2")
    assert w.next_start(utc(2026, 3, 1, 12)) == utc(2026, 3, 2, 0)
    assert w.next_start(utc(2026, 3, 2, 12)) is None


@pytest.mark.parametrize(
    "text",
    [
        "RRULE:FREQ=DAILY",
        "DTSTART:20260301T010000",
        "DTSTART:20260301T010000\nRRULE:FREQ=SOMETIMES",
        "DTSTART:20260301T010000\nRRULE:FREQ=MINUTELY",
        "nonsense",
    ],
)
def test_unreadable_recurrences_are_refused_with_a_message(text):
    with pytest.raises(windows.WindowError):
        windows.parse_rule(text)


def test_unknown_time_zone_is_refused():
    with pytest.raises(windows.WindowError, match="time zone"):
        windows.zone("Mars/Olympus")


@pytest.fixture
def member(db, alice):
    team = Team.objects.create(name="Payments", slug="payments")
    Membership.objects.create(team=team, user=alice)
    Grant.objects.create(team=team, actions=["sync", "rollback"])
    return alice


def make(**kw) -> ChangeWindow:
    values = {"name": "freeze", "kind": "deny", "rrule": BERLIN_NIGHTLY, "duration": timedelta(hours=3)}
    values.update(timezone="Europe/Berlin", actions=["sync", "rollback"])
    exempt = kw.pop("exempt", [])
    w = ChangeWindow.objects.create(**{**values, **kw})
    w.exempt_teams.set(exempt)
    return w


IN_NIGHT = utc(2026, 3, 10, 1)  # 02:00 Berlin, inside the nightly 01:00–04:00
IN_DAY = utc(2026, 3, 10, 11)


def test_active_deny_window_blocks_until_its_occurrence_ends(member):
    make()
    block = windows.check(member, "sync", "prod", "payments", "api", at=IN_NIGHT)
    assert block == windows.Block("freeze", utc(2026, 3, 10, 3), False)
    assert str(block) == "blocked by window freeze until 2026-03-10 03:00 UTC"
    assert windows.check(member, "sync", "prod", "payments", "api", at=IN_DAY) is None


def test_window_governs_only_its_actions(member):
    make(actions=["rollback"])
    assert windows.check(member, "sync", "prod", "payments", "api", at=IN_NIGHT) is None
    assert windows.check(member, "rollback", "prod", "payments", "api", at=IN_NIGHT) is not None


def test_allow_windows_block_outside_them_until_the_next_one_opens(member):
    make(name="weekdays", kind="allow", rrule="DTSTART:20260302T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
         duration=timedelta(hours=8))  # fmt: skip
    inside = utc(2026, 3, 10, 9)  # Tuesday 10:00 Berlin
    saturday = utc(2026, 3, 14, 12)
    assert windows.check(member, "sync", "prod", "payments", "api", at=inside) is None
    block = windows.check(member, "sync", "prod", "payments", "api", at=saturday)
    assert block.window == "weekdays"
    assert block.until == utc(2026, 3, 16, 8)  # Monday 09:00 CET


def test_deny_wins_over_an_open_allow_window(member):
    make(name="always", kind="allow", rrule="DTSTART:20260301T000000\nRRULE:FREQ=DAILY", duration=timedelta(days=1))
    make(name="freeze")
    block = windows.check(member, "sync", "prod", "payments", "api", at=IN_NIGHT)
    assert block is not None and block.window == "freeze"


def test_exempt_team_is_never_blocked(member):
    make(exempt=[Team.objects.get(slug="payments")])
    make(name="weekends", kind="allow", rrule="DTSTART:20260307T000000\nRRULE:FREQ=WEEKLY;BYDAY=SA",
         exempt=[Team.objects.get(slug="payments")])  # fmt: skip
    assert windows.check(member, "sync", "prod", "payments", "api", at=IN_NIGHT) is None


def test_others_stay_blocked_by_a_window_that_exempts_a_team(member, bob):
    make(exempt=[Team.objects.get(slug="payments")])
    assert windows.check(bob, "sync", "prod", "payments", "api", at=IN_NIGHT) is not None


@pytest.mark.parametrize(
    ("target", "blocked"),
    [
        (("prod-eu", "payments", "api"), True),
        (("prod-eu", "payments", "api/v2"), True),  # Argo CD's `*` crosses `/`
        (("staging", "payments", "api"), False),
        (("prod-eu", "search", "api"), False),
        (("prod-eu", "payments", "worker"), False),
    ],
)
def test_window_scope_follows_argo_cd_globs(member, target, blocked):
    make(instance_glob="prod-*", project_glob="{payments,billing}", app_glob="api*")
    assert (windows.check(member, "sync", *target, at=IN_NIGHT) is not None) is blocked


def test_disabled_window_blocks_nothing(member):
    make(enabled=False)
    assert windows.check(member, "sync", "prod", "payments", "api", at=IN_NIGHT) is None


def test_override_holders_are_told_they_may_override(member, admin_user):
    from apps.instances.models import Instance

    Instance.objects.create(name="prod", url="https://prod.example", token="t")  # can() needs it enabled
    make()
    Grant.objects.create(team=Team.objects.get(slug="payments"), project_glob="payments", actions=["override"])
    assert windows.check(member, "sync", "prod", "payments", "api", at=IN_NIGHT).may_override
    assert not windows.check(member, "sync", "prod", "search", "api", at=IN_NIGHT).may_override
    assert windows.check(admin_user, "sync", "prod", "search", "api", at=IN_NIGHT).may_override
