"""URLs of the import area of the pipeline."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
