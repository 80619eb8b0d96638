"""The cross-instance application list as SQL on the index, with the user's grants applied in the query."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil
from typing import Any
from urllib.parse import quote, urlencode

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BooleanField, Count, Exists, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.access import glob, rules
from apps.access.models import Action
from apps.core.pgtext import escape_filters
from apps.instances.models import Instance

from . import locks, selectors
from .models import NEVER, AppCount, AppFacetCount, ApplicationSummary, Favourite

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


FILTER_KEYS = ("instance", "project", "cluster", "namespace", "repo", "sync", "health", "auto", "label")
VIEWS = ("list", "tiles", "summary")


def _values(params, key: str) -> list[str]:
    """Every value of a repeated parameter (a QueryDict), or the one value of a plain mapping; blanks dropped."""
    raw = params.getlist(key) if hasattr(params, "getlist") else [params.get(key, "")]
    out: list[str] = []
    for value in raw[:50]:
        value = str(value or "").strip()[:500]
        if value and value not in out:
            out.append(value)
    return out


@dataclass
class Filters:
    # Multi-select facets: values of one facet are alternatives (OR), facets combine with AND.
    instance: list[str] = field(default_factory=list)
    project: list[str] = field(default_factory=list)
    cluster: list[str] = field(default_factory=list)
    namespace: list[str] = field(default_factory=list)
    repo: list[str] = field(default_factory=list)
    sync: list[str] = field(default_factory=list)
    health: list[str] = field(default_factory=list)
    auto: list[str] = field(default_factory=list)  # "on" / "off"
    label: list[str] = field(default_factory=list)  # "key=value"
    selector: str = ""
    q: str = ""
    sort: str = "name"
    desc: bool = False
    page: int = 1
    after: str = ""  # keyset cursors (cursor.encode) of the row a page starts after / ends before
    before: str = ""
    view: str = "list"
    notes: list[str] = field(default_factory=list)  # filters changed to be searchable, said in the page

    @classmethod
    def from_query(cls, params) -> Filters:
        sort = params.get("sort", "name") or "name"
        desc = sort.startswith("-")
        sort = sort.lstrip("-")
        try:
            page = min(max(1, int(params.get("page", "1"))), MAX_PAGE)
        except (TypeError, ValueError):
            page = 1
        # A NUL cannot reach PostgreSQL; the index stores one as `\u0000`, so that is what is searched for.
        notes: list[str] = []
        facets: dict[str, list[str]] = {}
        for key in FILTER_KEYS:
            facets[key] = []
            for value in _values(params, key):
                escaped, more = escape_filters({key: value})
                facets[key].append(escaped[key])
                notes += more
        text, more = escape_filters({"q": str(params.get("q", "") or "").strip()[:200]})
        view = params.get("view", "list")
        return cls(
            **facets,
            q=text["q"],
            selector=str(params.get("selector", "") or "").strip()[:1000],
            sort=sort if sort in SORTS else "name",
            desc=desc,
            page=page,
            after=str(params.get("after", "") or "")[:2000],
            before=str(params.get("before", "") or "")[:2000],
            view=view if view in VIEWS else "list",
            notes=notes + more,
        )

    def active(self) -> bool:
        return bool(self.q or self.selector or any(getattr(self, k) for k in FILTER_KEYS))


@dataclass
class Facet:
    key: str
    label: str
    values: list[tuple[str, int, bool, str]]  # (value, count, selected, href toggling it)
    approximate: bool = False  # counted over the first COUNT_CAP matches only: each count is a lower bound


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
    approximate: bool = False  # more than COUNT_CAP matches: total and counts are lower bounds
    exact_counts: bool = True  # counts read from the counts tables (False: counted from the matching rows)
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # key → (value, count), largest first
    approximate_facets: set[str] = field(default_factory=set)
    next_cursor: str = ""
    prev_cursor: str = ""
    pinned: list[dict[str, Any]] = field(default_factory=list)  # the user's favourites among what they may view
    summary: dict[str, Any] = field(default_factory=dict)  # the summary view's tables


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


# The trigram index of migration 0004 is on exactly this expression: free text is one ILIKE on it, which the
# index answers (three ILIKEs OR-ed over separate columns could not use it). Newlines separate the columns so a
# search (typed on one line) cannot match across two of them.
SEARCH_SQL = "(name || E'\\n' || repo || E'\\n' || path)"
# Where counts cannot come from the counts tables (free text, a label selector, a cluster/namespace/repo/label
# filter, or grants naming application globs), they are counted from at most this many matching rows: exact up
# to it, and above it shown as "at least" (the page says so). The rows themselves are always exact.
COUNT_CAP = 500
FACET_LIMIT = 12  # values shown per facet, largest first (selected values are always shown)
DIM_COLUMNS = {
    "instance": "instance_id",
    "project": "project",
    "cluster": "cluster",
    "namespace": "dest_namespace",
    "repo": "repo",
    "sync": "sync_status",
    "health": "health_status",
    "auto": "auto_sync",
    "label": "labels",
}
FACET_LABELS = {
    "instance": "Instance",
    "project": "Project",
    "cluster": "Cluster",
    "namespace": "Namespace",
    "repo": "Repository",
    "sync": "Sync",
    "health": "Health",
    "auto": "Auto-sync",
    "label": "Labels",
}
BASE_DIMS = ("instance", "project", "health", "sync", "auto")  # the columns of AppCount
SECONDARY_DIMS = ("cluster", "namespace", "repo", "label")  # AppFacetCount's dims
_NEVER_SQL = "'1970-01-01 00:00:00+00'::timestamptz"  # models.NEVER, as the synced-sort index has it


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def dim_q(key: str, values: list[str], instances: dict[str, int]) -> Q:
    """The filter of one facet: its selected values are alternatives."""
    if not values:
        return Q()
    column = DIM_COLUMNS[key]
    if key == "instance":  # by id: no join (an instance the user cannot see matches nothing)
        return Q(instance_id__in=sorted({instances.get(v, 0) for v in values}))
    if key in ("health", "sync"):  # the counts show an empty status as Unknown, so Unknown includes empty ones
        return Q(**{f"{column}__in": [*values, ""] if "Unknown" in values else values})
    if key == "auto":
        wanted = {v == "on" for v in values if v in ("on", "off")}
        return Q(auto_sync=wanted.pop()) if len(wanted) == 1 else Q()
    if key == "label":
        q = Q(pk__in=[])
        for value in values:
            k, sep, v = value.partition("=")
            q |= Q(labels__contains={k: v}) if sep else Q(labels__has_key=k)
        return q
    return Q(**{f"{column}__in": values})


def text_q(f: Filters) -> Q:
    """Free text and the label selector; raises selectors.SelectorError for a bad selector."""
    q = Q()
    if f.q:
        if connection.vendor == "postgresql":
            q &= Q(RawSQL(f"{SEARCH_SQL} ILIKE %s", [_like(f.q)], output_field=BooleanField()))
        else:
            q &= Q(name__icontains=f.q) | Q(repo__icontains=f.q) | Q(path__icontains=f.q)
    if f.selector:
        q &= selectors.parse(f.selector)
    return q


def facet_q(f: Filters, instances: dict[str, int], skip: str = "", only: tuple[str, ...] = FILTER_KEYS) -> Q:
    q = Q()
    for key in only:
        if key != skip:
            q &= dim_q(key, getattr(f, key), instances)
    return q


def filtered(user, f: Filters, instances: dict[str, int] | None = None, skip: str = "") -> QuerySet[ApplicationSummary]:
    """The user's applications under every filter of `f` but facet `skip`. Raises selectors.SelectorError."""
    if instances is None:
        instances = {i.name: i.pk for i in rules.instances_visible(user)}
    return visible(user, instances).filter(facet_q(f, instances, skip), text_q(f))


def _for_counts(node: Any) -> Any:
    """A cheapened grant filter rewritten for the counts tables, or None when it names a column they lack (an
    application-name glob, an unrewritten regex). `name IS NOT NULL` (an app glob of `*`) always holds, so it
    becomes no condition."""
    if isinstance(node, Q):
        out = Q()
        out.connector, out.negated = node.connector, node.negated
        for child in node.children:
            if isinstance(child, tuple) and child == ("name__isnull", False):
                out.children.append(("pk__isnull", False))
                continue
            rewritten = _for_counts(child)
            if rewritten is None:
                return None
            out.children.append(rewritten)
        return out
    if isinstance(node, tuple) and node[0].split("__")[0] in ("instance_id", "project", "pk"):
        return node
    return None


def counts_grants(grants: Q) -> Q | None:
    """The user's grant filter as a filter on the counts tables (instance and project only), when it is one:
    then the counts tables answer for this user exactly."""
    return _for_counts(grants) if connection.vendor == "postgresql" else None


class _Statement:
    """Several queries run as one statement, one round trip: each becomes a JSON array column of one row."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str, list]] = []
        self.empty: set[str] = set()
        self.scanned: set[str] = set()  # parts wrapped around capped matching rows

    def add(self, name: str, qs_or_sql: QuerySet | tuple[str, list], wrap: str = "") -> None:
        """`wrap` is a SELECT over the query named `s` (its SQL put in place of `{s}`)."""
        if isinstance(qs_or_sql, tuple):
            sql, params = qs_or_sql
        else:
            try:
                sql, params = qs_or_sql.query.sql_with_params()
            except EmptyResultSet:  # Django proved nothing matches (a user without grants, say)
                self.empty.add(name)
                return
        if wrap:
            sql = wrap.replace("{s}", f"({sql}) s")
            if "LIMIT" in sql and "WITH s AS" in wrap:
                self.scanned.add(name)
        self.parts.append((name, sql, list(params)))

    def run(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in self.empty}
        if not self.parts:
            return out
        if connection.vendor != "postgresql":  # no json_agg: one query per part (a development database)
            for name, sql, params in self.parts:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    columns = [c[0] for c in cursor.description]
                    out[name] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            return out
        # json_agg over a subquery with ORDER BY … LIMIT keeps the subquery's order (PostgreSQL feeds the
        # aggregate the subquery's output as is; nothing here joins or regroups it).
        columns = ", ".join(f"(SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t)" for _, sql, _ in self.parts)
        params = [p for _, _, ps in self.parts for p in ps]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns}", params)
            row = cursor.fetchone()
        for (name, _, _), value in zip(self.parts, row, strict=True):
            out[name] = json.loads(value) if isinstance(value, str) else value
        return out


def _cursor_key(row: dict[str, Any], sort: str) -> list:
    if sort == "instance":
        return [row["name"], row["namespace"], row["instance_id"]]
    if sort == "synced":
        return [(row["last_synced_at"] or NEVER).isoformat(), row["name"], row["namespace"], row["instance_id"]]
    return [row[SORTS[sort]], row["name"], row["namespace"], row["instance_id"]]


def encode_cursor(row: dict[str, Any], sort: str) -> str:
    raw = json.dumps(_cursor_key(row, sort), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: str) -> list | None:
    """The keyset position in a cursor, or None for a cursor that is not one of this sort's (then: first page)."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return None
    size = 3 if sort == "instance" else 4
    if not (isinstance(value, list) and len(value) == size and isinstance(value[-1], int)):
        return None
    if not all(isinstance(v, str) for v in value[:-1]):
        return None
    if sort == "synced":
        try:
            datetime.fromisoformat(value[0])
        except ValueError:
            return None
    return value


def _key_sql(sort: str) -> str:
    return f"COALESCE(last_synced_at, {_NEVER_SQL})" if sort == "synced" else SORTS[sort]


def _page_order(sort: str, descending: bool) -> list:
    key = Coalesce("last_synced_at", Value(NEVER)) if sort == "synced" else F(SORTS[sort])
    columns = [key, F("name"), F("namespace"), F("instance_id")] if sort != "instance" else [F("name"), F("namespace")]
    return [c.desc() if descending else c.asc() for c in columns]


def _rows_sql(
    qs: QuerySet, f: Filters, order_ids: list[int], cursor: list | None, descending: bool, start: int
) -> tuple[str, list] | None:
    """One page (PAGE_SIZE + 1 rows, to know whether another follows) in keyset order from `cursor`, or from
    row `start` for a page number without a cursor (an old link). Every sort walks its index: a page costs
    the same at 100,000 apps as at 1,000. Sorting by instance follows instance names: one branch per instance
    in name order, each walking (instance_id, name, namespace), appended until the page is full."""
    op = "<" if descending else ">"
    limit = PAGE_SIZE + 1
    if f.sort != "instance":
        if cursor:
            keyset = f"({_key_sql(f.sort)}, name, namespace, instance_id) {op} (%s, %s, %s, %s)"
            if f.sort == "synced":
                keyset = keyset.replace("(%s,", "(%s::timestamptz,", 1)
            qs = qs.filter(RawSQL(keyset, cursor, output_field=BooleanField()))
        page = qs.order_by(*_page_order(f.sort, descending)).values(*COLUMNS)[start : start + limit]
        try:
            return page.query.sql_with_params()
        except EmptyResultSet:
            return None
    ids = order_ids[::-1] if descending else list(order_ids)
    if cursor:
        ids = ids[ids.index(cursor[2]) :] if cursor[2] in ids else []
    branches, params = [], []
    for pk in ids:
        branch = qs.filter(instance_id=pk)
        if cursor and pk == cursor[2]:
            branch = branch.filter(RawSQL(f"(name, namespace) {op} (%s, %s)", cursor[:2], output_field=BooleanField()))
        branch = branch.order_by(*_page_order("instance", descending)).values(*COLUMNS)[: start + limit]
        try:
            sql, ps = branch.query.sql_with_params()
        except EmptyResultSet:
            continue
        branches.append(f"({sql})")
        params += ps
    if not branches:
        return None
    return f"SELECT * FROM ({' UNION ALL '.join(branches)}) u LIMIT {limit} OFFSET {start}", params


_BASE_COLUMNS = ("instance_id", "project", "health_status", "sync_status", "auto_sync")
# Counts and the unselected base facets from AppCount in one pass; `dim` says which grouping a row belongs to.
_BASE_SQL = (
    "SELECT CASE GROUPING(health_status, sync_status, instance_id, project, auto_sync) "
    "WHEN 7 THEN 'hs' WHEN 27 THEN 'instance' WHEN 29 THEN 'project' ELSE 'auto' END AS dim, "
    "health_status, sync_status, COALESCE(instance_id::text, project, auto_sync::text) AS v, sum(n) AS c "
    "FROM {s} GROUP BY GROUPING SETS ((health_status, sync_status), (instance_id), (project), (auto_sync))"
)


def _scan_sql(keys: list[str], counts: bool = False) -> str:
    """Counts over the capped matching rows `s`: per (health, sync) when `counts`, per value of each facet in
    `keys`, and the number of rows read (dim "n"; more than COUNT_CAP means the cap was reached)."""
    branches = ["SELECT 'n' AS dim, NULL AS health_status, NULL AS sync_status, NULL AS v, count(*) AS c FROM s"]
    if counts:
        branches.append("SELECT 'hs', health_status, sync_status, NULL, count(*) FROM s GROUP BY 2, 3")
    for key in keys:
        if key == "label" and connection.vendor != "postgresql":
            continue  # label facets need PostgreSQL's jsonb functions
        if key == "label":
            branches.append(
                "SELECT 'label', NULL, NULL, key || '=' || value, count(*) FROM s, jsonb_each_text(s.labels) GROUP BY 4"
            )
        else:
            branches.append(f"SELECT '{key}', NULL, NULL, CAST({DIM_COLUMNS[key]} AS text), count(*) FROM s GROUP BY 4")
    return "WITH s AS MATERIALIZED (SELECT * FROM {s}) " + " UNION ALL ".join(branches)


def _parse_row(row: dict[str, Any]) -> dict[str, Any]:
    synced = row.get("last_synced_at")
    row["last_synced_at"] = datetime.fromisoformat(synced) if isinstance(synced, str) else None
    return row


def _grouped(rows: list[dict[str, Any]], column: str) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for r in rows:
        out[r[column]] = out.get(r[column], 0) + int(r["c"])
    return out


def _summary_tables(rows: list[dict[str, Any]], names: dict[int, str]) -> dict[str, Any]:
    """Counts by health and sync per instance and per project, from rows of (instance_id, project, health_status,
    sync_status, c)."""
    tables: dict[str, dict[str, dict[str, Any]]] = {"instances": {}, "projects": {}}
    for r in rows:
        for table, key in (("instances", names.get(r["instance_id"], "")), ("projects", r["project"])):
            entry = tables[table].setdefault(key, {"total": 0, "health": {}, "sync": {}})
            entry["total"] += int(r["c"])
            _add(entry["health"], r["health_status"], int(r["c"]))
            _add(entry["sync"], r["sync_status"], int(r["c"]))
    return {k: dict(sorted(v.items())) for k, v in tables.items()}


def _facet_values(key: str, rows: list[dict[str, Any]], names: dict[int, str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for r in rows:
        if r.get("dim") == "n":
            continue
        value = r["v"]
        if key == "instance":
            value = names.get(int(value), "") if value is not None else ""
        elif key == "auto":
            value = "on" if value in (True, "true") else "off"
        elif key in ("health", "sync"):
            value = value or "Unknown"
        if value:
            counts[value] = counts.get(value, 0) + int(r["c"])
    return _ordered(counts)


def search(user, f: Filters) -> Result:
    """One page of the user's applications under `f`, its counts and facets, in one SQL statement.

    Counts come from the counts tables (exact, a few hundred rows read) when the user's grants name instances
    and projects only and the filters are facets of those tables; otherwise from at most COUNT_CAP matching rows
    (exact below it, marked as lower bounds above it). Rows are read by keyset from the sort's index.
    """
    instances = instances_with_state(user)
    names = {i["id"]: i["name"] for i in instances}
    by_name = {i["name"]: i["id"] for i in instances}
    stale = stale_instances(instances)
    try:
        text = text_q(f)
    except selectors.SelectorError as exc:
        return Result([], 0, 1, 1, [], [], selector_error=str(exc), stale=stale, instances=by_name)
    grants = grants_filter(user, by_name)
    on_counts = counts_grants(grants)
    fast = on_counts is not None and not f.q and not f.selector
    secondary = {k for k in SECONDARY_DIMS if getattr(f, k)}
    matching = ApplicationSummary.objects.filter(grants, text)

    stmt = _Statement()
    exact = fast and not secondary  # total, health and sync counts from AppCount
    shared: list[str] = []  # facets counted together over the capped matching rows (those with no selection)
    for key in FILTER_KEYS:
        selected = bool(getattr(f, key))
        others = secondary - {key}
        if fast and not others and key in BASE_DIMS:
            if selected:  # its own counts: every filter but its own (unselected ones come with "base")
                qs = AppCount.objects.filter(on_counts, facet_q(f, by_name, skip=key, only=BASE_DIMS), n__gt=0)
                stmt.add(f"own:{key}", qs.order_by().values(v=F(DIM_COLUMNS[key])).annotate(c=Sum("n")))
        elif fast and not others and key in SECONDARY_DIMS and not (f.health or f.sync or f.auto):
            if selected:
                qs = AppFacetCount.objects.filter(on_counts, facet_q(f, by_name, only=("instance", "project")), dim=key)
                stmt.add(f"own:{key}", qs.filter(n__gt=0).order_by().values(v=F("value")).annotate(c=Sum("n")))
        elif selected:  # counted from at most COUNT_CAP rows under every filter but its own
            inner = matching.filter(facet_q(f, by_name, skip=key)).order_by().values(DIM_COLUMNS[key])
            stmt.add(f"own:{key}", inner[: COUNT_CAP + 1], _scan_sql([key]))
        else:
            shared.append(key)
    if exact:
        counted = AppCount.objects.filter(on_counts, facet_q(f, by_name, only=BASE_DIMS), n__gt=0).order_by()
        stmt.add("base", counted.values(*_BASE_COLUMNS, "n"), _BASE_SQL)
        shared = [k for k in shared if k not in BASE_DIMS]
        unselected = [k for k in shared if k in SECONDARY_DIMS and not (f.health or f.sync or f.auto)]
        if unselected and not secondary:
            qs = AppFacetCount.objects.filter(on_counts, facet_q(f, by_name, only=("instance", "project")))
            qs = qs.filter(dim__in=unselected, n__gt=0).order_by().values("dim", v=F("value")).annotate(c=Sum("n"))
            stmt.add("secondary", qs)
            shared = [k for k in shared if k not in unselected]
    if shared or not exact:
        columns = {DIM_COLUMNS[k] for k in shared} | ({"health_status", "sync_status"} if not exact else set())
        inner = matching.filter(facet_q(f, by_name)).order_by().values(*sorted(columns))
        stmt.add("scan", inner[: COUNT_CAP + 1], _scan_sql(shared, counts=not exact))

    cursor = decode_cursor(f.after or f.before, f.sort)
    backwards = bool(f.before) and cursor is not None
    descending = f.desc != backwards
    start = 0 if cursor else (f.page - 1) * PAGE_SIZE
    every = matching.filter(facet_q(f, by_name))
    order_ids = list(by_name.values())  # name order
    if f.view != "summary":
        if (sql := _rows_sql(every, f, order_ids, cursor, descending, start)) is not None:
            stmt.add("rows", sql)
        if not cursor and f.page == 1:
            pins = Favourite.objects.filter(
                user=user, instance_id=OuterRef("instance_id"), namespace=OuterRef("namespace"), name=OuterRef("name")
            )
            pinned = ApplicationSummary.objects.filter(grants, Exists(pins)).order_by("name", "instance_id")
            stmt.add("pinned", pinned.values(*COLUMNS)[:100])
    else:
        table = ("instance_id", "project", "health_status", "sync_status")
        if fast and not secondary:
            counted = AppCount.objects.filter(on_counts, facet_q(f, by_name, only=BASE_DIMS), n__gt=0).order_by()
            stmt.add("summary", counted.values(*table).annotate(c=Sum("n")))
        else:
            stmt.add("summary", every.order_by().values(*table).annotate(c=Count("id")))
    found = stmt.run()

    health: dict[str, int] = {}
    sync: dict[str, int] = {}
    grouped: dict[str, list[dict[str, Any]]] = {k: found.get(f"own:{k}", []) for k in FILTER_KEYS}
    for r in found.get("base", []) + found.get("scan", []) + found.get("secondary", []):
        if r["dim"] == "hs":
            _add(health, r["health_status"], int(r["c"]))
            _add(sync, r["sync_status"], int(r["c"]))
        elif r["dim"] != "n" and not getattr(f, r["dim"]):  # a selected facet has its own counts
            grouped[r["dim"]].append(r)
    for key, counts in (("health", health), ("sync", sync)):
        if f"own:{key}" not in found and not grouped[key]:  # unselected: its facet is the counts themselves
            grouped[key] = [{"v": k, "c": n} for k, n in counts.items()]
    total = sum(health.values())
    scanned_total = next((int(r["c"]) for r in found.get("scan", []) if r["dim"] == "n"), 0)
    approximate = not exact and total > COUNT_CAP
    if approximate:
        total = COUNT_CAP
    pages = max(1, ceil(total / PAGE_SIZE))
    rows = [_parse_row(r) for r in found.get("rows", [])]
    page = f.page
    if not cursor and not rows and f.page > 1 and f.view != "summary":  # past the end: the last page (stale links)
        page = pages if not approximate else 1
        again = _Statement()
        if (sql := _rows_sql(every, f, order_ids, None, f.desc, (page - 1) * PAGE_SIZE)) is not None:
            again.add("rows", sql)
        rows = [_parse_row(r) for r in again.run().get("rows", [])]
        start = (page - 1) * PAGE_SIZE
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
        if not more:
            page = 1
    else:
        has_prev, has_next = bool(cursor) or start > 0, more
    facets, approximate_facets = {}, set()
    for key in FILTER_KEYS:
        facets[key] = _facet_values(key, grouped[key], names)[:FACET_LIMIT]
        own = found.get(f"own:{key}", [])
        if f"own:{key}" in stmt.scanned:  # counted from rows: approximate when the rows reached the cap
            if sum(int(r["c"]) for r in own if r.get("dim") == "n") > COUNT_CAP:
                approximate_facets.add(key)
        elif key in shared and scanned_total > COUNT_CAP:
            approximate_facets.add(key)
    stale_ids = {s["id"] for s in stale}
    pinned = [_parse_row(r) for r in found.get("pinned", [])]
    for row in [*rows, *pinned]:
        _decorate(row, names.get(row["instance_id"], ""), row["instance_id"] in stale_ids)
    return Result(
        rows,
        total,
        max(1, page),
        max(pages, page),
        _ordered(health),
        _ordered(sync),
        stale=stale,
        instances=by_name,
        approximate=approximate,
        exact_counts=fast and not secondary,
        facets=facets,
        approximate_facets=approximate_facets,
        next_cursor=encode_cursor(rows[-1], f.sort) if rows and has_next else "",
        prev_cursor=encode_cursor(rows[0], f.sort) if rows and has_prev else "",
        pinned=pinned,
        summary=_summary_tables(found.get("summary", []), names) if f.view == "summary" else {},
    )


def _add(counts: dict[str, int], status: str | None, n: int) -> None:
    counts[status or "Unknown"] = counts.get(status or "Unknown", 0) + n


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Largest first."""
    return sorted(counts.items(), key=lambda r: (-r[1], r[0]))


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


def choices(user, instances: dict[str, int]) -> dict[str, Any]:
    """Whether to show the bulk-sync and new-application buttons (project choices are facets now), cached a minute
    per user and set of grants (a changed grant changes the key): all are conveniences, and scanning the index for
    them on every page load is not worth it. What the user may see or do is still decided per query and action."""
    grants = sorted((g.pk, g.instance_glob, g.project_glob, g.app_glob, *g.actions) for g in rules._grants(user))
    digest = hashlib.sha1(repr((user.is_superuser, sorted(instances.values()), grants)).encode()).hexdigest()
    key = f"index:choices:{user.pk}:{digest}"
    found = cache.get(key)
    if found is None:
        found = {
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
                "href": link(base, params or {}, sort=sort, page=None, after=None, before=None) if sort else "",
                "arrow": (" ▼" if f.desc else " ▲") if current else "",
            }
        )
    return out


def count_links(result: Result, base: str, params: Mapping[str, list[str]]) -> dict[str, list[tuple]]:
    """(status, count, href) per health and per sync status; the href filters on that status."""
    return {
        "health": [
            (name, n, link(base, params, health=name, page=None, after=None, before=None))
            for name, n in result.health_counts
        ],
        "sync": [
            (name, n, link(base, params, sync=name, page=None, after=None, before=None))
            for name, n in result.sync_counts
        ],
    }


def page_links(result: Result, base: str, params: Mapping[str, list[str]]) -> dict[str, str]:
    """Previous and next by keyset cursor (the page number rides along for the "Page n" label only)."""
    page = result.page
    return {
        "prev": link(base, params, before=result.prev_cursor, after=None, page=str(max(1, page - 1)))
        if result.prev_cursor
        else "",
        "next": link(base, params, after=result.next_cursor, before=None, page=str(page + 1))
        if result.next_cursor
        else "",
    }


def toggle(params: Mapping[str, list[str]], key: str, value: str) -> dict[str, list[str]]:
    values = list(params.get(key, []))
    values = [v for v in values if v != value] if value in values else [*values, value]
    return {**params, key: values}


def facet_links(f: Filters, result: Result, base: str, params: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """The sidebar: per facet, its values (the selected ones always, even at zero) with counts, and a link that
    adds or removes the value (cursors and page dropped: a new filter starts at the first page)."""
    clean = {k: v for k, v in params.items() if k not in ("after", "before", "page")}
    out = []
    for key in FILTER_KEYS:
        counted = dict(result.facets.get(key, []))
        selected = getattr(f, key)
        values = [(v, counted.get(v, 0)) for v in selected if v not in counted] + list(counted.items())
        out.append(
            {
                "key": key,
                "label": FACET_LABELS[key],
                "approximate": key in result.approximate_facets,
                "values": [
                    {"value": v, "count": n, "selected": v in selected, "href": link(base, toggle(clean, key, v))}
                    for v, n in values
                ],
            }
        )
    return out


def view_links(f: Filters, base: str, params: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    return [
        {
            "view": v,
            "label": v.title(),
            "current": v == f.view,
            "href": link(base, params, view=v, after=None, before=None),
        }  # fmt: skip
        for v in VIEWS
    ]
