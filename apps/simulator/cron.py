"""Just enough cron and Go-duration parsing to decide whether a sync window is active."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_NAMES = {
    3: {
        m: i + 1
        for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
    },
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class CronError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Go time.ParseDuration subset ("1h30m", "45s")."""
    text = (text or "").strip()
    if not text:
        raise CronError("empty duration")
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            raise CronError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise CronError(f'time: invalid duration "{text}"')
    return total


def _field(spec: str, idx: int) -> set[int]:
    lo, hi = _RANGES[idx]
    values: set[int] = set()
    for part in spec.lower().split(","):
        step = 1
        if "/" in part:
            part, step_s = part.split("/", 1)
            if not step_s.isdigit() or int(step_s) == 0:
                raise CronError(f"bad step in {spec!r}")
            step = int(step_s)
        if part in ("*", "?"):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _num(a, idx), _num(b, idx)
        else:
            start = _num(part, idx)
            end = hi if step > 1 else start
        if start < lo or end > hi or start > end:
            raise CronError(f"value out of range in {spec!r}")
        values.update(range(start, end + 1, step))
    if idx == 4 and 7 in values:
        values.add(0)
    return values


def _num(text: str, idx: int) -> int:
    if text.isdigit():
        value = int(text)
        return 0 if idx == 4 and value == 7 else value
    names = _NAMES.get(idx, {})
    if text in names:
        return names[text]
    raise CronError(f"bad cron value {text!r}")


class Cron:
    def __init__(self, expr: str) -> None:
        fields = expr.split()
        if len(fields) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(fields)}: {expr}")
        self.sets = [_field(f, i) for i, f in enumerate(fields)]
        self.dom_star = fields[2] in ("*", "?")
        self.dow_star = fields[4] in ("*", "?")

    def matches(self, t: datetime) -> bool:
        minute, hour, dom, month, dow = self.sets
        if t.minute not in minute or t.hour not in hour or t.month not in month:
            return False
        dom_ok = t.day in dom
        dow_ok = (t.isoweekday() % 7) in dow
        # Standard cron: when both day fields are restricted, either may match.
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def last_fire(self, now: datetime, lookback: timedelta) -> datetime | None:
        """Most recent firing at or before `now`, searching back at most `lookback` (minute steps)."""
        t = now.replace(second=0, microsecond=0)
        end = now - lookback - timedelta(minutes=1)
        while t >= end:
            if self.matches(t):
                return t
            t -= timedelta(minutes=1)
        return None


def window_active(schedule: str, duration: str, tz: str = "", now: datetime | None = None) -> bool:
    """Active iff the last cron firing (in the window's zone) is less than `duration` ago."""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    now = (now or datetime.now(UTC)).astimezone(zone)
    seconds = parse_duration(duration)
    # Durations longer than a few days would make the minute scan slow; cap the scan window.
    lookback = timedelta(seconds=min(seconds, 8 * 24 * 3600))
    fired = Cron(schedule).last_fire(now, lookback)
    return fired is not None and (now - fired).total_seconds() < seconds
