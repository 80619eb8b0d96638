"""The indexer at fleet size: initial load of 100,000 apps across 10 simulated instances, then the change latency
under a churn of 100 changes/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_indexer REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/indexer_scale.py [--instances 10] [--apps 10000] [--rate 100] [--seconds 30]

`manage.py runsim` serves the instances from its own process. The database (created if missing, migrated) gets
the instances registered and its index emptied; an `Indexer` (the one `manage.py run_indexer` runs) starts in this
process and the initial load is timed until every instance reports its first resync. Then one sender thread per
instance merge-patches a `bench/churn` label onto its apps in turn (rate / instances a second each, on a fixed
schedule), while a poller reads the index every 20 ms: a change's latency is from the PATCH's answer to the poll
that first sees the new label value in the index. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def ensure_database() -> None:
    import psycopg

    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_sims(count: int, apps: int) -> tuple[subprocess.Popen, list[tuple[str, str, str]], float]:
    keys = Path(tempfile.mkdtemp()) / "keys.json"
    cmd = [sys.executable, "manage.py", "runsim", "--port", "18600", "--instances", str(count), "--apps", str(apps)]
    cmd += [
        "--projects",
        "10",
        "--sync-seconds",
        "1",
        "--bootstrap-key-file",
        str(keys),
        "--bootstrap-key-ttl",
        "86400",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    while not keys.exists():
        if proc.poll() is not None:
            sys.exit(f"runsim exited: {proc.returncode}")
        time.sleep(0.5)
    time.sleep(0.5)  # the file is written whole, but give the last server a moment
    sims = [(name, k["url"], k["token"]) for name, k in json.loads(keys.read_text()).items()]
    return proc, sims, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is created if missing)")
    ensure_database()
    import django

    django.setup()
    logging.getLogger("apps.index.indexer").setLevel(logging.WARNING)
    from django.core.management import call_command
    from django.db import connection

    from apps.index.indexer import Indexer, Options
    from apps.index.models import AppCount, ApplicationSummary, IndexState
    from apps.instances.models import Instance

    call_command("migrate", verbosity=0)
    proc, sims, seeded = start_sims(args.instances, args.apps)
    print(f"{args.instances} simulators with {args.apps} apps each seeded and listening in {seeded:.1f} s")
    try:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE index_applicationsummary, index_indexstate")
        Instance.objects.defer("token", "password").delete()
        instances = [
            Instance.objects.create(name=f"churn-{i}", url=url, token=token) for i, (_, url, token) in enumerate(sims)
        ]
        indexer = Indexer(Options(holder="bench-indexer", refresh_seconds=3600, resync_seconds=3600))
        t0 = time.perf_counter()
        runner = threading.Thread(target=indexer.run, daemon=True)
        runner.start()
        while IndexState.objects.filter(instance__in=instances, last_resync_at__isnull=False).count() < len(instances):
            time.sleep(0.05)
        load = time.perf_counter() - t0
        rows = ApplicationSummary.objects.count()
        counted = sum(AppCount.objects.values_list("n", flat=True))
        print(f"initial load: {rows} apps in {load:.1f} s ({rows / load:.0f} apps/s); counts tables say {counted}")

        names = {
            i.pk: list(ApplicationSummary.objects.filter(instance=i).order_by("name").values_list("name", flat=True))
            for i in instances
        }
        pending: dict[tuple[int, str], tuple[str, float]] = {}
        latencies: list[float] = []
        lock = threading.Lock()
        sent = [0]
        errors = [0]
        stop = threading.Event()
        per_instance = args.rate / len(instances)

        def sender(instance: Instance) -> None:
            with instance.client() as client:
                start = time.perf_counter()
                k = 0
                while not stop.is_set():
                    due = start + k / per_instance
                    now = time.perf_counter()
                    if due > now:
                        time.sleep(due - now)
                    name = names[instance.pk][k % len(names[instance.pk])]
                    value = f"c{k}"
                    try:
                        client.patch_application(name, {"metadata": {"labels": {"bench/churn": value}}})
                    except Exception:  # noqa: BLE001 - counted and reported, the churn goes on
                        errors[0] += 1
                    else:
                        with lock:
                            pending[(instance.pk, name)] = (value, time.perf_counter())
                            sent[0] += 1
                    k += 1

        def poller() -> None:
            from django.db import connection as conn

            while not stop.is_set() or pending:
                with lock:
                    waiting = dict(pending)
                if waiting:
                    pairs = list(waiting)
                    placeholders = ", ".join(["(%s, %s)"] * len(pairs))
                    with conn.cursor() as cursor:
                        cursor.execute(
                            "SELECT instance_id, name, labels->>'bench/churn' FROM index_applicationsummary "
                            f"WHERE namespace = 'argocd' AND (instance_id, name) IN ({placeholders})",
                            [v for p in pairs for v in p],
                        )
                        seen = time.perf_counter()
                        for iid, name, value in cursor.fetchall():
                            want, at = waiting[(iid, name)]
                            if value == want:
                                with lock:
                                    if pending.get((iid, name), (None,))[0] == want:
                                        del pending[(iid, name)]
                                        latencies.append(seen - at)
                time.sleep(0.02)
                if stop.is_set() and time.perf_counter() - stopped_at[0] > 30:
                    break
            conn.close()

        stopped_at = [0.0]
        threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in instances]
        watch = threading.Thread(target=poller, daemon=True)
        t1 = time.perf_counter()
        for t in threads:
            t.start()
        watch.start()
        time.sleep(args.seconds)
        stop.set()
        stopped_at[0] = time.perf_counter()
        for t in threads:
            t.join(timeout=10)
        elapsed = time.perf_counter() - t1
        watch.join(timeout=40)
        lat = sorted(latencies)
        p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1000  # noqa: E731
        print(
            f"churn: {sent[0]} changes in {elapsed:.1f} s ({sent[0] / elapsed:.1f}/s, {errors[0]} errors); "
            f"seen in the index: {len(lat)}, never seen: {len(pending)}; "
            f"latency median {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {p(0.95):.0f} ms, p99 {p(0.99):.0f} ms, max {lat[-1] * 1000:.0f} ms; load average "
            + " ".join(f"{x:.1f}" for x in os.getloadavg())
        )
        indexer.stop()
        runner.join(timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
