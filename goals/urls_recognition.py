"""URLs of the recognition area of the goals app."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
