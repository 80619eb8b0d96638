"""Prometheus metrics of the calls the client makes to Argo CD: latency and errors by instance and endpoint.

The endpoint label is the route template (`/api/v1/applications/{}/sync`), never the raw path: application,
repository and cluster names would give one time series per object. A path segment is kept when it is one of the
literal words of the client's own paths (read once from client.py), and becomes `{}` otherwise, so the label
set is bounded by the client's code whatever the names in Argo CD.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from prometheus_client import Counter, Histogram

CALL_SECONDS = Histogram(
    "portal_argocd_request_seconds",
    "Time to an answer (headers, for a stream) from Argo CD, per HTTP attempt.",
    ["instance", "method", "endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CALL_ERRORS = Counter(
    "portal_argocd_request_errors",
    "Argo CD calls that failed: `code` is the HTTP status, or timeout / connection when there was no answer.",
    ["instance", "method", "endpoint", "code"],
)


@functools.cache
def _literal_words() -> frozenset[str]:
    tree = ast.parse((Path(__file__).with_name("client.py")).read_text())
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "/" in node.value:
            words.update(part for part in node.value.split("/") if part)
    words.add("session")  # _http.SESSION_PATH
    return frozenset(words)


def endpoint(path: str) -> str:
    """The route template of a client path: literal words kept, every other segment `{}`."""
    words = _literal_words()
    return "/".join(part if (not part or part in words) else "{}" for part in path.split("?")[0].split("/"))


def observe(instance: str, method: str, path: str, seconds: float, code: str | None) -> None:
    """One HTTP attempt: its latency, and an error when `code` (status ≥ 400, timeout, connection) is given."""
    route = endpoint(path)
    CALL_SECONDS.labels(instance, method, route).observe(seconds)
    if code is not None:
        CALL_ERRORS.labels(instance, method, route, code).inc()
