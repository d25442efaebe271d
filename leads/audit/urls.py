from django.urls import path

from leads.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.definitions_index, name="index"),
    path("<slug:kind>/history/", views.definition_history, name="history"),
]
