from django.urls import include, path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("jobs/latest/", views.latest_job, name="latest-job"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/progress.json", views.job_progress_json, name="job-progress"),
    path("backtests/", include("scoring.backtest.urls")),
    path("insights/", include("scoring.insights.urls")),
    path("predictive/", include("scoring.predictive.urls")),
]
