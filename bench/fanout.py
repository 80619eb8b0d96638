"""Client fan-out benchmark: 5 simulated Argo CD instances answering in ~200 ms, serial vs fan_out.

    .venv/bin/python bench/fanout.py [--instances 5] [--latency-ms 200] [--rounds 5]

Prints serial and parallel wall time (median of rounds) and their ratio; see bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.argocd import ArgoCDClient, fan_out  # noqa: E402
from apps.simulator.server import SimServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=5)
    ap.add_argument("--latency-ms", type=int, default=200)
    ap.add_argument("--apps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    sims = [
        SimServer(port=0, name=f"bench-{i}", apps=args.apps, projects=3, seed=i, latency_ms=args.latency_ms).start()
        for i in range(args.instances)
    ]
    clients = {s.name: ArgoCDClient(s.url, token=s.portal_token(), name=s.name) for s in sims}
    try:
        fan_out(clients, lambda c: c.version())  # open keep-alive connections first: measure calls, not TCP setup
        serial, parallel = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for c in clients.values():
                c.list_applications()
            serial.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            outcomes = fan_out(clients, lambda c: c.list_applications(), deadline=10)
            parallel.append(time.perf_counter() - t0)
            failed = [k for k, o in outcomes.items() if not o.ok]
            if failed:
                print(f"failed instances: {failed}", file=sys.stderr)
                return 1
    finally:
        for c in clients.values():
            c.close()
        for s in sims:
            s.stop()

    s_med, p_med = statistics.median(serial), statistics.median(parallel)
    print(f"instances={args.instances} latency_ms={args.latency_ms} apps={args.apps} rounds={args.rounds}")
    print(f"serial   median {s_med * 1000:7.1f} ms  (min {min(serial) * 1000:.1f}, max {max(serial) * 1000:.1f})")
    print(f"fan_out  median {p_med * 1000:7.1f} ms  (min {min(parallel) * 1000:.1f}, max {max(parallel) * 1000:.1f})")
    print(f"ratio serial/fan_out = {s_med / p_med:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
