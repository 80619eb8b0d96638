"""Sync windows as Argo CD evaluates them (robfig/cron's standard parser, SyncWindow.active), on croniter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.core.cron import CronError, Schedule, parse_duration, window_active, window_state

NOW = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)  # a Wednesday


def test_go_durations_parse_and_garbage_is_refused():
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45s") == timedelta(seconds=45)
    with pytest.raises(CronError):
        parse_duration("an hour")


def test_a_window_that_fired_within_its_duration_is_active_until_it_closes():
    st = window_state({"schedule": "0 12 * * *", "duration": "1h"}, NOW)
    assert st.active and st.next_change == datetime(2026, 3, 4, 13, 0, tzinfo=UTC)


def test_an_inactive_window_says_when_it_opens_next():
    st = window_state({"schedule": "0 22 * * *", "duration": "2h"}, NOW)
    assert not st.active and st.next_change == datetime(2026, 3, 4, 22, 0, tzinfo=UTC)


def test_time_zone_of_the_window_is_respected():
    # 13:00 in New York (EST, UTC-5) = 18:00 UTC.
    st = window_state({"schedule": "0 13 * * *", "duration": "1h", "timeZone": "America/New_York"}, NOW)
    assert not st.active and st.next_change == datetime(2026, 3, 4, 18, 0, tzinfo=UTC)


def test_weekday_ranges_and_steps():
    weekend = window_state({"schedule": "0 3 * * 6", "duration": "1h"}, NOW)
    assert not weekend.active and weekend.next_change == datetime(2026, 3, 7, 3, 0, tzinfo=UTC)
    a_minute_later = NOW + timedelta(minutes=1)
    every_15 = window_state({"schedule": "*/15 9-17 * * MON-FRI", "duration": "5m"}, a_minute_later)
    assert every_15.active and every_15.next_change == datetime(2026, 3, 4, 12, 35, tzinfo=UTC)


def test_overlapping_firings_extend_the_window():
    st = window_state({"schedule": "* * * * *", "duration": "1h"}, NOW)
    assert st.active and st.next_change is None  # never closes within the look-ahead
    hourly = window_state({"schedule": "0 * * * *", "duration": "90m"}, NOW)
    assert hourly.active and hourly.next_change is None
    chained = window_state({"schedule": "0 12,13 * * *", "duration": "90m"}, NOW)
    assert chained.active and chained.next_change == datetime(2026, 3, 4, 14, 30, tzinfo=UTC)


def test_unparseable_window_reports_that_it_blocks():
    st = window_state({"schedule": "61 * * *", "duration": "1h"}, NOW)
    assert not st.active and "unparseable" in st.error


def test_a_window_opens_only_after_its_firing_as_in_argocd():
    # SyncWindow.active: the next firing after now-duration must come *before* now.
    assert not window_active("30 12 * * *", "1h", "UTC", NOW)
    assert window_active("30 12 * * *", "1h", "UTC", NOW + timedelta(seconds=1))
    assert not window_active("30 11 * * *", "1h", "UTC", NOW)  # closed exactly an hour after it fired
    assert not window_state({"schedule": "30 12 * * *", "duration": "1h"}, NOW).active


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("0 3 * * 7", "end of range (7) above maximum (6): 7"),  # robfig/cron: Sunday is 0 only
        ("0 3 * * 5-7", "end of range (7) above maximum (6): 5-7"),
        ("0 3 * * FRI-MON", "beginning of range (5) beyond end of range (1): FRI-MON"),
        ("0 0 3 * * *", "expected exactly 5 fields, found 6: [0 0 3 * * *]"),
        ("@daily", "expected exactly 5 fields, found 1: [@daily]"),
        ("0 3 L * *", "failed to parse int from L"),
        ("0 3 * * 1#2", "invalid day of week expression: 1#2"),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ],
)
def test_schedules_robfig_cron_refuses_are_refused_with_its_reason(schedule, reason):
    with pytest.raises(CronError) as exc:
        Schedule(schedule)
    assert reason in str(exc.value)
    assert window_state({"schedule": schedule, "duration": "1h"}, NOW).error.startswith("unparseable")


def test_sunday_is_day_zero_and_names_are_case_insensitive():
    sunday = datetime(2026, 3, 8, 3, 30, tzinfo=UTC)
    for schedule in ("0 3 * * 0", "0 3 * * sun", "0 3 * * SUN", "0 3 * * 6-6,0"):
        assert window_active(schedule, "1h", "UTC", sunday), schedule
    assert not window_active("0 3 * * 1-6", "1h", "UTC", sunday)


def test_day_of_month_and_weekday_match_either_when_both_are_restricted():
    monday_the_2nd = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    wednesday_the_4th = datetime(2026, 3, 4, 3, 30, tzinfo=UTC)
    assert window_active("0 3 4 * MON", "1h", "UTC", monday_the_2nd)  # weekday matches
    assert window_active("0 3 4 * MON", "1h", "UTC", wednesday_the_4th)  # day of month matches
    assert not window_active("0 3 4 * *", "1h", "UTC", monday_the_2nd)  # a star: both must match
    assert window_active("0 3 */2 * MON", "1h", "UTC", monday_the_2nd)  # a stepped star is a restriction
