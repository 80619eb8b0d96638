"""`manage.py demo`: simulated Argo CD instances, registered in the portal, plus web, worker, beat
and indexer processes, all stopped together with Ctrl-C."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError

SIM_BASE_PORT = 8081
# The simulators hand the demo one API key per instance through a file; it only has to outlive the registration.
BOOTSTRAP_KEY_TTL = 600


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise CommandError(f"nothing answered on port {port} within {timeout:.0f} s")


def read_bootstrap_keys(path: Path, timeout: float = 30) -> dict[str, dict[str, str]]:
    """The simulators' bootstrap keys ({name: {url, id, token}}); the file is removed once read."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise CommandError(f"the simulators wrote no bootstrap keys to {path} within {timeout:.0f} s")
        time.sleep(0.2)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    finally:
        path.unlink()


def simulator_command(python: str, opts: dict, key_file: Path) -> list[str]:
    return [
        python,
        "manage.py",
        "runsim",
        "--port",
        str(opts["sim_port"]),
        "--instances",
        str(opts["instances"]),
        "--apps",
        str(opts["apps"]),
        "--projects",
        str(opts["projects"]),
        "--sync-seconds",
        str(opts["sync_seconds"]),
        "--bootstrap-key-file",
        str(key_file),
        "--bootstrap-key-ttl",
        str(BOOTSTRAP_KEY_TTL),
        # Restarted simulators keep accepting the API keys the portal holds (Argo CD keeps them in argocd-secret).
        "--secret-dir",
        str(Path(settings.VAR_DIR) / "demo-simulators"),
    ]


def simulator_env() -> dict[str, str]:
    """Random passwords for the simulated accounts: nothing but the bootstrap keys lets anyone in, and those are
    deleted once the portal holds its own key."""
    return {
        **os.environ,
        "RUNSIM_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "RUNSIM_PORTAL_PASSWORD": secrets.token_urlsafe(16),
    }


def register_simulators(opts: dict, key_file: Path, admin_password: str, member_password: str) -> list[tuple]:
    """Wait for the simulators, register each with its bootstrap key, swap that for the portal's own key."""
    from apps.core.demo_data import seed_demo

    for i in range(opts["instances"]):
        wait_for_port(opts["sim_port"] + i)
    keys = read_bootstrap_keys(key_file)
    return seed_demo(
        [(name, key["url"], key["token"]) for name, key in keys.items()],
        admin_password=admin_password,
        member_password=member_password,
    )


class Command(BaseCommand):
    help = "Run the whole portal locally with simulated Argo CD instances (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--instances", type=int, default=3)
        parser.add_argument("--apps", type=int, default=60)
        parser.add_argument("--projects", type=int, default=4)
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sim-port", type=int, default=SIM_BASE_PORT, help="first simulator port")
        parser.add_argument("--sync-seconds", type=float, default=8.0)

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("demo is for development only; it refuses to run with DEBUG=0")
        python = sys.executable
        procs: list[subprocess.Popen] = []

        def spawn(*cmd: str, env: dict[str, str] | None = None) -> subprocess.Popen:
            proc = subprocess.Popen(cmd, start_new_session=True, env=env)
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
            key_file = Path(settings.VAR_DIR) / "demo-bootstrap-keys.json"
            key_file.unlink(missing_ok=True)
            spawn(*simulator_command(python, opts, key_file), env=simulator_env())
            people = register_simulators(
                opts, key_file, admin_password=secrets.token_urlsafe(12), member_password=secrets.token_urlsafe(12)
            )
            spawn(python, "manage.py", "runserver", f"127.0.0.1:{opts['port']}", "--noreload")
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
