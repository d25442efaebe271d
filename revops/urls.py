from django.contrib import admin
from django.urls import include, path

from revops import playbook, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("leads/", include("leads.urls")),
    path("scoring/", include("scoring.urls")),
    path("meeting/", include("metrics.meeting_urls")),
    path("dashboards/", include("metrics.urls")),
    path("definitions/target-accounts/", include("leads.target_accounts.urls")),
    path("definitions/", include("leads.audit.urls")),
    path("playbook/", playbook.playbook, name="playbook"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("revops.api_urls")),
]
