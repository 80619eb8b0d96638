from django.urls import path

from . import bulk_panel, views

app_name = "operations"

urlpatterns = [
    path("operations/", views.operation_list, name="list"),
    path("operations/bulk-sync/", views.bulk_sync, name="bulk_sync"),
    path("operations/bulk/", bulk_panel.bulk_panel, name="bulk_panel"),
    path("operations/<int:pk>/", views.operation_detail, name="detail"),
    path("operations/<int:pk>/card", views.operation_card, name="card"),
]
