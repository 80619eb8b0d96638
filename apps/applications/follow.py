"""Log follow: an async view served over ASGI, so an open stream waits on the event loop and holds no thread.
Several pods/containers are followed at once: one upstream stream each, merged as their lines arrive.

Opening a stream runs the same sync code as every other view, once, on the request's thread: `load()` (the
permission check and its audit), the pod lookup and a slot under the person's stream cap. From then on the
stream reads Argo CD with the client's async reader and needs neither a thread's work nor a database connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from apps.argocd import ArgoCDError, AsyncStream
from apps.audit.service import Outcome, record
from apps.core import streams
from apps.core.argocd_pages import argocd_errors, error_text
from apps.core.hidden_chars import reveal_plain

from . import logs
from .services import load

LOG_FOLLOW_MAX_SECONDS = 600
# Argo CD sends nothing while a pod is quiet; a stream idle this long ends (and frees its slot) with a message.
LOG_FOLLOW_IDLE_SECONDS = 60


@require_GET
async def log_stream(request: HttpRequest, instance: str, name: str) -> HttpResponseBase:
    """Server-sent events fed by Argo CD's follow=true log stream; ends when the browser goes away."""
    opened = await sync_to_async(_open)(request, instance=instance, name=name)
    if isinstance(opened, HttpResponseBase):  # an error page, or the refusal of a stream over the cap
        return opened
    return _event_stream(_follow(*opened))


@argocd_errors
def _open(
    request: HttpRequest, *, instance: str, name: str
) -> HttpResponseBase | tuple[list[tuple[str, AsyncStream]], streams.Slot]:
    ctx = load(request, instance, name, "logs")
    query = logs.LogQuery.from_query(request.GET)
    pods = [p for p in logs.pods_of(ctx.client, ctx) if p.get("name") in query.pods]
    if not pods:
        return HttpResponse("Pick one of the application's pods.", status=400, content_type="text/plain")
    # Container names are looked up only to spread the chosen ones over the pods that have them.
    containers = logs.containers_of(ctx, pods) if query.containers else {}
    opened = [
        (
            source.label,
            ctx.client.application_logs_async(
                ctx.name, **logs.log_kwargs(ctx, source, query), follow=True, read_timeout=LOG_FOLLOW_IDLE_SECONDS
            ),
        )
        for source in logs.sources(pods, containers, query)
    ]
    if not opened:
        return HttpResponse("None of the chosen pods has the chosen containers.", status=400, content_type="text/plain")
    slot = streams.claim(request.user.pk, "logs")
    if slot is None:
        limit = settings.STREAMS_PER_USER
        record(
            request,
            action="logs",
            outcome=Outcome.DENIED,
            instance=ctx.instance.name,
            kind="application",
            project=ctx.project,
            namespace=ctx.namespace,
            name=ctx.name,
            error=f"over the limit of {limit} log streams open at once",
        )
        message = (
            f"You are already following {limit} log streams, the most one person may have open at once. "
            "Stop following in another tab or window, then try again."
        )
        return _event_stream(_end(message))
    return opened, slot


def _event_stream(events: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let nginx pass each event through at once
    return response


def frame(entry: dict, source: str = "") -> str:
    """One log line as an event. The page appends it as text, past the response post-processor: hidden
    characters are spelled out here."""
    line = {
        "content": reveal_plain(entry.get("content", "")),
        "pod": reveal_plain(entry.get("podName", "")),
        "src": reveal_plain(source or entry.get("podName", "")),
        "ts": entry.get("timeStampStr", ""),
    }
    return f"data: {json.dumps(line)}\n\n"


async def _end(reason: str) -> AsyncIterator[str]:
    yield f"event: end\ndata: {json.dumps(reason)}\n\n"


_DONE = object()


async def _merge(sources: list[tuple[str, AsyncStream]], problems: list[str]) -> AsyncIterator[tuple[str, dict]]:
    """`(label, entry)` from every stream as each arrives; a stream that fails adds its error to `problems` and
    the others go on. Leaving (the browser went away, the time limit) cancels every reader, which closes its
    upstream connection."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=500)

    async def pump(label: str, stream: AsyncStream) -> None:
        try:
            async with stream:
                async for entry in stream:
                    await queue.put((label, entry))
        except ArgoCDError as exc:
            problems.append(f"{label}: {error_text(exc)}" if len(sources) > 1 else error_text(exc))
        finally:
            await queue.put((label, _DONE))

    readers = [asyncio.create_task(pump(label, stream)) for label, stream in sources]
    try:
        running = len(readers)
        while running:
            label, entry = await queue.get()
            if entry is _DONE:
                running -= 1
            else:
                yield label, entry
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def _follow(sources: list[tuple[str, AsyncStream]], slot: streams.Slot) -> AsyncIterator[str]:
    """Frames for EventSource. A closed browser connection makes Django cancel this generator where it waits;
    the finally then closes the upstream Argo CD streams and gives the slot back."""
    started = time.monotonic()
    reason = "the log stream ended"
    problems: list[str] = []
    try:
        # The request's thread opened a database connection (session, grants, audit) that it would otherwise
        # keep until the stream ends: one idle connection per open stream.
        await sync_to_async(connections.close_all)()
        yield ": connected\n\n"
        merged = _merge(sources, problems)
        try:
            async for label, entry in merged:
                yield frame(entry, label)
                await streams.refresh(slot)
                if time.monotonic() - started > LOG_FOLLOW_MAX_SECONDS:
                    reason = "stopped following after 10 minutes"
                    break
        finally:
            await merged.aclose()
    finally:
        await streams.release(slot)
    if problems and reason == "the log stream ended":
        reason = "; ".join(problems)
    async for last in _end(reason):
        yield last
