from django.urls import path

from . import follow, helpers, logs, panel, views

app_name = "applications"

urlpatterns = [
    path("applications/new/", views.create, name="create"),
    path("applications/new/source/", helpers.source_suggestions, name="create_source"),
    path("applications/new/helm/", helpers.helm_details, name="create_helm"),
    path("applications/<str:instance>/<str:name>/", views.detail, name="detail"),
    path("applications/<str:instance>/<str:name>/live/", views.live, name="live"),
    path("applications/<str:instance>/<str:name>/refresh/", views.refresh, name="refresh"),
    path("applications/<str:instance>/<str:name>/autosync/", views.autosync, name="autosync"),
    path("applications/<str:instance>/<str:name>/sync/", views.sync, name="sync"),
    path("applications/<str:instance>/<str:name>/rollback/", views.rollback, name="rollback"),
    path("applications/<str:instance>/<str:name>/terminate/", views.terminate, name="terminate"),
    path("applications/<str:instance>/<str:name>/resource/", views.resource, name="resource"),
    path("applications/<str:instance>/<str:name>/edit/", views.edit, name="edit"),
    path("applications/<str:instance>/<str:name>/delete/", views.delete, name="delete"),
    path("applications/<str:instance>/<str:name>/logs/stream/", follow.log_stream, name="log_stream"),
    path("applications/<str:instance>/<str:name>/logs/download/", logs.download, name="log_download"),
    path("applications/<str:instance>/<str:name>/resource/panel/", panel.resource_panel, name="resource_panel"),
]
