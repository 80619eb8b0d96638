from django.urls import path

from . import views

app_name = "governance"
urlpatterns = [
    path("governance/calendar/", views.calendar, name="calendar"),
    path("governance/windows/", views.window_list, name="list"),
    path("governance/windows/new/", views.window_edit, name="new"),
    path("governance/windows/<int:pk>/", views.window_edit, name="edit"),
]
urlpatterns += [
    path("governance/schedules/", views.schedule_list, name="schedules"),
    path("governance/schedules/new/", views.schedule_new, name="schedule_new"),
    path("governance/schedules/<int:pk>/", views.schedule_change, name="schedule_change"),
]
