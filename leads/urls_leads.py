"""URLs of the leads area of the pipeline."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
