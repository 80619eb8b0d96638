"""Turning an Argo CD Application (or a projection of one) into an ApplicationSummary row, and back to SQL.

Kept apart from the indexer's threads so the mapping can be read and tested on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.pgtext import storable

from .models import ApplicationSummary

log = logging.getLogger(__name__)

# What the summary needs, as Argo CD projections (NOTES §k). The list only honours a whitelist and wants the
# `items.` prefix; `metadata.resourceVersion` is not on it, so list rows carry no resourceVersion.
LIST_FIELDS = [
    "items.metadata.name",
    "items.metadata.namespace",
    "items.metadata.labels",
    "items.spec.project",
    "items.spec.source",
    "items.spec.sources",
    "items.spec.destination",
    "items.spec.syncPolicy",
    "items.status.sync.status",
    "items.status.sync.revision",
    "items.status.health",
    "items.status.operationState.phase",
    "items.status.operationState.finishedAt",
]
# The stream projects generically from the top of each frame, which starts at `result`.
WATCH_FIELDS = [
    "result.type",
    "result.application.metadata.name",
    "result.application.metadata.namespace",
    "result.application.metadata.labels",
    "result.application.metadata.resourceVersion",
    "result.application.spec.project",
    "result.application.spec.source",
    "result.application.spec.sources",
    "result.application.spec.destination",
    "result.application.spec.syncPolicy",
    "result.application.status.sync.status",
    "result.application.status.sync.revision",
    "result.application.status.health.status",
    "result.application.status.operationState.phase",
    "result.application.status.operationState.finishedAt",
]

UPDATE_FIELDS = [
    "project",
    "labels",
    "repo",
    "path",
    "revision",
    "dest_server",
    "dest_name",
    "dest_namespace",
    "sync_status",
    "health_status",
    "operation_phase",
    "auto_sync",
    "cluster",
    "last_synced_at",
    "resource_version",
    "seen_at",
]
_MAX = {f.name: f.max_length for f in ApplicationSummary._meta.fields if getattr(f, "max_length", None)}


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _s(field: str, value: Any) -> str:
    # Argo CD data is not trusted to fit our columns: one overlong value or one NUL character must not fail a
    # whole batch. A NUL is kept visibly as `\u0000` (apps.core.pgtext), so the app is listed and searchable.
    text = storable(value if isinstance(value, str) else ("" if value is None else str(value)))
    return text[: _MAX.get(field, len(text))]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, timezone.utc)


def key_of(app: dict) -> tuple[str, str]:
    meta = _d(app.get("metadata"))
    return _s("namespace", meta.get("namespace") or "argocd"), _s("name", meta.get("name"))


def summary_fields(app: dict) -> dict[str, Any]:
    """The column values of one application (full object or projection)."""
    meta, spec, status = _d(app.get("metadata")), _d(app.get("spec")), _d(app.get("status"))
    sources = spec.get("sources") if isinstance(spec.get("sources"), list) else []
    source = _d(spec.get("source")) or (_d(sources[0]) if sources else {})
    dest = _d(spec.get("destination"))
    sync = _d(status.get("sync"))
    op = _d(status.get("operationState"))
    labels = meta.get("labels")
    labels = {storable(str(k)): storable(str(v)) for k, v in labels.items()} if isinstance(labels, dict) else {}
    return {
        "project": _s("project", spec.get("project") or "default"),
        "labels": labels,
        "repo": _s("repo", source.get("repoURL")),
        # A Helm repository source names a chart where a Git source names a path.
        "path": _s("path", source.get("path") or source.get("chart")),
        "revision": _s("revision", sync.get("revision") or source.get("targetRevision")),
        "dest_server": _s("dest_server", dest.get("server")),
        "dest_name": _s("dest_name", dest.get("name")),
        "dest_namespace": _s("dest_namespace", dest.get("namespace")),
        "sync_status": _s("sync_status", sync.get("status")),
        "health_status": _s("health_status", _d(status.get("health")).get("status")),
        "operation_phase": _s("operation_phase", op.get("phase")),
        "auto_sync": bool(_d(spec.get("syncPolicy")).get("automated")),
        "cluster": _s("cluster", dest.get("name") or dest.get("server")),
        "last_synced_at": _time(op.get("finishedAt")),
        "resource_version": _s("resource_version", meta.get("resourceVersion")),
    }


def _rows(apps: list[dict]) -> dict[tuple[str, str], dict[str, Any]]:
    # Keyed, so a name listed twice cannot make PostgreSQL's ON CONFLICT touch one row twice.
    rows = {}
    for app in apps:
        key = key_of(app)
        if key[1]:
            rows[key] = summary_fields(app)
    return rows


# Column types for PostgreSQL's jsonb_to_recordset, in UPDATE_FIELDS order (seen_at comes as a parameter).
_PG_TYPES = {"labels": "jsonb", "last_synced_at": "timestamptz", "auto_sync": "boolean"}


def _write_postgresql(instance_id: int, rows: dict[tuple[str, str], dict[str, Any]], seen_at: datetime) -> None:
    """One INSERT … ON CONFLICT with the rows as a single JSON parameter: far less per-value overhead than a
    10,000-parameter VALUES list."""
    fields = [f for f in UPDATE_FIELDS if f != "seen_at"]
    record = ", ".join(f"{f} {_PG_TYPES.get(f, 'text')}" for f in ["namespace", "name", *fields])
    doc = [
        {"namespace": ns, "name": name, **v, "last_synced_at": v["last_synced_at"] and v["last_synced_at"].isoformat()}
        for (ns, name), v in rows.items()
    ]
    table = ApplicationSummary._meta.db_table
    sql = (
        f"INSERT INTO {table} (instance_id, namespace, name, {', '.join(fields)}, seen_at) "
        f"SELECT %s, namespace, name, {', '.join(fields)}, %s FROM jsonb_to_recordset(%s::jsonb) AS x({record}) "
        f"ON CONFLICT (instance_id, namespace, name) DO UPDATE SET "
        + ", ".join(f"{f} = EXCLUDED.{f}" for f in UPDATE_FIELDS)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [instance_id, seen_at, json.dumps(doc)])


def _write_rows(instance_id: int, rows: dict[tuple[str, str], dict[str, Any]], seen_at: datetime) -> None:
    if connection.vendor == "postgresql":
        _write_postgresql(instance_id, rows, seen_at)
        return
    ApplicationSummary.objects.bulk_create(
        [
            ApplicationSummary(instance_id=instance_id, namespace=ns, name=name, seen_at=seen_at, **values)
            for (ns, name), values in rows.items()
        ],
        batch_size=500,
        update_conflicts=True,
        unique_fields=["instance", "namespace", "name"],
        update_fields=UPDATE_FIELDS,
    )


def app_label(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}"


def _write(instance_id: int, rows: dict[tuple[str, str], dict[str, Any]], seen_at: datetime) -> dict[str, str]:
    """Write `rows`; returns {"namespace/name": why} for the rows the database refused, which are skipped.

    One statement for all rows; only when the database refuses the data are the rows split in halves (each half in
    its own savepoint) until the refused ones are found, so one bad application costs a few statements and never
    stops the others. Errors not about the data (a lost connection, a deadlock) propagate: the watcher retries.
    """
    if not rows:
        return {}
    try:
        with transaction.atomic():
            _write_rows(instance_id, rows, seen_at)
        return {}
    except (OperationalError, InterfaceError):
        raise  # not about the data (a lost connection, a deadlock): the watcher retries the whole batch
    except DatabaseError as exc:
        if len(rows) == 1:
            key = next(iter(rows))
            reason = storable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)[:300]
            log.warning("instance %s: cannot index %s: %s", instance_id, app_label(key), reason)
            return {app_label(key): reason}
    items = list(rows.items())
    half = len(items) // 2
    return {**_write(instance_id, dict(items[:half]), seen_at), **_write(instance_id, dict(items[half:]), seen_at)}


@dataclass
class Stored:
    count: int  # applications now in the index for these (written or unchanged; a refused new one is not)
    skipped: dict[str, str] = field(default_factory=dict)  # "namespace/name" → why the database refused it
    written: set[str] = field(default_factory=set)  # "namespace/name" of the rows written


def upsert(instance_id: int, apps: list[dict], seen_at: datetime) -> Stored:
    """Insert or update rows for these applications in bulk."""
    rows = _rows(apps)
    skipped = _write(instance_id, rows, seen_at)
    return Stored(len(rows) - len(skipped), skipped, {app_label(k) for k in rows} - skipped.keys())


def delete(instance_id: int, keys: list[tuple[str, str]]) -> None:
    for start in range(0, len(keys), 500):
        q = Q()
        for namespace, name in keys[start : start + 500]:
            q |= Q(namespace=namespace, name=name)
        ApplicationSummary.objects.filter(q, instance_id=instance_id).delete()


# What a resync compares to decide whether a row changed (the list carries no resourceVersion).
_COMPARED = [f for f in UPDATE_FIELDS if f not in ("seen_at", "resource_version")]


def replace_all(instance_id: int, apps: list[dict]) -> Stored:
    """A full resync: write the listed apps that are new or changed, delete rows the list no longer has.

    Unchanged rows are not rewritten, so a periodic resync of a quiet instance costs one SELECT. An app the
    database refuses is reported in `skipped` (and tried again at the next resync).
    """
    rows = _rows(apps)
    existing = {
        (ns, name): values
        for ns, name, *values in ApplicationSummary.objects.filter(instance_id=instance_id)
        .order_by()
        .values_list("namespace", "name", *_COMPARED)
    }
    changed = {k: v for k, v in rows.items() if existing.get(k) != [v[f] for f in _COMPARED]}
    with transaction.atomic():
        skipped = _write(instance_id, changed, timezone.now())
        delete(instance_id, [k for k in existing if k not in rows])
    missing = sum(1 for k in changed if k not in existing and app_label(k) in skipped)
    return Stored(len(rows) - missing, skipped, {app_label(k) for k in changed} - skipped.keys())


def counts_by_instance(user) -> dict[str, dict[str, Any]]:
    """What a dashboard needs of the index: per instance the user may view, its applications' counts by health and
    by sync status — `{instance name: {"total": n, "health": {status: n}, "sync": {status: n}}}` (an empty status
    counts as Unknown). Grants are applied in the query; for grants that name instances and projects only the
    counts come from the counts tables the triggers keep, so the cost does not grow with the fleet."""
    from .query import Filters, search

    return search(user, Filters(view="summary")).summary.get("instances", {})
