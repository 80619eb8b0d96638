"""Prometheus metrics at /metrics.

Two kinds of numbers:

* Events counted where they happen: request latency by view (the middleware below) and Argo CD calls by
  instance and endpoint (apps/argocd/_metrics.py). Web, worker and indexer are separate processes, so with
  ``PROMETHEUS_MULTIPROC_DIR`` set each writes its own files there and a scrape of any web process sums them
  all (prometheus-client's multiprocess mode). Without it, a scrape shows the answering process only.
* State read from the database and Redis at scrape time (``PortalCollector``): operations by kind and state
  and the duration of finished ones, the Celery queue's length, index freshness per instance, the audit
  checkpoint's age and each instance's token expiry. These are the same whichever process answers.

A scrape is let in by ``METRICS_TOKEN`` (``Authorization: Bearer …``) and/or ``METRICS_ALLOWED_CIDRS`` (the
client address, after PROXY_COUNT): every one that is set must pass; with neither set, /metrics is closed.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .net import client_ip

log = logging.getLogger("portal.request")

REQUEST_SECONDS = Histogram(
    "portal_http_request_seconds",
    "Time to answer a request (to the first byte, for a stream), by view name.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestMetricsMiddleware:
    """Times each request by its view (the URL name, never the path: bounded labels) and logs one line for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self.get_response(request)
        seconds = time.monotonic() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or "<unresolved>"
        REQUEST_SECONDS.labels(view, request.method, str(response.status_code)).observe(seconds)
        log.info(
            "%s %s %s %.0f ms", request.method, request.path, response.status_code, seconds * 1000,
            extra={"view": view, "status": response.status_code, "duration_ms": round(seconds * 1000, 1)},
        )  # fmt: skip
        return response


def _allowed(request: HttpRequest) -> bool:
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_CIDRS
    if not token and not networks:
        return False
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return False
    if networks:
        ip = client_ip(request)
        if ip is None or not any(ipaddress.ip_address(ip) in net for net in networks):
            return False
    return True


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    # A refused scrape is not an audit event: the scraper is a monitoring system, not a portal user, and a
    # misconfigured one would write an event every few seconds. It is logged; a signed-in person who is
    # refused here is audited by RefusalAuditMiddleware like any other refusal.
    if not _allowed(request):
        log.warning("metrics scrape refused from %s", client_ip(request))
        return HttpResponse("Metrics need METRICS_TOKEN or an address in METRICS_ALLOWED_CIDRS.\n", status=403,
                            content_type="text/plain")  # fmt: skip
    portal = CollectorRegistry(auto_describe=False)
    portal.register(PortalCollector())
    if settings.PROMETHEUS_MULTIPROC_DIR:
        events = CollectorRegistry()
        multiprocess.MultiProcessCollector(events, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        events = REGISTRY
    return HttpResponse(generate_latest(events) + generate_latest(portal), content_type=CONTENT_TYPE_LATEST)


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at else None


class PortalCollector:
    """Gauges read from the database and Redis at scrape time; a part that cannot be read says so."""

    def collect(self) -> Iterator[Metric]:
        failed = GaugeMetricFamily(
            "portal_metrics_part_failed",
            "1 when a part of the scrape could not be read (see the log).",
            labels=["part"],
        )
        for part, produce in (
            ("operations", _operations),
            ("queue", _queue),
            ("index", _index),
            ("checkpoint", _checkpoint),
            ("instances", _instances),
        ):
            try:
                yield from produce()
                failed.add_metric([part], 0)
            except Exception as exc:
                log.warning("metrics: %s could not be read: %s", part, exc)
                failed.add_metric([part], 1)
        yield failed


def _operations() -> Iterator[Metric]:
    from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum

    from apps.operations.models import Operation

    count = GaugeMetricFamily("portal_operations", "Operations by kind and state.", labels=["kind", "state"])
    for row in Operation.objects.order_by().values("kind", "state").annotate(n=Count("id")):
        count.add_metric([row["kind"], row["state"]], row["n"])
    yield count
    duration = SummaryMetricFamily(
        "portal_operation_duration_seconds",
        "Start to finish of ended operations, by kind and final state.",
        labels=["kind", "state"],
    )
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    ended = Operation.objects.filter(
        state__in=Operation.FINAL_STATES, started_at__isnull=False, finished_at__isnull=False
    )
    for row in ended.order_by().values("kind", "state").annotate(n=Count("id"), total=Sum(took)):
        total = row["total"].total_seconds() if row["total"] is not None else 0.0
        duration.add_metric([row["kind"], row["state"]], count_value=row["n"], sum_value=total)
    yield duration


def _queue() -> Iterator[Metric]:
    # With the filesystem broker (the demo) there is no queue length to read: the metric is left out.
    if not settings.REDIS_URL:
        return
    import redis

    from portal.celery import app

    queue = app.conf.task_default_queue or "celery"
    # kombu keeps one Redis list per priority step: "celery", then "celery\x06\x163" and so on.
    sep = "\x06\x16"
    names = [queue] + [f"{queue}{sep}{step}" for step in (1, 2, 3, 4, 5, 6, 7, 8, 9)]
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        pipe = client.pipeline()
        for name in names:
            pipe.llen(name)
        depth = sum(pipe.execute())
    finally:
        client.close()
    gauge = GaugeMetricFamily("portal_celery_queue_length", "Messages waiting in the Celery queue.", labels=["queue"])
    gauge.add_metric([queue], depth)
    yield gauge


def _index() -> Iterator[Metric]:
    from apps.index.models import IndexState

    now = timezone.now().timestamp()
    last = GaugeMetricFamily(
        "portal_index_last_event_timestamp_seconds",
        "When the indexer last heard from the instance.",
        labels=["instance"],
    )
    lag = GaugeMetricFamily(
        "portal_index_lag_seconds", "Seconds since the index last heard from the instance (event or resync).",
        labels=["instance"],
    )  # fmt: skip
    connected = GaugeMetricFamily("portal_index_connected", "1 while the watch stream is open.", labels=["instance"])
    for state in IndexState.objects.select_related("instance"):
        name = state.instance.name
        connected.add_metric([name], 1 if state.connected else 0)
        if state.last_event_at:
            last.add_metric([name], state.last_event_at.timestamp())
        heard = max(filter(None, (_ts(state.last_event_at), _ts(state.last_resync_at))), default=None)
        if heard is not None:
            lag.add_metric([name], max(0.0, now - heard))
    yield from (last, lag, connected)


def _checkpoint() -> Iterator[Metric]:
    from apps.audit import checkpoints

    age = GaugeMetricFamily("portal_audit_checkpoint_age_seconds", "Seconds since the last audit chain checkpoint.")
    point = checkpoints.latest()  # a file that does not verify raises: reported as a failed part
    if point is not None:
        at = datetime.fromisoformat(point.at)
        age.add_metric([], max(0.0, (timezone.now() - at).total_seconds()))
    yield age


def _instances() -> Iterator[Metric]:
    from apps.instances.models import Instance

    expiry = GaugeMetricFamily(
        "portal_instance_token_expiry_timestamp_seconds",
        "When the portal's Argo CD token of the instance expires (instances whose token has an expiry).",
        labels=["instance"],
    )
    for name, expires in Instance.objects.filter(token_expires_at__isnull=False).values_list(
        "name", "token_expires_at"
    ):
        expiry.add_metric([name], expires.timestamp())
    yield expiry
