"""The indexer: keeps ApplicationSummary current from each enabled instance's watch stream.

One `Indexer` per process (`manage.py run_indexer`) runs one `InstanceWatcher` thread per enabled instance and
re-reads the Instance table every few seconds to start and stop them. A watcher first takes the instance's
lease (locks.py), so with several indexers running each instance is watched by exactly one of them. Holding
it, the watcher loops:

    resync  list the instance's apps (projected), upsert them all, delete rows it no longer lists
    watch   stream changes from the list's resourceVersion; events are coalesced per app and written in
            batches every ~100 ms; on an idle read timeout it resumes from the last resourceVersion
    every `resync_seconds`, or after any other disconnect, it resyncs again

While the instance is unreachable the watcher backs off (exponential with jitter, capped at 30 s), and its
IndexState says `connected=False` with the error; its rows stay, and the list page marks them stale. An app the
database refuses to store is skipped and named in `IndexState.skipped` (summary._write), never failing the rest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.argocd import errors
from apps.instances.models import Instance

from . import summary
from .locks import Lease, lease_key
from .models import ApplicationSummary, IndexState

log = logging.getLogger(__name__)

_END = object()  # the reader's "the server ended the stream" marker
_IDLE = object()  # the reader's "read timeout after a quiet spell" marker


@dataclass
class Options:
    resync_seconds: float = 600.0  # periodic full resync
    refresh_seconds: float = 10.0  # how often the Instance table is re-read
    lease_ttl: float = 15.0
    lease_retry_seconds: float = 5.0  # how often a non-holder tries to take over
    flush_seconds: float = 0.1  # event batching window
    # The stream sends no keep-alives: a quiet stream times out and resumes.
    watch_read_timeout: float = 30.0
    backoff_cap: float = 30.0
    holder: str = ""


class LeaseLost(Exception):
    pass


def backoff(attempt: int, cap: float) -> float:
    """Full-jitter exponential backoff: 0.5 s, 1 s, 2 s … capped, times a random factor in [0.5, 1]."""
    return min(cap, 0.5 * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)


def connection_fingerprint(instance: Instance) -> str:
    """Changes when the URL or a credential changes, which restarts the watcher; other edits (health, labels)
    do not. A digest, so no credential is kept around in clear beyond the Instance object itself."""
    i = instance
    parts = (i.url, i.token, i.username, i.password, i.verify_tls, i.ca_bundle)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _relaxed_commits() -> None:
    """The index is derived data that a resync rebuilds, so the indexer's commits need not wait for the WAL
    flush: a crash of PostgreSQL loses at most the last fraction of a second of index writes, never the
    portal's own data (other connections keep synchronous commits)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")


def _state(instance_id: int, **values: Any) -> None:
    IndexState.objects.update_or_create(instance_id=instance_id, defaults=values)


def resync(
    instance_id: int, client, holder: str = "", name: str = "", check: Callable[[], None] | None = None
) -> tuple[str | None, dict[str, str]]:
    """List every app (projected) and make the index match it; returns the list's resourceVersion and the apps
    the database refused ("namespace/name" → why), which are skipped while every other app is indexed.

    `check` runs between the (slow) list and the write, so a watcher that lost its lease meanwhile writes nothing.
    """
    started = time.monotonic()
    apps = client.list_applications(fields=summary.LIST_FIELDS)
    if check is not None:
        check()
    with transaction.atomic():  # rows and the state's count change together
        stored = summary.replace_all(instance_id, list(apps))
        now = timezone.now()
        _state(
            instance_id, connected=True, error="", last_resync_at=now, app_count=stored.count,
            holder=holder[:200], skipped=stored.skipped,
        )  # fmt: skip
    log.info("%s: resynced %d apps in %.2f s", name or instance_id, stored.count, time.monotonic() - started)
    return apps.resource_version, stored.skipped


class InstanceWatcher(threading.Thread):
    """Indexes one instance for as long as this process holds its lease."""

    def __init__(self, instance: Instance, options: Options) -> None:
        super().__init__(name=f"indexer {instance.name}", daemon=True)
        self.instance_id = instance.pk
        self.instance_name = instance.name
        self.fingerprint = connection_fingerprint(instance)
        self.options = options
        self.lease = Lease(lease_key(instance.pk, instance.name), options.lease_ttl, options.holder)
        self.holding = threading.Event()
        self.skipped: dict[str, str] = {}  # as last written to IndexState.skipped
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    @property
    def stopping(self) -> bool:
        return self._halt.is_set()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                if not self.lease.acquire():
                    self._halt.wait(self.options.lease_retry_seconds)
                    continue
                self.holding.set()
                try:
                    self._hold()
                finally:
                    self.holding.clear()
                    self.lease.release()
        finally:
            connection.close()

    def _check(self) -> None:
        if self.lease.lost.is_set():
            raise LeaseLost

    def _hold(self) -> None:
        """Resync and watch, reconnecting with backoff, until stopped or the lease is lost."""
        attempt = 0
        while not self._halt.is_set():
            try:
                close_old_connections()
                _relaxed_commits()
                instance = Instance.objects.get(pk=self.instance_id)
                with instance.client(retries=1) as client:
                    resource_version = self.resync(client)
                    attempt = 0
                    self.watch(client, resource_version)
            except LeaseLost:
                log.warning("%s: lease lost; another indexer takes over", self.instance_name)
                return
            except Exception as exc:
                if self._halt.is_set():
                    return
                attempt += 1
                message = str(exc) if isinstance(exc, errors.ArgoCDError) else f"indexer error: {exc}"
                if not isinstance(exc, errors.ArgoCDError):
                    log.exception("%s: indexer error", self.instance_name)
                else:
                    log.warning("%s: %s", self.instance_name, message)
                try:
                    _state(self.instance_id, connected=False, error=message[:2000], holder=self.lease.token[:200])
                except Exception:
                    log.exception("%s: cannot record the index state", self.instance_name)
                    close_old_connections()
                self._halt.wait(backoff(attempt, self.options.backoff_cap))

    def resync(self, client) -> str | None:
        self._check()
        rv, self.skipped = resync(
            self.instance_id, client, holder=self.lease.token, name=self.instance_name, check=self._check
        )
        return rv

    def watch(self, client, resource_version: str | None) -> None:
        """Apply watch events until the next periodic resync is due or the stream ends cleanly.

        Raises the stream's error when it fails (the caller backs off and resyncs).
        """
        resync_at = time.monotonic() + self.options.resync_seconds
        while not self._halt.is_set():
            self._check()
            reader = _Reader(client, resource_version, self.options.watch_read_timeout, self.name)
            opened = time.monotonic()
            reader.start()
            try:
                ended, resource_version = self._consume(reader.events, resync_at, resource_version)
            finally:
                reader.close()
            if ended is _IDLE:
                continue  # a quiet instance: resume from where we were, no resync needed
            if ended is _END and time.monotonic() - opened < 1:
                # A server (or proxy) that closes every stream at once would otherwise make us resync in a loop.
                raise errors.Unavailable("the watch stream closed as soon as it opened", instance=self.instance_name)
            if ended is None or ended is _END:
                return  # resync due, stopping, or the server ended the stream: resync
            raise ended

    def _consume(self, events: queue.Queue, resync_at: float, resource_version: str | None):
        """Drain the reader's queue in batches. Returns (why the stream ended or None, last resourceVersion)."""
        pending: dict[tuple[str, str], tuple[str, dict]] = {}
        while True:
            if self._halt.is_set() or time.monotonic() >= resync_at or self.lease.lost.is_set():
                self._check()  # a watcher that lost its lease writes nothing more: the new holder resyncs
                self._flush(pending)
                return None, resource_version
            try:
                item = events.get(timeout=self.options.flush_seconds)
            except queue.Empty:
                continue
            deadline = time.monotonic() + self.options.flush_seconds
            # Coalesce: take everything that arrives within the window, keeping the last event per app.
            while True:
                if item is _END or item is _IDLE or isinstance(item, BaseException):
                    self._flush(pending)
                    return item, resource_version
                kind, app = item
                key = summary.key_of(app)
                if key[1]:
                    pending[key] = (kind, app)
                rv = (app.get("metadata") or {}).get("resourceVersion")
                if rv:
                    resource_version = rv
                if len(pending) >= 2000:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = events.get(timeout=remaining)
                except queue.Empty:
                    break
            self._flush(pending)

    def _flush(self, pending: dict[tuple[str, str], tuple[str, dict]]) -> None:
        if not pending:
            return
        self._check()
        upserts = [app for kind, app in pending.values() if kind != "DELETED"]
        deletes = [key for key, (kind, _app) in pending.items() if kind == "DELETED"]
        pending.clear()
        now = timezone.now()
        with transaction.atomic():  # readers see the rows and the state's count change together
            stored = summary.upsert(self.instance_id, upserts, now)
            summary.delete(self.instance_id, deletes)
            # An app written or deleted now is no longer skipped; one refused now is, until it is written.
            done = stored.written | {summary.app_label(k) for k in deletes}
            skipped = {k: v for k, v in self.skipped.items() if k not in done} | stored.skipped
            count = ApplicationSummary.objects.filter(instance_id=self.instance_id).count()
            _state(self.instance_id, last_event_at=now, app_count=count, connected=True, error="", skipped=skipped)
        self.skipped = skipped


class _Reader(threading.Thread):
    """Owns one watch stream: opens it, iterates and hands (type, app) to the watcher through `events`.

    The watcher ends a reader with `close()`, which closes the stream under a blocked read. Opening blocks until
    the first event (Argo CD sends no headers before it) and cannot be interrupted: a reader closed while still
    opening closes its stream as soon as it has it.
    """

    def __init__(self, client, resource_version: str | None, read_timeout: float, name: str) -> None:
        super().__init__(name=f"{name} reader", daemon=True)
        self.client = client
        self.resource_version = resource_version
        self.read_timeout = read_timeout
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._stream = None
        self._last = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stream = self._stream
        if stream is not None:
            stream.close()

    def run(self) -> None:
        stream = None
        try:
            stream = self.client.watch_applications(
                fields=summary.WATCH_FIELDS, resource_version=self.resource_version, read_timeout=self.read_timeout
            )
            with self._lock:
                if self._closed:
                    return
                self._stream = stream
            for result in stream:
                self._last = time.monotonic()
                app = result.get("application") if isinstance(result, dict) else None
                if isinstance(app, dict):
                    self.events.put((str(result.get("type") or "MODIFIED"), app))
            self.events.put(_END)
        except Exception as exc:
            # The stream sends no keep-alives: a read timeout after a quiet spell is not an outage.
            quiet = time.monotonic() - self._last >= 0.9 * self.read_timeout
            self.events.put(_IDLE if isinstance(exc, errors.Unavailable) and quiet else exc)
        finally:
            if stream is not None:
                stream.close()


class Indexer:
    """Starts and stops one watcher per enabled instance; `run()` blocks until `stop()`."""

    def __init__(self, options: Options | None = None, instance_names: list[str] | None = None) -> None:
        self.options = options or Options()
        if not self.options.holder:
            self.options.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.instance_names = instance_names
        self.watchers: dict[int, InstanceWatcher] = {}
        self._halt = threading.Event()

    def refresh(self) -> None:
        """Match the running watchers to the enabled instances."""
        instances = Instance.objects.filter(enabled=True)
        if self.instance_names:
            instances = instances.filter(name__in=self.instance_names)
        wanted = {i.pk: i for i in instances}
        for pk, watcher in list(self.watchers.items()):
            current = wanted.get(pk)
            if current is None or connection_fingerprint(current) != watcher.fingerprint or not watcher.is_alive():
                watcher.stop()
                watcher.join(timeout=10)
                if current is None and not watcher.is_alive():
                    # Written before the watcher is forgotten, and only once it can no longer overwrite it.
                    IndexState.objects.filter(instance_id=pk).update(connected=False, error="instance disabled")
                del self.watchers[pk]
        for pk, instance in wanted.items():
            if pk not in self.watchers:
                watcher = InstanceWatcher(instance, self.options)
                self.watchers[pk] = watcher
                watcher.start()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                try:
                    close_old_connections()
                    self.refresh()
                except Exception:
                    log.exception("indexer: cannot read the instance table")
                self._halt.wait(self.options.refresh_seconds)
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._halt.set()

    def shutdown(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        for watcher in self.watchers.values():
            watcher.join(timeout=10)
        self.watchers.clear()
        connection.close()
