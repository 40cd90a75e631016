"""URLs of the dashboards area of the goals app."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
