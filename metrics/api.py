"""Every dashboard KPI as JSON, for BI tools and spreadsheets: ``/api/v1/kpis/<name>/`` with the
dashboards' own filters (``preset`` or ``start``/``end``, ``source``, ``channel``, ``campaign``,
``tier``, ``owner``, ``team``; repeat a parameter for several values; ``none`` selects the rows
without one, e.g. ``?source=none``) and, for the KPIs that can be broken down, ``group_by``
(``owner``, ``team``, ``source``, ``campaign``, ``tier``, ``month``): then ``data`` is a list of
``{"group": {"by", "id", "name"}, …}`` rows, one GROUP BY.

The figures are those of ``metrics.queries`` (the dashboards' definitions, docs/kpis.md),
served like the dashboards from a snapshot at most a minute old (``computed_at`` says when;
``metrics.kpi_catalog``): the KPI's dataclass as JSON (``dataclasses.asdict``; money as decimal
strings, instants in ISO 8601), with the period and filters it was computed for.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from leads.api.common import UtcMixin
from leads.choices import ChannelGroup, FitTier
from metrics import snapshots
from metrics.filters import DashboardFilterForm, Preset
from metrics.kpi_catalog import GROUPED, KPIS, snapshot_page
from metrics.kpis import NONE, KpiFilters, Period
from metrics.queries import GroupBy
from revops.db_router import reads_may_be_stale

# Dates a period may start or end on (a year 9999 end would overflow the day after it).
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)


def to_json(value: Any) -> Any:
    """A KPI result as JSON-ready values: dataclasses as objects, Decimals as strings (exact
    money), dates and instants in ISO 8601, tuples as lists, mapping keys as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {("null" if key is None else str(key)): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def period_json(period: Period) -> dict[str, str]:
    return {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "first_day": period.first_day.isoformat(),
        "last_day": period.last_day.isoformat(),
        "time_zone": str(period.start.tzinfo),
    }


ID_PARAMETERS = ("source", "campaign", "owner", "team")
MAX_ID = 2**63 - 1


def _id_errors(query) -> dict[str, list[str]]:
    """Ids must be whole numbers that fit a bigint (or "none") before the form asks the
    database."""
    errors = {}
    for name in ID_PARAMETERS:
        for value in query.getlist(name):
            if value and value != NONE and not (value.isdigit() and int(value) <= MAX_ID):
                errors[name] = [f"{value!r} is not an id (a whole number) nor {NONE!r}."]
    return errors


def parse_filters(query) -> tuple[Period, KpiFilters]:
    """The dashboards' filter form, strictly: an invalid value is a 400, not a dropped filter."""
    period, filters, _ = parse_query(query)
    return period, filters


def parse_query(query) -> tuple[Period, KpiFilters, str | None]:
    """The period, the filters and the breakdown (``group_by``) of a KPI request; 400 on any
    invalid value."""
    # "This week" and friends end today where the dashboards are read, as on the pages.
    today = timezone.localdate(timezone=ZoneInfo(settings.DISPLAY_TIME_ZONE))
    errors = _id_errors(query)
    if errors:
        raise ValidationError(errors)
    form = DashboardFilterForm(query, today=today)
    errors = {} if form.is_valid() else form.errors.as_data()
    for name in ("start", "end"):
        day = form.cleaned_data.get(name) if hasattr(form, "cleaned_data") else None
        if day is not None and not EARLIEST <= day <= LATEST:
            errors.setdefault(name, []).append(
                f"Choose a date between {EARLIEST.isoformat()} and {LATEST.isoformat()}."
            )
    if errors:
        raise ValidationError(
            {
                (name if name != "__all__" else "non_field_errors"): [
                    serializers.ErrorDetail(str(message), code="invalid")
                    if isinstance(message, str)
                    else serializers.ErrorDetail(" ".join(message.messages), code=message.code)
                    for message in messages
                ]
                for name, messages in errors.items()
            }
        )
    return form.period(), form.kpi_filters(), form.breakdown()


def _list_parameter(name: str, kind, description: str, enum=None) -> OpenApiParameter:
    return OpenApiParameter(name, kind, many=True, explode=True, enum=enum, description=description)


FILTER_PARAMETERS = [
    OpenApiParameter(
        "preset",
        str,
        enum=[value for value, _ in Preset.CHOICES],
        description=f"Period (default {Preset.DEFAULT}); custom needs start and end.",
    ),
    OpenApiParameter(
        "start",
        OpenApiTypes.DATE,
        description="First day (preset=custom): from 00:00 that day in the display time zone.",
    ),
    OpenApiParameter(
        "end",
        OpenApiTypes.DATE,
        description="Last day (preset=custom): up to the next midnight, display time zone.",
    ),
    _list_parameter("source", str, "Source ids; `none`: leads (or deals) without a source."),
    _list_parameter("channel", str, "Channel groups.", enum=ChannelGroup.values),
    _list_parameter("campaign", str, "Campaign ids; `none`: without a campaign."),
    _list_parameter(
        "tier", str, "ICP fit tiers; `none`: deals without a lead.", enum=[*FitTier.values, NONE]
    ),
    _list_parameter(
        "owner",
        str,
        "User ids of whoever owns the rows (any user who owns a lead, an opportunity or a "
        "handoff, active or not, rep or not); `none`: rows without an owner.",
    ),
    OpenApiParameter(
        "team", str, description="User id of a sales manager: their team; `none`: on no team."
    ),
    OpenApiParameter(
        "group_by",
        str,
        enum=list(GroupBy.VALUES),
        description=(
            "Break the KPI down (one row per group, `id` null for the rows without one; "
            f"months in the display time zone). For: {', '.join(GROUPED)}."
        ),
    ),
]


class KpiIndexView(UtcMixin, APIView):
    @extend_schema(
        summary="The KPIs available as JSON",
        operation_id="kpis_list",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT)},
    )
    def get(self, request):
        return Response(
            {
                "kpis": [
                    {
                        "name": name,
                        "description": description,
                        "url": reverse("api:kpi", args=[name], request=request),
                        "group_by": list(GroupBy.VALUES) if name in GROUPED else [],
                    }
                    for name, (_, description) in KPIS.items()
                ]
            }
        )


class KpiView(UtcMixin, APIView):
    @extend_schema(
        summary="One KPI for a period and filters, as on the dashboards",
        operation_id="kpis_retrieve",
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(KPIS)),
            *FILTER_PARAMETERS,
        ],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 400: OpenApiTypes.OBJECT},
    )
    @method_decorator(reads_may_be_stale)
    def get(self, request, name: str):
        if name not in KPIS:
            raise NotFound(f"No KPI named {name!r}; known: {', '.join(KPIS)}.")
        period, filters, group_by = parse_query(request.query_params)
        if group_by and name not in GROUPED:
            raise ValidationError(
                {"group_by": [f"{name} cannot be broken down; these can: {', '.join(GROUPED)}."]}
            )
        _, description = KPIS[name]
        data, computed_at = snapshots.page_data(snapshot_page(name, group_by), period, filters)
        return Response(
            {
                "kpi": name,
                "description": description,
                "period": period_json(period),
                "filters": to_json(filters),
                "group_by": group_by,
                "computed_at": computed_at.isoformat(),
                "data": to_json(data),
            }
        )
