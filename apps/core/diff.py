"""A unified diff as rows a template can colour, shared by every page that shows a change."""

from __future__ import annotations

import difflib


def diff_lines(before: list[str], after: list[str], a: str = "before", b: str = "after") -> list[dict[str, str]]:
    """`{"text", "cls"}` rows, cls one of add, del, hunk, file or ""; the template escapes the text."""
    rows = []
    for line in difflib.unified_diff(before, after, a, b, lineterm=""):
        if line.startswith(("+++", "---")):
            cls = "file"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        elif line.startswith("@@"):
            cls = "hunk"
        else:
            cls = ""
        rows.append({"text": line, "cls": cls})
    return rows
