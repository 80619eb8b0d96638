from django.urls import path

from . import views

app_name = "index"
urlpatterns = [
    path("applications/", views.application_list, name="list"),
    path("applications/pin/", views.toggle_favourite, name="pin"),
]
