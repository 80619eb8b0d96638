"""Sync windows: is a window active now, and when does that change? (5-field cron + Go duration.)

Argo CD: a window is active when its most recent cron firing is within `duration` of now, in the window's
time zone (UTC when unset or unknown). Day-of-month and day-of-week OR together when both are restricted
(robfig/cron), otherwise they AND.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_NAMES = {
    3: {m: i for i, m in enumerate(_MONTHS, 1)},
    4: {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_SCAN_DAYS = 366 * 2
_HORIZON = timedelta(days=14)


class CronError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """Go's time.ParseDuration for h/m/s (e.g. "1h30m", "2h", "45m")."""
    text = (text or "").strip()
    if not text or _DURATION.sub("", text):
        raise CronError(f"bad duration {text!r}")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return timedelta(seconds=sum(float(n) * scale[u] for n, u in _DURATION.findall(text)))


def _field(spec: str, idx: int) -> set[int]:
    lo, hi = _RANGES[idx]
    out: set[int] = set()
    for part in spec.upper().split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng in ("*", "?"):
            a, b = lo, hi
        elif "-" in rng:
            a, b = (_num(x, idx) for x in rng.split("-", 1))
        else:
            a = _num(rng, idx)
            b = hi if step_s else a
        if not (lo <= a <= hi and lo <= b <= hi) or step < 1:
            raise CronError(f"field {idx + 1} out of range: {part!r}")
        out.update(range(a, b + 1, step))
    if idx == 4 and 7 in out:
        out = (out - {7}) | {0}
    return out


def _num(text: str, idx: int) -> int:
    if text in _NAMES.get(idx, {}):
        return _NAMES[idx][text]
    if not text.isdigit():
        raise CronError(f"not a number: {text!r}")
    return int(text)


class Cron:
    def __init__(self, expr: str) -> None:
        parts = (expr or "").split()
        if len(parts) != 5:
            raise CronError(f"need 5 fields (minute hour day month weekday), got {len(parts)}")
        self.minutes, self.hours, self.dom, self.months, self.dow = (_field(p, i) for i, p in enumerate(parts))
        self.dom_any = parts[2] in ("*", "?")
        self.dow_any = parts[4] in ("*", "?")

    def day_matches(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom_ok = d.day in self.dom
        dow_ok = (d.weekday() + 1) % 7 in self.dow
        if self.dom_any or self.dow_any:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def _times(self, day: datetime, reverse: bool):
        for h in sorted(self.hours, reverse=reverse):
            for m in sorted(self.minutes, reverse=reverse):
                yield day.replace(hour=h, minute=m, second=0, microsecond=0)

    def next_fire(self, after: datetime) -> datetime | None:
        """First firing strictly after `after` (naive local wall time)."""
        day = after.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(_SCAN_DAYS):
            if self.day_matches(day):
                for t in self._times(day, reverse=False):
                    if t > after:
                        return t
            day += timedelta(days=1)
        return None

    def prev_fire(self, at: datetime) -> datetime | None:
        """Last firing at or before `at`."""
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(_SCAN_DAYS):
            if self.day_matches(day):
                for t in self._times(day, reverse=True):
                    if t <= at:
                        return t
            day -= timedelta(days=1)
        return None


@dataclass
class WindowState:
    active: bool
    next_change: datetime | None  # aware, UTC
    error: str = ""


def window_state(window: dict, now: datetime | None = None) -> WindowState:
    """Active now, and when it next opens (inactive) or closes (active). Unparseable windows block syncs."""
    now = now or datetime.now(UTC)
    try:
        tz = ZoneInfo(window.get("timeZone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    try:
        cron = Cron(window.get("schedule", ""))
        duration = parse_duration(window.get("duration", ""))
    except CronError as exc:
        return WindowState(active=False, next_change=None, error=f"unparseable: {exc} (Argo CD blocks syncs)")
    local = now.astimezone(tz).replace(tzinfo=None)
    last = cron.prev_fire(local)
    if last is not None and local < last + duration:
        end = last + duration
        # A firing before the window closes extends it; jump to the latest such firing until none is left.
        while end - local < _HORIZON:
            latest = cron.prev_fire(end - timedelta(seconds=1))
            if latest is None or latest <= last:
                return WindowState(active=True, next_change=end.replace(tzinfo=tz).astimezone(UTC))
            last, end = latest, latest + duration
        return WindowState(active=True, next_change=None)  # open for longer than we look ahead
    nxt = cron.next_fire(local)
    return WindowState(active=False, next_change=nxt.replace(tzinfo=tz).astimezone(UTC) if nxt else None)
