import zoneinfo

from django.conf import settings
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone

NUL = "\x00"
NUL_REFUSED = (
    "The request's {where} contain a NUL character (\\x00), which no field or filter accepts."
)


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


class RefuseNulCharactersMiddleware:
    """Refuse any request whose query string or form fields hold a NUL character with a clear
    400, before a view reads them: PostgreSQL text cannot hold one (a filter ``?q=%00`` failed
    with a 500, and a CSV export broke mid-stream). One guard for every page, filter, form and
    API query; JSON bodies are refused by the API's own parser checks."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = None
        if any(NUL in key or NUL in value for key, value in _pairs(request.GET)):
            where = "address parameters"
        elif (
            request.method == "POST"
            and _form_body(request)
            and any(NUL in key or NUL in value for key, value in _pairs(request.POST))
        ):
            where = "form fields"
        if where is None:
            return self.get_response(request)
        message = NUL_REFUSED.format(where=where)
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"errors": [{"field": None, "code": "invalid", "message": message}]}, status=400
            )
        response = TemplateResponse(request, "400.html", {"reason": message}, status=400)
        return response.render()


def _pairs(querydict):
    for key, values in querydict.lists():
        for value in values:
            yield key, value if isinstance(value, str) else ""


def _form_body(request) -> bool:
    # Not multipart: parsing an upload here would take it before the view chose its handlers.
    return request.content_type == "application/x-www-form-urlencoded"
