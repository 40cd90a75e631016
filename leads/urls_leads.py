"""URLs of the leads area of the pipeline."""

from django.urls import URLPattern, path

from leads import views_leads

urlpatterns: list[URLPattern] = [
    path("leads/", views_leads.lead_list, name="list"),
    path("leads/new/", views_leads.lead_new, name="create"),
    path("leads/bulk/", views_leads.leads_bulk, name="bulk"),
    path("leads/export/", views_leads.leads_export, name="export"),
    path("leads/<int:pk>/", views_leads.lead_detail, name="detail"),
    path("leads/<int:pk>/edit/", views_leads.lead_edit, name="edit"),
    path("leads/<int:pk>/stage/", views_leads.lead_stage, name="move_stage"),
    path("leads/<int:pk>/temperature/", views_leads.lead_temperature, name="set_temperature"),
    path("leads/<int:pk>/owner/", views_leads.lead_owner, name="assign"),
    path("leads/<int:pk>/team/", views_leads.lead_team, name="hand_to_team"),
]
