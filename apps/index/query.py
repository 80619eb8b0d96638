"""The cross-instance application list as SQL on the index, with the user's grants applied in the query."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from math import ceil
from typing import Any
from urllib.parse import quote, urlencode

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from apps.access import glob, rules
from apps.access.models import Action
from apps.core.pgtext import escape_filters
from apps.instances.models import Instance

from . import locks, selectors
from .models import ApplicationSummary

PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # far past any real page; keeps OFFSET inside a bigint
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
    notes: list[str] = field(default_factory=list)  # filters changed to be searchable, said in the page

    @classmethod
    def from_query(cls, params) -> Filters:
        sort = params.get("sort", "name")
        desc = sort.startswith("-")
        sort = sort.lstrip("-")
        try:
            page = min(max(1, int(params.get("page", "1"))), MAX_PAGE)
        except ValueError:
            page = 1
        # A NUL cannot reach PostgreSQL; the index stores one as `\u0000`, so that is what is searched for.
        text, notes = escape_filters(
            {
                "instance": params.get("instance", "").strip(),
                "project": params.get("project", "").strip(),
                "sync": params.get("sync", "").strip(),
                "health": params.get("health", "").strip(),
                "q": params.get("q", "").strip()[:200],
            }
        )
        return cls(
            **text,
            selector=params.get("selector", "").strip()[:1000],
            sort=sort if sort in SORTS else "name",
            desc=desc,
            page=page,
            notes=notes,
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
    if instances is None:
        instances = {i.name: i.pk for i in rules.instances_visible(user)}
    qs = visible(user, instances)
    if f.instance:  # by id: no join with the instances table (an instance the user cannot see matches nothing)
        qs = qs.filter(instance_id=instances.get(f.instance, 0))
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


@dataclass
class _Pass:
    health: dict[str, int]
    sync: dict[str, int]
    total: int
    rows: list[dict[str, Any]]


def _add(counts: dict[str, int], status: str | None, n: int) -> None:
    counts[status or "Unknown"] = counts.get(status or "Unknown", 0) + n


def _one_pass(qs: QuerySet, f: Filters, start: int, order_ids: list[int]) -> _Pass:
    """Counts per health and sync status, the total and one page of rows of the filtered set.

    On PostgreSQL this is one statement: a materialized CTE filters the index once and feeds both a GROUP BY
    GROUPING SETS (per health, per sync, total) and the page, whose rows are read back by id in the same
    statement. Instances sort by name through their position in `order_ids` (ids in name order) rather than a
    join. Elsewhere, two plain ORM queries. order_by() drops Meta.ordering, which would join into a GROUP BY.
    """
    health: dict[str, int] = {}
    sync: dict[str, int] = {}
    if connection.vendor != "postgresql":
        for h, s, n in qs.order_by().values_list("health_status", "sync_status").annotate(n=Count("id")):
            _add(health, h, n)
            _add(sync, s, n)
        rows = list(qs.order_by(*_order(f)).values(*COLUMNS)[start : start + PAGE_SIZE])
        return _Pass(health, sync, sum(health.values()), rows)
    keys = {} if f.sort == "instance" else {"k": F(SORTS[f.sort])}
    inner = qs.order_by().values("id", "health_status", "sync_status", "instance_id", "name", "namespace", **keys)
    try:
        inner_sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # e.g. a user without grants: Django proves there is nothing to fetch
        return _Pass(health, sync, 0, [])
    direction = "DESC" if f.desc else "ASC"
    position = "array_position(%s::bigint[], instance_id)"
    order = f"{position} {direction}" if f.sort == "instance" else f"k {direction} NULLS LAST, {position}"
    table = ApplicationSummary._meta.db_table
    columns = ", ".join(f"s.{ApplicationSummary._meta.get_field(c).column}" for c in COLUMNS)
    nulls = ", ".join("NULL" for _ in COLUMNS)
    sql = (
        f"WITH f AS MATERIALIZED ({inner_sql}) "
        "SELECT 0, GROUPING(health_status, sync_status), health_status, sync_status, COUNT(*), "
        f"{nulls} FROM f GROUP BY GROUPING SETS ((health_status), (sync_status), ()) "
        f"UNION ALL SELECT 1, NULL, NULL, NULL, p.pos, {columns} "
        f"FROM unnest(ARRAY(SELECT id FROM f ORDER BY {order}, name, namespace LIMIT %s OFFSET %s)) "
        f"WITH ORDINALITY AS p(id, pos) JOIN {table} s ON s.id = p.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, order_ids, PAGE_SIZE, start])
        result = cursor.fetchall()
    total = 0
    page: list[tuple] = []
    for kind, grouping, h, s, n, *rest in result:
        if kind == 1:
            page.append((n, rest))
        elif grouping == 1:  # grouped by health only (GROUPING sets a bit for each column not grouped by)
            _add(health, h, n)
        elif grouping == 2:
            _add(sync, s, n)
        else:
            total = n
    page.sort(key=lambda r: r[0])
    return _Pass(health, sync, total, [dict(zip(COLUMNS, rest, strict=True)) for _, rest in page])


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Largest first."""
    return sorted(counts.items(), key=lambda r: (-r[1], r[0]))


def _order(f: Filters) -> list:
    column = F(SORTS[f.sort])
    primary = column.desc(nulls_last=True) if f.desc else column.asc(nulls_last=True)
    tail = [c for c in ("instance__name", "name", "namespace") if c != SORTS[f.sort]]
    return [primary, *tail]


def instances_with_state(user) -> list[dict[str, Any]]:
    """The enabled instances the user may view (as rules.instances_visible decides), in name order, each with
    its index state, in one query and without loading (and decrypting) credentials."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return []
    rows = (
        Instance.objects.filter(enabled=True)
        .order_by("name")
        .values(
            "id",
            "name",
            last_resync_at=F("index_state__last_resync_at"),
            last_event_at=F("index_state__last_event_at"),
            connected=F("index_state__connected"),
            error=F("index_state__error"),
            holder=F("index_state__holder"),
        )
    )
    if user.is_superuser:
        return list(rows)
    grants = rules._grants(user)
    return [r for r in rows if any(glob.match(g.instance_glob, r["name"]) for g in grants)]


def released_leases(instances: list[dict[str, Any]]) -> dict[int, locks.LeaseState]:
    """Of `instances` (dicts with id, name and the holder their IndexState records), those whose indexer lease
    nobody holds any more (its holder was killed or stopped), id → the lease's state. One Redis round trip; empty
    when the lock store cannot be read."""
    keys = {i["id"]: locks.lease_key(i["id"], i["name"]) for i in instances if i.get("holder")}
    states = locks.lease_states(list(keys.values()))
    if not states:
        return {}
    return {pk: state for pk, key in keys.items() if not (state := states[key]).held}


def unheld_reason(state: locks.LeaseState, recorded_holder: str) -> str:
    since = state.since.strftime(" since %Y-%m-%d %H:%M:%S UTC") if state.since else ""
    who = state.last_holder or recorded_holder
    return f"no indexer holds its watch stream{since} (last held by {who}; is `manage.py run_indexer` running?)"


def stale_instances(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those of `instances` (from instances_with_state) whose part of the index may be out of date, with why."""
    old = timezone.now() - STALE_AFTER
    unheld = released_leases(instances)
    stale = []
    for i in instances:
        resynced, event = i["last_resync_at"], i["last_event_at"]
        if resynced is None:
            reason = "not indexed yet (is `manage.py run_indexer` running?)"
        elif i["id"] in unheld:  # the indexer died (or stopped): nothing watches, whatever the state last said
            reason = unheld_reason(unheld[i["id"]], i["holder"])
        elif not i["connected"]:
            reason = i["error"] or "disconnected"
        elif resynced < old and (event is None or event < old):
            reason = "the indexer has not reported since " + resynced.strftime("%Y-%m-%d %H:%M UTC")
        else:
            continue
        stale.append({"id": i["id"], "name": i["name"], "reason": reason, "seen": event or resynced})
    return stale


def _decorate(row: dict[str, Any], instance: str, stale: bool) -> None:
    """Display values computed once here rather than through template filters in a 50-row loop."""
    revision = row["revision"]
    synced = row["last_synced_at"]
    other_namespace = row["namespace"] if row["namespace"] != "argocd" else ""
    row.update(
        instance=instance,
        stale=stale,
        # An app outside the control plane's namespace is addressed with it: one name may live in several.
        key=f"{instance}/{other_namespace}/{row['name']}" if other_namespace else f"{instance}/{row['name']}",
        href=f"/applications/{quote(instance)}/{quote(row['name'])}/"
        + (f"?appNamespace={quote(other_namespace)}" if other_namespace else ""),
        other_namespace=other_namespace,
        dest=row["dest_name"] or row["dest_server"],
        short_revision=revision[:7] if len(revision) == 40 else revision[:24],
        synced=synced.strftime("%Y-%m-%d %H:%M") if synced else "",
    )


def search(user, f: Filters) -> Result:
    instances = instances_with_state(user)
    names = {i["id"]: i["name"] for i in instances}
    by_name = {i["name"]: i["id"] for i in instances}
    stale = stale_instances(instances)
    try:
        qs = filtered(user, f, by_name)
    except selectors.SelectorError as exc:
        return Result([], 0, 1, 1, [], [], selector_error=str(exc), stale=stale, instances=by_name)
    order_ids = list(by_name.values())  # name order
    found = _one_pass(qs, f, (f.page - 1) * PAGE_SIZE, order_ids)
    pages = max(1, ceil(found.total / PAGE_SIZE))
    page = min(f.page, pages)
    if page != f.page:  # past the end: show the last page (a second pass, only for stale links)
        found = _one_pass(qs, f, (page - 1) * PAGE_SIZE, order_ids)
    stale_ids = {s["id"] for s in stale}
    for row in found.rows:
        _decorate(row, names.get(row["instance_id"], ""), row["instance_id"] in stale_ids)
    health, sync = _ordered(found.health), _ordered(found.sync)
    return Result(found.rows, found.total, page, pages, health, sync, stale=stale, instances=by_name)


def choices(user, instances: dict[str, int]) -> dict[str, Any]:
    """The project filter's choices and whether to show the bulk-sync and new-application buttons, cached a minute
    per user and set of grants (a changed grant changes the key): all are conveniences, and scanning the index for
    them on every page load is not worth it. What the user may see or do is still decided per query and action."""
    grants = sorted((g.pk, g.instance_glob, g.project_glob, g.app_glob, *g.actions) for g in rules._grants(user))
    digest = hashlib.sha1(repr((user.is_superuser, sorted(instances.values()), grants)).encode()).hexdigest()
    key = f"index:choices:{user.pk}:{digest}"
    found = cache.get(key)
    if found is None:
        found = {
            "projects": list(visible(user, instances).order_by("project").values_list("project", flat=True).distinct()),
            "can_sync": can_sync_any(user, instances),
            # `instances` holds enabled instances only, so unsaved rows with their names decide without a query.
            "can_create": any(
                rules.can_somewhere(user, Action.CREATE, Instance(name=name, enabled=True)) for name in instances
            ),
        }
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


def link(base: str, params: Mapping[str, list[str]], **changes: str | None) -> str:
    """`base` with the current query string, some parameters set or (None) dropped: the `{% querystring %}`
    tag's result, built in Python because a page has some twenty of these links."""
    merged = {k: v for k, v in params.items() if k not in changes}
    merged.update({k: [v] for k, v in changes.items() if v is not None})
    encoded = urlencode(merged, doseq=True)
    return f"{base}?{encoded}" if encoded else base


def headers(f: Filters, base: str = "", params: Mapping[str, list[str]] | None = None) -> list[dict[str, str]]:
    """Column headers with the sort each one links to: a second click reverses the order."""
    out = []
    for key, label in HEADERS:
        current = key == f.sort
        sort = ("-" + key if current and not f.desc else key) if key else ""
        out.append(
            {
                "label": label,
                "next": sort,
                "href": link(base, params or {}, sort=sort, page=None) if sort else "",
                "arrow": (" ▼" if f.desc else " ▲") if current else "",
            }
        )
    return out


def count_links(result: Result, base: str, params: Mapping[str, list[str]]) -> dict[str, list[tuple]]:
    """(status, count, href) per health and per sync status; the href filters on that status."""
    return {
        "health": [(name, n, link(base, params, health=name, page=None)) for name, n in result.health_counts],
        "sync": [(name, n, link(base, params, sync=name, page=None)) for name, n in result.sync_counts],
    }


def page_links(result: Result, base: str, params: Mapping[str, list[str]]) -> dict[str, str]:
    return {
        "prev": link(base, params, page=str(result.page - 1)) if result.page > 1 else "",
        "next": link(base, params, page=str(result.page + 1)) if result.page < result.pages else "",
    }
