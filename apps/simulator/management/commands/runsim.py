"""`python manage.py runsim`: serve one or more simulated Argo CD instances until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from apps.simulator.server import SimServer

NAMES = ["argocd-east", "argocd-west", "argocd-central", "argocd-north", "argocd-south"]


def instance_name(i: int, count: int) -> str:
    """The name of the i-th of `count` simulated instances (the demo registers them under it)."""
    return NAMES[i] if count > 1 and i < len(NAMES) else f"sim-{i + 1}"


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
        parser.add_argument("--admin-password", default="password")
        parser.add_argument("--portal-password", default="portal-password")
        parser.add_argument("--host", default="127.0.0.1")

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
            ).start()
            servers.append(server)
            self.stdout.write(f"{server.name} {server.url}  (portal API key: {server.portal_token()})")
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
