"""Opportunity and revenue KPIs: win rate, deal size, cycles, pipeline, velocity and lead
economics (docs/kpis.md, "Opportunities and revenue")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import (
    Avg,
    Case,
    Count,
    DateField,
    Expression,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Greatest, Least
from django.utils import timezone

from leads.choices import OpportunityStatus
from leads.models import (
    Campaign,
    Lead,
    Opportunity,
)
from metrics import kpis
from metrics.expressions import DaysBetween, SecondsBetween
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries.common import (
    SECONDS_PER_DAY,
    ZERO,
    FactPaths,
    GroupRef,
    SourceRef,
    _campaign_q,
    _group_order,
    _grouped,
    _grouped_by,
    _in,
    _leads,
    _medians,
    _opportunities,
    _scaled,
    _source_order,
    _source_ref,
)
from metrics.queries.rolled import (
    RolledValues,
    RollupSplit,
    added,
    rolled_grouped,
    rolled_value_stats,
    rollup_split,
)
from metrics.queries.shared import shared_read
from metrics.rollup_models import (
    CohortDay,
    OpenDealDirty,
    OpenDealRow,
    OpportunityDay,
    RollupFact,
    RollupState,
)

# --- Opportunities: win rate, deal size, sales cycle -----------------------------------------


@dataclass(frozen=True)
class OpportunityResults:
    """Opportunities closed in the period: win rate = won ÷ (won + lost); deal size = mean
    amount won; two cycles, in elapsed days:

    - the **lead cycle** (``median_cycle_days``, ``average_cycle_days``): from the lead's
      creation to the win, over won deals that have a lead (velocity uses its mean);
    - the **opportunity cycle**: from the opportunity's creation to its close, over every deal
      closed in the period, won or lost, with or without a lead
      (``median_opportunity_cycle_days``, ``average_opportunity_cycle_days``), and over the won
      ones alone (``median_won_opportunity_cycle_days``).
    """

    won: int
    lost: int
    win_rate: float | None
    won_amount: Decimal
    average_deal_size: Decimal | None
    median_cycle_days: float | None
    average_cycle_days: float | None
    median_opportunity_cycle_days: float | None = None
    average_opportunity_cycle_days: float | None = None
    median_won_opportunity_cycle_days: float | None = None


@dataclass(frozen=True)
class SourceOpportunityResults:
    source: SourceRef
    results: OpportunityResults


@dataclass(frozen=True)
class GroupOpportunityResults:
    group: GroupRef
    results: OpportunityResults


OPPORTUNITY_PATHS = FactPaths(lead="lead__", owner="owner", instant="closed_at")


def closed_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS, *, status: str | None = None
) -> QuerySet[Opportunity]:
    """Drill-down: opportunities closed (won or lost) in the period, optionally one status."""
    opportunities = _opportunities(filters).filter(
        _in("closed_at", period), status__in=[OpportunityStatus.WON, OpportunityStatus.LOST]
    )
    if status is not None:
        opportunities = opportunities.filter(status=status)
    return opportunities.select_related("lead__source", "owner").order_by("-closed_at", "-pk")


def _cycle_seconds() -> SecondsBetween:
    """The lead cycle: the lead's creation to the close."""
    return SecondsBetween(F("lead__created_at"), F("closed_at"))


def _opportunity_cycle_seconds() -> SecondsBetween:
    """The opportunity cycle: the opportunity's creation to its close."""
    return SecondsBetween(F("created_at"), F("closed_at"))


def _only(condition: Q, value) -> Case:
    """``value`` on the rows meeting ``condition``, NULL elsewhere (medians skip NULLs)."""
    return Case(When(condition, then=value), default=None, output_field=FloatField())


def opportunity_cycles() -> dict[str, tuple[Q, Expression]]:
    """The three cycles' deals (among those closed) and seconds, as the medians and means read
    them and as the opportunity rollup keeps them (``<name>_seconds``)."""
    won = Q(status=OpportunityStatus.WON)
    return {
        "lead_cycle": (won & Q(lead__isnull=False), _cycle_seconds()),
        "opportunity_cycle": (
            Q(status__in=[OpportunityStatus.WON, OpportunityStatus.LOST]),
            _opportunity_cycle_seconds(),
        ),
        "won_opportunity_cycle": (won, _opportunity_cycle_seconds()),
    }


_RESULT_COUNTS = {
    "won": Count("pk", filter=Q(status=OpportunityStatus.WON)),
    "lost": Count("pk", filter=Q(status=OpportunityStatus.LOST)),
    "won_amount": Sum("amount", filter=Q(status=OpportunityStatus.WON), default=ZERO),
}


def _opportunity_results_grouped(
    closed: QuerySet[Opportunity],
    group_by: Sequence[str],
    period: Period,
    filters: KpiFilters,
) -> dict[tuple, OpportunityResults]:
    """Opportunity results per group of ``closed``: the counts and sums, then the cycles'
    medians and means. The days the opportunity rollup holds are read from it (counts, and the
    cycles' values for the medians), the rest from the deals themselves."""
    split = rollup_split(RollupFact.OPPORTUNITY, period)
    raw = closed if split is None else closed.filter(split.raw_q("closed_at"))
    found = _grouped(raw, group_by, **_RESULT_COUNTS)
    if split is not None:
        found = added(
            tuple(_RESULT_COUNTS),
            found,
            rolled_grouped(split, OpportunityDay, filters, group_by, tuple(_RESULT_COUNTS)),
            group_by=group_by,
        )
    cycles = opportunity_cycles()
    if connection.vendor == "postgresql":
        stats = rolled_value_stats(
            split,
            OpportunityDay,
            filters,
            raw,
            {
                name: RolledValues(f"{name}_seconds", _only(deals, seconds))
                for name, (deals, seconds) in cycles.items()
            },
            group_by,
            means=True,
        )
    else:  # SQLite, the embedded demo: no rollup, and medians computed in Python
        medians = _medians(
            raw,
            {name: _only(deals, seconds) for name, (deals, seconds) in cycles.items()},
            group_by,
        )
        means = _grouped(
            raw,
            group_by,
            **{name: Avg(_only(deals, seconds)) for name, (deals, seconds) in cycles.items()},
        )
        stats = {
            key: {name: (medians[key][name], means[key][name]) for name in cycles} for key in means
        }
    none = dict.fromkeys(cycles, (None, None))

    def days(value: float | None) -> float | None:
        return _scaled(value, SECONDS_PER_DAY)

    results = {}
    for key, row in found.items():
        cycle = stats.get(key, none)
        won_amount = row["won_amount"] or ZERO
        results[key] = OpportunityResults(
            won=row["won"],
            lost=row["lost"],
            win_rate=kpis.rate(row["won"], row["won"] + row["lost"]),
            won_amount=kpis.money(won_amount) or ZERO,
            average_deal_size=kpis.money_per(won_amount, row["won"]),
            median_cycle_days=days(cycle["lead_cycle"][0]),
            average_cycle_days=days(cycle["lead_cycle"][1]),
            median_opportunity_cycle_days=days(cycle["opportunity_cycle"][0]),
            average_opportunity_cycle_days=days(cycle["opportunity_cycle"][1]),
            median_won_opportunity_cycle_days=days(cycle["won_opportunity_cycle"][0]),
        )
    return results


@shared_read
def opportunity_results(period: Period, filters: KpiFilters = NO_FILTERS) -> OpportunityResults:
    return _opportunity_results_grouped(closed_opportunities(period, filters), (), period, filters)[
        ()
    ]


@shared_read
def average_opportunity_cycle_days(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> float | None:
    """``opportunity_results``' average opportunity cycle alone (what a goal's forecast times
    its open pipeline by): the same mean, without the counts and the medians' sorts of every
    cycle."""
    name, (deals, seconds) = "opportunity_cycle", opportunity_cycles()["opportunity_cycle"]
    closed = closed_opportunities(period, filters)
    if connection.vendor == "postgresql":
        split = rollup_split(RollupFact.OPPORTUNITY, period)
        raw = closed if split is None else closed.filter(split.raw_q("closed_at"))
        stats = rolled_value_stats(
            split,
            OpportunityDay,
            filters,
            raw,
            {name: RolledValues(f"{name}_seconds", _only(deals, seconds))},
            fractions=(),
            means=True,
        )
        (mean,) = stats[()][name]
    else:  # SQLite, the embedded demo: no rollup
        mean = closed.order_by().aggregate(mean=Avg(_only(deals, seconds)))["mean"]
    return _scaled(mean, SECONDS_PER_DAY)


def opportunity_results_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> list[SourceOpportunityResults]:
    found = _opportunity_results_grouped(
        closed_opportunities(period, filters),
        ("lead__source_id", "lead__source__name"),
        period,
        filters,
    )
    rows = [SourceOpportunityResults(_source_ref(*key), value) for key, value in found.items()]
    return sorted(rows, key=lambda row: _source_order(row.source))


def opportunity_results_by(
    period: Period, filters: KpiFilters = NO_FILTERS, *, by: str
) -> list[GroupOpportunityResults]:
    """Opportunity results broken down ``by`` owner, team, source, campaign, tier or month (of
    the close, in the period's time zone): one GROUP BY, groups without closed deals absent."""
    closed, columns, ref = _grouped_by(
        closed_opportunities(period, filters), by, OPPORTUNITY_PATHS, period
    )
    found = _opportunity_results_grouped(closed, columns, period, filters)
    rows = [GroupOpportunityResults(ref(key), value) for key, value in found.items()]
    return sorted(rows, key=lambda row: _group_order(row.group))


# --- Pipeline and revenue --------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedOpportunities:
    count: int
    amount: Decimal


def opportunities_created(
    period: Period, filters: KpiFilters = NO_FILTERS, *, origin: str | None = None
) -> CreatedOpportunities:
    """Opportunities created in the period (``content_utilization`` counts the same deals), and
    their amount; with ``origin``, only those whose lead's source has that origin (marketing- or
    sales-sourced). The rolled-up days from the opportunity rollup, the rest from the deals."""
    created = _opportunities(filters).filter(_in("created_at", period))
    sourced = Q() if origin is None else Q(source__origin=origin)
    if origin is not None:
        created = created.filter(lead__source__origin=origin)
    split = rollup_split(RollupFact.OPPORTUNITY, period)
    if split is not None:
        created = created.filter(split.raw_q("created_at"))
    found = _grouped(created, (), created=Count("pk"), created_amount=Sum("amount", default=ZERO))
    if split is not None:
        rolled = rolled_grouped(
            split, OpportunityDay, filters, (), ("created", "created_amount"), where=sourced
        )
        found = added(("created", "created_amount"), found, rolled)
    row = found[()]
    return CreatedOpportunities(row["created"], kpis.money(row["created_amount"]) or ZERO)


@dataclass(frozen=True)
class PipelineRevenue:
    """Opportunities open at the period's end (now, for a period still running) and their
    amount; opportunities won in the period and theirs."""

    open_count: int
    open_amount: Decimal
    won_count: int
    won_amount: Decimal


EMPTY_PIPELINE = PipelineRevenue(0, ZERO, 0, ZERO)


@dataclass(frozen=True)
class SourcePipelineRevenue:
    source: SourceRef
    origin: str | None
    pipeline: PipelineRevenue


@dataclass(frozen=True)
class PipelineRevenueReport:
    as_of: datetime
    total: PipelineRevenue
    by_source: tuple[SourcePipelineRevenue, ...]
    # Keyed by Source.origin ("marketing", "sales"); None gathers leads without a source.
    by_origin: dict[str | None, PipelineRevenue]


def _pipeline_as_of(period: Period, now: datetime | None) -> datetime:
    return min(period.end, now or timezone.now())


def _open_at(as_of: datetime) -> Q:
    # Open at that instant: created before it, and not closed yet then. For a running period
    # this is simply "open now"; for a past one it is the pipeline as it stood at its end.
    return Q(created_at__lt=as_of) & (Q(closed_at__isnull=True) | Q(closed_at__gte=as_of))


def _won_in(period: Period) -> Q:
    return Q(status=OpportunityStatus.WON) & _in("closed_at", period)


def open_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> QuerySet[Opportunity]:
    """Drill-down: the opportunities open at the period's end (or now)."""
    return (
        _opportunities(filters)
        .filter(_open_at(_pipeline_as_of(period, now)))
        .select_related("lead__source", "owner")
        .order_by("-amount", "-pk")
    )


def _add(first: PipelineRevenue, second: PipelineRevenue) -> PipelineRevenue:
    return PipelineRevenue(
        first.open_count + second.open_count,
        first.open_amount + second.open_amount,
        first.won_count + second.won_count,
        first.won_amount + second.won_amount,
    )


# How far back the rollup answers for "open at": facts older than this are counted raw.
_HISTORY_DAYS = 3660
_PIPELINE_MEASURES = ("open_count", "open_amount", "won_count", "won_amount")


def _open_and_won(
    as_of: datetime, period: Period, filters: KpiFilters, group_by: Sequence[str]
) -> dict[tuple, dict]:
    """Open count and amount at ``as_of`` and won count and amount in ``period``, per group.

    From the daily rollup where it answers: open at ``as_of`` = created before it − closed
    before it (a deal closes after it is created), each summed over the rolled-up days, plus
    the raw facts on the other days (today, days waiting for a refresh, before the window)."""
    open_at, won_in = _open_at(as_of), _won_in(period)
    zone = period.start.tzinfo
    history = Period(
        datetime.combine(
            as_of.astimezone(zone).date() - timedelta(days=_HISTORY_DAYS), time.min, tzinfo=zone
        ),
        as_of,
    )
    opened_split = rollup_split(RollupFact.OPPORTUNITY, history)
    won_split = rollup_split(RollupFact.OPPORTUNITY, period)
    if opened_split is None and won_split is None:
        return _grouped(
            _opportunities(filters).filter(open_at | won_in),
            group_by,
            open_count=Count("pk", filter=open_at),
            open_amount=Sum("amount", filter=open_at),
            won_count=Count("pk", filter=won_in),
            won_amount=Sum("amount", filter=won_in),
        )

    def raw_window(field: str, split) -> Q:
        if split is None:
            return Q()
        return Q(**{f"{field}__lt": split.period.start}) | split.raw_q(field)

    created = Q(created_at__lt=as_of) & raw_window("created_at", opened_split)
    closed = Q(closed_at__lt=as_of) & raw_window("closed_at", opened_split)
    won_raw = won_in & raw_window("closed_at", won_split)
    raw = _grouped(
        _opportunities(filters).filter(created | closed | won_raw),
        group_by,
        created=Count("pk", filter=created),
        created_amount=Sum("amount", filter=created, default=ZERO),
        closed=Count("pk", filter=closed),
        closed_amount=Sum("amount", filter=closed, default=ZERO),
        won=Count("pk", filter=won_raw),
        won_amount=Sum("amount", filter=won_raw, default=ZERO),
    )
    parts = [raw]
    if opened_split is not None:
        parts.append(
            rolled_grouped(
                opened_split,
                OpportunityDay,
                filters,
                group_by,
                ("created", "created_amount", "closed", "closed_amount"),
            )
        )
    if won_split is not None:
        parts.append(
            rolled_grouped(won_split, OpportunityDay, filters, group_by, ("won", "won_amount"))
        )
    counts = ("created", "created_amount", "closed", "closed_amount", "won", "won_amount")
    return {
        key: {
            **{column: row[column] for column in group_by},
            "open_count": row["created"] - row["closed"],
            "open_amount": row["created_amount"] - row["closed_amount"],
            "won_count": row["won"],
            "won_amount": row["won_amount"],
        }
        for key, row in added(counts, *parts, group_by=group_by).items()
        # As the raw query: a group appears only with a deal open or won.
        if not group_by or row["created"] - row["closed"] or row["won"]
    }


@shared_read
def pipeline_and_revenue(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> PipelineRevenueReport:
    as_of = _pipeline_as_of(period, now)
    found = _open_and_won(
        as_of,
        period,
        filters,
        ("lead__source_id", "lead__source__name", "lead__source__origin"),
    )
    by_source = []
    by_origin: dict[str | None, PipelineRevenue] = {}
    total = EMPTY_PIPELINE
    # One row per source: totals and origins are sums of these few rows.
    for (source_id, name, origin), row in found.items():
        pipeline = PipelineRevenue(
            row["open_count"],
            kpis.money(row["open_amount"]) or ZERO,
            row["won_count"],
            kpis.money(row["won_amount"]) or ZERO,
        )
        by_source.append(SourcePipelineRevenue(_source_ref(source_id, name), origin, pipeline))
        by_origin[origin] = _add(by_origin.get(origin, EMPTY_PIPELINE), pipeline)
        total = _add(total, pipeline)
    by_source.sort(key=lambda row: _source_order(row.source))
    return PipelineRevenueReport(as_of, total, tuple(by_source), by_origin)


# --- Pipeline velocity -----------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineVelocity:
    """(open opportunities × win rate × average deal size) ÷ average sales cycle days: the
    revenue the pipeline is expected to bring per day."""

    open_opportunities: int
    win_rate: float | None
    average_deal_size: Decimal | None
    average_cycle_days: float | None
    per_day: float | None


def _velocity(open_count: int, results: OpportunityResults) -> PipelineVelocity:
    return PipelineVelocity(
        open_opportunities=open_count,
        win_rate=results.win_rate,
        average_deal_size=results.average_deal_size,
        average_cycle_days=results.average_cycle_days,
        per_day=kpis.pipeline_velocity(
            open_opportunities=open_count,
            win_rate=results.win_rate,
            average_deal_size=results.average_deal_size,
            average_cycle_days=results.average_cycle_days,
        ),
    )


@shared_read
def pipeline_velocity(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> PipelineVelocity:
    # The open pipeline's count and the win rate, deal size and cycle: the pipeline tile's and
    # the win-rate tile's reads, shared with them where a page shows those too.
    open_count = pipeline_and_revenue(period, filters, now=now).total.open_count
    return _velocity(open_count, opportunity_results(period, filters))


@dataclass(frozen=True)
class SourcePipelineVelocity:
    source: SourceRef
    velocity: PipelineVelocity


def pipeline_velocity_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> list[SourcePipelineVelocity]:
    pipeline = {
        row.source: row.pipeline for row in pipeline_and_revenue(period, filters, now=now).by_source
    }
    results = {row.source: row.results for row in opportunity_results_by_source(period, filters)}
    no_results = OpportunityResults(0, 0, None, ZERO, None, None, None)
    rows = [
        SourcePipelineVelocity(
            source,
            _velocity(
                pipeline.get(source, EMPTY_PIPELINE).open_count, results.get(source, no_results)
            ),
        )
        for source in pipeline.keys() | results.keys()
    ]
    return sorted(rows, key=lambda row: _source_order(row.source))


# --- Revenue per lead, cost per lead, CAC ----------------------------------------------------


@dataclass(frozen=True)
class LeadEconomics:
    """Per period: revenue won ÷ leads created; and, from campaigns with a known cost and known
    dates, their cost for the period (spread evenly over the campaign's days) ÷ their leads
    created in the period (cost per lead) and ÷ their leads won as customers in the period
    (CAC). The cost fields are None under tier or owner filters, which cost cannot follow."""

    leads: int
    won_amount: Decimal
    revenue_per_lead: Decimal | None
    campaign_cost: Decimal | None
    costed_leads: int | None
    new_customers: int | None
    cost_per_lead: Decimal | None
    customer_acquisition_cost: Decimal | None


@dataclass(frozen=True)
class SourceLeadEconomics:
    source: SourceRef
    economics: LeadEconomics


def _costed_campaign_q(campaign: str = "") -> Q:
    return Q(
        **{
            f"{campaign}cost__isnull": False,
            f"{campaign}starts_on__isnull": False,
            f"{campaign}ends_on__isnull": False,
        }
    )


def costed_campaign_leads(period: Period, filters: KpiFilters = NO_FILTERS) -> QuerySet[Lead]:
    """Drill-down: leads created in the period from campaigns whose cost and dates are known."""
    return (
        Lead.objects.filter(
            _in("created_at", period),
            _costed_campaign_q("campaign__"),
            _campaign_q(filters, "campaign__"),
        )
        .select_related("source", "campaign")
        .order_by("-created_at", "-pk")
    )


def _economics(
    leads: int,
    won_amount: Decimal,
    cost: Decimal | None,
    costed_leads: int | None,
    customers: int | None,
) -> LeadEconomics:
    return LeadEconomics(
        leads=leads,
        won_amount=won_amount,
        revenue_per_lead=kpis.money_per(won_amount, leads),
        campaign_cost=cost,
        costed_leads=costed_leads,
        new_customers=customers,
        cost_per_lead=None if cost is None else kpis.money_per(cost, costed_leads or 0),
        customer_acquisition_cost=None if cost is None else kpis.money_per(cost, customers or 0),
    )


def _leads_counted(
    leads: QuerySet[Lead],
    by: tuple[str, str],
    split: RollupSplit | None,
    filters: KpiFilters,
    where: Q | None = None,
) -> dict[tuple, dict]:
    """``leads`` (created in the period) counted per ``by`` (``n``): the cohort rollup's days
    (``split``: each day's leads, whatever stage they reached, its rows narrowed by
    ``filters`` and ``where``) and the raw leads of the rest."""
    if split is None:
        return _grouped(leads, by, n=Count("pk"))
    found = added(
        ("leads",),
        _grouped(leads.filter(split.raw_q("created_at")), by, leads=Count("pk")),
        rolled_grouped(split, CohortDay, filters, by, ("leads",), where=where),
        group_by=by,
    )
    return {key: {"n": row["leads"]} for key, row in found.items() if row["leads"]}


def lead_economics_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> list[SourceLeadEconomics]:
    """Revenue per lead by the lead's source; cost per lead and CAC by the campaign's source."""
    by_source = ("source_id", "source__name")

    def by_ref(found: dict[tuple, dict]) -> dict[SourceRef, dict]:
        return {_source_ref(*key): row for key, row in found.items()}

    cohorts = rollup_split(RollupFact.COHORT, period)
    created = _leads(filters).filter(_in("created_at", period))
    leads = by_ref(_leads_counted(created, by_source, cohorts, filters))
    # Won in the period by the lead's source: the pipeline report's, which a page shows too.
    won = {
        row.source: {"amount": row.pipeline.won_amount}
        for row in pipeline_and_revenue(period, filters).by_source
        if row.pipeline.won_count
    }
    costs, costed_leads, customers = {}, {}, {}
    if not filters.splits_campaign_cost:
        first_day = Value(period.first_day, output_field=DateField())
        last_day = Value(period.last_day, output_field=DateField())
        overlap_days = DaysBetween(Greatest("starts_on", first_day), Least("ends_on", last_day)) + 1
        campaign_days = DaysBetween("starts_on", "ends_on") + 1
        costs = _grouped(
            Campaign.objects.filter(
                _costed_campaign_q(),
                _campaign_q(filters),
                starts_on__lte=period.last_day,
                ends_on__gte=period.first_day,
            ),
            by_source,
            # Floats for the share of days: SQLite would divide integers as integers.
            cost=Sum(
                Cast("cost", FloatField())
                * Cast(overlap_days, FloatField())
                / Cast(campaign_days, FloatField())
            ),
        )
        # Per campaign source, from the cohort rollup too (read raw, a quarter's leads took
        # 100-370 ms of a pipeline page at 1M). The filters narrow the campaigns, not the
        # leads (a lead's source may not be its campaign's): a condition on the rows' campaign.
        costed_leads = _leads_counted(
            costed_campaign_leads(period, filters),
            ("campaign__source_id", "campaign__source__name"),
            cohorts,
            NO_FILTERS,
            where=_costed_campaign_q("campaign__") & _campaign_q(filters, "campaign__"),
        )
        customers = _grouped(
            Opportunity.objects.filter(
                _won_in(period),
                _costed_campaign_q("lead__campaign__"),
                _campaign_q(filters, "lead__campaign__"),
            ),
            ("lead__campaign__source_id", "lead__campaign__source__name"),
            n=Count("lead", distinct=True),
        )
    costs, costed_leads, customers = by_ref(costs), by_ref(costed_leads), by_ref(customers)
    cost_known = not filters.splits_campaign_cost

    def count(found: dict[SourceRef, dict], key: SourceRef) -> int:
        return found[key]["n"] if key in found else 0

    rows = []
    for key in leads.keys() | won.keys() | costs.keys() | costed_leads.keys() | customers.keys():
        cost = kpis.money(costs[key]["cost"]) if key in costs else ZERO
        economics = _economics(
            leads=count(leads, key),
            won_amount=kpis.money(won[key]["amount"]) if key in won else ZERO,
            cost=cost if cost_known else None,
            costed_leads=count(costed_leads, key) if cost_known else None,
            customers=count(customers, key) if cost_known else None,
        )
        rows.append(SourceLeadEconomics(key, economics))
    return sorted(rows, key=lambda row: _source_order(row.source))


def lead_economics(period: Period, filters: KpiFilters = NO_FILTERS) -> LeadEconomics:
    """The whole of ``lead_economics_by_source``: its counts and amounts add up."""
    return lead_economics_total(lead_economics_by_source(period, filters), filters)


def lead_economics_total(
    by_source: Sequence[SourceLeadEconomics], filters: KpiFilters
) -> LeadEconomics:
    """``lead_economics`` from the by-source rows already read (a page shows both)."""
    rows = [row.economics for row in by_source]
    leads = sum(row.leads for row in rows)
    won_amount = sum((row.won_amount for row in rows), ZERO)
    if filters.splits_campaign_cost:
        return _economics(leads, won_amount, cost=None, costed_leads=None, customers=None)
    return _economics(
        leads,
        won_amount,
        cost=sum((row.campaign_cost for row in rows), ZERO),
        costed_leads=sum(row.costed_leads for row in rows),
        customers=sum(row.new_customers for row in rows),
    )


# The open deals' lead stages from the rows kept per deal (``metrics.open_deals``: an open
# opportunity's row holds its lead's stage), a hash of ~11,000 narrow rows at 1M leads, instead
# of a probe of the lead table per deal. A deal without a kept row, or whose lead was marked
# since the rows' last refresh (its stage may have moved), or every deal while the rows are not
# built, has its lead probed as before.
_OPEN_BY_LEAD_STAGE_SQL = f"""
WITH kept AS MATERIALIZED (
    SELECT k.deal_id, k.lead_id, k.lead_stage FROM {OpenDealRow._meta.db_table} k
    WHERE k.kind = 'opportunity' AND k.objection_id IS NULL
      AND EXISTS (SELECT 1 FROM {RollupState._meta.db_table}
                  WHERE fact = '{RollupFact.OPEN_DEALS.value}' AND built)
      AND k.lead_id NOT IN (SELECT lead_id FROM {OpenDealDirty._meta.db_table})
)
SELECT COALESCE(k.lead_stage, (SELECT l.stage FROM {Lead._meta.db_table} l
                               WHERE l.id = d.lead_id)) AS lead_stage,
       SUM(d.amount)
FROM ({{deals}}) d
LEFT JOIN kept k ON k.deal_id = d.id AND k.lead_id = d.lead_id
GROUP BY 1
"""


def open_amount_by_lead_stage(deals: QuerySet[Opportunity]) -> dict[str | None, Decimal]:
    """The amount of ``deals`` (open opportunities) by their lead's stage now; None for the
    deals without a lead."""
    deals = deals.order_by().values("id", "lead_id", "amount")
    db = connections[deals.db]
    if db.vendor != "postgresql":  # no kept rows: each deal's lead probed by its key
        lead_stage = Subquery(Lead.objects.filter(pk=OuterRef("lead_id")).values("stage"))
        rows = deals.values(lead_stage=lead_stage).annotate(total=Sum("amount"))
        return {row["lead_stage"]: row["total"] or ZERO for row in rows}
    try:
        sql, params = deals.query.sql_with_params()
    except EmptyResultSet:
        return {}
    with db.cursor() as cursor:
        cursor.execute(_OPEN_BY_LEAD_STAGE_SQL.format(deals=sql), params)
        return {stage: total or ZERO for stage, total in cursor.fetchall()}
