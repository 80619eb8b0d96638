"""Sync windows as Argo CD evaluates them: a 5-field cron schedule, a Go duration and a time zone.

Argo CD parses schedules with robfig/cron's standard parser (minute hour day-of-month month day-of-week, no
seconds, no @descriptors) and calls a window active when the schedule's next firing after `now - duration`
comes before `now` (SyncWindow.active). croniter does the parsing and the firing arithmetic; this module only
refuses what croniter accepts but robfig/cron does not: a sixth field, descriptors, `L`, `W`, `#`, `H`,
day-of-week 7 (robfig's days run 0-6, Sunday = 0) and ranges that run backwards. Day-of-month and
day-of-week match when either does if both are restricted, and both must match otherwise — croniter's
default, and robfig's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NAMES = (
    {},
    {},
    {},
    {
        m: i
        for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
    },
    {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
)
_RANGE = re.compile(r"^(?:[*?]|(\w+)(?:-(\w+))?)(?:/(\d+))?$")
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_HORIZON = timedelta(days=14)


class CronError(ValueError):
    """The schedule or duration is one Argo CD would not parse; `str()` words it as robfig/Go do."""


def parse_duration(text: str) -> timedelta:
    """Go's time.ParseDuration ("1h30m", "45s", "1.5h")."""
    text = (text or "").strip()
    body = text.lstrip("+-")
    if body == "0":
        return timedelta(0)
    if not body or _DURATION.sub("", body):
        raise CronError(f'time: invalid duration "{text}"')
    seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(body))
    return timedelta(seconds=-seconds if text.startswith("-") else seconds)


def _value(token: str, idx: int, expr: str) -> int:
    names = _NAMES[idx]
    if token.lower() in names:
        return names[token.lower()]
    if not token.isdigit():
        raise CronError(f"failed to parse int from {token}: strconv.Atoi: parsing {token!r}: invalid syntax")
    return int(token)


def _check_field(spec: str, idx: int) -> None:
    lo, hi = _BOUNDS[idx]
    for expr in spec.split(","):
        m = _RANGE.match(expr)
        if not m:
            raise CronError(f"invalid {_FIELDS[idx]} expression: {expr}")
        if m.group(1) is None:
            continue
        start = _value(m.group(1), idx, expr)
        end = _value(m.group(2), idx, expr) if m.group(2) else start
        if start < lo:
            raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
        if end > hi:
            raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
        if m.group(3) is not None and int(m.group(3)) == 0:
            raise CronError(f"step of range should be a positive number: {expr}")


class Schedule:
    """A schedule robfig/cron's standard parser accepts; firings computed by croniter."""

    def __init__(self, expr: str) -> None:
        fields = (expr or "").split()
        if len(fields) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
        for idx, spec in enumerate(fields):
            _check_field(spec, idx)
        self.expr = " ".join(fields)
        try:
            croniter(self.expr)
        except (CroniterError, ValueError) as exc:
            raise CronError(str(exc)) from exc

    def next_after(self, t: datetime) -> datetime:
        """The first firing strictly after `t` (an aware datetime, in the window's zone)."""
        return croniter(self.expr, t).get_next(datetime)

    def prev_before(self, t: datetime) -> datetime:
        """The last firing strictly before `t`."""
        return croniter(self.expr, t).get_prev(datetime)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def window_active(schedule: str, duration: str, tz: str = "", now: datetime | None = None) -> bool:
    """Argo CD's SyncWindow.active: the next firing after `now - duration` is before `now`."""
    now = (now or datetime.now(UTC)).astimezone(_zone(tz))
    return Schedule(schedule).next_after(now - parse_duration(duration)) < now


@dataclass
class WindowState:
    active: bool
    next_change: datetime | None  # aware, UTC
    error: str = ""


def window_state(window: dict, now: datetime | None = None) -> WindowState:
    """Active now, and when it next opens (inactive) or closes (active). Unparseable windows block syncs."""
    local = (now or datetime.now(UTC)).astimezone(_zone(window.get("timeZone") or ""))
    try:
        schedule = Schedule(window.get("schedule", ""))
        duration = parse_duration(window.get("duration", ""))
    except CronError as exc:
        return WindowState(active=False, next_change=None, error=f"unparseable: {exc} (Argo CD blocks syncs)")
    if schedule.next_after(local - duration) < local:
        end = schedule.prev_before(local) + duration
        # A firing before the window closes extends it; follow the chain until it ends or runs past the horizon.
        while end - local < _HORIZON:
            latest = schedule.prev_before(end)
            if latest + duration <= end:
                return WindowState(active=True, next_change=end.astimezone(UTC))
            end = latest + duration
        return WindowState(active=True, next_change=None)
    return WindowState(active=False, next_change=schedule.next_after(local).astimezone(UTC))
