from __future__ import annotations

from typing import Any

from django import template

from apps.operations.progress import steps

register = template.Library()


@register.simple_tag
def sync_steps(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return steps(rows)
