"""URLs of the feedback app (surveys, follow-up cases). Included at "/" by salesperf/urls.py."""

from django.urls import URLPattern, path

from feedback import views

app_name = "feedback"
urlpatterns: list[URLPattern] = [
    # The customer's survey: public, and short (people type links from paper too).
    path("s/<str:token>/", views.survey, name="survey"),
    path("satisfaction/", views.satisfaction, name="satisfaction"),
    path("satisfaction/answers/", views.answer_list, name="answer_list"),
    path("satisfaction/answers/<int:pk>/", views.answer_detail, name="answer_detail"),
    path("cases/", views.case_list, name="case_list"),
    path("cases/new/", views.case_create, name="case_create"),
    path("cases/<int:pk>/", views.case_detail, name="case_detail"),
    path("cases/<int:pk>/status/", views.case_status, name="case_status"),
    path(
        "surveys/send/customer/<int:pk>/", views.survey_send_customer, name="survey_send_customer"
    ),
    path("surveys/send/deal/<int:pk>/", views.survey_send_deal, name="survey_send_deal"),
]
