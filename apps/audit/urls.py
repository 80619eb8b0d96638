from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.event_list, name="list"),
    path("audit/export.csv", views.export_csv, name="export_csv"),
    path("audit/export.jsonl", views.export_jsonl, name="export_jsonl"),
    path("audit/<int:pk>/", views.event_detail, name="detail"),
]
