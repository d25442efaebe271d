"""URLs of the weekly pipeline review page and the monthly review (included at ``/meeting/``)."""

from datetime import date

from django.urls import path, register_converter

from metrics import meeting_views


class MeetingDateConverter:
    """A meeting's day in the URL, as ISO ``YYYY-MM-DD``; anything else is not a page (404)."""

    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> date:
        return date.fromisoformat(value)  # ValueError (e.g. 2026-02-30) → no match → 404

    def to_url(self, value: date | str) -> str:
        return value.isoformat() if isinstance(value, date) else str(value)


register_converter(MeetingDateConverter, "meeting_date")

app_name = "meeting"

urlpatterns = [
    path("", meeting_views.meeting_current, name="current"),
    path("history/", meeting_views.meeting_history_page, name="history"),
    path("monthly/", meeting_views.monthly_current, name="monthly"),
    path("monthly/<str:month>/", meeting_views.monthly_page, name="monthly_detail"),
    path("monthly/<str:month>/freeze", meeting_views.monthly_freeze_view, name="monthly_freeze"),
    path("<meeting_date:held_on>/", meeting_views.meeting_page, name="detail"),
    path("<meeting_date:held_on>/freeze", meeting_views.meeting_freeze_view, name="freeze"),
    path("<meeting_date:held_on>/actions", meeting_views.action_item_add_view, name="add_action"),
    path("actions/<int:pk>/done", meeting_views.action_item_done_view, name="action_done"),
]
