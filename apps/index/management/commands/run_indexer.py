"""`manage.py run_indexer`: keep the application index current from every enabled instance's watch stream."""

from __future__ import annotations

import logging
import signal

from django.core.management.base import BaseCommand

from apps.index.indexer import Indexer, Options


class Command(BaseCommand):
    help = "Index applications of every enabled Argo CD instance (long-running; safe to run several)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--instance", action="append", dest="instances", help="Only these instances (repeat).")
        parser.add_argument("--resync-seconds", type=float, default=600.0, help="Periodic full resync (600).")
        parser.add_argument("--refresh-seconds", type=float, default=10.0, help="Re-read instances every (10).")
        parser.add_argument("--lease-ttl", type=float, default=15.0, help="Per-instance lock lease in seconds (15).")

    def handle(self, *args, **options) -> None:
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")
        indexer = Indexer(
            Options(
                resync_seconds=options["resync_seconds"],
                refresh_seconds=options["refresh_seconds"],
                lease_ttl=options["lease_ttl"],
            ),
            instance_names=options["instances"],
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: indexer.stop())
        self.stdout.write(f"indexer {indexer.options.holder} running; Ctrl-C to stop")
        indexer.run()
        self.stdout.write("indexer stopped")
