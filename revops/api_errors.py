"""One error format for every 4xx answer of the API (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``).

    {"errors": [{"field": "email", "code": "invalid", "message": "Enter a valid email address."}]}

``field`` is null for an error about the request as a whole (authentication, permission, a
refused action), a dotted path for nested input (``criteria[2].points``); items of a bulk
request carry ``"index": n``, their position in the request. Django's own ``ValidationError``
(raised by model ``clean()`` and by the services) and ``PermissionDenied`` become 400 and 403,
so views call the services and let refusals through.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail

# Keys of a detail tree that name no field (DRF's non_field_errors key is its default).
GENERAL_KEYS = {NON_FIELD_ERRORS, "non_field_errors", "detail"}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


class ErrorList(exceptions.APIException):
    """Errors already in the API's format (e.g. the per-item errors of a bulk request, found by
    validation code that does not build a DRF detail tree for a thousand items)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, errors: list[dict[str, Any]], status_code: int | None = None):
        super().__init__(detail=errors[0]["message"] if errors else "Invalid input.")
        self.errors = errors
        if status_code is not None:
            self.status_code = status_code


def validation_error(error: DjangoValidationError) -> exceptions.ValidationError:
    """A Django ``ValidationError`` as DRF's, field names and codes kept."""
    return exceptions.ValidationError(detail=get_error_detail(error))


def error(message: str, *, code: str = "invalid", field: str | None = None, **extra) -> dict:
    return {**extra, "field": field, "code": code, "message": str(message)}


def flatten(detail: Any, *, field: str | None = None) -> list[dict[str, Any]]:
    """DRF's error detail tree (dicts by field, lists by position) as a flat list."""
    errors: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # DRF keys the errors of list items by position
                if field is None:
                    errors += [{"index": key, **entry} for entry in flatten(value)]
                else:
                    errors += flatten(value, field=f"{field}[{key}]")
                continue
            key = str(key)
            if key in GENERAL_KEYS:
                path = field
            elif field is None:
                path = key
            else:
                path = f"{field}.{key}"
            errors += flatten(value, field=path)
    elif isinstance(detail, list | tuple):
        if field is None and detail and all(isinstance(item, dict) for item in detail):
            # A list of objects at the top: a bulk request, one entry per item.
            for index, item in enumerate(detail):
                errors += [{"index": index, **entry} for entry in flatten(item)]
        else:
            for position, item in enumerate(detail):
                if isinstance(item, dict | list | tuple):
                    errors += flatten(item, field=f"{field or ''}[{position}]")
                else:
                    errors += flatten(item, field=field)
    else:
        code = getattr(detail, "code", None) or "invalid"
        errors.append(error(str(detail), code=code, field=field))
    return errors


def exception_handler(exc: Exception, context: dict) -> Any:
    # Imported here: rest_framework.views reads the parser and pagination settings when it is
    # imported, and those name modules that import this one.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        exc = validation_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(
            f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} "
            "bytes the API accepts."
        )
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    # DRF's handler adds WWW-Authenticate / Retry-After and rolls back an atomic request.
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's error handling and logging take over
    if isinstance(exc, ErrorList):
        errors = exc.errors
    else:
        errors = flatten(exc.detail) if isinstance(exc, exceptions.APIException) else []
    if not errors:
        errors = [error(response.reason_phrase or "Error", code="error")]
    response.data = {"errors": errors}
    return response
