from django.urls import include, path

from leads.views import handoffs, leads

app_name = "leads"

urlpatterns = [
    path("", leads.lead_index, name="list"),
    path("export.csv", leads.lead_export, name="export"),
    path("<int:pk>/", leads.lead_page, name="detail"),
    path("<int:pk>/recycle", handoffs.lead_recycle_view, name="recycle"),
    path("queue/", handoffs.queue, name="queue"),
    path("handoffs/", handoffs.outcomes, name="handoff_outcomes"),
    path("handoffs/<int:pk>/", handoffs.handoff_page, name="handoff"),
    path("handoffs/<int:pk>/touch", handoffs.handoff_touch, name="handoff_touch"),
    path("handoffs/<int:pk>/accept", handoffs.handoff_accept_view, name="handoff_accept"),
    path("handoffs/<int:pk>/reject", handoffs.handoff_reject_view, name="handoff_reject"),
    path("handoffs/<int:pk>/reassign", handoffs.handoff_reassign_view, name="handoff_reassign"),
    path("notifications/", handoffs.notifications, name="notifications"),
    path("imports/", include("leads.imports.urls")),
]
