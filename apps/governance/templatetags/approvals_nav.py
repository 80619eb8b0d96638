"""The navigation's count of approval requests waiting for the signed-in user."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def approvals_waiting(context) -> int:
    from apps.governance.approvals import waiting_count

    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated:
        return 0
    try:
        return waiting_count(user)
    except Exception:  # the navigation never fails a page: no count is better than no page
        return 0
