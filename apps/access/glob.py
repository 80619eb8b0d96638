"""Argo CD's RBAC glob semantics (gobwas/glob compiled without separators).

`*` matches any run of characters including `/`, `?` one character, `[abc]`/`[!abc]`/`[a-z]` a class,
`{a,b}` alternatives, and `\\` escapes. The same pattern becomes a Python regex and a SQL regex so
the one decision holds in `can()` and in list queries.
"""

from __future__ import annotations

import re
from functools import lru_cache


def to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                body = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
                out.append(f"[{'^' if negate else ''}{body}]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)  # an unclosed brace closes at the end, as gobwas reads it
    regex = "^" + "".join(out) + "$"
    try:
        re.compile(regex)
    except re.error:  # e.g. a bad class: match the pattern literally rather than fail the check
        return "^" + re.escape(pattern) + "$"
    return regex


def problem(pattern: str) -> str:
    """Why a glob someone typed is malformed ("" if it is fine); matching copes either way, forms should not."""
    if pattern.count("{") != pattern.count("}"):
        return "its braces { } are not balanced"
    try:
        re.compile(to_regex(pattern))
    except re.error as exc:
        return str(exc)
    if to_regex(pattern) == "^" + re.escape(pattern) + "$" and any(c in pattern for c in "[]"):
        return "its character class [ ] is not valid"
    return ""


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(to_regex(pattern), re.DOTALL)


def match(pattern: str, value: str) -> bool:
    if not isinstance(value, str):  # a name from a user's document that is not text matches no grant
        return False
    return bool(_compiled(pattern).match(value))
