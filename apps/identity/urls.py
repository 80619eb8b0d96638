from django.urls import path

from . import token_views, views

app_name = "identity"

urlpatterns = [
    path("users/", views.user_list, name="list"),
    path("users/<str:username>/", views.user_detail, name="detail"),
    path("account/password/", views.change_password, name="password"),
    path("account/tokens/", token_views.token_list, name="tokens"),
    path("account/tokens/<int:pk>/revoke", token_views.token_revoke, name="token-revoke"),
]
