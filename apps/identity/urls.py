from django.urls import path

from . import views

app_name = "identity"

urlpatterns = [
    path("users/", views.user_list, name="list"),
    path("users/<str:username>/", views.user_detail, name="detail"),
    path("account/password/", views.change_password, name="password"),
]
