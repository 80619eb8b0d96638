"""A cap on the live streams one person holds open at once, counted across every web process.

Each open stream holds one of the person's STREAMS_PER_USER numbered slots in the cache (Redis in production):
a key added only when absent, so two processes can never take the same slot. The key expires SLOT_TTL seconds
after its last refresh, so a process that dies mid-stream gives its slots back by itself; a live stream
refreshes its key while lines flow, and an upstream that stays idle longer than its read timeout (shorter than
SLOT_TTL) ends the stream anyway.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

SLOT_TTL = 90


@dataclass
class Slot:
    key: str
    token: str
    refreshed: float = field(default_factory=time.monotonic)


def claim(user_id: int, kind: str = "stream") -> Slot | None:
    """Take a free slot for `user_id`, or None when all STREAMS_PER_USER are taken."""
    token = secrets.token_hex(8)
    for i in range(settings.STREAMS_PER_USER):
        key = f"streams:{kind}:{user_id}:{i}"
        if cache.add(key, token, SLOT_TTL):
            return Slot(key, token)
    return None


async def refresh(slot: Slot) -> None:
    """Push the slot's expiry back; cheap to call per line, it touches the cache a few times a minute."""
    if time.monotonic() - slot.refreshed > SLOT_TTL / 3:
        slot.refreshed = time.monotonic()
        await cache.atouch(slot.key, SLOT_TTL)


async def release(slot: Slot) -> None:
    # Only our own key: had it expired and been claimed by another stream, deleting it would free theirs.
    if await cache.aget(slot.key) == slot.token:
        await cache.adelete(slot.key)
