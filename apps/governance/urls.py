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

from . import approval_views  # noqa: E402

urlpatterns += [
    path("governance/approvals/", approval_views.approval_inbox, name="approvals"),
    path("governance/approvals/new/", approval_views.approval_new, name="approval_new"),
    path("governance/approvals/<int:pk>/", approval_views.approval_detail, name="approval"),
    path("governance/approval-policies/", approval_views.policy_list, name="policies"),
    path("governance/approval-policies/new/", approval_views.policy_edit, name="policy_new"),
    path("governance/approval-policies/<int:pk>/", approval_views.policy_edit, name="policy_edit"),
]
urlpatterns += [path("governance/approvals/new-bulk/", approval_views.approval_bulk_new, name="approval_bulk_new")]
