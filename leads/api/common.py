"""What every endpoint of the API shares: the JSON parser, pagination and write permissions."""

from __future__ import annotations

import json
import re
from datetime import UTC

from django.conf import settings
from django.utils import timezone
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission

from revops.api_errors import PayloadTooLarge

# Django's limit on a request body (2.5 MiB by default): 1,000 events with their properties fit
# easily; anything bigger is refused (413) before it is read.
MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
# An escaped NUL not itself escaped (an odd run of backslashes before "u0000"): PostgreSQL
# stores no NUL in text or jsonb, so it is refused here instead of failing the insert.
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size limit (413), and text PostgreSQL can store (no NUL, no
    lone surrogate halves), so bad input is a precise 400 and never a failed write."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(_too_large(length))
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(_too_large(len(raw)))
        if _NUL.search(raw):
            raise ParseError("JSON parse error - text cannot contain NUL characters (\\u0000).")
        try:
            text = raw.decode((parser_context or {}).get("encoding") or "utf-8")
            data = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from exc
        if _SURROGATE.search(raw):
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParseError(
                    "JSON parse error - text contains an unpaired surrogate (\\ud800–\\udfff)."
                ) from exc
        return data


def _too_large(size: int) -> str:
    return (
        f"The request body is {size:,} bytes; the API accepts at most {MAX_BODY_BYTES:,} bytes "
        "per request."
    )


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class Pagination(CursorPagination):
    """Cursor pagination, newest first: stable under inserts and without a COUNT over a million
    rows. ``?page_size=`` up to 500; follow ``next`` until it is null."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", self.ordering)
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError(
                {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}, code="invalid"
            )
        return super().get_page_size(request)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:  # DRF answers 404 for a cursor it cannot read
            raise ValidationError({"cursor": ["Invalid cursor."]}) from exc
        if cursor is not None and cursor.position is not None:
            position = str(cursor.position)
            if not position.lstrip("-").isdigit():
                raise ValidationError({"cursor": ["Invalid cursor."]})
        return cursor


class UtcMixin:
    """Instants go in and out of the API in UTC (pages render in the display time zone, which
    the middleware activates): a naive instant sent is UTC, every instant answered ends in Z."""

    def initial(self, request, *args, **kwargs):
        timezone.activate(UTC)
        super().initial(request, *args, **kwargs)


class ReadAnyWriteWithModelPermission(BasePermission):
    """Every authenticated user reads; writing needs the model's Django permission (create:
    ``add``, update and actions such as publish: ``change``), as in the admin. For what every
    role may read: the definitions (trust comes from seeing the rules)."""

    actions = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}
    read_needs_permission = False

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        codename = self.required(request, view)
        if codename is None or user.has_perm(codename):
            return True
        self.message = f"Only users holding the permission “{codename}” may do this."
        return False

    def required(self, request, view) -> str | None:
        """The permission this request needs ("app.codename"), None when none."""
        action_name = getattr(view, "action", None)
        # A view may name the permission of its extra actions: a whole name ("leads.
        # work_handoffs") or the model's verb (publish: "change").
        named = getattr(view, "write_permissions", {}).get(action_name)
        if named and "." in named:
            return named
        if request.method in SAFE_METHODS:
            if not self.read_needs_permission:
                return None
            action = "view"
        else:
            action = named or self.actions.get(request.method, "change")
        model = view.get_queryset().model
        return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


class ModelPermission(ReadAnyWriteWithModelPermission):
    """Reading needs the model's ``view`` permission too: the pipeline's facts (leads,
    accounts, events, handoffs…) are not for the Viewer role, which reads dashboards only."""

    read_needs_permission = True
