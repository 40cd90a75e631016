"""URLs of the dashboards area of the goals app."""

from django.urls import URLPattern, path

from goals import views_dashboards as views

urlpatterns: list[URLPattern] = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/team/<int:pk>/", views.team_dashboard, name="team_dashboard"),
    path("dashboard/company/", views.company_dashboard, name="company_dashboard"),
    path("dashboard/rep/<int:pk>/", views.rep_dashboard, name="rep_dashboard"),
    path("dashboard/drill/<slug:kind>/", views.drilldown, name="drilldown"),
    path("leaderboards/", views.leaderboard_page, name="leaderboard"),
]
