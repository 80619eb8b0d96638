"""Log follow over the production web server: open streams hold no request thread, health and pages keep
answering, each person's streams are capped across processes, and a closed stream gives its slot back.

The server is docker-compose.yml's `web` command, bound to a free loopback port, on the test database and Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent

from .conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
CAP = 7  # two people at the cap hold 14 streams: more than the 12 request threads of the old web server
APP = "payments-api-dev"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_command(port: int) -> list[str]:
    command = shlex.split(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["web"]["command"])
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    assert command[0] == "gunicorn"
    return [sys.executable, "-m", "gunicorn", *command[1:]]


@pytest.fixture
def web(transactional_db, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("the stream cap is counted in Redis across web processes (make test sets REDIS_URL)")
    db = connection.settings_dict
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        STREAMS_PER_USER=str(CAP),
        LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen(web_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        return False

    wait_for(up, timeout=60, interval=0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    print((tmp_path / "web.log").read_text()[-6000:])  # shown when the test failed


def session_of(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


class EventStream:
    """One open server-sent events response, read a frame at a time.

    It keeps its line iterator: dropping a half-read one makes urllib3 close the connection, which the server
    rightly takes for a browser that went away.
    """

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.lines = response.iter_lines(decode_unicode=True)

    def frames(self, want: int) -> list[str]:
        """Frames until `want` data frames or an `end` event arrived (or the stream ended)."""
        frames: list[str] = []
        buffer: list[str] = []
        for line in self.lines:
            if line:
                buffer.append(line)
                continue
            frames.append("\n".join(buffer))
            buffer = []
            if frames[-1].startswith("event: end") or sum(f.startswith("data:") for f in frames) >= want:
                break
        return frames

    def close(self) -> None:
        self.response.close()


def follow(base: str, cookies: dict[str, str], pod: str) -> tuple[EventStream, list[str]]:
    url = base + reverse("applications:log_stream", args=["sim-test", APP]) + f"?pod={pod}&tail=1"
    # The read timeout bounds how long a stream may wait for the server at all; 20 s is generous on a busy box.
    response = requests.get(url, cookies=cookies, stream=True, timeout=(5, 20))
    assert response.status_code == 200
    stream = EventStream(response)
    return stream, stream.frames(2)


def test_open_log_streams_leave_health_and_pages_answering_and_are_capped_per_person(
    web, instance, argocd, grant, alice, bob
):
    pod = next(n for n in argocd.get_resource_tree(APP)["nodes"] if n["kind"] == "Pod")["name"]
    for person in (alice, bob):
        grant(person, ["view", "logs"], project="payments")
        cache.delete_many([f"streams:logs:{person.pk}:{i}" for i in range(CAP + 1)])
    cookies = {person.username: session_of(person) for person in (alice, bob)}
    open_streams: list[EventStream] = []
    try:
        for person in ("alice", "bob"):
            for _ in range(CAP):
                stream, frames = follow(web, cookies[person], pod)
                open_streams.append(stream)
                # The tail line, then a line followed live: each stream really is open and flowing.
                assert sum(f.startswith("data:") for f in frames) == 2, frames
                assert pod in frames[-1]

        # 14 streams are open; the probes and an ordinary page still answer, within a generous bound.
        assert requests.get(f"{web}/healthz", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{web}/readyz?skip=workers", timeout=5).status_code == 200  # no worker here
        page = requests.get(web + reverse("index:list"), cookies=cookies["alice"], timeout=5)
        assert page.status_code == 200 and "<html" in page.text
        static = requests.get(f"{web}/static/portal/portal.css", timeout=5)
        assert static.status_code == 200
        assert static.content == (ROOT / "static/portal/portal.css").read_bytes()

        # Alice's next stream is over her cap: refused with a message the page shows, and audited.
        refused, frames = follow(web, cookies["alice"], pod)
        assert frames and frames[0].startswith("event: end"), frames
        assert f"already following {CAP} log streams" in frames[0]
        refused.close()
        event = AuditEvent.objects.get(action="logs", outcome="denied")
        assert (event.actor, event.name) == ("alice", APP)
        assert "over the limit" in event.error

        # The audit export streams from its cursor under ASGI too (no buffering of the whole export first).
        export = requests.get(web + reverse("audit:export_jsonl"), cookies=cookies["alice"], timeout=10)
        assert export.status_code == 200
        rows = [json.loads(line) for line in export.text.splitlines()]
        assert {"action": "logs", "outcome": "denied"}.items() <= rows[0].items()

        # The streams are still flowing while all this happened.
        assert all(len(s.frames(1)) >= 1 for s in open_streams)

        # Closing one of her streams gives its slot back (the server notices the browser went away).
        open_streams.pop(0).close()

        def reopened() -> bool:
            stream, frames = follow(web, cookies["alice"], pod)
            if any(f.startswith("data:") for f in frames):
                open_streams.append(stream)
                return True
            stream.close()
            return False

        wait_for(reopened, timeout=20, interval=0.5)
    finally:
        for stream in open_streams:
            stream.close()


@pytest.mark.browser
def test_a_browser_follows_logs_live_and_is_told_when_over_the_cap(web, instance, argocd, grant, alice, bob):
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("headless Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    pod = next(n for n in argocd.get_resource_tree(APP)["nodes"] if n["kind"] == "Pod")["name"]
    for person in (alice, bob):
        grant(person, ["view", "logs"], project="payments")
        cache.delete_many([f"streams:logs:{person.pk}:{i}" for i in range(CAP + 1)])
    cookies = {person.username: session_of(person) for person in (alice, bob)}
    held = [follow(web, cookies["alice"], pod)[0] for _ in range(CAP)]  # alice is at her cap elsewhere
    tab = web + reverse("applications:detail", args=["sim-test", APP]) + f"?tab=logs&pod={pod}&tail=1&follow=1"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            try:
                # The simulator's log lines all read `… msg="handled request" …`.
                for person, expected in (("bob", "handled request"), ("alice", f"already following {CAP} log streams")):
                    context = chromium.new_context()
                    context.add_cookies([{"name": k, "value": v, "url": web} for k, v in cookies[person].items()])
                    page = context.new_page()
                    page.goto(tab)
                    # Bob sees lines arrive; alice sees why none will.
                    expect(page.locator("#logs-live")).to_contain_text(expected, timeout=20_000)
                    context.close()
            finally:
                chromium.close()
    finally:
        for stream in held:
            stream.close()


def test_one_stream_follows_several_pods_and_names_each_line(web, instance, argocd, admin_user):
    pods = [n["name"] for n in argocd.get_resource_tree(APP)["nodes"] if n["kind"] == "Pod"][:2]
    cache.delete_many([f"streams:logs:{admin_user.pk}:{i}" for i in range(CAP + 1)])
    url = web + reverse("applications:log_stream", args=["sim-test", APP]) + f"?pod={pods[0]}&pod={pods[1]}&tail=2"
    response = requests.get(url, cookies=session_of(admin_user), stream=True, timeout=(5, 20))
    assert response.status_code == 200
    stream = EventStream(response)
    try:
        lines = [json.loads(f.split("data: ", 1)[1]) for f in stream.frames(6) if f.startswith("data:")]
    finally:
        stream.close()
    assert len(lines) == 6 and {line["src"] for line in lines} == set(pods)
    assert all(line["ts"].startswith("20") and "handled request" in line["content"] for line in lines)
