from django.urls import path

from leads.imports import views

app_name = "imports"

urlpatterns = [
    path("", views.import_index, name="index"),
    path("<int:pk>/", views.import_job_page, name="job"),
    path("<int:pk>/progress.json", views.import_progress, name="progress"),
    path("<int:pk>/mapping.json", views.import_mapping_download, name="mapping"),
    path("<int:pk>/problems.csv", views.import_errors_csv, name="problems"),
    path("mappings/<int:pk>.json", views.saved_mapping_download, name="saved-mapping"),
]
