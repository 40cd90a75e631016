"""URLs of reminders. Included at "/" by salesperf/urls.py."""

from django.urls import path

from reminders import views

app_name = "reminders"
urlpatterns = [
    path("reminders/", views.reminder_list, name="list"),
    path("reminders/<int:pk>/done/", views.reminder_done, name="done"),
    path("reminders/<int:pk>/snooze/", views.reminder_snooze, name="snooze"),
    path("reminders/<int:pk>/dismiss/", views.reminder_dismiss, name="dismiss"),
    path("ops/reminders/", views.ops, name="ops"),
]
