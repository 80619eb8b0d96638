"""`manage.py demo`: simulated Argo CD instances, registered in the portal, plus web, worker, beat
and indexer processes, all stopped together with Ctrl-C."""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError

SIM_BASE_PORT = 8081


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise CommandError(f"nothing answered on port {port} within {timeout:.0f} s")


class Command(BaseCommand):
    help = "Run the whole portal locally with simulated Argo CD instances (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--instances", type=int, default=3)
        parser.add_argument("--apps", type=int, default=60)
        parser.add_argument("--projects", type=int, default=4)
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sync-seconds", type=float, default=8.0)

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("demo is for development only; it refuses to run with DEBUG=0")
        python = sys.executable
        procs: list[subprocess.Popen] = []

        def spawn(*cmd: str) -> subprocess.Popen:
            proc = subprocess.Popen(cmd, start_new_session=True)
            procs.append(proc)
            return proc

        def stop_all(*_):
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

        # Ctrl-C must stop everything even when started from a shell that ignores SIGINT in background jobs.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
        try:
            spawn(
                python,
                "manage.py",
                "runsim",
                "--port",
                str(SIM_BASE_PORT),
                "--instances",
                str(opts["instances"]),
                "--apps",
                str(opts["apps"]),
                "--projects",
                str(opts["projects"]),
                "--sync-seconds",
                str(opts["sync_seconds"]),
            )
            for i in range(opts["instances"]):
                wait_for_port(SIM_BASE_PORT + i)
            from apps.core.demo_data import seed_demo
            from apps.simulator.management.commands.runsim import instance_name

            people = seed_demo(
                [
                    (instance_name(i, opts["instances"]), f"http://127.0.0.1:{SIM_BASE_PORT + i}")
                    for i in range(opts["instances"])
                ],
                admin_password=secrets.token_urlsafe(12),
                member_password=secrets.token_urlsafe(12),
            )
            # Over ASGI, as in production: a followed log stream waits on the event loop, not in a thread.
            spawn(
                python, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(opts["port"])
            )
            spawn(
                python, "-m", "celery", "-A", "portal", "worker", "--pool=threads", "--concurrency=8", "--loglevel=INFO"
            )
            spawn(python, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO")
            if "run_indexer" in get_commands():
                spawn(python, "manage.py", "run_indexer")
            wait_for_port(opts["port"])
            self.stdout.write(self.style.SUCCESS(f"\nArgo CD Portal is running at http://127.0.0.1:{opts['port']}/"))
            for username, password, what in people:
                self.stdout.write(f"  log in as {username!r} with password {password!r}  ({what})")
            self.stdout.write("Press Ctrl-C to stop everything.\n")
            while all(proc.poll() is None for proc in procs):
                time.sleep(0.5)
            raise CommandError("a demo process exited; stopping the rest")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop_all()
