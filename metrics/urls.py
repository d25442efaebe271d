from django.urls import path

from metrics import content_request_views, goal_views, views

app_name = "metrics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("funnel/", views.funnel, name="funnel"),
    path("handoffs/", views.handoffs, name="handoffs"),
    path("pipeline/", views.pipeline, name="pipeline"),
    path("content/", views.content, name="content"),
    path(
        "content/requests/",
        content_request_views.content_request_list_page,
        name="content_requests",
    ),
    path(
        "content/requests/<int:pk>/update/",
        content_request_views.content_request_update_view,
        name="content_request_update",
    ),
    path(
        "content/requests/from-handoff/<int:handoff_pk>/",
        content_request_views.content_request_file_view,
        name="content_request_file",
    ),
    path("trends/", views.trends, name="trends"),
    path("drill/<slug:kind>/", views.drill, name="drill"),
    path("scorecard/", goal_views.scorecard_page, name="scorecard"),
    path("scorecard/goals/", goal_views.goals_edit, name="goals_edit"),
    path("scorecard/planning/", goal_views.planning_page, name="planning"),
]
