"""Logging filters named in portal/settings.py LOGGING."""

from __future__ import annotations

import logging


class ExpectedRefusalWithoutTraceback(logging.Filter):
    """django.request logs a 4xx raised as an exception (PermissionDenied, …) with its traceback.

    A refusal is an answer, not a fault: keep its one line ("Forbidden (Permission denied): /path") and drop
    the traceback; 5xx records keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
