"""URLs of the goals area of the goals app."""

from django.urls import URLPattern, path

from goals import views_goals

urlpatterns: list[URLPattern] = [
    path("goals/", views_goals.goal_list, name="goal_list"),
    path("goals/new/", views_goals.goal_create, name="goal_create"),
    path("goals/<int:pk>/", views_goals.goal_detail, name="goal_detail"),
    path("goals/<int:pk>/revise/", views_goals.goal_revise, name="goal_revise"),
    path("goals/<int:pk>/split/", views_goals.goal_split, name="goal_split"),
    path("goals/<int:pk>/root-cause/", views_goals.goal_root_cause, name="goal_root_cause"),
    path("goals/<int:pk>/reviews/new/", views_goals.goal_review_create, name="goal_review_create"),
    path("goals/reviews/<int:pk>/done/", views_goals.goal_review_done, name="goal_review_done"),
]
