"""Weekly series of the headline KPIs: each KPI over a run of whole weeks in one grouped query
(``GROUP BY`` the week, in the period's time zone), never one query per week. Weeks start on
Monday; a week with no rows is simply absent from the result (the caller fills the gap).

The rows counted are the dashboards' own (``acceptance_handoffs``, ``cohort_leads``,
``feedback_handoffs``…), so a week's figure is the overview tile's figure for that week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DateField, F, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from metrics import kpis
from metrics.expressions import SecondsBetween
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries.common import (
    SECONDS_PER_DAY,
    ZERO,
    GroupBy,
    _grouped,
    _in,
    _leads,
    _medians,
    _opportunities,
)
from metrics.queries.funnel import (
    FunnelDefinition,
    cohort_leads,
    cohort_rules,
    funnel_definition,
    reached_opportunity_at,
)
from metrics.queries.handoffs import (
    SlaClock,
    SlaStatus,
    _feedback_complete,
    _handoffs,
    _sla_conditions,
    feedback_handoffs,
    lead_acceptance_by,
    response_time_by,
    sla_rolled,
)
from metrics.queries.revenue import _HISTORY_DAYS, OpportunityResults, opportunity_results_by
from metrics.queries.rolled import (
    TIME_GROUPS,
    RolledValues,
    added,
    rolled_grouped,
    rolled_value_stats,
    rollup_split,
)
from metrics.rollup_models import CohortDay, HandoffDay, OpportunityDay, RollupFact


@dataclass(frozen=True)
class WeekRate:
    """A rate over one week: the rows that count (``hits``) of the rows measured (``sample``)."""

    hits: int
    sample: int
    rate: float | None


def _week(field: str, period: Period) -> TruncWeek:
    return TruncWeek(field, tzinfo=period.start.tzinfo, output_field=DateField())


def _rates(rows: dict[tuple, dict], hits: str, sample: str) -> dict[date, WeekRate]:
    return {
        key[0]: WeekRate(row[hits], row[sample], kpis.rate(row[hits], row[sample]))
        for key, row in rows.items()
    }


def weekly_acceptance(period: Period, filters: KpiFilters = NO_FILTERS) -> dict[date, WeekRate]:
    """Accepted ÷ decided per week of assignment (``lead_acceptance_by`` on the week)."""
    return {
        row.group.id: WeekRate(
            row.acceptance.accepted,
            row.acceptance.accepted + row.acceptance.rejected,
            row.acceptance.rate,
        )
        for row in lead_acceptance_by(period, filters, by=GroupBy.WEEK)
    }


def weekly_response(period: Period, filters: KpiFilters = NO_FILTERS) -> dict[date, tuple]:
    """(median business hours, answered) per week of assignment."""
    return {
        row.group.id: (row.response.median_hours, row.response.answered)
        for row in response_time_by(period, filters, by=GroupBy.WEEK)
    }


def weekly_response_sla(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> dict[date, WeekRate]:
    """Response SLA met ÷ (met + missed) per week the response was due."""
    now = now or timezone.now()
    conditions = _sla_conditions(now)["response"]
    handoffs = _handoffs(filters).filter(_in("response_due_at", period))
    split = rollup_split(RollupFact.HANDOFF, period)
    if split is not None:
        handoffs = handoffs.filter(split.raw_q("response_due_at"))
    rows = _grouped(
        handoffs.annotate(group_week=_week("response_due_at", period)),
        ("group_week",),
        met=Count("pk", filter=conditions[SlaStatus.MET]),
        missed=Count("pk", filter=conditions[SlaStatus.MISSED]),
    )
    if split is not None:
        rolled = sla_rolled(split, filters, ("group_week",), now, clocks=(SlaClock.RESPONSE,))
        rows = added(
            ("met", "missed"),
            rows,
            {
                key: {
                    "met": row[f"{SlaClock.RESPONSE}_{SlaStatus.MET}"],
                    "missed": row[f"{SlaClock.RESPONSE}_{SlaStatus.MISSED}"],
                }
                for key, row in rolled.items()
            },
        )
    return {
        key[0]: WeekRate(
            row["met"],
            row["met"] + row["missed"],
            kpis.rate(row["met"], row["met"] + row["missed"]),
        )
        for key, row in rows.items()
    }


def weekly_lead_to_opportunity(
    period: Period, filters: KpiFilters = NO_FILTERS, *, definition: FunnelDefinition | None = None
) -> dict[date, WeekRate]:
    """Leads created each week that ever reached the opportunity stage ÷ those leads (the
    cohort funnel of ``conversion_by_source``, by week of creation)."""
    definition = definition or funnel_definition(at=min(period.end, timezone.now()))
    if not definition.opportunity_key:
        return {}
    position = definition.keys.index(definition.opportunity_key)
    leads = cohort_leads(period, filters, definition=definition)
    split = rollup_split(RollupFact.COHORT, period, funnel_keys=cohort_rules(definition))
    if split is not None:
        leads = leads.filter(split.raw_q("created_at"))
    rows = _grouped(
        leads.annotate(group_week=_week("created_at", period)),
        ("group_week",),
        leads=Count("pk"),
        reached=Count("pk", filter=Q(furthest_position__gte=position)),
    )
    if split is not None:
        # Both sums read the rows' "leads": grouped here, under names of their own.
        rolled = _grouped(
            split.rows(CohortDay, filters, ("group_week",)).annotate(
                group_week=TIME_GROUPS["group_week"]
            ),
            ("group_week",),
            cohort=Sum("leads"),
            reached=Sum(
                "leads", filter=Q(furthest_stage__in=definition.keys[position:]), default=0
            ),
        )
        rows = added(
            ("leads", "reached"),
            rows,
            {
                key: {"leads": row["cohort"], "reached": row["reached"]}
                for key, row in rolled.items()
            },
        )
    return _rates(rows, "reached", "leads")


def weekly_feedback(period: Period, filters: KpiFilters = NO_FILTERS) -> dict[date, WeekRate]:
    """Complete rejections ÷ rejections per week of rejection."""
    handoffs = feedback_handoffs(period, filters)
    split = rollup_split(RollupFact.HANDOFF, period)
    if split is not None:
        handoffs = handoffs.filter(split.raw_q("rejected_at"))
    rows = _grouped(
        handoffs.annotate(group_week=_week("rejected_at", period)),
        ("group_week",),
        rejected=Count("pk"),
        complete=Count("pk", filter=_feedback_complete()),
    )
    if split is not None:
        rolled = rolled_grouped(
            split,
            HandoffDay,
            filters,
            ("group_week",),
            ("feedback_rejected", "feedback_complete"),
        )
        rows = added(
            ("rejected", "complete"),
            rows,
            {
                key: {"rejected": row["feedback_rejected"], "complete": row["feedback_complete"]}
                for key, row in rolled.items()
            },
        )
    return _rates(rows, "complete", "rejected")


def weekly_results(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> dict[date, OpportunityResults]:
    """Win rate, deal size and cycle per week of closing (``opportunity_results_by``)."""
    return {
        row.group.id: row.results
        for row in opportunity_results_by(period, filters, by=GroupBy.WEEK)
    }


def weekly_open_pipeline(
    weeks: list[date], period: Period, filters: KpiFilters = NO_FILTERS
) -> dict[date, tuple[int, Decimal]]:
    """(open opportunities, open amount) at the end of each week. Pipeline is a stock: open at
    an instant = created before it − closed before it (a deal closes after it is created). The
    opportunity rollup's days give each week's created and closed, grouped by week in one query,
    added up to each week's end; the raw deals of the other days (dirty, or before the rollup's
    history) in one more, with a pair of conditional aggregates per week end."""
    zone = period.start.tzinfo
    ends = {
        week: datetime.combine(week + timedelta(days=7), time.min, tzinfo=zone) for week in weeks
    }
    if not ends:
        return {}
    latest = max(ends.values())
    history = Period(
        datetime.combine(latest.date() - timedelta(days=_HISTORY_DAYS), time.min, tzinfo=zone),
        latest,
    )
    split = rollup_split(RollupFact.OPPORTUNITY, history)
    created_raw, closed_raw = Q(created_at__lt=latest), Q(closed_at__lt=latest)
    if split is not None:
        created_raw &= Q(created_at__lt=split.period.start) | split.raw_q("created_at")
        closed_raw &= Q(closed_at__lt=split.period.start) | split.raw_q("closed_at")
    aggregates = {}
    for index, end in enumerate(ends.values()):
        created, closed = created_raw & Q(created_at__lt=end), closed_raw & Q(closed_at__lt=end)
        aggregates[f"count_{index}"] = Count("pk", filter=created) - Count("pk", filter=closed)
        aggregates[f"amount_{index}"] = Sum("amount", filter=created, default=ZERO) - Sum(
            "amount", filter=closed, default=ZERO
        )
    row = _grouped(_opportunities(filters).filter(created_raw | closed_raw), (), **aggregates)[()]
    open_at = {
        week: [row[f"count_{index}"], row[f"amount_{index}"]] for index, week in enumerate(ends)
    }
    if split is not None:
        rolled = rolled_grouped(
            split,
            OpportunityDay,
            filters,
            ("group_week",),
            ("created", "created_amount", "closed", "closed_amount"),
        )
        # A running total over the rolled weeks in order: each shown week takes every rolled
        # week up to its own (those ended by its end).
        net = sorted(
            (week, sums["created"] - sums["closed"], sums["created_amount"] - sums["closed_amount"])
            for (week,), sums in rolled.items()
        )
        count, amount, index = 0, ZERO, 0
        for week in sorted(ends):
            while index < len(net) and net[index][0] <= week:
                count, amount, index = count + net[index][1], amount + net[index][2], index + 1
            open_at[week][0] += count
            open_at[week][1] += amount
    return {
        week: (count, kpis.money(amount) or Decimal("0.00"))
        for week, (count, amount) in open_at.items()
    }


def typical_days_to_opportunity(
    period: Period, filters: KpiFilters = NO_FILTERS, *, definition: FunnelDefinition | None = None
) -> float | None:
    """The median days from a lead's creation to its first entry into the opportunity stage
    (or a later one), over the leads created in ``period`` that got there: how long a cohort
    takes to convert, and so how young a cohort still is "maturing". The cohort rollup keeps
    those seconds per day for the days it holds; the rest is read from the leads."""
    definition = definition or funnel_definition(at=min(period.end, timezone.now()))
    reached_at = reached_opportunity_at(definition)
    if reached_at is None:
        return None
    leads = (
        _leads(filters)
        .filter(_in("created_at", period))
        .annotate(reached_at=reached_at)
        .filter(reached_at__isnull=False)
    )
    seconds = SecondsBetween(F("created_at"), F("reached_at"))
    if connection.vendor == "postgresql":
        split = rollup_split(RollupFact.COHORT, period, funnel_keys=cohort_rules(definition))
        raw = leads if split is None else leads.filter(split.raw_q("created_at"))
        median = rolled_value_stats(
            split,
            CohortDay,
            filters,
            raw,
            {"days": RolledValues("opportunity_seconds", seconds)},
        )[()]["days"][0]
    else:  # SQLite, the embedded demo: no rollup, the median computed in Python
        median = _medians(leads, {"days": seconds}).get((), {}).get("days")
    return None if median is None else median / SECONDS_PER_DAY
