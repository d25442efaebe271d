from django.urls import path

from scoring.backtest import views

# Included by scoring.urls under backtests/, in the "scoring" namespace.
urlpatterns = [
    path("", views.backtest_index, name="backtests"),
    path("<int:pk>/", views.backtest_detail, name="backtest"),
    path("<int:pk>/progress.json", views.backtest_progress_json, name="backtest-progress"),
    path("<int:pk>/leads/", views.backtest_changed_leads, name="backtest-leads"),
    path("<int:pk>/resume/", views.backtest_resume, name="backtest-resume"),
    path("<int:pk>/publish/<str:which>/", views.backtest_publish, name="backtest-publish"),
]
