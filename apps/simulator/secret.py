"""What Argo CD keeps in its `argocd-secret` and so survives a restart of the server: the key that signs
its tokens (`server.secretkey`) and each local account's API-key list (`accounts.<name>.tokens`).

A simulator started with a secret file reads them from it (creating it on first start) and writes the
token lists back whenever they change, so the tokens it issued before a restart are still accepted.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any


def load(path: Path) -> tuple[bytes, dict[str, list[dict]]]:
    """The signing key and the account token lists stored at `path`; a new key (saved at once) if it is absent."""
    if not path.exists():
        key = secrets.token_bytes(32)
        save(path, key, {})
        return key, {}
    data = json.loads(path.read_text(encoding="utf-8"))
    key = base64.b64decode(data["server.secretkey"])
    tokens = {name: list(items) for name, items in (data.get("accounts") or {}).items()}
    return key, tokens


def save(path: Path, key: bytes, tokens: dict[str, list[dict]]) -> None:
    """Write the whole file or nothing (a crash never leaves half a key), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"server.secretkey": base64.b64encode(key).decode(), "accounts": tokens}
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    os.replace(partial, path)
