"""The portal's URLs plus one fake view guarded like every Argo CD view, to test denials end to end."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from apps.access.guards import get_instance, require
from portal.urls import handler403, handler404, handler500  # noqa: F401
from portal.urls import urlpatterns as portal_urlpatterns


def fake_app_action(request: HttpRequest, instance: str, project: str, app: str, action: str) -> HttpResponse:
    target = get_instance(instance)
    require(request, action, target, project, app, kind="application", name=app)
    return HttpResponse(f"{action} {app}: allowed")


urlpatterns = [
    *portal_urlpatterns,
    path("fake/<str:instance>/<str:project>/<str:app>/<str:action>/", fake_app_action),
]
