"""A request id that follows one request through its log lines, its Celery tasks and its audit events.

The web takes the caller's ``X-Request-ID`` when it is well-formed (a proxy or a load balancer may set one)
and makes a new one otherwise, answers it in the same header, and keeps it in a context variable for the
request. A task published while it is set carries it in its message headers, and the worker sets it again for
the task's run, so a sync's lines in the web and in the worker, and its audit events, share one id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from celery import signals
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# Letters, digits and a few separators, at most 128: it goes into log lines and audit events as given.
WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current() -> str:
    """The id of the request (or task) being served; '' outside one."""
    return _current.get()


def accept(given: str | None) -> str:
    """The caller's id when it is well-formed, else a new one."""
    if given and WELL_FORMED.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the request's duration and answers it in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept(request.headers.get(HEADER))
        request.request_id = request_id
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` attribute ('' outside a request or task) for the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = _current.get()
        return True


# Celery: the id travels in the message headers and is set again around the task's run in the worker.
_task_tokens: dict[str, contextvars.Token] = {}


@signals.before_task_publish.connect
def _publish_with_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = _current.get()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


@signals.task_prerun.connect
def _run_with_request_id(task_id: str = "", task: Any = None, **_: Any) -> None:
    request_id = getattr(getattr(task, "request", None), "request_id", None) or ""
    if isinstance(request_id, str) and WELL_FORMED.fullmatch(request_id):
        _task_tokens[task_id] = _current.set(request_id)


@signals.task_postrun.connect
def _end_task_request_id(task_id: str = "", **_: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            _current.reset(token)
        except ValueError:  # set in another context (should not happen: prerun and postrun share the thread)
            _current.set("")
