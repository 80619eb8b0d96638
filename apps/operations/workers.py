"""Whether any Celery worker is consuming: a heartbeat key each consuming worker refreshes.

A consumer bootstep runs a small thread while the worker's consumer is connected: Celery stops the step when
the broker connection is lost and starts it again after a reconnect, so the key lapses `ttl` seconds after
the last worker stopped consuming (died, lost Redis, was stopped). The web reads one cache key — cheap enough
for /readyz and for every polled operation card — instead of pinging workers over the broker.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import bootsteps
from django.conf import settings

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "operations:worker-heartbeat"


def interval() -> float:
    return float(getattr(settings, "WORKER_HEARTBEAT_SECONDS", 10))


def ttl() -> float:
    return 3 * interval()


def beat(hostname: str) -> None:
    from django.core.cache import cache

    cache.set(HEARTBEAT_KEY, {"hostname": hostname, "at": time.time()}, timeout=ttl())


def last_seen() -> dict | None:
    """The last heartbeat of any consuming worker within `ttl()` seconds, or None (none, or the cache is away)."""
    from django.core.cache import cache

    try:
        seen = cache.get(HEARTBEAT_KEY)
    except Exception:  # the cache is fail-soft in production; an embedded or odd backend may still raise
        return None
    if not isinstance(seen, dict) or time.time() - float(seen.get("at", 0)) > ttl():
        return None
    return seen


def consuming() -> bool:
    return last_seen() is not None


class Heartbeat(bootsteps.StartStopStep):
    """Consumer step: refresh the heartbeat key while this worker consumes tasks."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self._stopped: threading.Event | None = None

    def start(self, c) -> None:
        self.stop(c)
        self._stopped = threading.Event()
        thread = threading.Thread(target=self._run, args=(c.hostname, self._stopped), name="portal-heartbeat")
        thread.daemon = True
        thread.start()

    def stop(self, c) -> None:
        if self._stopped is not None:
            self._stopped.set()
            self._stopped = None

    shutdown = stop

    @staticmethod
    def _run(hostname: str, stopped: threading.Event) -> None:
        from django.db import connection

        try:
            while not stopped.is_set():
                try:
                    beat(hostname)
                except Exception as exc:  # a cache hiccup: try again at the next beat
                    logger.warning("worker heartbeat not written: %s", exc)
                stopped.wait(interval())
        finally:
            connection.close()  # the database cache (embedded mode) opened one in this thread
