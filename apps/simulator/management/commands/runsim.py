"""`python manage.py runsim`: serve one or more simulated Argo CD instances until Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from apps.simulator.server import SimServer

NAMES = ["argocd-east", "argocd-west", "argocd-central", "argocd-north", "argocd-south"]


def instance_name(i: int, count: int) -> str:
    """The name of the i-th of `count` simulated instances (the demo registers them under it)."""
    return NAMES[i] if count > 1 and i < len(NAMES) else f"sim-{i + 1}"


def write_bootstrap_keys(path: Path, servers: list[SimServer], ttl: int) -> None:
    """One expiring `portal` API key per server, in a file only its owner can read, written whole or not at all."""
    keys = {}
    for server in servers:
        token_id = f"bootstrap-{uuid.uuid4().hex[:12]}"
        keys[server.name] = {"url": server.url, "id": token_id, "token": server.portal_token(ttl, token_id)}
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(keys, fh)
    os.replace(partial, path)


class Command(BaseCommand):
    help = "Run simulated Argo CD API servers (for the demo, benchmarks and manual testing)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8081, help="first port; instance i listens on port+i")
        parser.add_argument("--instances", type=int, default=1)
        parser.add_argument("--apps", type=int, default=50)
        parser.add_argument("--projects", type=int, default=4)
        parser.add_argument("--seed", type=int, default=1, help="instance i uses seed+i so data differs")
        parser.add_argument("--latency-ms", type=float, default=0.0)
        parser.add_argument("--jitter-ms", type=float, default=0.0)
        parser.add_argument("--fail-rate", type=float, default=0.0)
        parser.add_argument("--sync-seconds", type=float, default=3.0)
        # Environment variables let a caller (the demo) set the passwords without putting them on a command line.
        parser.add_argument("--admin-password", default=os.environ.get("RUNSIM_ADMIN_PASSWORD", "password"))
        parser.add_argument("--portal-password", default=os.environ.get("RUNSIM_PORTAL_PASSWORD", "portal-password"))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--bootstrap-key-file",
            help="write one expiring API key of the `portal` account per instance to this file (mode 0600, JSON "
            "{name: {url, token, id}}) for registering the instances; keys are never printed",
        )
        parser.add_argument("--bootstrap-key-ttl", type=int, default=900, help="seconds the bootstrap keys live")
        parser.add_argument(
            "--secret-dir",
            help="keep each instance's signing key (server.secretkey) and account API-key list in DIR/<name>.json "
            "(mode 0600), as Argo CD keeps them in argocd-secret, so a restarted simulator accepts the tokens "
            "it issued before; without it every start signs with a new random key",
        )

        parser.add_argument(
            "--app-namespaces",
            default="",
            help="comma-separated `application.namespaces` (globs, or /regex/): where Applications may live "
            "besides the control plane's namespace `argocd`",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        servers = []
        for i in range(opts["instances"]):
            name = instance_name(i, opts["instances"])
            server = SimServer(
                port=opts["port"] + i,
                name=name,
                apps=opts["apps"],
                projects=opts["projects"],
                seed=opts["seed"] + i,
                latency_ms=opts["latency_ms"],
                jitter_ms=opts["jitter_ms"],
                fail_rate=opts["fail_rate"],
                sync_seconds=opts["sync_seconds"],
                admin_password=opts["admin_password"],
                portal_password=opts["portal_password"],
                host=opts["host"],
                secret_file=Path(opts["secret_dir"]) / f"{name}.json" if opts["secret_dir"] else None,
                app_namespaces=tuple(n.strip() for n in opts["app_namespaces"].split(",") if n.strip()),
            ).start()
            servers.append(server)
            self.stdout.write(f"{server.name} {server.url}")
        if opts["bootstrap_key_file"]:
            path, ttl = Path(opts["bootstrap_key_file"]), opts["bootstrap_key_ttl"]
            write_bootstrap_keys(path, servers, ttl)
            self.stdout.write(f"bootstrap API keys (valid {ttl} s) written to {path}")
        self.stdout.flush()
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for server in servers:
                server.stop()
            self.stdout.write("simulators stopped")
