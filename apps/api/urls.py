"""/api/ answers tokens, not sessions: LoginRequiredMiddleware must not send API clients to the login page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required

from .api import api

patterns, _app_name, namespace = api.urls
for pattern in patterns:
    pattern.callback = login_not_required(pattern.callback)
urlpatterns = patterns
app_name = namespace  # ninja reverses its own views in this namespace
