"""What the home page shows: the fleet as the user may see it, in a bounded number of queries.

Every section goes through the same visibility rules as its own page: the index through the grants filter of
the application list, audit events through `visible_events`, operations through `visible_operations`. Counts
are one GROUP BY over the index, whatever the number of applications or instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from django.db.models import Case, Count, Q, Value, When
from django.urls import reverse
from django.utils import timezone

from apps.access.rules import is_platform_admin
from apps.audit.models import AuditEvent
from apps.audit.queries import id_bound, visible_events
from apps.index import query
from apps.instances.models import Instance
from apps.operations.models import Operation

CHANGES_WINDOW = timedelta(hours=24)
TOKEN_WARNING = timedelta(days=14)  # as Instance.token_expires_soon: time to rotate
LIST_LIMIT = 15
# Audit actions that read or sign in: not changes to the fleet.
NOT_CHANGES = ("view", "login", "logout", "reveal", "export")
HEALTH_ORDER = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]
SYNC_ORDER = ["Synced", "OutOfSync", "Unknown"]


def app_list_link(**filters: str) -> str:
    """A link into the application list, filtered (the list keeps its filters in the URL)."""
    return reverse("index:list") + "?" + urlencode(filters)


@dataclass
class InstanceRow:
    id: int
    name: str
    total: int = 0
    health: dict[str, int] = field(default_factory=dict)
    sync: dict[str, int] = field(default_factory=dict)
    # Instance health, as the portal last saw it.
    version: str = ""
    last_seen: Any = None
    reachable: bool | None = None  # None: never checked
    error: str = ""  # shown to platform admins only: it may name internal addresses
    token_expires_at: Any = None
    token_expires_soon: bool = False
    stale: str = ""  # why the index of this instance may be out of date

    def health_links(self) -> list[tuple[str, int, str]]:
        return _links(self.name, "health", self.health, HEALTH_ORDER)

    def sync_links(self) -> list[tuple[str, int, str]]:
        return _links(self.name, "sync", self.sync, SYNC_ORDER)


def _links(instance: str, key: str, counts: dict[str, int], order: list[str]) -> list[tuple[str, int, str]]:
    names = [n for n in order if n in counts] + sorted(n for n in counts if n not in order)
    return [(n, counts[n], app_list_link(instance=instance, **{key: n})) for n in names]


def fleet(user) -> tuple[list[InstanceRow], dict[str, Any]]:
    """Per visible instance: counts by health and sync (one aggregate query) and its health."""
    states = query.instances_with_state(user)
    by_name = {s["name"]: s["id"] for s in states}
    stale = {s["id"]: s["reason"] for s in query.stale_instances(states)}
    rows = {s["id"]: InstanceRow(id=s["id"], name=s["name"], stale=stale.get(s["id"], "")) for s in states}
    admin = is_platform_admin(user)
    soon = timezone.now() + TOKEN_WARNING
    for i in Instance.objects.filter(pk__in=rows).values(
        "id", "version", "last_seen", "last_error", "token_expires_at"
    ):
        row = rows[i["id"]]
        row.version, row.last_seen, row.token_expires_at = i["version"], i["last_seen"], i["token_expires_at"]
        row.reachable = None if not (i["last_seen"] or i["last_error"]) else not i["last_error"]
        row.error = i["last_error"] if admin else ""
        row.token_expires_soon = bool(i["token_expires_at"] and i["token_expires_at"] < soon)
    totals: dict[str, Any] = {"apps": 0, "health": {}, "sync": {}}
    counts = (
        query.visible(user, by_name)
        .order_by()
        .values_list("instance_id", "health_status", "sync_status")
        .annotate(n=Count("id"))
    )
    for instance_id, health, sync, n in counts:
        row = rows.get(instance_id)
        if row is None:
            continue
        health, sync = health or "Unknown", sync or "Unknown"  # as the list counts them
        row.total += n
        row.health[health] = row.health.get(health, 0) + n
        row.sync[sync] = row.sync.get(sync, 0) + n
        totals["apps"] += n
        totals["health"][health] = totals["health"].get(health, 0) + n
        totals["sync"][sync] = totals["sync"].get(sync, 0) + n
    return list(rows.values()), totals


def attention(user, instances: list[InstanceRow]) -> tuple[list[dict[str, Any]], int]:
    """Applications degraded or out of sync now, degraded first, as links to their pages; and how many there are."""
    names = {r.id: r.name for r in instances}
    qs = query.visible(user, {r.name: r.id for r in instances}).filter(
        Q(health_status="Degraded") | Q(sync_status="OutOfSync")
    )
    worst_first = Case(When(health_status="Degraded", then=Value(0)), default=Value(1))
    rows = list(
        qs.order_by(worst_first, "name", "instance_id").values(
            "instance_id", "name", "project", "health_status", "sync_status", "operation_phase"
        )[:LIST_LIMIT]
    )
    for app in rows:
        instance = names.get(app["instance_id"], "")
        app.update(instance=instance, href=f"/applications/{quote(instance)}/{quote(app['name'])}/")
    return rows, len(rows) if len(rows) < LIST_LIMIT else qs.order_by().count()


def recent_changes(user) -> tuple[list[AuditEvent], int, str]:
    """What changed in the last 24 h that the user may read: the newest events, their count, a link to all."""
    since = timezone.now() - CHANGES_WINDOW
    events = (
        visible_events(user)
        .filter(at__gte=since)
        .filter(id_bound("from", since))
        .exclude(action__in=NOT_CHANGES)
        .filter(outcome__in=[AuditEvent.Outcome.SUCCEEDED, AuditEvent.Outcome.FAILED])
    )
    latest = list(events.order_by("-id").defer("before", "after", "request", "user_agent")[:LIST_LIMIT])
    total = len(latest) if len(latest) < LIST_LIMIT else events.count()
    link = reverse("audit:list") + "?" + urlencode({"from": since.strftime("%Y-%m-%dT%H:%M")})
    return latest, total, link


def my_actions(user) -> list[AuditEvent]:
    """The user's own latest actions (their intents are left out: each outcome names what was asked)."""
    return list(
        AuditEvent.objects.filter(actor=user.get_username(), actor_user=user)
        .exclude(outcome=AuditEvent.Outcome.STARTED)
        .exclude(action__in=("login", "logout"))
        .order_by("-id")
        .defer("before", "after", "request", "user_agent")[:10]
    )


def running_operations(user) -> tuple[list[Operation], int]:
    from apps.operations.views import visible_operations

    active = visible_operations(user).filter(state__in=[Operation.State.QUEUED, Operation.State.RUNNING])
    latest = list(active.order_by("-id")[:LIST_LIMIT])
    return latest, len(latest) if len(latest) < LIST_LIMIT else active.count()


def pending_approvals(user) -> list:
    """The approval requests waiting for this user's decision (apps.governance.approvals says who may approve)."""
    from apps.governance import approvals

    return approvals.waiting_for(user)[:LIST_LIMIT]


def dashboard_context(user) -> dict:
    instances, totals = fleet(user)
    changes, changes_total, changes_link = recent_changes(user)
    operations, operations_total = running_operations(user)
    attention_rows, attention_total = attention(user, instances)
    return {
        "instances": instances,
        "totals": totals,
        "degraded_link": app_list_link(health="Degraded"),
        "out_of_sync_link": app_list_link(sync="OutOfSync"),
        "attention": attention_rows,
        "attention_total": attention_total,
        "changes": changes,
        "changes_total": changes_total,
        "changes_link": changes_link,
        "operations": operations,
        "operations_total": operations_total,
        "approvals": pending_approvals(user),
        "my_actions": my_actions(user),
        "admin": is_platform_admin(user),
    }
