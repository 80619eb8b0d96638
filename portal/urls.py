from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.core import metrics as core_metrics
from apps.core import views as core_views
from apps.identity.oidc_views import PortalLoginView

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", core_metrics.metrics, name="metrics"),
    path("login/", PortalLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("apps.instances.urls")),
    path("", include("apps.teams.urls")),
    path("", include("apps.identity.urls")),
    path("", include("apps.audit.urls")),
    path("", include("apps.operations.urls")),
    path("", include("apps.index.urls")),
    path("", include("apps.applications.urls")),
    path("", include("apps.kinds.urls")),
    path("api/", include("apps.api.urls")),
    path("", include("apps.governance.urls")),
    path("", include("apps.notifications.urls")),
]

handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.page_not_found"
handler500 = "apps.core.views.server_error"
