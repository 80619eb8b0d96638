from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.destination_list, name="list"),
    path("notifications/<int:pk>/", views.destination_detail, name="detail"),
]
