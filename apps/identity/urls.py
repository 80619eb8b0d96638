from django.urls import path

from . import oidc_views, otp_views, token_views, views

app_name = "identity"

urlpatterns = [
    path("users/", views.user_list, name="list"),
    path("users/<str:username>/", views.user_detail, name="detail"),
    path("account/password/", views.change_password, name="password"),
    path("account/tokens/", token_views.token_list, name="tokens"),
    path("account/tokens/<int:pk>/revoke", token_views.token_revoke, name="token-revoke"),
    path("account/two-factor/", otp_views.two_factor, name="otp"),
    path("account/two-factor/verify/", otp_views.verify, name="otp-verify"),
    path("users/<str:username>/two-factor/reset/", otp_views.reset, name="otp-reset"),
    # Single sign-on
    path("oidc/login/", oidc_views.sso_login, name="oidc_login"),
    path("oidc/callback/", oidc_views.sso_callback, name="oidc_callback"),
    path("sso/groups/", oidc_views.group_mappings, name="group_mappings"),
]
