"""List cost against fleet size: the application list at 1k, 10k, 50k and 100k indexed apps, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_listscale REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/listscale.py [--sizes 1000,10000,50000,100000] [--rounds 30]

The database in DATABASE_URL is created if missing and migrated; it gets 10 instances, a member (`bench-member`)
whose team holds one grant, view on `*`/`*`/`*`, and the member's session. For every size a copy of it is made
(`<name>_<size>`, CREATE DATABASE … TEMPLATE) and filled with that many apps spread over the 10 instances by COPY
(the counts tables' triggers run as they would for the indexer), then ANALYZEd. One gunicorn process per size
(docker-compose.yml's web command, one worker) serves its copy over HTTP on loopback; the benchmark asks every
size for the same page in turn, round after round, so each size sees the same machine load. Reported per page:
the median and p95 over the rounds of the full page as the member's browser gets it, the rows and total shown,
and the ratio of each size's median to the smallest size's. The copies are dropped at the end (--keep keeps them).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shlex
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

INSTANCES = 10
TEAMS = [f"team-{i:02d}" for i in range(20)]
COMPONENTS = ["api", "web", "worker", "db", "cache", "search", "gateway", "auth", "billing", "ledger", "notify", "jobs"]
ENVS = ["dev", "staging", "prod", "qa"]
PAGES = [
    ("default (sort by name)", "/applications/"),
    ("sort by health, descending", "/applications/?sort=-health"),
    ("health=Degraded", "/applications/?health=Degraded"),
    ("sync=OutOfSync", "/applications/?sync=OutOfSync"),
    ("free text q=api", "/applications/?q=api"),
    ("next page (cursor)", None),  # the default page's rel="next" link, read at each size
    ("facets: cluster + label selected", "/applications/?cluster=prod-east&label=team%3Dteam-03"),
    ("summary view", "/applications/?view=summary"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def urls(size: int | None = None) -> tuple[str, str, str]:
    """(database url, database name, url of the `postgres` maintenance database) of the base or a size's copy."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = parts.path.lstrip("/") + (f"_{size}" if size else "")
    return parts._replace(path=f"/{name}").geturl(), name, parts._replace(path="/postgres").geturl()


def setup_base() -> tuple[list[int], str]:
    """Migrate the base database, replace its instances and bench member; returns (instance ids, session key)."""
    import psycopg

    url, name, admin = urls()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from apps.access.models import Grant
    from apps.instances.models import Instance
    from apps.teams.models import Membership, Team

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE index_applicationsummary")
    Instance.objects.defer("token", "password").delete()
    ids = [
        Instance.objects.create(name=f"bench-{i}", url=f"https://argocd-{i}.example.test", token="x").pk
        for i in range(INSTANCES)
    ]
    User.objects.filter(username="bench-member").delete()
    user = User.objects.create_user("bench-member", password=None)
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    Grant.objects.filter(team=team).delete()
    Grant.objects.create(team=team, instance_glob="*", project_glob="*", app_glob="*", actions=["view"])
    Membership.objects.create(team=team, user=user)
    browser = Client()
    browser.force_login(user)
    connection.close()
    return ids, browser.cookies[settings.SESSION_COOKIE_NAME].value


def app_rows(size: int, ids: list[int], rng: random.Random):
    """`size` apps as COPY rows: 20 teams (= projects), 12 components, 4 environments, 8 clusters, the health and
    sync mix of the simulator's seed, auto-sync on 30 %."""
    now = "2026-12-07 12:00:00+00"
    for i in range(size):
        team, comp, env = TEAMS[(i // 4) % 20], COMPONENTS[(i // 80) % 12], ENVS[i % 4]
        roll = rng.random()
        sync, health = (
            ("Synced", "Healthy") if roll < 0.64 else
            ("OutOfSync", "Healthy") if roll < 0.78 else
            ("Synced", "Progressing") if roll < 0.87 else
            ("OutOfSync", "Degraded") if roll < 0.95 else
            ("OutOfSync", "Missing")
        )  # fmt: skip
        cluster = f"{env}-{'east' if rng.random() < 0.5 else 'west'}"
        labels = f'{{"team": "{team}", "env": "{env}", "component": "{comp}", "app.kubernetes.io/part-of": "{team}"}}'
        yield (
            ids[i % len(ids)],
            "argocd",
            f"{team}-{comp}-{env}-{i:06d}",
            team,
            labels,
            f"https://git.example.test/{team}/{comp}.git",
            f"apps/{comp}/overlays/{env}",
            f"{rng.getrandbits(160):040x}",
            "",
            cluster,
            f"{team}-{env}",
            sync,
            health,
            "Succeeded",
            "t" if rng.random() < 0.3 else "f",
            cluster,
            now,
            "",
            now,
        )


COLUMNS = (
    "instance_id, namespace, name, project, labels, repo, path, revision, dest_server, dest_name, dest_namespace, "
    "sync_status, health_status, operation_phase, auto_sync, cluster, last_synced_at, resource_version, seen_at"
)


def make_copy(size: int, ids: list[int]) -> float:
    """Create `<base>_<size>` from the base and fill it; returns the seconds the COPY (with its triggers) took."""
    import psycopg

    url, name, admin = urls(size)
    base = urls()[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base}"')
    rng = random.Random(size)
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY index_applicationsummary ({COLUMNS}) FROM STDIN") as copy:
            for row in app_rows(size, ids, rng):
                copy.write_row(row)
        conn.commit()
        took = time.perf_counter() - t0
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE index_applicationsummary")
        conn.execute("VACUUM ANALYZE index_appcount")
        conn.execute("VACUUM ANALYZE index_appfacetcount")
    return took


def start_web(size: int, port: int) -> subprocess.Popen:
    import yaml

    command = shlex.split(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"])
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[command.index("--workers") + 1] = "1"
    if "--access-logfile" in command:
        i = command.index("--access-logfile")
        del command[i : i + 2]
    # DEBUG as the dev setup has it (DEBUG=0 wants collected static files and TLS); the same for every size.
    env = dict(os.environ, DATABASE_URL=urls(size)[0], LOG_LEVEL="WARNING", DB_POOL_SIZE="2")  # a shared server
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *command[1:]], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )


def shown(body: str) -> tuple[int, str]:
    rows = len(re.findall(r'name="app" value="', body))
    total = re.search(r'aria-label="Counts">\s*<strong>([^<]+)</strong>', body)
    return rows, (total[1].strip() if total else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000,100000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the per-size databases")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is created if missing)")
    import requests

    ids, session_key = setup_base()
    for size in sizes:
        took = make_copy(size, ids)
        print(f"{size:>7} apps loaded by COPY in {took:.1f} s (counts tables kept by the triggers meanwhile)")
    servers = {size: (free_port(), None) for size in sizes}
    procs = {size: start_web(size, port) for size, (port, _) in servers.items()}
    try:
        sessions = {}
        from django.conf import settings

        for size, (port, _) in servers.items():
            session = requests.Session()
            session.cookies.set(settings.SESSION_COOKIE_NAME, session_key)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if session.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    sys.exit(f"the web process for {size} did not start")
                time.sleep(0.3)
            sessions[size] = session
        pages: dict[str, dict[int, str]] = {}
        for label, path in PAGES:
            pages[label] = {}
            for size, (port, _) in servers.items():
                if path is None:
                    body = sessions[size].get(f"http://127.0.0.1:{port}/applications/", timeout=30).text
                    found = re.search(r'href="([^"]+)" rel="next"', body)
                    pages[label][size] = found[1].replace("&amp;", "&") if found else "/applications/?page=2"
                else:
                    pages[label][size] = path
        times: dict[str, dict[int, list[float]]] = {label: {s: [] for s in sizes} for label, _ in PAGES}
        what: dict[str, dict[int, tuple[int, str]]] = {label: {} for label, _ in PAGES}
        for round_ in range(args.rounds + 3):  # 3 warm-up rounds
            for label, _ in PAGES:
                for size, (port, _) in servers.items():
                    url = f"http://127.0.0.1:{port}{pages[label][size]}"
                    t0 = time.perf_counter()
                    try:
                        response = sessions[size].get(url, timeout=30)
                    except requests.ConnectionError:  # the server closed an idle keep-alive connection: again
                        t0 = time.perf_counter()
                        response = sessions[size].get(url, timeout=30)
                    elapsed = time.perf_counter() - t0
                    if response.status_code != 200:
                        sys.exit(f"{url}: {response.status_code}")
                    if round_ >= 3:
                        times[label][size].append(elapsed)
                    what[label][size] = shown(response.text)
        load = os.getloadavg()
        print(
            f"\nmedian / p95 in ms over {args.rounds} rounds (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})"
        )
        head = " | ".join(f"{s // 1000}k" for s in sizes)
        print(f"| page | {head} | {sizes[-1] // 1000}k / {sizes[0] // 1000}k | shown at {sizes[-1] // 1000}k |")
        print("| --- " * (len(sizes) + 3) + "|")
        for label, _ in PAGES:
            cells = []
            for size in sizes:
                values = sorted(times[label][size])
                p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
                cells.append(f"{statistics.median(values) * 1000:.1f} / {p95 * 1000:.1f}")
            ratio = statistics.median(times[label][sizes[-1]]) / statistics.median(times[label][sizes[0]])
            rows, total = what[label][sizes[-1]]
            print(f"| {label} | {' | '.join(cells)} | {ratio:.2f}× | {rows} rows, {total} |")
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)
        if not args.keep:
            import psycopg

            with psycopg.connect(urls()[2], autocommit=True) as conn:
                for size in sizes:
                    conn.execute(f'DROP DATABASE IF EXISTS "{urls(size)[1]}"')


if __name__ == "__main__":
    main()
