"""Run one call against many Argo CD instances at once and collect a result or an error per instance.

    outcomes = fan_out(clients, lambda c: c.list_applications(), deadline=5.0)
    outcomes = fan_out({"prod": lambda: prod.version(), "dev": lambda: dev.version()})
    for key, o in outcomes.items():
        o.value if o.ok else o.error.message

A slow or broken instance never raises and never holds up the others beyond ``deadline`` seconds (measured
from the start of the fan-out, so it is every instance's budget when ``max_workers`` >= the number of calls).
Calls still running at the deadline are reported as ``Unavailable`` and left to finish in the background: a
thread cannot be killed, but each call is bounded by its client's own timeouts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import ArgoCDError, Internal, Unavailable

log = logging.getLogger("apps.argocd")

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one instance answered: ``value`` when ``ok``, else ``error`` (always an ArgoCDError)."""

    ok: bool
    value: T | None = None
    error: ArgoCDError | None = None
    elapsed: float = 0.0


def fan_out(
    calls: Mapping[K, Any],
    fn: Callable[[Any], T] | None = None,
    *,
    max_workers: int = 8,
    deadline: float = 5.0,
) -> dict[K, Outcome[T]]:
    """Run ``calls[key]()`` — or ``fn(calls[key])`` when ``fn`` is given (``calls`` is then e.g. a mapping of
    clients) — in a bounded thread pool. Returns ``{key: Outcome}`` in the mapping's order."""
    jobs: dict[K, Callable[[], T]] = (
        {key: _bind(fn, target) for key, target in calls.items()} if fn is not None else dict(calls)
    )
    if not jobs:
        return {}
    started = time.monotonic()
    results: dict[K, Outcome[T]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(jobs))), thread_name_prefix="argocd-fanout")
    futures: dict[Future, K] = {pool.submit(_timed, job): key for key, job in jobs.items()}
    pending = set(futures)
    try:
        while pending:
            remaining = deadline - (time.monotonic() - started)
            if remaining <= 0:
                break
            done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
            for fut in done:
                results[futures[fut]] = fut.result()  # _timed never raises
    finally:
        # Don't wait for stragglers; cancel the ones that never started.
        pool.shutdown(wait=False, cancel_futures=True)
    for fut in pending:
        key = futures[fut]
        results[key] = Outcome(
            ok=False,
            error=Unavailable(f"no answer within the {deadline:g}s deadline", instance=_instance_name(key, calls)),
            elapsed=time.monotonic() - started,
        )
    return {key: results[key] for key in jobs}


def _bind(fn: Callable[[Any], T], target: Any) -> Callable[[], T]:
    return lambda: fn(target)


def _timed(job: Callable[[], T]) -> Outcome[T]:
    t0 = time.monotonic()
    try:
        return Outcome(ok=True, value=job(), elapsed=time.monotonic() - t0)
    except ArgoCDError as exc:
        return Outcome(ok=False, error=exc, elapsed=time.monotonic() - t0)
    except Exception as exc:
        # A bug in one call must not take down the whole page; keep the traceback in the log.
        log.exception("fan-out call raised %s", type(exc).__name__)
        err = Internal(f"unexpected error in the portal: {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return Outcome(ok=False, error=err, elapsed=time.monotonic() - t0)


def _instance_name(key: Any, calls: Mapping[Any, Any]) -> str:
    target = calls.get(key)
    return getattr(target, "name", "") or str(key)
