"""How many log follow streams one web process holds while /healthz and the application list stay fast.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/streams.py [--levels 0,10,50,100,200] [--requests 30] [--apps 200]

Starts a simulator process (`manage.py runsim`, one instance) and ONE web process: docker-compose.yml's `web`
command (gunicorn with uvicorn workers) with `--workers 1`, on a free loopback port, on the database named in
DATABASE_URL (created if missing, migrated; its instances, index and bench users are replaced). The instance is
indexed once so the list page has rows. Streams are opened by bench users holding `view` + `logs` on everything,
four each (the default STREAMS_PER_USER), so N streams belong to N/4 people and every one passes the cap.

For each level N (cumulative: streams stay open from one level to the next) it opens streams until N are open and
each has received a line, lets them follow for a few seconds, then times R sequential GETs of /healthz and of
/applications/ (the full list page, 50 rows, as one of the users) on a keep-alive connection: median and p95. It
also reports, per level, the log lines per second received across all streams, and the worker's threads, RSS and
PostgreSQL connections. The streams are read by an asyncio loop in this process; the timed GETs run on another
thread. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
PER_USER = 4


def ensure_database() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (created if missing) and REDIS_URL")
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sim(apps: int) -> tuple[subprocess.Popen, str, str]:
    cmd = [sys.executable, "manage.py", "runsim", "--port", str(free_port()), "--apps", str(apps), "--projects", "4"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pattern = re.compile(r"^(\S+) (http://\S+)\s+\(portal API key: (\S+)\)")
    while True:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"runsim exited: {proc.wait()}")
        if m := pattern.match(line.strip()):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its log
            return proc, m[2], m[3]


def start_web(port: int) -> subprocess.Popen:
    import yaml

    command = shlex.split(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"])
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[command.index("--workers") + 1] = "1"
    if "--access-logfile" in command:
        i = command.index("--access-logfile")
        del command[i : i + 2]
    env = dict(os.environ, STREAMS_PER_USER=str(PER_USER), LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "gunicorn", *command[1:]], cwd=ROOT, env=env)


def setup(sim_url: str, token: str, users: int) -> tuple[str, str, list[dict[str, str]]]:
    """Instance, index, bench users and their session cookies; returns (instance, app with a pod, cookies)."""
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from apps.access.models import Grant
    from apps.index.indexer import resync
    from apps.instances.models import Instance
    from apps.teams.models import Membership, Team

    call_command("migrate", verbosity=0)
    Instance.objects.all().delete()
    instance = Instance.objects.create(name="bench", url=sim_url, token=token, verify_tls=False)
    with instance.client() as client:
        resync(instance.pk, client, name=instance.name)
        app, pod = "", ""
        for summary in client.list_applications():
            name = summary["metadata"]["name"]
            pods = [n for n in client.get_resource_tree(name)["nodes"] if n["kind"] == "Pod"]
            if pods:
                app, pod = name, pods[0]["name"]
                break
    User.objects.filter(username__startswith="bench-").delete()
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    Grant.objects.filter(team=team).delete()
    Grant.objects.create(team=team, instance_glob="*", project_glob="*", app_glob="*", actions=["view", "logs"])
    cookies = []
    for i in range(users):
        user = User.objects.create_user(f"bench-{i:03d}", password=None)
        Membership.objects.create(team=team, user=user)
        browser = Client()
        browser.force_login(user)
        cookies.append({settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value})
    # Old slots of these user ids (an earlier, interrupted run) would count against the cap.
    from django.core.cache import cache

    cache.delete_many([f"streams:logs:{u.pk}:{i}" for u in User.objects.all() for i in range(PER_USER)])
    path = f"/applications/{instance.name}/{app}/logs/stream/?pod={pod}&tail=1"
    return instance.name, path, cookies


class Streams:
    """Open follow streams, read on an asyncio loop of their own thread; counts lines as they come."""

    def __init__(self, base: str, path: str, cookies: list[dict[str, str]]) -> None:
        self.base, self.path, self.cookies = base, path, cookies
        self.lines = 0
        self.live = 0
        self.ended: list[str] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client = None

    async def _one(self, index: int, started: asyncio.Event) -> None:
        cookies = self.cookies[index // PER_USER]
        try:
            async with self.client.stream("GET", self.base + self.path, cookies=cookies) as response:
                if response.status_code != 200:
                    self.ended.append(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
                    return
                ending = False
                async for line in response.aiter_lines():
                    if ending:  # the data line of an `end` event: why the stream ended
                        self.ended.append(line)
                        break
                    if line.startswith("data:"):
                        self.lines += 1
                        if not started.is_set():
                            self.live += 1
                            started.set()
                    ending = line.startswith("event: end")
        except Exception as exc:  # noqa: BLE001 - reported, not fatal to the bench
            self.ended.append(repr(exc))
        finally:
            started.set()

    async def _open(self, count: int, start: int) -> None:
        import httpx

        if self.client is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
            self.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, connect=10))
        events = []
        for i in range(start, start + count):
            event = asyncio.Event()
            events.append(event)
            self.loop.create_task(self._one(i, event))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout=300)

    def open(self, count: int, start: int) -> float:
        began = time.monotonic()
        asyncio.run_coroutine_threadsafe(self._open(count, start), self.loop).result()
        return time.monotonic() - began


def timed(session, url: str, count: int, cookies: dict[str, str] | None = None) -> tuple[float, float, int]:
    session.get(url, cookies=cookies, timeout=60)  # warm-up
    times, failures = [], 0
    for _ in range(count):
        began = time.perf_counter()
        response = session.get(url, cookies=cookies, timeout=60)
        times.append(time.perf_counter() - began)
        failures += response.status_code != 200
    times.sort()
    return statistics.median(times) * 1000, times[min(len(times) - 1, int(len(times) * 0.95))] * 1000, failures


def worker_stats(master: int) -> tuple[int, int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    threads = int(re.search(r"Threads:\s+(\d+)", status)[1])
    rss = int(re.search(r"VmRSS:\s+(\d+)", status)[1]) // 1024
    return threads, rss


def pg_connections() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="0,10,50,100,200")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds streams follow before timing")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    ensure_database()
    sim, sim_url, token = start_sim(args.apps)
    web = None
    try:
        _, path, cookies = setup(sim_url, token, -(-max(levels) // PER_USER) + 1)
        port = free_port()
        web = start_web(port)
        base = f"http://127.0.0.1:{port}"
        import requests

        session = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:
                if session.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    sys.exit("the web process did not answer /healthz within 60 s")
                time.sleep(0.3)
        page_cookies = cookies[-1]  # a user who holds no stream
        streams = Streams(base, path, cookies[:-1])
        print(f"web: {base} (one uvicorn worker), simulator {sim_url}, {args.requests} requests per figure")
        header = "| open streams | opened in | lines/s | /healthz median / p95 | /applications/ median / p95 |"
        print(header + " worker threads | worker RSS | PG connections |")
        print("| --- " * 8 + "|")
        opened = 0
        for level in levels:
            took = streams.open(level - opened, opened) if level > opened else 0.0
            opened = level
            before, began = streams.lines, time.monotonic()
            time.sleep(args.settle)
            rate = (streams.lines - before) / (time.monotonic() - began)
            h50, h95, hfail = timed(session, f"{base}/healthz", args.requests)
            p50, p95, pfail = timed(session, f"{base}/applications/", args.requests, page_cookies)
            threads, rss = worker_stats(web.pid)
            fails = f" ({hfail}+{pfail} failed)" if hfail or pfail else ""
            print(
                f"| {streams.live} of {level} | {took:.1f} s | {rate:.0f} | {h50:.1f} / {h95:.1f} ms "
                f"| {p50:.1f} / {p95:.1f} ms{fails} | {threads} | {rss} MB | {pg_connections()} |",
                flush=True,
            )
        if streams.ended:
            reasons = {reason: streams.ended.count(reason) for reason in streams.ended}
            print(f"{len(streams.ended)} streams ended early: {reasons}")
    finally:
        if web is not None:
            web.send_signal(signal.SIGINT)  # quick shutdown: a graceful one would wait for the open streams
            try:
                web.wait(timeout=35)
            except subprocess.TimeoutExpired:
                web.kill()
        sim.terminate()
        sim.wait(timeout=10)


if __name__ == "__main__":
    main()
