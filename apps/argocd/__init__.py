"""Argo CD client: the only code in the portal that speaks HTTP to Argo CD. Plain Python, no Django.

    from apps.argocd import ArgoCDClient, fan_out, errors

    with ArgoCDClient("https://argocd.example", token=..., name="prod") as c:
        apps = c.list_applications(projects=["team-a"])

Read in this order: ``client.py`` (one method per endpoint), ``_http.py`` (auth, timeouts, retries, streams),
``_aio.py`` (the same streams read on an asyncio event loop, for async views),
``errors.py`` (typed errors), ``fanout.py`` (many instances in parallel).
"""

from __future__ import annotations

from . import errors
from ._aio import AsyncStream
from ._http import ItemList, Stream
from .client import ArgoCDClient
from .errors import ArgoCDError
from .fanout import Outcome, fan_out

__all__ = ["ArgoCDClient", "ArgoCDError", "AsyncStream", "ItemList", "Outcome", "Stream", "errors", "fan_out"]
