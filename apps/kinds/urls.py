from django.urls import path

from . import reveal, views

app_name = "kinds"

# Keys (repository URLs, cluster servers) contain "/", so they use <path:>; the fixed suffixes come first.
urlpatterns = [
    path("kinds/", views.index, name="index"),
    path("kinds/token/<int:pk>/", reveal.reveal, name="reveal"),
    path("kinds/<slug:kind>/", views.kind_list, name="list"),
    path("kinds/<slug:kind>/<str:instance>/new/", views.form, name="new"),
    path("kinds/<slug:kind>/<str:instance>/<path:key>/edit/", views.form, name="edit"),
    path("kinds/<slug:kind>/<str:instance>/<path:key>/delete/", views.delete, name="delete"),
    path("kinds/<slug:kind>/<str:instance>/<path:key>/", views.detail, name="detail"),
]
