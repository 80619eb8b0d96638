"""Benchmark the Argo CD simulator: seeding, simple GET throughput, full vs projected 10k-app lists.

Run:  .venv/bin/python bench/simulator.py [--apps 10000] [--threads 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import UTC, datetime

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from apps.simulator.server import SimServer  # noqa: E402

FIELDS = (
    "items.metadata.name,items.metadata.labels,items.spec.project,items.spec.destination,"
    "items.status.sync.status,items.status.health,items.status.operationState.phase"
)


def timed_get(session: requests.Session, url: str, **kw) -> tuple[float, int, int]:
    started = time.perf_counter()
    r = session.get(url, timeout=120, **kw)
    elapsed = time.perf_counter() - started
    r.raise_for_status()
    return elapsed, len(r.content), len(r.json()["items"]) if "items" in r.json() else 0


def throughput(url: str, headers: dict, threads: int, seconds: float) -> float:
    count = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        s = requests.Session()
        s.headers.update(headers)
        while time.monotonic() < stop:
            s.get(url, timeout=10).raise_for_status()
            count[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(count) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    started = time.perf_counter()
    sim = SimServer(port=0, name="bench", apps=args.apps, projects=args.projects, seed=1).start()
    seed_s = time.perf_counter() - started
    try:
        headers = {"Authorization": f"Bearer {sim.portal_token()}"}
        s = requests.Session()
        s.headers.update(headers)
        name = sim.state.sorted_app_keys()[0][1]
        stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}"
        print(f"date: {stamp}; cpus: {os.cpu_count()}; python {sys.version.split()[0]}")
        print(f"seed + start, {args.apps} apps: {seed_s:.2f} s")
        rps_version = throughput(sim.url + "/api/version", headers, args.threads, args.seconds)
        rps_app = throughput(f"{sim.url}/api/v1/applications/{name}", headers, args.threads, args.seconds)
        print(f"simple GET /api/version: {rps_version:.0f} req/s ({args.threads} client threads)")
        print(f"simple GET /api/v1/applications/{{name}}: {rps_app:.0f} req/s ({args.threads} client threads)")
        for label, params in (("full list", {}), ("projected list (fields=)", {"fields": FIELDS})):
            first = timed_get(s, sim.url + "/api/v1/applications", params=params)
            runs = [timed_get(s, sim.url + "/api/v1/applications", params=params) for _ in range(3)]
            best = min(r[0] for r in runs)
            print(
                f"{label}: {first[2]} items, {first[1] / 1e6:.1f} MB; first {first[0] * 1000:.0f} ms, "
                f"warm best {best * 1000:.0f} ms (incl. client JSON parse)"
            )
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
