"""One holder per instance across every running indexer: a lease in Redis (or the Django cache without Redis).

The holder renews the lease from a small thread; if a renewal finds the lease gone or taken, `lost` is set and
the watcher stops. A holder that dies simply stops renewing, and another indexer acquires the lease once it
expires. Release only deletes the key if it still holds our token, so a slow holder cannot free a successor's.
"""

from __future__ import annotations

import logging
import threading
import uuid

import redis
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

_redis_clients: dict[str, redis.Redis] = {}
_redis_guard = threading.Lock()


def _redis(url: str) -> redis.Redis:
    with _redis_guard:
        if url not in _redis_clients:
            _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        return _redis_clients[url]


class Lease:
    """A renewable, token-checked lease on `key` for `ttl` seconds."""

    def __init__(self, key: str, ttl: float = 15.0, holder: str = "") -> None:
        self.key = key
        self.ttl = ttl
        self.token = f"{holder or 'indexer'}:{uuid.uuid4().hex}"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # Backend operations; the Redis ones are atomic, the cache ones are good enough for one embedded process.
    def _try_acquire(self) -> bool:
        if settings.REDIS_URL:
            return bool(_redis(settings.REDIS_URL).set(self.key, self.token, nx=True, px=int(self.ttl * 1000)))
        from django.core.cache import cache

        return cache.add(self.key, self.token, self.ttl)

    def _try_renew(self) -> bool:
        if settings.REDIS_URL:
            return bool(_redis(settings.REDIS_URL).eval(_RENEW, 1, self.key, self.token, int(self.ttl * 1000)))
        from django.core.cache import cache

        return cache.get(self.key) == self.token and cache.touch(self.key, self.ttl)

    def _try_release(self) -> None:
        if settings.REDIS_URL:
            _redis(settings.REDIS_URL).eval(_RELEASE, 1, self.key, self.token)
            return
        from django.core.cache import cache

        if cache.get(self.key) == self.token:
            cache.delete(self.key)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; start renewing it."""
        try:
            got = self._try_acquire()
        except Exception as exc:  # Redis down: nobody can prove they hold it, so we do not either
            log.warning("lease %s: cannot reach the lock store: %s", self.key, exc)
            return False
        if got:
            self.lost.clear()
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew_loop, name=f"lease {self.key}", daemon=True)
            self._renewer.start()
        return got

    def _renew_loop(self) -> None:
        try:
            while not self._stop.wait(self.ttl / 3):
                try:
                    ok = self._try_renew()
                except Exception as exc:
                    log.warning("lease %s: renewal failed: %s", self.key, exc)
                    ok = False
                if not ok:
                    log.warning("lease %s: lost", self.key)
                    self.lost.set()
                    return
        finally:
            connection.close()  # the database cache opened one in this thread

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        try:
            self._try_release()
        except Exception as exc:
            log.warning("lease %s: release failed (it will expire): %s", self.key, exc)

    def abandon(self) -> None:
        """Stop renewing without releasing, as if the process had died (tests use this)."""
        self._stop.set()
