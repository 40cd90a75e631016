"""URLs of the import area of the pipeline."""

from django.urls import URLPattern, path

from leads import views_import

urlpatterns: list[URLPattern] = [
    path("imports/new/", views_import.import_upload, name="import_upload"),
    path("imports/<int:pk>/", views_import.import_detail, name="import_detail"),
    path("imports/<int:pk>/status/", views_import.import_status, name="import_status"),
    path("imports/<int:pk>/confirm/", views_import.import_confirm, name="import_confirm"),
    path("imports/<int:pk>/rejected.csv", views_import.import_rejected, name="import_rejected"),
]
