"""URLs of goals, dashboards and recognition: one module per area, each owned by its views."""

from goals import urls_dashboards, urls_goals, urls_recognition

app_name = "goals"
urlpatterns = [
    *urls_goals.urlpatterns,
    *urls_dashboards.urlpatterns,
    *urls_recognition.urlpatterns,
]
