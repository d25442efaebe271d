"""What every KPI read shares: the period and filter conditions, grouping, percentiles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections
from django.db.models import (
    Expression,
    Q,
    QuerySet,
)

from leads.models import (
    Handoff,
    Lead,
    Opportunity,
    SalesRep,
)
from metrics import kpis
from metrics.expressions import PercentileCont
from metrics.kpis import KpiFilters, Period

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
NO_SOURCE = "No source"
ZERO = Decimal("0.00")

# --- Shared building blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRef:
    """The lead source a row is about; ``id`` None gathers leads without a source."""

    id: int | None
    name: str


def _source_ref(source_id: int | None, name: str | None) -> SourceRef:
    return SourceRef(source_id, name or NO_SOURCE)


def _source_order(ref: SourceRef) -> tuple:
    # Named sources alphabetically, the "no source" bucket last.
    return (ref.id is None, ref.name.lower())


def _in(field: str, period: Period) -> Q:
    """Instants in the half-open period [start, end)."""
    return Q(**{f"{field}__gte": period.start, f"{field}__lt": period.end})


def _lead_q(filters: KpiFilters, lead: str = "") -> Q:
    """The lead filters, seen from a model whose path to the lead is ``lead`` ("" for Lead)."""
    q = Q()
    if filters.source_ids:
        q &= Q(**{f"{lead}source_id__in": filters.source_ids})
    if filters.channel_groups:
        q &= Q(**{f"{lead}source__channel_group__in": filters.channel_groups})
    if filters.campaign_ids:
        q &= Q(**{f"{lead}campaign_id__in": filters.campaign_ids})
    if filters.tiers:
        q &= Q(**{f"{lead}tier__in": filters.tiers})
    return q


def _owner_q(filters: KpiFilters, owner: str) -> Q:
    """The owner / team filter on the user field ``owner`` of the rows being counted."""
    q = Q()
    if filters.owner_ids:
        q &= Q(**{f"{owner}_id__in": filters.owner_ids})
    if filters.team_manager_id is not None:
        # Past members stay counted: a rep made inactive keeps the team's history.
        team = SalesRep.objects.filter(manager_id=filters.team_manager_id).values("user_id")
        q &= Q(**{f"{owner}_id__in": team})
    return q


def _campaign_q(filters: KpiFilters, campaign: str = "") -> Q:
    """Source, channel group and campaign filters applied to campaigns (for cost KPIs)."""
    q = Q()
    if filters.source_ids:
        q &= Q(**{f"{campaign}source_id__in": filters.source_ids})
    if filters.channel_groups:
        q &= Q(**{f"{campaign}source__channel_group__in": filters.channel_groups})
    if filters.campaign_ids:
        q &= Q(**{f"{campaign}id__in": filters.campaign_ids})
    return q


def _leads(filters: KpiFilters) -> QuerySet[Lead]:
    return Lead.objects.filter(_lead_q(filters), _owner_q(filters, "owner"))


def _handoffs(filters: KpiFilters) -> QuerySet[Handoff]:
    return Handoff.objects.filter(_lead_q(filters, "lead__"), _owner_q(filters, "assignee"))


def _opportunities(filters: KpiFilters) -> QuerySet[Opportunity]:
    return Opportunity.objects.filter(_lead_q(filters, "lead__"), _owner_q(filters, "owner"))


def _grouped(queryset: QuerySet, group_by: Sequence[str], **aggregates) -> dict[tuple, dict]:
    """One aggregate row per group (``()`` for no grouping), keyed by the group's values."""
    queryset = queryset.order_by()
    if not group_by:
        return {(): queryset.aggregate(**aggregates)}
    rows = queryset.values(*group_by).annotate(**aggregates)
    return {tuple(row[name] for name in group_by): row for row in rows}


def _percentiles(
    queryset: QuerySet,
    value: Expression,
    fractions: Sequence[float],
    group_by: Sequence[str] = (),
) -> dict[tuple, tuple[float | None, ...]]:
    """Percentiles of ``value`` (linear interpolation, ``kpis.percentile``), per group.

    PostgreSQL computes them with ``percentile_cont``. SQLite has no ordered-set aggregate, so
    there the values alone are read and the same formula runs in Python: a test and demo
    fallback, never the production path.
    """
    queryset = queryset.order_by()
    empty = (None,) * len(fractions)
    if connections[queryset.db].vendor == "postgresql":
        aggregates = {
            f"p{index}": PercentileCont(value, fraction) for index, fraction in enumerate(fractions)
        }
        found = _grouped(queryset, group_by, **aggregates)
        return {
            key: tuple(row[f"p{index}"] for index in range(len(fractions)))
            for key, row in found.items()
        }
    values: dict[tuple, list[float]] = defaultdict(list)
    rows = (
        queryset.annotate(percentile_value=value)
        .filter(percentile_value__isnull=False)
        .values_list(*group_by, "percentile_value")
    )
    for *key, number in rows:
        values[tuple(key)].append(number)
    found = {
        key: tuple(kpis.percentile(numbers, fraction) for fraction in fractions)
        for key, numbers in values.items()
    }
    if not group_by:
        found.setdefault((), empty)
    return found


def _scaled(value: float | None, unit_seconds: int) -> float | None:
    return None if value is None else value / unit_seconds
