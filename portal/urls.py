from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("apps.instances.urls")),
    path("", include("apps.teams.urls")),
    path("", include("apps.identity.urls")),
    path("", include("apps.audit.urls")),
    path("", include("apps.operations.urls")),
    path("", include("apps.index.urls")),
    path("", include("apps.applications.urls")),
    path("", include("apps.kinds.urls")),
    path("", include("apps.governance.urls")),
]

handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.page_not_found"
handler500 = "apps.core.views.server_error"
