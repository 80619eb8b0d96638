"""Sync-window arithmetic: active now and the next change, in the window's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.kinds.cron import CronError, parse_duration, window_state

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
    every_15 = window_state({"schedule": "*/15 9-17 * * MON-FRI", "duration": "5m"}, NOW)
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
