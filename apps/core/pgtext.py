"""Text PostgreSQL cannot hold, made storable.

PostgreSQL's text and jsonb refuse the NUL character (and UTF-8 has no lone surrogates, which a JSON body from
Argo CD may still carry as `\\udXXX`). Such a character becomes the six visible characters of its JSON escape
(`\\u0000`), so a value holding one is stored, shown and searched for in that form rather than failing the whole
statement it is part of. Search filters escape their text the same way, so typing the raw character finds what
was stored.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with each NUL or lone surrogate written as its escape, e.g. `\\u0000`."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def storable_json(value: Any) -> Any:
    """`storable()` applied to every string (keys included) of a JSON-like value, however deep."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable_json(k): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


def unstorable(text: str) -> bool:
    return bool(_UNSTORABLE.search(text))


def escape_filters(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Filter values made storable, and a message per filter that held a character the database cannot take."""
    notes = []
    escaped = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and unstorable(value):
            escaped[key] = storable(value)
            notes.append(
                f"The “{key}” filter holds a NUL character, which the database cannot store; "
                f"it was searched for as “{escaped[key]}”."
            )
    return escaped, notes
