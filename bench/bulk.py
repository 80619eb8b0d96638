"""Bulk sync benchmark: N applications over K simulated instances, each sync taking S seconds, limit C.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/bulk.py [--apps 200] [--instances 2] [--sync-seconds 2] [--limit 10]

Runs the real thing: PostgreSQL (a throw-away test_<name> database), Redis, a `celery worker` subprocess
with enough threads for every instance's limit, and simulated Argo CD servers over HTTP. Expected wall
time is S x ceil(N / K / C): each instance runs its apps in waves of C. Prints expected vs measured and
the highest number of children seen running at once per instance; see bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def peak_overlap(children) -> dict[str, int]:
    events = defaultdict(list)
    for c in children:
        events[c.instance_name] += [(c.started_at, 1), (c.finished_at, -1)]
    peaks = {}
    for name, evs in events.items():
        running = peak = 0
        for _, delta in sorted(evs, key=lambda e: (e[0], e[1])):
            running += delta
            peak = max(peak, running)
        peaks[name] = peak
    return peaks


def slot_gaps(children, limit: int) -> list[float]:
    """Per instance, how long a freed slot stayed empty: the i-th start (i >= limit) waits for the (i-limit)-th end."""
    gaps = []
    by_instance = defaultdict(list)
    for c in children:
        by_instance[c.instance_name].append(c)
    for rows in by_instance.values():
        starts = sorted(c.started_at for c in rows)
        ends = sorted(c.finished_at for c in rows)
        gaps += [(starts[i] - ends[i - limit]).total_seconds() for i in range(limit, len(starts))]
    return gaps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=200, help="applications in total (split over the instances)")
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--sync-seconds", type=float, default=2.0)
    ap.add_argument("--limit", type=int, default=10, help="children running at once per instance")
    args = ap.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("needs DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs a real worker", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    old_config = setup_databases(verbosity=0, interactive=False)
    worker = None
    sims = []
    try:
        import redis
        from django.conf import settings
        from django.test import RequestFactory

        from apps.instances.models import Instance
        from apps.operations.services import start_bulk_sync
        from apps.simulator.server import SimServer

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        per_instance = math.ceil(args.apps / args.instances)
        targets = []
        for i in range(args.instances):
            sim = SimServer(port=0, name=f"bench-{i}", apps=per_instance, projects=4, seed=100 + i,
                            sync_seconds=args.sync_seconds).start()  # fmt: skip
            sims.append(sim)
            inst = Instance.objects.create(name=sim.name, url=sim.url, token=sim.portal_token(), verify_tls=False)
            with sim.state.lock:
                targets += [(inst, rec.project, rec.name) for rec in sim.state.apps.values()]
        targets = targets[: args.apps]

        db = connection.settings_dict
        env = dict(os.environ)
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
        threads = args.instances * args.limit + 6  # each running child holds a thread; spare ones claim the next
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=threads", f"--concurrency={threads}",
             "--loglevel=WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        from portal.celery import app

        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                print("the worker did not start", file=sys.stderr)
                return 1

        request = RequestFactory().post("/operations/bulk-sync/")
        request.user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
        # No retries: a seeded failing app then fails once instead of stretching its wave.
        params = {"limit": args.limit, "retryStrategy": {"limit": 0}}
        t0 = time.perf_counter()
        parent = start_bulk_sync(request, targets, params)
        created = time.perf_counter() - t0
        while True:
            parent.refresh_from_db()
            if parent.is_final:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0

        children = list(parent.children.all())
        by_state = defaultdict(int)
        for c in children:
            by_state[c.state] += 1
        expected = args.sync_seconds * math.ceil(per_instance / args.limit)
        print(f"apps={len(targets)} instances={args.instances} sync_seconds={args.sync_seconds} limit={args.limit}")
        print(f"children: {dict(by_state)}  (seeded failing apps fail on purpose)")
        first = min(c.started_at for c in children if c.started_at)
        last = max(c.finished_at for c in children if c.finished_at)
        print(f"rows + audit events written in {created:.1f} s; first child start to last child end "
              f"{(last - first).total_seconds():.1f} s")  # fmt: skip
        print(f"peak running per instance: {peak_overlap(children)}")
        runs = [(c.finished_at - c.started_at).total_seconds() for c in children if c.started_at and c.finished_at]
        gaps = slot_gaps(children, args.limit)
        if gaps:
            mean = sum(gaps) / len(gaps)
            print(f"a freed slot waits {mean:.2f} s on average for the next child (max {max(gaps):.2f})")
        print(f"one child runs {sum(runs) / len(runs):.2f} s on average (min {min(runs):.2f}, max {max(runs):.2f})")
        print(f"expected ~{expected:.1f} s (S x ceil({per_instance}/{args.limit}))  measured {elapsed:.1f} s  "
              f"ratio {elapsed / expected:.2f}")  # fmt: skip
        return 0
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        for sim in sims:
            sim.stop()
        connection.close()
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
