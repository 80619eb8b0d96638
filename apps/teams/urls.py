from django.urls import path

from . import views

app_name = "teams"

urlpatterns = [
    path("teams/", views.team_list, name="list"),
    path("teams/<slug:slug>/", views.team_detail, name="detail"),
    path("teams/<slug:slug>/grant-preview/", views.grant_preview, name="grant_preview"),
]
