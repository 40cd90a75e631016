"""URLs of the sales area of the pipeline."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
