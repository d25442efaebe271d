from functools import cache

from leads.selectors import unread_notification_count


def notifications(request) -> dict:
    """The unread-notification badge in the top bar: counted only when a page renders it, and
    once however often the template reads it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": cache(lambda: unread_notification_count(user))}
