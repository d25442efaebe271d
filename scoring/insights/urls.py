from django.urls import path

from scoring.insights import views

# Included by scoring.urls under insights/, in the "scoring" namespace.
urlpatterns = [
    path("", views.insights_page, name="insights"),
    path("apply/", views.suggestion_apply_view, name="insights-apply"),
]
