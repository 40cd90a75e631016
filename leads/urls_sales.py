"""URLs of the sales area of the pipeline: estimates, deals, activities."""

from django.urls import URLPattern, path

from leads import views_sales as views

urlpatterns: list[URLPattern] = [
    path("estimates/", views.estimate_list, name="estimate_list"),
    path("estimates/new/", views.estimate_create, name="estimate_create"),
    path("estimates/<int:pk>/", views.estimate_detail, name="estimate_detail"),
    path("estimates/<int:pk>/send/", views.estimate_send, name="estimate_send"),
    path("estimates/<int:pk>/accept/", views.estimate_accept, name="estimate_accept"),
    path("estimates/<int:pk>/reject/", views.estimate_reject, name="estimate_reject"),
    path("deals/", views.deal_list, name="deal_list"),
    path("deals/new/", views.deal_create, name="deal_create"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("activities/", views.activity_list, name="activity_list"),
    path("activities/new/", views.activity_create, name="activity_create"),
    path("activities/<int:pk>/complete/", views.activity_complete, name="activity_complete"),
]
