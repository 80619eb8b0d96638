"""One holder per instance across every running indexer: a lease in Redis (or the Django cache without Redis).

The holder renews the lease from a small thread; if a renewal finds the lease gone or taken, `lost` is set and
the watcher stops. A holder that dies simply stops renewing, and another indexer acquires the lease once it
expires. Release only deletes the key if it still holds our token, so a slow holder cannot free a successor's.

Beside the lease, `<key>:last` keeps who held it last and until when (written at each acquire, renewal and
release, kept for a month), so a page can say "not held since T" once a holder died: `lease_states()`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

LAST_SECONDS = 30 * 24 * 3600  # how long `<key>:last` outlives the lease it describes
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "redis.call('set', KEYS[2], ARGV[1] .. ' ' .. ARGV[3], 'EX', ARGV[4]) "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "redis.call('set', KEYS[2], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3]) "
    "return redis.call('del', KEYS[1]) end return 0"
)


def lease_key(instance_id: int, name: str) -> str:
    """The key of an instance's indexer lease."""
    return f"portal:indexer:{instance_id}:{name}"


def _last_key(key: str) -> str:
    return f"{key}:last"


def _last_value(token: str, until: float) -> str:
    return f"{token} {until:.3f}"


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
        last = _last_value(self.token, time.time() + self.ttl)
        if settings.REDIS_URL:
            r = _redis(settings.REDIS_URL)
            got = bool(r.set(self.key, self.token, nx=True, px=int(self.ttl * 1000)))
            if got:
                r.set(_last_key(self.key), last, ex=LAST_SECONDS)
            return got
        from django.core.cache import cache

        got = cache.add(self.key, self.token, self.ttl)
        if got:
            cache.set(_last_key(self.key), last, LAST_SECONDS)
        return got

    def _try_renew(self) -> bool:
        until = time.time() + self.ttl
        if settings.REDIS_URL:
            keys = (self.key, _last_key(self.key))
            args = (self.token, int(self.ttl * 1000), f"{until:.3f}", LAST_SECONDS)
            return bool(_redis(settings.REDIS_URL).eval(_RENEW, 2, *keys, *args))
        from django.core.cache import cache

        if cache.get(self.key) == self.token and cache.touch(self.key, self.ttl):
            cache.set(_last_key(self.key), _last_value(self.token, until), LAST_SECONDS)
            return True
        return False

    def _try_release(self) -> None:
        if settings.REDIS_URL:
            keys = (self.key, _last_key(self.key))
            _redis(settings.REDIS_URL).eval(_RELEASE, 2, *keys, self.token, f"{time.time():.3f}", LAST_SECONDS)
            return
        from django.core.cache import cache

        if cache.get(self.key) == self.token:
            cache.set(_last_key(self.key), _last_value(self.token, time.time()), LAST_SECONDS)
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


@dataclass
class LeaseState:
    """Who holds a lease now, or (when nobody does) who held it last and when that lease ended."""

    holder: str = ""  # the current holder's token; empty when nobody holds the lease
    last_holder: str = ""
    since: datetime | None = None  # when the last holder's lease ended or lapsed

    @property
    def held(self) -> bool:
        return bool(self.holder)


def _decode(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def lease_states(keys: list[str]) -> dict[str, LeaseState] | None:
    """The state of each lease in one round trip, or None when the lock store cannot be read (then nobody can
    tell whether an indexer is alive, and callers say nothing rather than guess)."""
    if not keys:
        return {}
    wanted = [k for key in keys for k in (key, _last_key(key))]
    try:
        if settings.REDIS_URL:
            values = _redis(settings.REDIS_URL).mget(wanted)
        else:
            from django.core.cache import cache

            found = cache.get_many(wanted)
            values = [found.get(k) for k in wanted]
    except Exception as exc:
        log.warning("cannot read the indexer leases: %s", exc)
        return None
    states = {}
    for i, key in enumerate(keys):
        holder, last = _decode(values[2 * i]), _decode(values[2 * i + 1])
        token, _, until = last.rpartition(" ")
        try:
            since = datetime.fromtimestamp(float(until), UTC) if token else None
        except ValueError:
            token, since = "", None
        states[key] = LeaseState(holder=holder, last_holder=token, since=since)
    return states
