"""Django forms built from a kind's `Field`s, and the Argo CD body built back from a valid form."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from django import forms

from .registry import JSON, Field, ResourceKind, dig, put

# Hidden inputs naming the secret fields that were typed into a form the portal sent back (Test connection, an
# error): secrets are never rendered back into a page, so the page asks for them again and the next submit is
# refused without them rather than saving the object without its credential.
RETYPE = "retype"
AUTH = "auth_method"  # the form's choice of authentication method (not an Argo CD field)


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted with an error."""

    def format_value(self, value: Any) -> None:
        return None


class TableWidget(forms.Widget):
    """A list of dicts as a table: one row of inputs per item (`<name>-<i>-<key>`), a remove box, and blank rows
    to add new ones. Each row carries the index it came from, so keys the table does not show are kept."""

    BLANK_ROWS = 2
    is_table = True

    def __init__(self, columns: tuple, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.columns = columns

    def format_value(self, value: Any) -> list:
        return value if isinstance(value, list) else []

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[dict[str, Any]] | None:
        try:
            count = min(int(data.get(f"{name}-count", "")), 500)
        except ValueError:
            return None  # not posted: the field keeps its stored value
        rows = []
        for i in range(count):
            row: dict[str, Any] = {"_from": data.get(f"{name}-{i}-_from", ""), "_remove": f"{name}-{i}-_remove" in data}
            for col in self.columns:
                row[col.key] = (
                    f"{name}-{i}-{col.key}" in data if col.type == "bool" else data.get(f"{name}-{i}-{col.key}", "")
                )
            rows.append(row)
        return rows

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> str:
        from django.template.loader import render_to_string

        rows = []
        for i, item in enumerate([*self.format_value(value), *([None] * self.BLANK_ROWS)]):
            item = item if isinstance(item, dict) else {}
            cells = []
            for col in self.columns:
                raw = item.get(col.key)
                if col.type == "lines" and isinstance(raw, list):
                    raw = "\n".join(str(v) for v in raw)
                cells.append({"col": col, "name": f"{name}-{i}-{col.key}", "value": raw})
            # `_from` is the stored row's index for a bound (re-shown) form, else this row's own index.
            origin = item.get("_from", i) if item else ""
            rows.append({"i": i, "cells": cells, "from": origin, "removed": item.get("_remove", False)})
        context = {"name": name, "columns": self.columns, "rows": rows, "count": len(rows)}
        return render_to_string("kinds/_table_field.html", context)


class TableField(forms.Field):
    def __init__(self, *, columns: tuple, **kwargs: Any) -> None:
        super().__init__(widget=TableWidget(columns), **kwargs)
        self.columns = columns

    def clean(self, value: Any) -> Any:
        """Raw rows → dicts with Argo CD values (`_from` kept for the merge); blank and removed rows dropped."""
        if value is None:
            return None
        out, problems = [], []
        for number, row in enumerate(value, 1):
            if row.get("_remove"):
                continue
            item: dict[str, Any] = {}
            for col in self.columns:
                raw = row.get(col.key)
                item[col.key] = (
                    bool(raw) if col.type == "bool" else _lines(raw) if col.type == "lines" else (raw or "").strip()
                )
            if not any(item.values()):
                continue
            missing = [col.label for col in self.columns if col.required and not item[col.key]]
            if missing:
                problems.append(f"row {number}: {', '.join(missing)} required")
            for col in self.columns:
                if col.choices and item[col.key] and item[col.key] not in col.choices:
                    problems.append(f"row {number}: {col.label} must be {' or '.join(col.choices)}")
            item["_from"] = row.get("_from", "")
            out.append(item)
        if problems:
            text = "; ".join(problems)
            raise forms.ValidationError(text[0].upper() + text[1:] + ".")
        return out


def merge_rows(field: Field, rows: list[dict[str, Any]], stored: Any) -> list[dict[str, Any]]:
    """Each edited row over the stored row it came from: the table's keys as edited (empty removes the key),
    every other key (a role's tokens, a window's description) as it was."""
    stored = stored if isinstance(stored, list) else []
    out = []
    for row in rows:
        try:
            origin = int(row.get("_from", ""))
        except (TypeError, ValueError):
            origin = -1
        base = copy.deepcopy(stored[origin]) if 0 <= origin < len(stored) and isinstance(stored[origin], dict) else {}
        for col in field.columns:
            value = row.get(col.key)
            if value in ("", [], None, False):
                base.pop(col.key, None)
            else:
                base[col.key] = value
        out.append(base)
    return out


def _lines(value: str) -> list[str]:
    return [ln.strip() for ln in (value or "").splitlines() if ln.strip()]


def _to_text(field: Field, value: Any) -> Any:
    """Argo CD value → form initial."""
    if value is None:
        return "" if field.type not in ("bool",) else False
    if field.type == "lines":
        return "\n".join(str(v) for v in value)
    if field.type == "pairs":
        return "\n".join(f"{k}={v}" for k, v in (value or {}).items())
    if field.type == "rows":
        return "\n".join(" ".join(str(row.get(k, "")) or "-" for k in field.subkeys).rstrip(" -") for row in value)
    return value


def _from_text(field: Field, value: Any) -> Any:
    """Cleaned form value → Argo CD value; raises ValidationError with a message for the field."""
    if field.type == "lines":
        return _lines(value) or None
    if field.type == "pairs":
        out = {}
        for ln in _lines(value):
            if "=" not in ln:
                raise forms.ValidationError(f"{ln!r} is not key=value.")
            k, v = ln.split("=", 1)
            out[k.strip()] = v.strip()
        return out or None
    if field.type == "rows":
        rows = []
        for ln in _lines(value):
            parts = ln.split()
            if len(parts) > len(field.subkeys):
                raise forms.ValidationError(f"{ln!r} has more than {len(field.subkeys)} parts.")
            rows.append({k: v for k, v in zip(field.subkeys, parts, strict=False) if v != "-"})
        return rows or None
    if field.type == "table":
        return value  # rows, merged with the stored ones in build_body
    if field.type == "int":
        return value  # None when blank
    if field.type == "bool":
        return bool(value)
    return value if value not in ("",) else None


def _django_field(field: Field, editing: bool) -> forms.Field:
    common = {"label": field.label, "help_text": field.help}
    if field.type == "table":
        return TableField(columns=field.columns, required=False, **common)
    required = field.required and not (field.secret and editing) and not (field.create_only and editing)
    if field.type == "bool":
        return forms.BooleanField(required=False, **common)
    if field.type == "int":
        return forms.IntegerField(required=False, **common)
    if field.type == "choice":
        return forms.ChoiceField(choices=field.choices, required=required, **common)
    if field.secret:
        widget = (
            SecretTextarea(attrs={"rows": 4, "autocomplete": "off"})
            if field.type == "textarea"
            else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        )
        # On edit a field's own help wins: for kinds saved as sent, blank removes the stored value.
        hint = (
            (field.help or "Write-only: leave blank to keep the stored value.")
            if editing
            else "Write-only: never shown again."
        )
        return forms.CharField(required=required, widget=widget, strip=False, label=field.label, help_text=hint)
    multiline = field.type in ("textarea", "lines", "pairs", "rows")
    widget = forms.Textarea(attrs={"rows": 4}) if multiline else forms.TextInput()
    return forms.CharField(required=required, widget=widget, **common)


class KindForm(forms.Form):
    """Fields come from the kind; `clean()` turns text into Argo CD values in `self.values`."""

    def __init__(self, kind: ResourceKind, *args: Any, obj: JSON | None = None, editing: bool = False, **kwargs: Any):
        self.kind, self.editing = kind, editing
        if obj is not None and "initial" not in kwargs:
            kwargs["initial"] = {f.name: _to_text(f, dig(obj, f.target)) for f in kind.fields if not f.secret}
        super().__init__(*args, **kwargs)
        for f in kind.fields:
            self.fields[f.name] = _django_field(f, editing)
            if f.create_only and editing:
                self.fields[f.name].disabled = True
        self.auth_groups = {g: value for value, _label, groups in kind.auth_methods for g in groups}
        if kind.auth_methods:
            initial = kind.auth_of(obj) if obj is not None and kind.auth_of else kind.auth_methods[0][0]
            self.fields[AUTH] = forms.ChoiceField(
                label="Authentication",
                required=False,  # a form posted without it (a script) sends every field it fills, as before
                choices=[(value, label) for value, label, _groups in kind.auth_methods],
                initial=initial,
                help_text="Only the fields of the chosen way are sent to Argo CD.",
                widget=forms.Select(attrs={"data-auth-select": ""}),
            )
        secrets = [f.name for f in kind.fields if f.secret]
        asked = set(self.data.getlist(RETYPE)) if self.is_bound and hasattr(self.data, "getlist") else set()
        self.asked = [n for n in secrets if n in asked]
        # Should this form be shown again, these come back empty: typed now, or asked for and still missing.
        self.retype = [n for n in secrets if self.is_bound and (self.data.get(n) or n in asked)]
        for n in self.retype:
            self.fields[n].widget.attrs.update({"required": True, "aria-describedby": f"retype-{n}"})

    def groups(self) -> list[tuple[str, list[forms.BoundField], str]]:
        """Bound fields in order, consecutive fields of one `Field.group` together (for <fieldset>s), each group
        with the authentication method it belongs to ("" for the others)."""
        out: list[tuple[str, list[forms.BoundField], str]] = []
        for f in self.kind.fields:
            if not out or out[-1][0] != f.group:
                out.append((f.group, [], self.auth_groups.get(f.group, "")))
            out[-1][1].append(self[f.name])
        return out

    def auth_field(self) -> forms.BoundField | None:
        return self[AUTH] if AUTH in self.fields else None

    def _not_chosen(self, cleaned: dict[str, Any]) -> set[str]:
        """Fields of the authentication methods not chosen: the page may hide them, they are never sent."""
        chosen = cleaned.get(AUTH)
        if not self.kind.auth_methods or not chosen:
            return set()
        return {f.name for f in self.kind.fields if self.auth_groups.get(f.group, chosen) != chosen}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.values: dict[str, Any] = {}
        not_chosen = self._not_chosen(cleaned)
        for f in self.kind.fields:
            if f.name in not_chosen:
                # Cleared: switching method removes the old way's credentials (Argo CD saves what is sent).
                self.values[f.name] = False if f.type == "bool" else None
                continue
            if f.name not in cleaned:
                continue
            try:
                self.values[f.name] = _from_text(f, cleaned[f.name])
            except forms.ValidationError as exc:
                self.add_error(f.name, exc)
                continue
            problem = f.check(self.values[f.name]) if f.check and self.values[f.name] is not None else ""
            if problem:
                self.add_error(f.name, problem)
        for n in self.asked:
            if n not in not_chosen and n not in self.errors and not cleaned.get(n):
                self.add_error(n, f"Type the {self.fields[n].label.lower()} again: {RETYPE_REASON}")
        return cleaned


RETYPE_REASON = (
    "the portal never sends a secret back to the page, so it was not kept when the form came back. "
    "To leave it out, open the form anew."
)

_CLEARED = {"int": 0, "lines": [], "rows": [], "pairs": {}}


def build_body(kind: ResourceKind, values: dict[str, Any], base: JSON | None) -> tuple[JSON, list[str]]:
    """The object to send and the top-level fields that changed (clusters' `updatedFields`).

    Secret fields are only sent when given: Argo CD never returns them. For clusters (updatedFields) that keeps
    them; repositories and credential templates are saved as sent, so their `check_edit` refuses a save that
    would drop a credential unasked. A cleared field is sent as null, or as ""/0/[] where the kind asks for
    empty values (`send_cleared`).
    """
    body = kind.body_for_edit(base) if base else {}
    changed: set[str] = set()
    for f in kind.fields:
        if f.name not in values or (f.create_only and base):
            continue
        new = values[f.name]
        if f.secret and not new:
            continue
        old = dig(base or {}, f.target)
        if f.type == "table":
            if new is None:
                continue  # the table was not posted (a form without it): keep what is stored
            new = merge_rows(f, new, old) or None
        if f.type == "bool" and not new and old is None:
            continue  # don't add `false` for a field Argo CD left out
        if new is None and old is not None and kind.send_cleared:
            new = _CLEARED.get(f.type, "")
        if new != old or f.secret:
            changed.add(f.target.split(".")[0])
            put(body, f.target, copy.deepcopy(new))
    return body, sorted(changed)


def to_yaml(obj: JSON, kind: ResourceKind) -> str:
    """The editable part of an object as YAML: metadata (name, namespace, labels, annotations) and spec."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k in ("name", "namespace", "labels", "annotations")}
    return yaml.safe_dump({"metadata": meta, "spec": obj.get("spec") or {}}, sort_keys=False, default_flow_style=False)


def merge_yaml(edited: JSON, base: JSON | None) -> JSON:
    """Keep server metadata (resourceVersion, uid…) from `base` so an update is not rejected as stale."""
    if not base:
        return edited
    body = copy.deepcopy(base)
    body.pop("status", None)
    body["metadata"] = {**(base.get("metadata") or {}), **(edited.get("metadata") or {})}
    body["spec"] = edited.get("spec") or {}
    return body
