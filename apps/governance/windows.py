"""The change-window decision: `check(user, action, instance, project, app, at=None) -> Block | None`.

Semantics: a window governs a target when it is enabled, lists the action, and its instance/project/app globs
(Argo CD's glob language, `apps.access.glob`) match. Members of a window's exempt teams are not governed by it.
An active deny window blocks until its occurrence ends; when allow windows govern the target, the action is
blocked outside all of them until the next one opens. Deny wins over allow.

Recurrences are RFC 5545 RRULEs read by dateutil; DTSTART is a wall-clock time in the window's time zone,
so "every Friday 18:00 Europe/Berlin" stays 18:00 across daylight saving. Durations are elapsed time: an
occurrence that spans a clock change lasts exactly its duration (as Argo CD's own windows do). A start that
falls into a spring-forward gap is read with the offset before the change (zoneinfo's fold=0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from django.utils import timezone

from apps.access import glob

SLACK = timedelta(days=1)  # widens searches in wall-clock time so that UTC offsets never cut an occurrence off
MAX_STEPS = 10_000


class WindowError(ValueError):
    """A recurrence or time zone that cannot be read; the message says what to fix."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowError(f"{name!r} is not a known time zone (use an IANA name such as Europe/Berlin).") from exc


@lru_cache(maxsize=256)
def parse_rule(text: str):
    """An rruleset of naive wall-clock datetimes; WindowError when the text is not a usable recurrence."""
    if "DTSTART" not in text.upper():
        raise WindowError("Give the first occurrence as a DTSTART line, e.g. DTSTART:20260105T180000.")
    if "RRULE" not in text.upper():
        raise WindowError("Give the recurrence as an RRULE line, e.g. RRULE:FREQ=WEEKLY;BYDAY=FR.")
    if re.search(r"FREQ=(SECONDLY|MINUTELY)", text.upper()):
        # Each check walks the recurrence from DTSTART: minute-by-minute rules would make every page slow.
        raise WindowError("Windows recur at most hourly (FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY).")
    try:
        return rrulestr(text.strip(), forceset=True, ignoretz=True)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise WindowError(f"The recurrence cannot be read: {exc}.") from exc


@dataclass(frozen=True)
class Occurrence:
    window: Window
    start: datetime  # aware, UTC
    end: datetime


@dataclass(frozen=True)
class Block:
    window: str
    until: datetime | None
    may_override: bool = False

    def __str__(self) -> str:
        when = f" until {self.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if self.until else ""
        return f"blocked by window {self.window}{when}"


@dataclass(eq=False)
class Window:
    """A ChangeWindow read once (recurrence parsed, exempt teams known), for many checks in one request."""

    name: str
    kind: str
    rrule: str
    duration: timedelta
    timezone: str
    instance_glob: str = "*"
    project_glob: str = "*"
    app_glob: str = "*"
    actions: list[str] = field(default_factory=list)
    exempt_team_ids: frozenset[int] = frozenset()
    pk: int | None = None
    # Answers per instant: a list page checks every row at the same `at`, so each window is evaluated once.
    _memo: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_model(cls, w) -> Window:
        return cls(
            name=w.name,
            kind=w.kind,
            rrule=w.rrule,
            duration=w.duration,
            timezone=w.timezone,
            instance_glob=w.instance_glob,
            project_glob=w.project_glob,
            app_glob=w.app_glob,
            actions=list(w.actions or []),
            exempt_team_ids=frozenset(t.pk for t in w.exempt_teams.all()),
            pk=w.pk,
        )

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def covers(self, instance: str, project: str, app: str) -> bool:
        return (
            glob.match(self.instance_glob, instance)
            and glob.match(self.project_glob, project or "")
            and glob.match(self.app_glob, app or "")
        )

    def governs(self, action: str, instance: str, project: str, app: str) -> bool:
        return action in self.actions and self.covers(instance, project, app)

    def _wall(self, at: datetime) -> datetime:
        return at.astimezone(self.zone).replace(tzinfo=None)

    def _aware(self, naive: datetime) -> datetime:
        return naive.replace(tzinfo=self.zone).astimezone(UTC)

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Occurrences overlapping [start, end), in order of start."""
        rule = parse_rule(self.rrule)
        lo, hi = self._wall(start - self.duration) - SLACK, self._wall(end) + SLACK
        found = []
        for naive in rule.between(lo, hi, inc=True):
            s = self._aware(naive)
            e = s + self.duration
            if s < end and e > start:
                found.append(Occurrence(self, s, e))
        return found

    def active_until(self, at: datetime) -> datetime | None:
        """When the occurrence covering `at` ends (the latest, if several overlap), or None when none does."""
        if ("active", at) not in self._memo:
            ends = [o.end for o in self.occurrences(at, at + timedelta(microseconds=1))]
            self._memo["active", at] = max(ends) if ends else None
        return self._memo["active", at]

    def next_start(self, at: datetime) -> datetime | None:
        if ("next", at) not in self._memo:
            self._memo["next", at] = self._next_start(at)
        return self._memo["next", at]

    def _next_start(self, at: datetime) -> datetime | None:
        rule = parse_rule(self.rrule)
        naive = self._wall(at) - SLACK
        for _ in range(MAX_STEPS):
            naive = rule.after(naive)
            if naive is None:
                return None
            if self._aware(naive) > at:
                return self._aware(naive)
        return None


def load() -> list[Window]:
    """Every enabled window, read once; a window whose recurrence no longer parses is skipped (forms refuse those)."""
    from .models import ChangeWindow

    loaded = []
    for w in ChangeWindow.objects.filter(enabled=True).prefetch_related("exempt_teams"):
        try:
            parse_rule(w.rrule)
            zone(w.timezone)
        except WindowError:
            continue
        loaded.append(Window.from_model(w))
    return loaded


def _team_ids(user) -> frozenset[int]:
    cached = getattr(user, "_portal_team_ids", None)
    if cached is None:
        if user is None or not getattr(user, "is_authenticated", False):
            cached = frozenset()
        else:
            cached = frozenset(user.memberships.values_list("team_id", flat=True))
        user._portal_team_ids = cached
    return cached


def cached(user) -> list[Window]:
    """The windows, read once per user object (one request, or one operation in the worker)."""
    if user is None:
        return load()
    windows = getattr(user, "_portal_windows", None)
    if windows is None:
        windows = load()
        user._portal_windows = windows
    return windows


def check(
    user,
    action: str,
    instance,
    project: str = "",
    app: str = "",
    at: datetime | None = None,
    *,
    windows: list[Window] | None = None,
    with_override: bool = True,
) -> Block | None:
    """Whether a change window blocks `action` by `user` on the application, at `at` (now by default).

    `instance` is an instance name or an Instance. `may_override` says whether the user holds `override` there
    (left False with `with_override=False`, which saves a permission check per row of a list).
    """
    from apps.access.rules import can

    at = at or timezone.now()
    name = instance if isinstance(instance, str) else instance.name
    windows = cached(user) if windows is None else windows
    teams = _team_ids(user)
    mine = [w for w in windows if w.governs(action, name, project, app) and not (w.exempt_team_ids & teams)]
    if not mine:
        return None
    block: Block | None = None
    denies = [(end, w) for w in mine if w.kind == "deny" and (end := w.active_until(at)) is not None]
    if denies:
        end, w = max(denies, key=lambda pair: pair[0])
        block = Block(w.name, end)
    else:
        allows = [w for w in mine if w.kind == "allow"]
        if allows and not any(w.active_until(at) for w in allows):
            opens = [(s, w) for w in allows if (s := w.next_start(at)) is not None]
            if opens:
                start, w = min(opens, key=lambda pair: pair[0])
                block = Block(w.name, start)
            else:
                block = Block(allows[0].name, None)
    if block is None or not with_override:
        return block
    may = user is not None and can(user, "override", instance, project or "*", app or "*")
    return Block(block.window, block.until, may)


def blocks_for_rows(user, action: str, rows: list[dict], at: datetime | None = None) -> None:
    """Set `row["window"]` (a Block or None) on index rows (instance, project, name); windows read once."""
    at = at or timezone.now()
    loaded = cached(user)
    for row in rows:
        row["window"] = (
            check(user, action, row["instance"], row["project"], row["name"], at, windows=loaded, with_override=False)
            if loaded
            else None
        )


def calendar(windows: list[Window], start: datetime, end: datetime) -> list[Occurrence]:
    """Every occurrence of `windows` overlapping [start, end), by start."""
    found = [o for w in windows for o in w.occurrences(start, end)]
    return sorted(found, key=lambda o: (o.start, o.window.name))
