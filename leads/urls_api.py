"""URLs of the api area of the pipeline."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
