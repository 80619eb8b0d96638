"""The cross-instance application list as SQL on the index, with the user's grants applied in the query."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from math import ceil
from typing import Any
from urllib.parse import quote

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from apps.access import rules
from apps.access.models import Action

from . import selectors
from .models import ApplicationSummary, IndexState

PAGE_SIZE = 50
# The indexer resyncs every 10 minutes; a state not refreshed for much longer means no indexer is running.
STALE_AFTER = timedelta(minutes=25)

SORTS = {
    "instance": "instance__name",
    "project": "project",
    "name": "name",
    "sync": "sync_status",
    "health": "health_status",
    "repo": "repo",
    "phase": "operation_phase",
    "synced": "last_synced_at",
}
SYNC_CHOICES = ["Synced", "OutOfSync", "Unknown"]
HEALTH_CHOICES = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]
COLUMNS = (
    "id",
    "instance_id",
    "namespace",
    "name",
    "project",
    "repo",
    "path",
    "revision",
    "dest_server",
    "dest_name",
    "dest_namespace",
    "sync_status",
    "health_status",
    "operation_phase",
    "last_synced_at",
)


@dataclass
class Filters:
    instance: str = ""
    project: str = ""
    sync: str = ""
    health: str = ""
    selector: str = ""
    q: str = ""
    sort: str = "name"
    desc: bool = False
    page: int = 1

    @classmethod
    def from_query(cls, params) -> Filters:
        sort = params.get("sort", "name")
        desc = sort.startswith("-")
        sort = sort.lstrip("-")
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            instance=params.get("instance", "").strip(),
            project=params.get("project", "").strip(),
            sync=params.get("sync", "").strip(),
            health=params.get("health", "").strip(),
            selector=params.get("selector", "").strip()[:1000],
            q=params.get("q", "").strip()[:200],
            sort=sort if sort in SORTS else "name",
            desc=desc,
            page=page,
        )


@dataclass
class Result:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    health_counts: list[tuple[str, int]]
    sync_counts: list[tuple[str, int]]
    selector_error: str = ""
    stale: list[dict[str, Any]] = field(default_factory=list)
    instances: dict[str, int] = field(default_factory=dict)  # name → id of the instances the user may view


# A literal in the regexes glob.to_regex() emits: escaped characters or anything that is not a metacharacter.
_LITERAL = r"(?:\\.|[^\\.^$*+?()\[\]{}|])+"
_SIMPLE_GLOB = re.compile(rf"\^(?P<lead>\.\*)?(?P<lit>{_LITERAL})(?P<trail>\.\*)?\$")


def _cheap_lookup(field: str, pattern: str) -> tuple[str, Any] | None:
    """The same test as `field ~ pattern` for the patterns simple globs produce, as a lookup PostgreSQL runs
    several times faster (and can use an index for): `*` → not null, `x` → =, `x*` → LIKE 'x%', and so on."""
    if pattern == "^.*$":
        return f"{field}__isnull", False
    m = _SIMPLE_GLOB.fullmatch(pattern)
    if not m:
        return None
    literal = re.sub(r"\\(.)", r"\1", m["lit"])
    lookup = {(False, False): "exact", (False, True): "startswith", (True, False): "endswith"}.get(
        (bool(m["lead"]), bool(m["trail"])), "contains"
    )
    return f"{field}__{lookup}", literal


def cheapen(node: Any, instances: dict[str, int]) -> Any:
    """Rewrite a grant filter from rules.applications_q into cheaper SQL that selects the same rows.

    - instance-name globs become `instance_id IN (…)`, matched here against `instances` (the user's visible
      enabled instances, name → id) with the same Python regex `can()` uses; `instance__enabled` becomes the
      list of those ids. The filter then names only summary columns, so PostgreSQL can combine the project and
      (instance, name) indexes per grant instead of checking every row after a join.
    - simple project and app globs become =, LIKE 'x%', LIKE '%x' or LIKE '%x%' (PostgreSQL's LIKE is case
      sensitive like the regex); `?`, classes and alternatives keep their regex.
    """
    if isinstance(node, Q):
        out = Q()
        out.connector, out.negated = node.connector, node.negated
        out.children = [cheapen(child, instances) for child in node.children]
        return out
    if not isinstance(node, tuple):
        return node
    lookup, value = node
    if lookup == "instance__enabled" and value is True:
        return "instance_id__in", sorted(instances.values())
    if lookup == "instance__name__regex":
        pattern = re.compile(value, re.DOTALL)
        return "instance_id__in", sorted(pk for name, pk in instances.items() if pattern.match(name))
    if lookup.endswith("__regex") and isinstance(value, str):
        return _cheap_lookup(lookup.removesuffix("__regex"), value) or node
    return node


def grants_filter(user, instances: dict[str, int], action: str = Action.VIEW) -> Q:
    q = rules.applications_q(user, action)
    return cheapen(q, instances) if connection.vendor == "postgresql" else q


def visible(user, instances: dict[str, int] | None = None) -> QuerySet[ApplicationSummary]:
    if instances is None:
        instances = {i.name: i.pk for i in rules.instances_visible(user)}
    return ApplicationSummary.objects.filter(grants_filter(user, instances))


def filtered(user, f: Filters, instances: dict[str, int] | None = None) -> QuerySet[ApplicationSummary]:
    """Raises selectors.SelectorError for a bad label selector."""
    qs = visible(user, instances)
    if f.instance:
        qs = qs.filter(instance__name=f.instance)
    if f.project:
        qs = qs.filter(project=f.project)
    # The counts show an empty status as Unknown, so filtering on Unknown includes empty ones.
    if f.sync:
        qs = qs.filter(Q(sync_status=f.sync) | Q(sync_status="") if f.sync == "Unknown" else Q(sync_status=f.sync))
    if f.health:
        unknown = f.health == "Unknown"
        qs = qs.filter(Q(health_status=f.health) | Q(health_status="") if unknown else Q(health_status=f.health))
    if f.q:
        qs = qs.filter(Q(name__icontains=f.q) | Q(repo__icontains=f.q) | Q(path__icontains=f.q))
    if f.selector:
        qs = qs.filter(selectors.parse(f.selector))
    return qs


def _one_pass(qs: QuerySet, f: Filters, start: int) -> tuple[list[tuple[str, str, int]], list[int]]:
    """(health, sync, count) groups of the filtered set and the ids of one page of it.

    On PostgreSQL one statement filters the index once (a materialized CTE feeding both the GROUP BY and the
    page); elsewhere two plain ORM queries. order_by() drops Meta.ordering, which would join into a GROUP BY.
    """
    if connection.vendor != "postgresql":
        groups = list(qs.order_by().values_list("health_status", "sync_status").annotate(n=Count("id")))
        ids = list(qs.order_by(*_order(f)).values_list("id", flat=True)[start : start + PAGE_SIZE])
        return groups, ids
    inner = qs.order_by().values(
        "id", "health_status", "sync_status", "name", "namespace", k=F(SORTS[f.sort]), i=F("instance__name")
    )
    try:
        inner_sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # e.g. a user without grants: Django proves there is nothing to fetch
        return [], []
    direction = "DESC" if f.desc else "ASC"
    sql = (
        f"WITH f AS MATERIALIZED ({inner_sql}) "
        "SELECT 0, health_status, sync_status, COUNT(*) FROM f GROUP BY health_status, sync_status "
        f"UNION ALL (SELECT 1, NULL, NULL, id FROM f ORDER BY k {direction} NULLS LAST, i, name, namespace "
        "LIMIT %s OFFSET %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, PAGE_SIZE, start])
        result = cursor.fetchall()
    return [(h, s, n) for kind, h, s, n in result if kind == 0], [n for kind, _, _, n in result if kind == 1]


def _counts(groups: list[tuple[str, str, int]]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Counts per health and per sync status, largest first, from the (health, sync) groups."""
    health: dict[str, int] = {}
    sync: dict[str, int] = {}
    for h, s, n in groups:
        health[h or "Unknown"] = health.get(h or "Unknown", 0) + n
        sync[s or "Unknown"] = sync.get(s or "Unknown", 0) + n

    def ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(counts.items(), key=lambda r: (-r[1], r[0]))

    return ordered(health), ordered(sync)


def _order(f: Filters) -> list:
    column = F(SORTS[f.sort])
    primary = column.desc(nulls_last=True) if f.desc else column.asc(nulls_last=True)
    tail = [c for c in ("instance__name", "name", "namespace") if c != SORTS[f.sort]]
    return [primary, *tail]


def stale_instances(instances: list) -> list[dict[str, Any]]:
    """Those of `instances` whose part of the index may be out of date, with the reason."""
    states = {s.instance_id: s for s in IndexState.objects.filter(instance__in=[i.pk for i in instances])}
    old = timezone.now() - STALE_AFTER
    stale = []
    for instance in instances:
        state = states.get(instance.pk)
        if state is None or state.last_resync_at is None:
            reason = "not indexed yet (is `manage.py run_indexer` running?)"
        elif not state.connected:
            reason = state.error or "disconnected"
        elif state.last_resync_at < old and (state.last_event_at is None or state.last_event_at < old):
            reason = "the indexer has not reported since " + state.last_resync_at.strftime("%Y-%m-%d %H:%M UTC")
        else:
            continue
        seen = state.last_event_at or state.last_resync_at if state else None
        stale.append({"id": instance.pk, "name": instance.name, "reason": reason, "seen": seen})
    return stale


def _decorate(row: dict[str, Any], instance: str, stale: bool) -> None:
    """Display values computed once here rather than through template filters in a 50-row loop."""
    revision = row["revision"]
    synced = row["last_synced_at"]
    row.update(
        instance=instance,
        stale=stale,
        href=f"/applications/{quote(instance)}/{quote(row['name'])}/",
        dest=row["dest_name"] or row["dest_server"],
        short_revision=revision[:7] if len(revision) == 40 else revision[:24],
        synced=synced.strftime("%Y-%m-%d %H:%M") if synced else "",
    )


def search(user, f: Filters) -> Result:
    instances = rules.instances_visible(user)
    names = {i.pk: i.name for i in instances}
    by_name = {i.name: i.pk for i in instances}
    stale = stale_instances(instances)
    try:
        qs = filtered(user, f, by_name)
    except selectors.SelectorError as exc:
        return Result([], 0, 1, 1, [], [], selector_error=str(exc), stale=stale, instances=by_name)
    groups, ids = _one_pass(qs, f, (f.page - 1) * PAGE_SIZE)
    health_counts, sync_counts = _counts(groups)
    total = sum(n for _, n in health_counts)  # the GROUP BY gives the count too
    pages = max(1, ceil(total / PAGE_SIZE))
    page = min(f.page, pages)
    if page != f.page:  # past the end: show the last page (a second pass, only for stale links)
        _, ids = _one_pass(qs, f, (page - 1) * PAGE_SIZE)
    stale_ids = {s["id"] for s in stale}
    by_id = {r["id"]: r for r in ApplicationSummary.objects.filter(id__in=ids).values(*COLUMNS)} if ids else {}
    rows = [by_id[i] for i in ids if i in by_id]
    for row in rows:
        _decorate(row, names.get(row["instance_id"], ""), row["instance_id"] in stale_ids)
    return Result(rows, total, page, pages, health_counts, sync_counts, stale=stale, instances=by_name)


def projects(user) -> list[str]:
    """Projects for the filter's choices. Cached a minute per user: this is a convenience list, and a scan of
    the whole index on every page load is not worth it (what the user may see is still decided per query)."""
    key = f"index:projects:{user.pk}"
    found = cache.get(key)
    if found is None:
        found = list(visible(user).order_by("project").values_list("project", flat=True).distinct())
        cache.set(key, found, 60)
    return found


def can_sync_any(user, instances: dict[str, int]) -> bool:
    """Whether any indexed application is one the user may sync (to show the bulk-sync button)."""
    if rules.is_platform_admin(user):
        return True
    return ApplicationSummary.objects.filter(grants_filter(user, instances, Action.SYNC)).exists()


HEADERS = [
    ("instance", "Instance"),
    ("project", "Project"),
    ("name", "Name"),
    ("sync", "Sync"),
    ("health", "Health"),
    ("repo", "Source"),
    ("", "Destination"),
    ("phase", "Last operation"),
]


def headers(f: Filters) -> list[dict[str, str]]:
    """Column headers with the sort each one links to: a second click reverses the order."""
    out = []
    for key, label in HEADERS:
        current = key == f.sort
        out.append(
            {
                "label": label,
                "next": ("-" + key if current and not f.desc else key) if key else "",
                "arrow": (" ▼" if f.desc else " ▲") if current else "",
            }
        )
    return out
