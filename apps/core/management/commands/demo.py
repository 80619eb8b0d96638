"""`manage.py demo`: simulated Argo CD instances, registered in the portal, a demo OpenID Connect provider, plus
web, worker, beat and indexer processes, all stopped together with Ctrl-C."""

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


DEMO_OIDC_PORT = 8090
OIDC_CLIENT_ID = "argocd-portal"
SSO_USER = "sso-dev"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_sso_users(path: Path) -> str:
    """The demo provider's one user, in the group the demo maps to team payments; returns its random password."""
    from apps.identity.demo import SSO_GROUP

    password = secrets.token_urlsafe(12)
    user = {"password": password, "email": "sso-dev@example.com", "name": "SSO developer", "groups": [SSO_GROUP]}
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a password: readable by its owner only
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({SSO_USER: user}, f)
    return password


def oidc_provider_command(python: str, opts: dict, users_file: Path) -> list[str]:
    """The provider registers the portal as its one client, redirecting back to the demo's web port."""
    return [
        python,
        "manage.py",
        "demo_oidc_provider",
        "--port",
        str(opts["oidc_port"]),
        "--users-file",
        str(users_file),
        "--client-id",
        OIDC_CLIENT_ID,
        "--redirect-uri",
        f"http://127.0.0.1:{opts['port']}/oidc/callback/",
    ]


def oidc_provider_env(client_secret: str) -> dict[str, str]:
    from apps.identity.management.commands.demo_oidc_provider import SECRET_ENV

    return {**os.environ, SECRET_ENV: client_secret}


def portal_oidc_env(opts: dict, client_secret: str) -> dict[str, str]:
    """What the portal's processes need to offer "Sign in with demo SSO" (see OIDC_* in portal/settings.py)."""
    return {
        "OIDC_ISSUER": f"http://127.0.0.1:{opts['oidc_port']}",
        "OIDC_CLIENT_ID": OIDC_CLIENT_ID,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_PROVIDER_NAME": "demo SSO",
    }


def seed_identity() -> str:
    """The group mapping payments-devs → payments and one API token of the member dev (its secret returned)."""
    from apps.identity.demo import create_member_token, seed_sso_mapping

    seed_sso_mapping()
    return create_member_token("dev")


RESTART_BACKOFF_MAX = 30.0


def supervise(
    procs: list[subprocess.Popen],
    commands: dict[int, tuple[str, ...]],
    say,
    *,
    rounds: int | None = None,
    poll: float = 0.5,
) -> None:
    """Restart any child that exits, like a restart policy would: a worker that gave up on a broker outage,
    an indexer that crashed. One that keeps exiting is restarted less and less often (up to every 30 s)."""
    backoff = {i: 0.5 for i in commands}
    due: dict[int, float] = {}
    started = {i: time.monotonic() for i in commands}
    while rounds is None or rounds > 0:
        if rounds is not None:
            rounds -= 1
        now = time.monotonic()
        for i, proc in enumerate(procs):
            if proc.poll() is None or i not in commands:
                continue
            if i not in due:
                lived = now - started[i]
                backoff[i] = 0.5 if lived > 60 else min(backoff[i] * 2, RESTART_BACKOFF_MAX)
                due[i] = now + backoff[i]
                say(f"{' '.join(commands[i][1:4])} exited with {proc.returncode}; restarting in {backoff[i]:.0f} s\n")
            elif now >= due[i]:
                del due[i]
                procs[i] = subprocess.Popen(commands[i], start_new_session=True)
                started[i] = now
        time.sleep(poll)


class Command(BaseCommand):
    help = "Run the whole portal locally with simulated Argo CD instances (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--instances", type=int, default=3)
        parser.add_argument("--apps", type=int, default=60)
        parser.add_argument("--projects", type=int, default=4)
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sim-port", type=int, default=SIM_BASE_PORT, help="first simulator port")
        parser.add_argument("--sync-seconds", type=float, default=8.0)
        parser.add_argument("--oidc-port", type=int, default=DEMO_OIDC_PORT, help="the demo SSO provider; 0: any")

    def handle(self, *args, **opts):
        if not settings.DEBUG:
            raise CommandError("demo is for development only; it refuses to run with DEBUG=0")
        python = sys.executable
        procs: list[subprocess.Popen] = []
        commands: dict[int, tuple[str, ...]] = {}  # index in procs -> the command that started it

        def spawn(*cmd: str, env: dict[str, str] | None = None, supervised: bool = True) -> subprocess.Popen:
            proc = subprocess.Popen(cmd, start_new_session=True, env=env)
            if supervised:
                commands[len(procs)] = cmd
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
            # The simulators stand for Argo CD, which the portal does not run: they are not restarted.
            spawn(*simulator_command(python, opts, key_file), env=simulator_env(), supervised=False)
            opts["oidc_port"] = opts["oidc_port"] or free_port()
            client_secret = secrets.token_urlsafe(24)
            users_file = Path(settings.VAR_DIR) / "demo-sso-users.json"
            sso_password = write_sso_users(users_file)
            spawn(*oidc_provider_command(python, opts, users_file), env=oidc_provider_env(client_secret),
                  supervised=False)  # fmt: skip
            people = register_simulators(
                opts, key_file, admin_password=secrets.token_urlsafe(12), member_password=secrets.token_urlsafe(12)
            )
            api_token = seed_identity()
            # The portal's processes (and the supervisor's restarts of them) inherit the demo's SSO settings.
            os.environ.update(portal_oidc_env(opts, client_secret))
            portal_env = dict(os.environ)
            # Over ASGI, as in production: a followed log stream waits on the event loop, not in a thread.
            spawn(
                python, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1", "--port", str(opts["port"]),
                env=portal_env,
            )  # fmt: skip
            worker = ("-m", "celery", "-A", "portal", "worker", "--pool=threads", "--concurrency=8", "--loglevel=INFO")
            spawn(python, *worker, env=portal_env)
            spawn(python, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO", env=portal_env)
            if "run_indexer" in get_commands():
                spawn(python, "manage.py", "run_indexer", env=portal_env)
            wait_for_port(opts["port"])
            wait_for_port(opts["oidc_port"])
            base = f"http://127.0.0.1:{opts['port']}"
            self.stdout.write(self.style.SUCCESS(f"\nArgo CD Portal is running at {base}/"))
            for username, password, what in people:
                self.stdout.write(f"  log in as {username!r} with password {password!r}  ({what})")
            self.stdout.write(
                f"  Sign in with demo SSO as {SSO_USER!r} / {sso_password!r}  (provider at http://127.0.0.1:"
                f"{opts['oidc_port']}; its group payments-devs joins team payments)"
            )
            self.stdout.write(f"  API token of 'dev' (shown once, not stored): {api_token}")
            self.stdout.write(
                f"    curl -fsS -H 'Authorization: Bearer {api_token}' '{base}/api/applications?project=payments'"
            )
            self.stdout.write("Press Ctrl-C to stop everything.\n")
            supervise(procs, commands, self.stderr.write)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop_all()
