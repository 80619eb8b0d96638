"""Which audit events a user may read, the list filters, and keyset pages over them.

A platform admin reads everything. A team member reads their own events plus the events inside
their teams' grants: application-scoped events (with a project) whose instance, project and name
match a grant's globs, and instance-wide events (no project: clusters, repositories, accounts…) on
instances where a grant covers every project and application (`*` globs), as `can()` decides for
those kinds. Portal-wide events (no instance: logins, teams, grants) are for admins and the actor.
The globs become SQL regular expressions, so visibility is decided in the query, page after page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.access import glob
from apps.access.rules import _grants, _usable, is_platform_admin
from apps.core.pgtext import escape_filters

from .models import AuditEvent

PAGE_SIZE = 50
GLOB_SPECIALS = frozenset("*?[]{}\\")
EXACT_FILTERS = ("actor", "instance", "kind", "name", "action", "outcome")
FILTER_KEYS = (*EXACT_FILTERS, "team", "from", "to", "q")
# The free-text expression; migration 0004 indexes exactly this expression with pg_trgm.
TEXT_SQL = "(name || ' ' || actor || ' ' || error || ' ' || request::text)"


def visible_events(user) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    token = getattr(user, "api_token", None)
    if token is not None and token.instance_glob != "*":  # an API token narrowed to some instances reads only theirs
        events = events.filter(_glob_q("instance", token.instance_glob) & ~Q(instance=""))
    if is_platform_admin(user):
        return events
    if not _usable(user):
        return events.none()
    q = Q(actor=user.get_username())
    for grant in _grants(user):
        instance = _glob_q("instance", grant.instance_glob) & ~Q(instance="")
        q |= (
            instance
            & ~Q(project="")
            & _glob_q("project", grant.project_glob)
            & _glob_q("name", grant.app_glob)
            & _glob_q("namespace", grant.namespace_glob)
        )
        if glob.match(grant.project_glob, "*") and glob.match(grant.app_glob, "*"):
            q |= instance & Q(project="")
    return events.filter(q)


def _glob_q(column: str, pattern: str) -> Q:
    # The same decision as glob.match, but `*` costs nothing and a plain name is an equality the
    # indexes can use; only real patterns pay for a regular expression on every row.
    if pattern == "*":
        return Q()
    if not GLOB_SPECIALS & set(pattern):
        return Q(**{column: pattern})
    return Q(**{f"{column}__regex": glob.to_regex(pattern)})


@dataclass
class Filters:
    values: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def querystring(self, **extra: str | int) -> str:
        from urllib.parse import urlencode

        return urlencode({**{k: v for k, v in self.values.items() if v}, **extra})


def parse_filters(params) -> Filters:
    values = {key: str(params.get(key, "")).strip()[:300] for key in FILTER_KEYS}
    # A NUL cannot reach PostgreSQL: it is searched for as the six characters `\u0000`, and the page says so.
    values, notes = escape_filters(values)
    return Filters(values=values, errors=notes)


def apply_filters(events: QuerySet[AuditEvent], filters: Filters) -> QuerySet[AuditEvent]:
    v = filters.values
    for key in EXACT_FILTERS:
        if v[key]:
            events = events.filter(**{key: v[key]})
    if v["team"]:
        # The team column holds comma-separated slugs of the actor's teams.
        events = events.filter(team__regex=rf"(^|,){re.escape(v['team'])}(,|$)")
    for key, lookup, end_of_day in (("from", "at__gte", False), ("to", "at__lte", True)):
        if v[key]:
            moment = _parse_moment(v[key], end_of_day)
            if moment is None:
                filters.errors.append(f"“{v[key]}” is not a date or time (use YYYY-MM-DD or YYYY-MM-DDTHH:MM).")
            else:
                events = events.filter(**{lookup: moment}).filter(id_bound(key, moment))
    if v["q"]:
        events = events.filter(_text_q(v["q"]))
    return events


def id_bound(side: str, moment: datetime) -> Q:
    """The id range a time bound maps to, so PostgreSQL walks the primary key instead of guessing.

    append() keeps `at` non-decreasing in id order, so the events at or after `moment` are exactly
    those from the first id of the earliest such time on (and likewise backwards for "to").
    """
    if side == "from":
        edge = AuditEvent.objects.filter(at__gte=moment).order_by("at").values_list("at", flat=True)[:1]
        bound = AuditEvent.objects.filter(at__in=edge).order_by("id").values_list("id", flat=True).first()
        return Q(pk__in=[]) if bound is None else Q(id__gte=bound)
    edge = AuditEvent.objects.filter(at__lte=moment).order_by("-at").values_list("at", flat=True)[:1]
    bound = AuditEvent.objects.filter(at__in=edge).order_by("-id").values_list("id", flat=True).first()
    return Q(pk__in=[]) if bound is None else Q(id__lte=bound)


def _parse_moment(raw: str, end_of_day: bool) -> datetime | None:
    try:
        # A bare date means the whole day: from its first to its last microsecond.
        day = parse_date(raw)
        moment = datetime.combine(day, time.max if end_of_day else time.min) if day else parse_datetime(raw)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _text_q(text: str) -> Q:
    if connection.vendor == "postgresql":
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return Q(RawSQL(f"{TEXT_SQL} ILIKE %s", [pattern], output_field=BooleanField()))
    return Q(name__icontains=text) | Q(actor__icontains=text) | Q(error__icontains=text) | Q(request__icontains=text)


def page(
    events: QuerySet[AuditEvent], before: str | None, size: int = PAGE_SIZE
) -> tuple[list[AuditEvent], int | None]:
    """Newest first, `size` events older than id `before`; returns them and the id to continue before."""
    if before and re.fullmatch(r"[0-9]{1,18}", before):
        events = events.filter(id__lt=int(before))
    rows = list(events.order_by("-id").defer("before", "after", "user_agent")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more else None)


def iterate(events: QuerySet[AuditEvent], fields: tuple[str, ...], batch: int = 1000) -> Iterator[dict]:
    """Every event of `events`, newest first, in keyset batches so memory stays flat."""
    last = None
    while True:
        chunk = events if last is None else events.filter(id__lt=last)
        rows = list(chunk.order_by("-id").values(*fields)[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]
