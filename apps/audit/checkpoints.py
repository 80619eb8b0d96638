"""Anchor the audit chain outside the database.

A hash chain proves that no stored event was changed or removed from the middle, but it cannot see its own
tail cut: delete the newest events and what is left is still a valid chain. So the chain head (id + hash) is
checkpointed, with a MAC under a key the database never holds, to append-only sinks outside the database (a
file of JSON lines, and syslog if configured) — by beat every AUDIT_CHECKPOINT_SECONDS and at once with
`manage.py audit_checkpoint`. `audit_verify` then checks that the event the latest checkpoint names is still
on the chain with the same hash.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from .chain import GENESIS
from .models import AuditEvent

log = logging.getLogger("portal.audit")
# Reading this much from the end of the file always holds the last line (a checkpoint is ~250 bytes).
TAIL_BYTES = 8192


class CheckpointError(Exception):
    """The checkpoint sink cannot be read, or what it holds was not written with our key."""


@dataclass(frozen=True)
class Checkpoint:
    id: int
    hash: str
    at: str
    mac: str = ""

    def message(self) -> str:
        return f"{self.id}:{self.hash}:{self.at}"


def _mac(message: str) -> str:
    key = settings.AUDIT_CHECKPOINT_KEY or settings.SECRET_KEY
    return salted_hmac("apps.audit.checkpoint", message, secret=key, algorithm="sha256").hexdigest()


def head() -> Checkpoint:
    """The chain head as it stands (genesis when the log is empty), signed."""
    row = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    point = Checkpoint(*(row or (0, GENESIS)), at=timezone.now().isoformat(timespec="seconds"))
    return Checkpoint(point.id, point.hash, point.at, _mac(point.message()))


def write() -> Checkpoint:
    """Append the current head to every configured sink; raises OSError if the file cannot be written."""
    point = head()
    line = json.dumps(asdict(point), sort_keys=True) + "\n"
    path = Path(settings.AUDIT_CHECKPOINT_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: every write lands at the end, whoever else has the file open; fsync so a crash keeps it.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if settings.AUDIT_CHECKPOINT_SYSLOG:
        _syslog(line.strip())
    return point


def _syslog(line: str) -> None:
    host, _, port = settings.AUDIT_CHECKPOINT_SYSLOG.rpartition(":")
    address: str | tuple[str, int] = (host, int(port)) if host else port  # "host:port" (UDP) or a socket path
    handler = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH)
    try:
        handler.emit(logging.makeLogRecord({"msg": f"argocd-portal audit-checkpoint {line}", "levelno": 20}))
    finally:
        handler.close()


def latest() -> Checkpoint | None:
    """The newest checkpoint in the file, its MAC checked; None when there is none yet."""
    path = Path(settings.AUDIT_CHECKPOINT_FILE)
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint file {path}: {exc}") from exc
    if not lines:
        return None
    try:
        point = Checkpoint(**json.loads(lines[-1]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"the last line of {path} is not a checkpoint") from exc
    if not constant_time_compare(point.mac, _mac(point.message())):
        raise CheckpointError(f"the last checkpoint in {path} does not carry a valid MAC (key changed, or forged)")
    return point


def check(point: Checkpoint) -> str:
    """'' when the chain still reaches the checkpointed head; otherwise why not."""
    if point.id == 0:
        return ""
    stored = AuditEvent.objects.filter(id=point.id).values_list("hash", flat=True).first()
    if stored is None:
        newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        return (
            f"event #{point.id}, checkpointed at {point.at}, is missing: the chain now ends at #{newest}, "
            "so its tail was cut"
        )
    if stored != point.hash:
        return f"event #{point.id} does not have the hash checkpointed at {point.at}: the chain was rewritten"
    return ""
