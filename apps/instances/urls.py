from django.urls import path

from . import views

app_name = "instances"

urlpatterns = [
    path("instances/", views.instance_list, name="list"),
    path("instances/new/", views.instance_new, name="new"),
    path("instances/<str:name>/", views.instance_detail, name="detail"),
    path("instances/<str:name>/edit/", views.instance_edit, name="edit"),
]
