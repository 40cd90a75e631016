"""URLs of the api area of the pipeline."""

from django.urls import URLPattern, path

from leads import api

urlpatterns: list[URLPattern] = [
    path("api/web-leads/", api.web_lead_create, name="web_lead_create"),
]
