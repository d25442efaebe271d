"""What every KPI read shares: the period and filter conditions, grouping, percentiles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connections
from django.db.models import (
    DateField,
    Expression,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncMonth, TruncWeek

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
# A condition no row meets (an empty IN, which Django answers without asking the database).
NOTHING = Q(pk__in=[])

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


def _one_of(field: str, values: Sequence, or_none: bool) -> Q:
    """``field`` is one of ``values``, or (``or_none``) has no value at all."""
    q = Q(**{f"{field}__in": values}) if values else NOTHING
    return q | Q(**{f"{field}__isnull": True}) if or_none else q


def _lead_q(filters: KpiFilters, lead: str = "") -> Q:
    """The lead filters, seen from a model whose path to the lead is ``lead`` ("" for Lead).
    From an opportunity, "no source / campaign / tier" also holds when it has no lead at all,
    as in the "No source" row of a by-source table."""
    q = Q()
    if filters.source_ids or filters.lacks("source"):
        q &= _one_of(f"{lead}source_id", filters.source_ids, filters.lacks("source"))
    if filters.channel_groups:
        q &= Q(**{f"{lead}source__channel_group__in": filters.channel_groups})
    if filters.campaign_ids or filters.lacks("campaign"):
        q &= _one_of(f"{lead}campaign_id", filters.campaign_ids, filters.lacks("campaign"))
    if filters.tiers or filters.lacks("tier"):
        q &= _one_of(f"{lead}tier", filters.tiers, filters.lacks("tier"))
    return q


def _on_a_team() -> QuerySet[SalesRep]:
    return SalesRep.objects.filter(manager__isnull=False).values("user_id")


def _owner_q(filters: KpiFilters, owner: str) -> Q:
    """The owner / team filter on the user field ``owner`` of the rows being counted. "No team"
    is an owner who is no rep with a manager (or no owner at all)."""
    q = Q()
    if filters.owner_ids or filters.lacks("owner"):
        q &= _one_of(f"{owner}_id", filters.owner_ids, filters.lacks("owner"))
    if filters.team_manager_id is not None or filters.lacks("team"):
        team = NOTHING
        if filters.team_manager_id is not None:
            # Past members stay counted: a rep made inactive keeps the team's history.
            members = SalesRep.objects.filter(manager_id=filters.team_manager_id)
            team = Q(**{f"{owner}_id__in": members.values("user_id")})
        if filters.lacks("team"):
            team |= Q(**{f"{owner}__isnull": True}) | ~Q(**{f"{owner}_id__in": _on_a_team()})
        q &= team
    return q


def _campaign_q(filters: KpiFilters, campaign: str = "") -> Q:
    """Source, channel group and campaign filters applied to campaigns (for cost KPIs). Every
    campaign has a source, so "no source" / "no campaign" alone select no campaign."""
    q = Q()
    if filters.source_ids or filters.lacks("source"):
        q &= (
            Q(**{f"{campaign}source_id__in": filters.source_ids}) if filters.source_ids else NOTHING
        )
    if filters.channel_groups:
        q &= Q(**{f"{campaign}source__channel_group__in": filters.channel_groups})
    if filters.campaign_ids or filters.lacks("campaign"):
        q &= Q(**{f"{campaign}id__in": filters.campaign_ids}) if filters.campaign_ids else NOTHING
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


def _medians(
    queryset: QuerySet, values: dict[str, Expression], group_by: Sequence[str] = ()
) -> dict[tuple, dict[str, float | None]]:
    """The median of each named value, per group, in one query: each expression is NULL on the
    rows it does not measure (e.g. ``Case(When(won, then=cycle))``), and medians skip NULLs.

    PostgreSQL computes them with ``percentile_cont``; on SQLite the values are read and the
    same formula (``kpis.median``) runs in Python, a test and demo fallback.
    """
    queryset = queryset.order_by()
    names = list(values)
    if connections[queryset.db].vendor == "postgresql":
        found = _grouped(
            queryset,
            group_by,
            **{f"median_{name}": PercentileCont(values[name], 0.5) for name in names},
        )
        return {key: {name: row[f"median_{name}"] for name in names} for key, row in found.items()}
    read = queryset.annotate(**{f"median_{name}": values[name] for name in names}).values_list(
        *group_by, *(f"median_{name}" for name in names)
    )
    columns: dict[tuple, dict[str, list[float]]] = {}
    for row in read:
        group = columns.setdefault(tuple(row[: len(group_by)]), {name: [] for name in names})
        for name, number in zip(names, row[len(group_by) :], strict=True):
            if number is not None:
                group[name].append(number)
    if not group_by:
        columns.setdefault((), {name: [] for name in names})
    return {
        key: {name: kpis.median(numbers) for name, numbers in found.items()}
        for key, found in columns.items()
    }


# --- Breakdowns (group_by) -------------------------------------------------------------------


class GroupBy:
    """The dimensions a KPI can be broken down by (the API's ``group_by``, the dashboards'
    breakdown selector)."""

    OWNER = "owner"
    TEAM = "team"
    SOURCE = "source"
    CAMPAIGN = "campaign"
    TIER = "tier"
    MONTH = "month"
    CHOICES = [
        (OWNER, "Owner"),
        (TEAM, "Team"),
        (SOURCE, "Source"),
        (CAMPAIGN, "Campaign"),
        (TIER, "ICP tier"),
        (MONTH, "Month"),
    ]
    VALUES = tuple(value for value, _ in CHOICES)
    # Weeks (starting Monday) are the trends' grouping, not a breakdown a page offers: thirteen
    # weekly rows belong on a line, not in a table.
    WEEK = "week"


@dataclass(frozen=True)
class GroupRef:
    """One row of a breakdown: ``by`` which dimension, ``id`` its value (the owner's or team
    manager's user id, the source or campaign id, the tier letter, the month's first day) and
    its name; ``id`` None gathers the rows without one (no owner, no team, no source…)."""

    by: str
    id: int | str | date | None
    name: str


NO_GROUP_NAMES = {
    GroupBy.OWNER: "No owner",
    GroupBy.TEAM: "No team",
    GroupBy.SOURCE: NO_SOURCE,
    GroupBy.CAMPAIGN: "No campaign",
    GroupBy.TIER: "No tier (no lead)",
}


@dataclass(frozen=True)
class FactPaths:
    """How the rows a KPI counts reach each dimension: the lead (``"lead__"``, or ``""`` on
    the lead itself), the responsible user (``"owner"``, ``"assignee"``) and the instant that
    dates a row into a month (``"closed_at"``, ``"assigned_at"``…)."""

    lead: str
    owner: str
    instant: str


def _person(first: str | None, last: str | None, username: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or username or ""


def _group_columns(by: str, paths: FactPaths, period: Period) -> tuple[dict, tuple[str, ...]]:
    """The annotations and the columns one GROUP BY reads for the dimension ``by``."""
    lead, owner = paths.lead, paths.owner
    person = ("first_name", "last_name", "username")
    if by == GroupBy.OWNER:
        return {}, (f"{owner}_id", *(f"{owner}__{name}" for name in person))
    if by == GroupBy.TEAM:
        manager = f"{owner}__sales_rep__manager"
        return {}, (f"{manager}_id", *(f"{manager}__{name}" for name in person))
    if by == GroupBy.SOURCE:
        return {}, (f"{lead}source_id", f"{lead}source__name")
    if by == GroupBy.CAMPAIGN:
        return {}, (f"{lead}campaign_id", f"{lead}campaign__name")
    if by == GroupBy.TIER:
        return {}, (f"{lead}tier",)
    if by == GroupBy.MONTH:
        # Months of the period's own time zone (the display time zone), not of UTC: a deal
        # closed at 23:30 New York time on 31 March is March's.
        month = TruncMonth(paths.instant, tzinfo=period.start.tzinfo, output_field=DateField())
        return {"group_month": month}, ("group_month",)
    if by == GroupBy.WEEK:
        week = TruncWeek(paths.instant, tzinfo=period.start.tzinfo, output_field=DateField())
        return {"group_week": week}, ("group_week",)
    raise ValueError(f"Cannot group by {by!r}; choose one of {', '.join(GroupBy.VALUES)}.")


def _group_ref(by: str, key: tuple) -> GroupRef:
    value = key[0]
    if value is None:
        return GroupRef(by, None, NO_GROUP_NAMES[by])
    if by in (GroupBy.OWNER, GroupBy.TEAM):
        return GroupRef(by, value, _person(*key[1:]) or f"User {value}")
    if by in (GroupBy.SOURCE, GroupBy.CAMPAIGN):
        return GroupRef(by, value, key[1])
    if by == GroupBy.TIER:
        return GroupRef(by, value, f"Tier {value}")
    if by == GroupBy.WEEK:
        return GroupRef(by, value, f"Week of {value.day} {value:%b %Y}")
    return GroupRef(by, value, value.strftime("%B %Y"))


def _group_order(group: GroupRef) -> tuple:
    """Months in time order; other groups by name; the "no …" group last."""
    if group.by in (GroupBy.MONTH, GroupBy.WEEK):
        return (group.id is None, group.id or date.min, "")
    return (group.id is None, group.name.lower(), str(group.id))


def _grouped_by(
    queryset: QuerySet, by: str, paths: FactPaths, period: Period
) -> tuple[QuerySet, tuple[str, ...], Callable[[tuple], GroupRef]]:
    """``queryset`` ready for one GROUP BY on ``by``: annotated, the columns to group on, and
    how a row's key becomes its ``GroupRef``."""
    annotations, columns = _group_columns(by, paths, period)
    return queryset.annotate(**annotations), columns, lambda key: _group_ref(by, key)
