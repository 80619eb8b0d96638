"""What the home page shows: a short overview of what the user can reach."""

from __future__ import annotations


def dashboard_context(user) -> dict:
    return {}
