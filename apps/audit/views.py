"""Audit log pages: the filtered list (keyset pages), one event's detail, and CSV / JSON-lines exports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from apps.access.rules import instances_visible
from apps.core.diff import Diff, diff_docs
from apps.core.streaming import BlockingStreamingResponse

from .chain import redact
from .models import AuditEvent
from .queries import apply_filters, iterate, page, parse_filters, visible_events
from .service import Outcome, record

EXPORT_FIELDS = (
    "id", "at", "actor", "team", "ip", "user_agent", "instance", "kind", "project", "namespace", "name",
    "action", "outcome", "error", "operation_id", "request", "before", "after", "prev_hash", "hash",
)  # fmt: skip
JSON_FIELDS = ("request", "before", "after")


def event_list(request: HttpRequest) -> HttpResponse:
    filters = parse_filters(request.GET)
    events = apply_filters(visible_events(request.user), filters)
    rows, next_before = page(events, request.GET.get("before"))
    for row in rows:
        row.request_summary = json.dumps(redact(row.request), sort_keys=True, default=str) if row.request else ""
    context = {
        "rows": rows,
        "filters": filters,
        "next_query": filters.querystring(before=next_before) if next_before else "",
        "paged": bool(request.GET.get("before")),
        "instances": sorted(i.name for i in instances_visible(request.user)),
        "outcomes": AuditEvent.Outcome.choices,
        "export_query": filters.querystring(),
    }
    template = "audit/list.html#rows" if request.htmx else "audit/list.html"
    return render(request, template, context)


def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Guessing the id of an event outside one's grants answers 404, exactly like a missing one.
    event = get_object_or_404(visible_events(request.user), pk=pk)
    context = {
        "event": event,
        "payload": _pretty(redact(event.request)) if event.request else "",
        "diff": _diff(request, redact(event.before), redact(event.after)),
        "has_change": event.before is not None or event.after is not None,
        # An intent and its outcome link to each other; an intent with no outcome is a change of unknown result.
        "outcome_event": AuditEvent.objects.filter(intent_id=event.pk).only("id", "outcome").first(),
    }
    return render(request, "audit/detail.html", context)


def export_csv(request: HttpRequest) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    rows = (writer.writerow([_csv_cell(row[f]) for f in EXPORT_FIELDS]) for row in _export_rows(request, "csv"))
    return _stream([writer.writerow(EXPORT_FIELDS)], rows, "csv", "text/csv; charset=utf-8")


def export_jsonl(request: HttpRequest) -> StreamingHttpResponse:
    rows = (json.dumps(row, default=str, sort_keys=True) + "\n" for row in _export_rows(request, "jsonl"))
    return _stream((), rows, "jsonl", "application/x-ndjson")


def _export_rows(request: HttpRequest, fmt: str) -> Iterator[dict[str, Any]]:
    """The export is itself audited: who took which events (up to the newest id then), in what format."""
    filters = parse_filters(request.GET)
    events = apply_filters(visible_events(request.user), filters)
    newest = events.order_by("-id").values_list("id", flat=True).first() or 0
    payload = {"format": fmt, "filters": filters.querystring(), "through_id": newest}
    record(request, action="export", outcome=Outcome.SUCCEEDED, kind="audit", payload=payload)
    return _redacted_rows(events.filter(id__lte=newest))


def _redacted_rows(events) -> Iterator[dict[str, Any]]:
    for row in iterate(events, EXPORT_FIELDS):
        for name in JSON_FIELDS:
            row[name] = redact(row[name])
        row["at"] = row["at"].isoformat()
        yield row


def _stream(head: Iterable[str], rows: Iterator[str], ext: str, content_type: str) -> StreamingHttpResponse:
    def chunks() -> Iterator[str]:
        yield from head
        yield from rows

    response = BlockingStreamingResponse(chunks(), content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{ext}"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, default=str)
    # A cell starting with = + - @ is a formula to a spreadsheet; an attempted user name is attacker text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _diff(request: HttpRequest, before: Any, after: Any) -> Diff | None:
    """The diff of the pretty-printed JSON snapshots; the template escapes the lines."""
    if before is None and after is None:
        return None
    return diff_docs(before, after, query=request.GET, fmt="json")
