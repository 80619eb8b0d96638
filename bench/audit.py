"""Audit log benchmark: load N hash-chained events with COPY, then time list pages, record() and verify.

    .venv/bin/python bench/audit.py [--events 1000000] [--database bench_audit] [--runs 20] [--skip-verify]

Uses PostgreSQL at postgres://postgres@127.0.0.1:5432/<database> (created and migrated if missing).
Events already in the table are kept; only the missing ones are loaded, so a second run measures
at once. The chain is computed in Python in id order and written with COPY, so `manage.py
audit_verify` passes on the loaded rows. See bench/README.md ("Audit") for figures.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INSTANCES = [f"prod-{i:02d}" for i in range(1, 21)]
PROJECTS = [f"project-{i:02d}" for i in range(50)]
ACTORS = [f"user-{i:03d}" for i in range(200)]
TEAMS = [f"team-{i:02d}" for i in range(30)]
KINDS = ["application"] * 16 + ["cluster", "repository", "project", "certificate"]
ACTIONS = ["sync", "sync", "sync", "rollback", "edit", "create", "delete", "terminate", "action", "view"]
OUTCOMES = ["succeeded"] * 14 + ["failed", "failed", "denied", "started", "started", "started"]
COLUMNS = (
    "id", "at", "actor", "team", "ip", "user_agent", "instance", "kind", "project", "namespace", "name", "action",
    "request", "before", "after", "outcome", "error", "operation_id", "prev_hash", "hash",
)  # fmt: skip


def setup(database: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fake_event(rng: random.Random, at: datetime):
    from apps.audit.models import AuditEvent

    kind = rng.choice(KINDS)
    instance = rng.choice(INSTANCES)
    project = rng.choice(PROJECTS) if kind == "application" else ""
    name = f"{project}-app-{rng.randrange(100)}" if kind == "application" else f"{kind}-{rng.randrange(30)}"
    action = rng.choice(ACTIONS)
    outcome = rng.choice(OUTCOMES)
    edit = action == "edit"
    return AuditEvent(
        at=at,
        actor=rng.choice(ACTORS),
        team=rng.choice(TEAMS),
        ip=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
        user_agent="Mozilla/5.0 bench",
        instance=instance,
        kind=kind,
        project=project,
        namespace="argocd",
        name=name,
        action=action,
        request={"prune": rng.random() < 0.3, "revision": f"{rng.getrandbits(40):010x}"},
        before={"spec": {"replicas": rng.randrange(5), "image": "nginx:1.25"}} if edit else None,
        after={"spec": {"replicas": rng.randrange(5), "image": "nginx:1.27"}} if edit else None,
        outcome=outcome,
        error=f"rpc error: code = FailedPrecondition desc = {name} is busy" if outcome == "failed" else "",
        operation_id=rng.randrange(1, 10**6) if action in ("sync", "rollback") else None,
    )


def load(total: int, batch: int = 50_000) -> float:
    """Bring the table to `total` events; returns seconds spent (0 when nothing was missing)."""
    import json

    from django.db import connection, transaction

    from apps.audit.chain import _LOCK_ID, GENESIS, compute_hash
    from apps.audit.models import AuditEvent

    have = AuditEvent.objects.count()
    if have >= total:
        return 0.0
    started = time.perf_counter()
    rng = random.Random(have)
    head = AuditEvent.objects.order_by("-id").values_list("id", "hash", "at").first()
    next_id, prev, at = (
        (head[0] + 1, head[1], head[2]) if head else (1, GENESIS, datetime.now(UTC) - timedelta(days=365))
    )
    step = timedelta(days=365) / total
    missing = total - have
    while missing > 0:
        n = min(batch, missing)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
            with cursor.copy(f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for _ in range(n):
                    at += step
                    event = fake_event(rng, at)
                    event.id, event.prev_hash = next_id, prev
                    event.hash = prev = compute_hash(event, prev)
                    row = [getattr(event, c) for c in COLUMNS]
                    for i, c in enumerate(COLUMNS):
                        if c in ("request", "before", "after") and row[i] is not None:
                            row[i] = json.dumps(row[i])
                    copy.write_row(row)
                    next_id += 1
            cursor.execute("SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), %s)", [next_id - 1])
        missing -= n
        print(f"  loaded {total - missing:,} / {total:,}", file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    return time.perf_counter() - started


def personas():
    from django.contrib.auth import get_user_model

    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "a@example.com", "bench-admin-password"
    )
    member = User.objects.filter(username="user-007").first() or User.objects.create_user(
        "user-007", "m@example.com", "bench-member-password"
    )
    team, created = Team.objects.get_or_create(slug="team-07", defaults={"name": "Team 07"})
    if created:
        Membership.objects.create(team=team, user=member)
        # One project on three instances, and every project of one instance (so its instance-wide events too).
        Grant.objects.create(team=team, instance_glob="prod-0[1-3]", project_glob="project-07", actions=["sync"])
        Grant.objects.create(team=team, instance_glob="prod-20", actions=[])
    return admin, member


def timed_pages(client, urls: list[str], runs: int) -> dict[str, tuple[float, float, int]]:
    out = {}
    for url in urls:
        client.get(url)  # warm caches and the plan
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        rows = response.content.count(b'<td><a href="/audit/')
        out[url] = (statistics.median(samples), _p95(samples), rows)
    return out


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_record(user, runs: int) -> dict[str, tuple[float, float]]:
    """record() on its own (it commits, so a durable WAL flush is included) and inside a caller's
    transaction (the usual case: the action's own rows commit with it, the flush is paid once)."""
    from django.db import transaction
    from django.test import RequestFactory

    from apps.audit.service import Outcome, record

    def one(i: int) -> None:
        request = RequestFactory().post("/applications/prod-01/argocd/x/sync/", REMOTE_ADDR="10.0.0.1")
        request.user = user
        record(request, action="sync", outcome=Outcome.STARTED, instance="prod-01", kind="application",
               project="project-07", name=f"bench-{i}", payload={"prune": False, "token": "s3cr3t"})  # fmt: skip

    own, nested = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        one(i)
        own.append((time.perf_counter() - t0) * 1000)
        with transaction.atomic():
            t0 = time.perf_counter()
            one(i)
            nested.append((time.perf_counter() - t0) * 1000)
    return {
        "own transaction": (statistics.median(own), _p95(own)),
        "caller's transaction": (statistics.median(nested), _p95(nested)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--database", default="bench_audit")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--skip-verify", action="store_true")
    args = ap.parse_args()
    setup(args.database)

    from django.test import Client

    from apps.audit.chain import verify
    from apps.audit.models import AuditEvent

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    seconds = load(args.events)
    total = AuditEvent.objects.count()
    print(f"events: {total:,} (loaded in {seconds:.0f} s)" if seconds else f"events: {total:,} (already loaded)")
    admin, member = personas()
    some = AuditEvent.objects.filter(id__lte=args.events).order_by("-id").values_list("id", flat=True)[5000]
    filters = [
        "/audit/",
        f"/audit/?before={some}",
        "/audit/?actor=user-042",
        "/audit/?instance=prod-03",
        "/audit/?instance=prod-03&kind=application&name=project-07-app-5",
        "/audit/?action=delete&outcome=failed",
        "/audit/?team=team-07",
        "/audit/?from=2026-03-01&to=2026-03-15",
        "/audit/?to=2025-12-15",
        "/audit/?instance=prod-20&kind=cluster&outcome=denied",
        "/audit/?q=busy",
        "/audit/?q=project-07-app-42",
        "/audit/?q=no-such-text-anywhere",
    ]
    results = {}
    for label, user in (("admin", admin), ("member", member)):
        client = Client()
        client.force_login(user)
        results[label] = timed_pages(client, filters, args.runs)
    print("\n| page | admin median / p95 (ms) | member median / p95 (ms) | rows admin/member |\n|---|---|---|---|")
    for url in filters:
        a, m = results["admin"][url], results["member"][url]
        print(f"| `{url}` | {a[0]:.0f} / {a[1]:.0f} | {m[0]:.0f} / {m[1]:.0f} | {a[2]}/{m[2]} |")
    print()
    for label, (med, p95) in time_record(member, 500).items():
        print(f"record() in its {label}: median {med:.2f} ms, p95 {p95:.2f} ms (500 calls)")
    if not args.skip_verify:
        t0 = time.perf_counter()
        checked, bad, reason = verify()
        print(f"verify: {checked:,} events in {time.perf_counter() - t0:.0f} s, {'intact' if bad is None else reason}")
        if bad is not None:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
