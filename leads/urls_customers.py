"""URLs of the customers area of the pipeline."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
