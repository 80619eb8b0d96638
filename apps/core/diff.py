"""Line diffs shared by every page that shows a change (app diff tab, edit preview, audit detail, rollback
preview, approvals), rendered by templates/components/diff.html.

A page builds a `Diff` with `diff_docs()` (two objects, dumped as YAML or JSON) or `diff_text()` (two lists of
lines), passing the options read from the request's query string by `DiffOptions.from_query()`:

- `diff_view=split` side by side (default unified);
- `diff_full=1` every line (default compact: the changed hunks with `CONTEXT` lines around them);
- `diff_managed=1` / `diff_status=1` keep `metadata.managedFields` / `status` (hidden by default, as in
  Argo CD's own diff, because the cluster rewrites them on every change).

The toggles are links to the same URL with one of these parameters changed (`Diff.toggles`).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from itertools import zip_longest
from typing import Any
from urllib.parse import urlencode

import yaml

CONTEXT = 3
PARAMS = ("diff_view", "diff_full", "diff_managed", "diff_status")


@dataclass(frozen=True)
class DiffOptions:
    split: bool = False
    full: bool = False
    managed: bool = False
    status: bool = False

    @classmethod
    def from_query(cls, query: Any) -> DiffOptions:
        """From a QueryDict (request.GET or request.POST); unknown values fall back to the defaults."""
        return cls(
            split=query.get("diff_view") == "split",
            full=query.get("diff_full") == "1",
            managed=query.get("diff_managed") == "1",
            status=query.get("diff_status") == "1",
        )

    def params(self) -> dict[str, str]:
        return {
            "diff_view": "split" if self.split else "unified",
            "diff_full": "1" if self.full else "0",
            "diff_managed": "1" if self.managed else "0",
            "diff_status": "1" if self.status else "0",
        }


@dataclass
class Row:
    """One unified row (`old`/`new` line numbers, `cls` add/del/ctx/gap) or one side-by-side row (`left`/`right`)."""

    cls: str
    text: str = ""
    old: int | None = None
    new: int | None = None
    left: Row | None = None
    right: Row | None = None


@dataclass
class Toggle:
    label: str
    name: str
    value: str
    href: str
    active: bool


@dataclass
class Diff:
    before: list[str]
    after: list[str]
    a: str = "before"
    b: str = "after"
    options: DiffOptions = field(default_factory=DiffOptions)
    toggles: list[Toggle] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    rows: list[Row] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = self._split_rows() if self.options.split else self._unified_rows()

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def __bool__(self) -> bool:
        return self.changed

    def _groups(self) -> list[list[tuple[str, int, int, int, int]]]:
        matcher = difflib.SequenceMatcher(None, self.before, self.after, autojunk=False)
        if self.options.full:
            return [matcher.get_opcodes()] if self.before or self.after else []
        return list(matcher.get_grouped_opcodes(CONTEXT)) if self.changed else []

    def _gap(self, rows: list[Row], group: list[tuple[str, int, int, int, int]], last: int) -> None:
        _, i1, _, j1, _ = group[0]
        hidden = i1 - last
        if hidden > 0:
            rows.append(Row("gap", f"⋯ {hidden} unchanged line{'s' if hidden != 1 else ''}"))
        if not self.options.full:
            rows.append(Row("hunk", f"@@ -{i1 + 1} +{j1 + 1} @@"))

    def _unified_rows(self) -> list[Row]:
        rows: list[Row] = []
        last = 0
        for group in self._groups():
            self._gap(rows, group, last)
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    rows += [Row("ctx", self.before[i], i + 1, j1 + k + 1) for k, i in enumerate(range(i1, i2))]
                    continue
                rows += [Row("del", self.before[i], old=i + 1) for i in range(i1, i2)]
                rows += [Row("add", self.after[j], new=j + 1) for j in range(j1, j2)]
                self.removed += i2 - i1
                self.added += j2 - j1
            last = group[-1][2]
        self._tail_gap(rows, last)
        return rows

    def _split_rows(self) -> list[Row]:
        rows: list[Row] = []
        last = 0
        for group in self._groups():
            self._gap(rows, group, last)
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    for k, i in enumerate(range(i1, i2)):
                        side = Row("ctx", self.before[i])
                        rows.append(Row("pair", left=replace(side, old=i + 1), right=replace(side, new=j1 + k + 1)))
                    continue
                lefts = [Row("del", self.before[i], old=i + 1) for i in range(i1, i2)]
                rights = [Row("add", self.after[j], new=j + 1) for j in range(j1, j2)]
                for left, right in zip_longest(lefts, rights):
                    rows.append(Row("pair", left=left or Row("empty"), right=right or Row("empty")))
                self.removed += i2 - i1
                self.added += j2 - j1
            last = group[-1][2]
        self._tail_gap(rows, last)
        return rows

    def _tail_gap(self, rows: list[Row], last: int) -> None:
        hidden = len(self.before) - last
        if rows and hidden > 0:
            rows.append(Row("gap", f"⋯ {hidden} unchanged line{'s' if hidden != 1 else ''}"))


def toggles(options: DiffOptions, query: Any = None) -> list[Toggle]:
    """Links to the same page with one option flipped; the other query parameters (tab, format…) are kept."""
    base = {k: v for k, v in (query or {}).items() if k not in PARAMS}

    def link(label: str, key: str, **change: bool) -> Toggle:
        params = replace(options, **change).params()
        ((name, value),) = change.items()
        # A choice (unified/split, compact/full) is active when chosen; a switch (managed, status) when on.
        active = getattr(options, name) if key in ("diff_managed", "diff_status") else getattr(options, name) == value
        return Toggle(label, key, params[key], "?" + urlencode({**base, **params}), active)

    return [
        link("Unified", "diff_view", split=False),
        link("Side by side", "diff_view", split=True),
        link("Compact", "diff_full", full=False),
        link("Full", "diff_full", full=True),
        link("Managed fields", "diff_managed", managed=not options.managed),
        link("Status", "diff_status", status=not options.status),
    ]


def strip(obj: Any, options: DiffOptions) -> Any:
    """A Kubernetes object without what the options hide (a copy; other values are returned as they are)."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    if not options.status:
        out.pop("status", None)
    meta = out.get("metadata")
    if not options.managed and isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def dump(obj: Any, fmt: str = "yaml") -> list[str]:
    if obj is None:
        return []
    if fmt == "json":
        return json.dumps(obj, indent=2, sort_keys=True, default=str).splitlines()
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True).splitlines()


def diff_docs(
    before: Any,
    after: Any,
    a: str = "before",
    b: str = "after",
    *,
    options: DiffOptions | None = None,
    query: Any = None,
    link_query: Any = None,
    fmt: str = "yaml",
) -> Diff:
    """The diff of two documents (None for a side that does not exist), after hiding what `options` hide.

    `query` holds the options; the toggle links keep the other parameters of `link_query` (default `query`;
    pass `{}` when `query` is a POST body, whose fields belong in no link)."""
    options = options or DiffOptions.from_query(query or {})
    old, new = dump(strip(before, options), fmt), dump(strip(after, options), fmt)
    return Diff(old, new, a, b, options, toggles(options, query if link_query is None else link_query))


def diff_text(
    before: list[str],
    after: list[str],
    a: str = "before",
    b: str = "after",
    *,
    query: Any = None,
    link_query: Any = None,
) -> Diff:
    """The diff of two texts already split in lines (the managed-fields and status toggles do nothing)."""
    options = DiffOptions.from_query(query or {})
    return Diff(before, after, a, b, options, toggles(options, query if link_query is None else link_query))
