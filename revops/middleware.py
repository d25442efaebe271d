import zoneinfo

from django.conf import settings
from django.utils import timezone


class DisplayTimezoneMiddleware:
    """Render every page in the configured display time zone (storage stays UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.zone = zoneinfo.ZoneInfo(settings.DISPLAY_TIME_ZONE)

    def __call__(self, request):
        timezone.activate(self.zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
