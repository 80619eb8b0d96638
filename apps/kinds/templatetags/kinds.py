"""Filters to show Argo CD values of any shape, escaped (never |safe), and the operation card."""

from __future__ import annotations

from typing import Any

import yaml
from django import template
from django.template.loader import select_template

register = template.Library()


@register.filter
def shape(value: Any) -> str:
    """dict | table (list of dicts) | list (of scalars) | text | empty."""
    if value in (None, "", [], {}):
        return "empty"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list):
        return "table" if all(isinstance(v, dict) for v in value) else "list"
    return "text"


@register.filter
def columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


@register.filter
def cell(row: dict, key: str) -> str:
    return compact(row.get(key))


@register.filter
def compact(value: Any) -> str:
    """Scalars as text, nested values as one-line YAML flow."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(compact(v) for v in value)
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return str(value)


@register.simple_tag
def object_url(slug: str, instance: str, key: str, action: str = "") -> str:
    from apps.kinds.registry import object_url as build

    return build(slug, instance, key, action)


@register.simple_tag(takes_context=True)
def op_card(context: template.Context, op: Any) -> str:
    """The operations app's card when it exists, else a minimal one (keeps this app usable alone)."""
    tpl = select_template(["operations/card.html", "kinds/op_card.html"])
    return tpl.render(
        {"op": op, "request": context.get("request"), "user": context.get("user")}, context.get("request")
    )
