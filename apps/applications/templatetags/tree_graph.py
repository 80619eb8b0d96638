from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from apps.applications.graph import boxes_html

register = template.Library()


@register.simple_tag
def graph_boxes(g: dict, panel_url: str) -> SafeString:
    return boxes_html(g["items"], panel_url, g)
