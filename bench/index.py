"""Index and list benchmark: 5 simulated instances x 2,000 apps, indexed into PostgreSQL, listed through Django.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/index.py [--instances 5] [--apps 2000] [--rounds 7]

Measures, in one run:
  (a) one direct projected GET /api/v1/applications?fields=... to a single instance (median of rounds)
  (b) the indexer's initial index of every app vs fetching the same five projected lists directly in parallel
  (c) the list page (50 rows) through Django's test Client as a team member with a few grants, for several
      filter/sort combinations (median and p95 of rounds each), full page and HTMX partial; (a') is the same
      GET as (a) interleaved with (c)'s rounds, on a new connection each time and on a keep-alive one
  (d) peak RSS of the web process during (c) — (c) runs in a fresh subprocess so nothing else inflates it
The simulators run in their own process (`manage.py runsim`) so they do not share the benchmark's GIL.
The database named in DATABASE_URL is created if missing and migrated; its instances, index and bench user are
replaced. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
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

COMBOS = [
    ("default (sort by name)", ""),
    ("sort by health, descending", "sort=-health"),
    ("health=Degraded", "health=Degraded"),
    ("sync=OutOfSync, sort by repo", "sync=OutOfSync&sort=repo"),
    ("label selector team=payments,env in (prod,staging)", "selector=team%3Dpayments%2Cenv+in+%28prod%2Cstaging%29"),
    ("free text q=api", "q=api"),
    ("page 10", "page=10"),
]


def ensure_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is created if missing)")
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_sims(count: int, apps: int, port: int) -> tuple[subprocess.Popen, list[tuple[str, str, str]]]:
    keys = Path(tempfile.mkdtemp()) / "keys.json"
    cmd = [sys.executable, "manage.py", "runsim", "--port", str(port), "--instances", str(count)]
    cmd += ["--apps", str(apps), "--projects", "10", "--bootstrap-key-file", str(keys), "--bootstrap-key-ttl", "86400"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True)
    while not keys.exists():
        if proc.poll() is not None:
            sys.exit(f"runsim exited: {proc.returncode}")
        time.sleep(0.2)
    sims = [(name, k["url"], k["token"]) for name, k in json.loads(keys.read_text()).items()]
    return proc, sims


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def bench_direct_and_index(sims, rounds: int) -> dict:
    from django.db import connection

    from apps.argocd import fan_out
    from apps.index import summary
    from apps.index.indexer import Indexer, Options
    from apps.index.models import ApplicationSummary, IndexState
    from apps.instances.models import Instance

    with connection.cursor() as cursor:  # start from empty, unbloated tables (earlier runs deleted 10k rows)
        cursor.execute(f"TRUNCATE {ApplicationSummary._meta.db_table}, {IndexState._meta.db_table}")
    Instance.objects.defer("token", "password").delete()  # rows left by a run with another encryption key too
    instances = [Instance.objects.create(name=f"bench-{i}", url=url, token=token) for i, (_, url, token) in
                 enumerate(sims)]  # fmt: skip
    clients = {i.name: i.client() for i in instances}
    fan_out(clients, lambda c: c.version())  # warm keep-alive connections: time calls, not TCP set-up

    one = clients[instances[0].name]
    single = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        apps = one.list_applications(fields=summary.LIST_FIELDS)
        single.append(time.perf_counter() - t0)
    per_instance = len(apps)
    unprojected = []
    for _ in range(3):
        t0 = time.perf_counter()
        one.list_applications()
        unprojected.append(time.perf_counter() - t0)

    direct = []
    for _ in range(3):
        t0 = time.perf_counter()
        outcomes = fan_out(clients, lambda c: c.list_applications(fields=summary.LIST_FIELDS), deadline=60)
        direct.append(time.perf_counter() - t0)
        assert all(o.ok for o in outcomes.values()), outcomes
    for c in clients.values():
        c.close()

    total = per_instance * len(instances)
    resyncs: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            resyncs.append(record.getMessage())

    logger = logging.getLogger("apps.index.indexer")
    logger.setLevel(logging.INFO)
    logger.addHandler(Capture(logging.INFO))
    indexer = Indexer(Options(holder="bench", refresh_seconds=3600))
    t0 = time.perf_counter()
    thread = threading.Thread(target=indexer.run, daemon=True)
    thread.start()
    while True:
        done = IndexState.objects.filter(instance__in=instances, last_resync_at__isnull=False).count()
        if done == len(instances):
            break
        time.sleep(0.01)
    index_time = time.perf_counter() - t0
    indexed = ApplicationSummary.objects.count()
    with connection.cursor() as cursor:  # what autovacuum does soon after a bulk load: fresh planner statistics
        cursor.execute(f"VACUUM ANALYZE {ApplicationSummary._meta.db_table}")

    # Live changes while watching: how long until a drifted app shows OutOfSync in the index.
    indexer.stop()
    thread.join(timeout=30)
    return {
        "per_instance": per_instance,
        "total": total,
        "indexed": indexed,
        "single_projected": statistics.median(single),
        "single_projected_min": min(single),
        "single_unprojected": statistics.median(unprojected),
        "direct_five": statistics.median(direct),
        "index": index_time,
        "resyncs": resyncs,
    }


def make_member():
    from django.contrib.auth import get_user_model

    from apps.access.models import Grant
    from apps.teams.models import Membership, Team

    User = get_user_model()
    User.objects.filter(username="bench-member").delete()
    Team.objects.filter(slug="bench-payments").delete()
    user = User.objects.create_user("bench-member", password="bench-password-123")
    team = Team.objects.create(name="Bench payments", slug="bench-payments")
    Membership.objects.create(team=team, user=user)
    Grant.objects.create(team=team, instance_glob="bench-*", project_glob="payments", app_glob="*", actions=["sync"])
    Grant.objects.create(team=team, instance_glob="bench-1", project_glob="*", app_glob="*search*", actions=["view"])
    Grant.objects.create(team=team, instance_glob="*", project_glob="checkout", app_glob="*-prod", actions=["view"])
    return user


def web() -> None:
    """(c) and (d) in a fresh process: on each "round" line from stdin, request every combination once through
    the test Client and print the timings as JSON; on "done", print the peak RSS and exit."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.DEBUG = False  # as in production: no query log
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-member"))
    for line in sys.stdin:
        if line.strip() == "done":
            break
        timings = {}
        for label, query in COMBOS:
            for htmx in (False, True):
                t0 = time.perf_counter()
                response = client.get(f"/applications/?{query}", headers={"HX-Request": "true"} if htmx else {})
                timings[f"{label}|{'htmx' if htmx else 'full'}"] = time.perf_counter() - t0
                assert response.status_code == 200 and response.content.count(b'name="app"') == 50, label
        print(json.dumps(timings), flush=True)
    # ru_maxrss survives fork+exec on Linux (the child starts with the parent's high-water mark), so the
    # process's own peak (VmHWM) is reported beside it.
    hwm = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": int(hwm[1]) / 1024 if hwm else maxrss, "ru_maxrss_mb": maxrss}), flush=True)


def _json_line(stream) -> dict:
    """The next line that is a JSON object (skipping any log line the child prints to stdout)."""
    for line in stream:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("the web process exited")


def interleaved(rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]], dict]:
    """Alternate direct projected GETs (a') with one round of page requests (c), so both see the same load.

    Each round times the direct GET twice: as a client meets it, a new request on a new connection (a fresh
    client, built outside the timer: TCP connect, request, the whole JSON body, decoding), and on a warm
    keep-alive connection (connection set-up excluded, the lower figure). Each page request is a new request
    too (the test Client keeps no connection; session and user are loaded from the database every time)."""
    from apps.argocd import ArgoCDClient
    from apps.index import summary
    from apps.instances.models import Instance

    child = subprocess.Popen([sys.executable, __file__, "--web-only"], cwd=ROOT, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    instance = Instance.objects.get(name="bench-0")
    token = instance.token
    warm = instance.client()
    direct: dict[str, list[float]] = {"new connection": [], "keep-alive": []}
    pages: dict[str, list[float]] = {}
    for i in range(rounds + 2):
        fresh = ArgoCDClient(instance.url, token=token, name=instance.name)
        t0 = time.perf_counter()
        fresh.list_applications(fields=summary.LIST_FIELDS)
        new_connection = time.perf_counter() - t0
        fresh.close()
        t0 = time.perf_counter()
        warm.list_applications(fields=summary.LIST_FIELDS)
        keep_alive = time.perf_counter() - t0
        child.stdin.write("round\n")
        child.stdin.flush()
        timings = _json_line(child.stdout)
        if i < 2:
            continue  # warm-up
        direct["new connection"].append(new_connection)
        direct["keep-alive"].append(keep_alive)
        for key, value in timings.items():
            pages.setdefault(key, []).append(value)
    child.stdin.write("done\n")
    child.stdin.flush()
    rss = _json_line(child.stdout)
    child.wait(timeout=30)
    warm.close()
    return direct, pages, rss


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=5)
    ap.add_argument("--apps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--port", type=int, default=18481)
    ap.add_argument("--web-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.web_only:
        import django

        django.setup()
        web()
        return 0

    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not settings.REDIS_URL:
        call_command("createcachetable", verbosity=0)

    sim_proc, sims = start_sims(args.instances, args.apps, args.port)
    try:
        r = bench_direct_and_index(sims, args.rounds)
        make_member()
        direct, pages, rss = interleaved(max(args.rounds, 15))
    finally:
        sim_proc.terminate()
        sim_proc.wait(timeout=30)
    load = os.getloadavg()

    print(f"instances={args.instances} apps/instance={r['per_instance']} indexed={r['indexed']}/{r['total']}")
    print(f"(a) one projected list of {r['per_instance']} apps: median {ms(r['single_projected'])} "
          f"(min {ms(r['single_projected_min'])}; unprojected {ms(r['single_unprojected'])})")  # fmt: skip
    ratio_b = r["index"] / r["direct_five"]
    print(f"(b) initial index of {r['total']} apps: {ms(r['index'])}; five projected lists fetched in parallel: "
          f"{ms(r['direct_five'])} -> {ratio_b:.2f}x (target <= 2x)")  # fmt: skip
    for line in r["resyncs"]:
        print(f"    {line}")
    a = statistics.median(direct["new connection"])
    a_warm = statistics.median(direct["keep-alive"])
    print(f"(a') the same GET, interleaved with the page rounds below: median {ms(a)} on a new connection "
          f"(p95 {ms(p95(direct['new connection']))}), {ms(a_warm)} on a warm keep-alive connection "
          f"(p95 {ms(p95(direct['keep-alive']))})")  # fmt: skip
    print("(c) list page as a team member with 3 grants (median of rounds; interleaved with (a')):")
    medians = {key: statistics.median(values) for key, values in pages.items()}
    for key, value in medians.items():
        label, kind = key.split("|")
        print(f"    {label:<55} {kind}  {ms(value):>9}  (p95 {ms(p95(pages[key]))}, min {ms(min(pages[key]))})")
    page_median = statistics.median(medians.values())
    page_p95 = max(p95(values) for values in pages.values())
    speedup = a / page_median
    print(f"    overall median {ms(page_median)}, worst p95 {ms(page_p95)} (target < 100 ms); {speedup:.1f}x faster "
          f"than (a') on a new connection (target >= 5x), {a_warm / page_median:.1f}x than keep-alive")  # fmt: skip
    print(f"(d) peak RSS of the web process during (c): {rss['peak_rss_mb']:.0f} MB (target < 300 MB; getrusage "
          f"ru_maxrss {rss['ru_maxrss_mb']:.0f} MB includes the parent's peak inherited at fork)")  # fmt: skip
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    ok = ratio_b <= 2 and page_median < 0.1 and speedup >= 5 and rss["peak_rss_mb"] < 300
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
