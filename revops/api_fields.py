"""The API's date-time field and filter: DRF's and django-filter's, parsed and limited by
``revops.datetimes`` so a body field, a query filter and a CSV cell accept the same instants
and refuse the same ones (an offset PostgreSQL cannot store is a 400 naming the field or
parameter, never a 500)."""

from __future__ import annotations

from django import forms
from django.db import models
from django.utils import timezone
from django_filters import filters
from rest_framework import serializers

from revops.datetimes import InstantError, parse_instant, to_utc


class InstantField(serializers.DateTimeField):
    """DRF's DateTimeField (same formats, same output), checked by ``revops.datetimes``: an
    instant arrives in UTC, or is refused with the shared message."""

    def enforce_timezone(self, value):
        if timezone.is_aware(value):
            try:
                value = to_utc(value)
            except InstantError as problem:
                raise serializers.ValidationError(problem.message, code=problem.code) from None
        return super().enforce_timezone(value)


class InstantFormField(forms.DateTimeField):
    """A query parameter's instant: ISO 8601 (a date alone is its midnight), read in the active
    time zone when it has no offset (UTC in the API), refused with the shared message."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return parse_instant(str(value), zone=timezone.get_current_timezone())
        except InstantError as problem:
            # The message quotes the input: passed as a parameter, so a "%" in it is text
            # (django-filter %-formats every message with its params).
            raise forms.ValidationError(
                "%(message)s", code=problem.code, params={"message": problem.message}
            ) from None


class InstantFilter(filters.IsoDateTimeFilter):
    """django-filter's IsoDateTimeFilter (documented as a date-time) with the shared parser."""

    field_class = InstantFormField


class InstantModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose date-time model fields become InstantFields: the base of every
    model serializer of the API, so no write takes an instant the shared rule refuses."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: InstantField,
    }
