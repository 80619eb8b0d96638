"""What the portal runs without right now, for the banner every page shows (context processor `unavailable`).

The cache is fail-soft (a Redis outage makes reads miss, not fail), so pages answer without Redis; this
says so instead of leaving people to guess why operations wait. One ping per process every few seconds,
and only when a template asks.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

RECHECK_SECONDS = 5.0
_lock = threading.Lock()
_last: tuple[float, bool] = (0.0, True)

REDIS_DOWN = (
    "Redis is unreachable: pages are read without the cache, and new operations are saved and wait in the queue "
    "until it is back (nothing is lost; do not submit them twice)."
)


def redis_reachable() -> bool:
    """Whether the cache's Redis answers a PING (True when the portal runs without Redis)."""
    global _last
    if not getattr(settings, "REDIS_URL", ""):
        return True
    now = time.monotonic()
    with _lock:
        checked_at, ok = _last
        if now - checked_at < RECHECK_SECONDS:
            return ok
    try:
        from django_redis import get_redis_connection

        ok = bool(get_redis_connection("default").ping())
    except Exception:
        ok = False
    with _lock:
        _last = (time.monotonic(), ok)
    return ok


def forget() -> None:
    """Check again at the next page (tests, and after a known change)."""
    global _last
    with _lock:
        _last = (0.0, True)


def _unavailable() -> list[str]:
    return [] if redis_reachable() else [REDIS_DOWN]


def unavailable(request: HttpRequest) -> dict:
    return {"unavailable": SimpleLazyObject(_unavailable)}
