"""Streaming a blocking iterator (a database cursor) over ASGI as well as WSGI."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

BATCH = 64


class BlockingStreamingResponse(StreamingHttpResponse):
    """A response fed by a sync iterator that also streams when served over ASGI.

    There Django would read a sync iterator to its end, into memory, before sending the first byte: a
    million-event audit export would sit whole in the web process first. This pulls a batch of chunks at a time
    on the request's own thread (where its database connection and cursor live) and sends each batch on.
    """

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = iter(self.streaming_content)
        next_batch = sync_to_async(lambda: list(itertools.islice(chunks, BATCH)), thread_sensitive=True)
        while batch := await next_batch():
            for chunk in batch:
                yield chunk
