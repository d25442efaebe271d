from django.urls import path

from scoring.predictive import views

# Included by scoring.urls under predictive/, in the "scoring" namespace.
urlpatterns = [
    path("", views.model_index, name="predictive-models"),
    path("retrain/", views.retrain_now, name="predictive-retrain"),
]
