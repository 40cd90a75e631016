"""URLs of reminders. Included at "/" by salesperf/urls.py."""

from django.urls import URLPattern

app_name = "reminders"
urlpatterns: list[URLPattern] = []
