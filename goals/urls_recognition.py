"""URLs of the recognition area of the goals app: forecasts, awards, the scorecard."""

from django.urls import URLPattern, path

from goals import views_recognition as views

urlpatterns: list[URLPattern] = [
    path("forecasts/", views.forecast_accuracy, name="forecast_accuracy"),
    path("awards/", views.award_list, name="award_list"),
    path("awards/new/", views.award_create, name="award_create"),
    path("awards/rep/<int:pk>/", views.award_history, name="award_history"),
    path("scorecard/", views.scorecard, name="scorecard"),
]
