from django.urls import path

from leads.target_accounts import views

app_name = "target_accounts"

urlpatterns = [
    path("", views.target_list_page, name="list"),
    path("edit/", views.target_list_edit, name="edit"),
]
