"""URLs of the customers area of the pipeline."""

from django.urls import URLPattern, path

from leads import views_customers as views

urlpatterns: list[URLPattern] = [
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/new/", views.customer_create, name="customer_create"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    path("customers/<int:pk>/contacts/new/", views.contact_add, name="contact_add"),
    path("customers/<int:pk>/merge/", views.customer_merge, name="customer_merge"),
]
