"""KPI reads: SQL aggregates over the pipeline's facts, returned as small frozen dataclasses.

Every KPI takes a ``Period`` and ``KpiFilters`` (``metrics.kpis``). The database counts, sums
and ranks; the arithmetic on the results (rates, funnels, velocity) is ``metrics.kpis``. Each
KPI has a drill-down function returning the queryset of the rows behind its number, so a view
can list them and both teams can check any figure. Definitions: ``docs/kpis.md``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connections
from django.db.models import (
    Avg,
    Case,
    Count,
    DateField,
    Exists,
    Expression,
    F,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Greatest, Least, Trim
from django.utils import timezone

from leads.choices import HandoffOutcome, OpportunityStatus
from leads.defaults import DEFAULT_STAGES, FUNNEL_STAGE_KEYS
from leads.models import (
    Campaign,
    ContentAsset,
    EngagementEvent,
    Handoff,
    Lead,
    LeadActivity,
    Opportunity,
    SalesRep,
    StageTransition,
)
from leads.selectors import lifecycle_at
from metrics import kpis
from metrics.expressions import DaysBetween, PercentileCont, SecondsBetween
from metrics.kpis import NO_FILTERS, CohortFunnel, KpiFilters, Period

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


# --- Lead acceptance -------------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    """Accepted ÷ (accepted + rejected) over handoffs assigned in the period; the pending ones
    are shown beside the rate, not counted in it."""

    accepted: int
    rejected: int
    pending: int
    rate: float | None


@dataclass(frozen=True)
class SourceAcceptance:
    source: SourceRef
    acceptance: Acceptance


_ACCEPTANCE_COUNTS = {
    "accepted": Count("pk", filter=Q(outcome=HandoffOutcome.ACCEPTED)),
    "rejected": Count("pk", filter=Q(outcome=HandoffOutcome.REJECTED)),
    "pending": Count("pk", filter=Q(outcome=HandoffOutcome.PENDING)),
}


def _acceptance(row: dict) -> Acceptance:
    accepted, rejected = row["accepted"], row["rejected"]
    return Acceptance(accepted, rejected, row["pending"], kpis.rate(accepted, accepted + rejected))


def acceptance_handoffs(
    period: Period, filters: KpiFilters = NO_FILTERS, *, outcome: str | None = None
) -> QuerySet[Handoff]:
    """Drill-down: the handoffs assigned in the period (optionally of one outcome)."""
    handoffs = _handoffs(filters).filter(_in("assigned_at", period))
    if outcome is not None:
        handoffs = handoffs.filter(outcome=outcome)
    return handoffs.select_related("lead__source", "assignee", "reject_reason").order_by(
        "-assigned_at", "-pk"
    )


def lead_acceptance(period: Period, filters: KpiFilters = NO_FILTERS) -> Acceptance:
    found = _grouped(acceptance_handoffs(period, filters), (), **_ACCEPTANCE_COUNTS)
    return _acceptance(found[()])


def lead_acceptance_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> list[SourceAcceptance]:
    found = _grouped(
        acceptance_handoffs(period, filters),
        ("lead__source_id", "lead__source__name"),
        **_ACCEPTANCE_COUNTS,
    )
    rows = [SourceAcceptance(_source_ref(*key), _acceptance(row)) for key, row in found.items()]
    return sorted(rows, key=lambda row: _source_order(row.source))


# --- Lead response time ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseTime:
    """First response − assignment in business hours of the handoff's SLA calendar, over the
    handoffs assigned in the period that have a response; ``unanswered``: those without one."""

    answered: int
    unanswered: int
    median_hours: float | None
    p90_hours: float | None


def response_time_handoffs(
    period: Period, filters: KpiFilters = NO_FILTERS, *, answered: bool | None = None
) -> QuerySet[Handoff]:
    """Drill-down: handoffs assigned in the period; ``answered`` narrows to those with a timed
    response (True) or with no response yet (False)."""
    handoffs = acceptance_handoffs(period, filters)
    if answered is True:
        handoffs = handoffs.filter(response_business_seconds__isnull=False)
    elif answered is False:
        handoffs = handoffs.filter(first_response_at__isnull=True)
    return handoffs


def response_time(period: Period, filters: KpiFilters = NO_FILTERS) -> ResponseTime:
    handoffs = acceptance_handoffs(period, filters)
    counts = handoffs.order_by().aggregate(
        answered=Count("pk", filter=Q(response_business_seconds__isnull=False)),
        unanswered=Count("pk", filter=Q(first_response_at__isnull=True)),
    )
    median, p90 = _percentiles(
        handoffs.filter(response_business_seconds__isnull=False),
        F("response_business_seconds"),
        (0.5, 0.9),
    )[()]
    return ResponseTime(
        answered=counts["answered"],
        unanswered=counts["unanswered"],
        median_hours=_scaled(median, SECONDS_PER_HOUR),
        p90_hours=_scaled(p90, SECONDS_PER_HOUR),
    )


# --- SLA compliance --------------------------------------------------------------------------


class SlaClock:
    RESPONSE = "response"
    ACCEPTANCE = "acceptance"


class SlaStatus:
    MET = "met"
    MISSED = "missed"
    OPEN = "open"


@dataclass(frozen=True)
class SlaResult:
    """One clock over the handoffs whose due time falls in the period: ``met`` on time,
    ``missed`` late or still not done past due, ``open`` not done and not yet due (left out of
    the rate until it resolves). Rate = met ÷ (met + missed)."""

    met: int
    missed: int
    open: int
    rate: float | None


@dataclass(frozen=True)
class SlaCompliance:
    response: SlaResult
    acceptance: SlaResult


@dataclass(frozen=True)
class RepSlaCompliance:
    rep_id: int | None
    rep_name: str
    compliance: SlaCompliance


@dataclass(frozen=True)
class SourceSlaCompliance:
    source: SourceRef
    compliance: SlaCompliance


def _sla_conditions(now: datetime) -> dict[str, dict[str, Q]]:
    decided_on_time = Q(accepted_at__lte=F("accept_due_at")) | Q(
        rejected_at__lte=F("accept_due_at")
    )
    decided_late = Q(accepted_at__gt=F("accept_due_at")) | Q(rejected_at__gt=F("accept_due_at"))
    undecided = Q(outcome=HandoffOutcome.PENDING)
    return {
        SlaClock.RESPONSE: {
            SlaStatus.MET: Q(first_response_at__lte=F("response_due_at")),
            SlaStatus.MISSED: Q(first_response_at__gt=F("response_due_at"))
            | Q(first_response_at__isnull=True, response_due_at__lt=now),
            SlaStatus.OPEN: Q(first_response_at__isnull=True, response_due_at__gte=now),
        },
        SlaClock.ACCEPTANCE: {
            SlaStatus.MET: decided_on_time,
            SlaStatus.MISSED: decided_late | (undecided & Q(accept_due_at__lt=now)),
            SlaStatus.OPEN: undecided & Q(accept_due_at__gte=now),
        },
    }


_DUE_FIELDS = {SlaClock.RESPONSE: "response_due_at", SlaClock.ACCEPTANCE: "accept_due_at"}


def sla_handoffs(
    period: Period,
    filters: KpiFilters = NO_FILTERS,
    *,
    clock: str = SlaClock.RESPONSE,
    status: str | None = None,
    now: datetime | None = None,
) -> QuerySet[Handoff]:
    """Drill-down: handoffs whose ``clock`` was due in the period (optionally met / missed /
    open as of ``now``)."""
    handoffs = _handoffs(filters).filter(_in(_DUE_FIELDS[clock], period))
    if status is not None:
        handoffs = handoffs.filter(_sla_conditions(now or timezone.now())[clock][status])
    return handoffs.select_related("lead__source", "assignee").order_by(_DUE_FIELDS[clock], "pk")


def _sla_by(
    period: Period, filters: KpiFilters, group_by: Sequence[str], now: datetime | None
) -> dict[tuple, SlaCompliance]:
    conditions = _sla_conditions(now or timezone.now())
    aggregates = {}
    for clock, due_field in _DUE_FIELDS.items():
        due_in_period = _in(due_field, period)
        for status, condition in conditions[clock].items():
            aggregates[f"{clock}_{status}"] = Count("pk", filter=due_in_period & condition)
    handoffs = _handoffs(filters).filter(
        _in("response_due_at", period) | _in("accept_due_at", period)
    )

    def result(row: dict, clock: str) -> SlaResult:
        met, missed = row[f"{clock}_{SlaStatus.MET}"], row[f"{clock}_{SlaStatus.MISSED}"]
        return SlaResult(
            met, missed, row[f"{clock}_{SlaStatus.OPEN}"], kpis.rate(met, met + missed)
        )

    return {
        key: SlaCompliance(result(row, SlaClock.RESPONSE), result(row, SlaClock.ACCEPTANCE))
        for key, row in _grouped(handoffs, group_by, **aggregates).items()
    }


def sla_compliance(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> SlaCompliance:
    return _sla_by(period, filters, (), now)[()]


def sla_compliance_by_rep(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> list[RepSlaCompliance]:
    found = _sla_by(
        period,
        filters,
        ("assignee_id", "assignee__first_name", "assignee__last_name", "assignee__username"),
        now,
    )
    rows = [
        RepSlaCompliance(
            rep_id=rep_id,
            rep_name=f"{first or ''} {last or ''}".strip() or username or "Unassigned",
            compliance=compliance,
        )
        for (rep_id, first, last, username), compliance in found.items()
    ]
    return sorted(rows, key=lambda row: (row.rep_id is None, row.rep_name.lower()))


def sla_compliance_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> list[SourceSlaCompliance]:
    found = _sla_by(period, filters, ("lead__source_id", "lead__source__name"), now)
    rows = [SourceSlaCompliance(_source_ref(*key), value) for key, value in found.items()]
    return sorted(rows, key=lambda row: _source_order(row.source))


# --- Feedback loop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackLoop:
    """Rejected handoffs that tell marketing why (a reason, plus a note where the reason asks
    for one) ÷ handoffs rejected in the period."""

    rejected: int
    complete: int
    rate: float | None


def _feedback_complete() -> Q:
    return Q(reject_reason__isnull=False) & (
        Q(reject_reason__requires_note=False) | ~Q(trimmed_note="")
    )


def feedback_handoffs(
    period: Period, filters: KpiFilters = NO_FILTERS, *, complete: bool | None = None
) -> QuerySet[Handoff]:
    """Drill-down: handoffs rejected in the period (optionally only complete / incomplete)."""
    handoffs = (
        _handoffs(filters)
        .filter(_in("rejected_at", period), outcome=HandoffOutcome.REJECTED)
        .annotate(trimmed_note=Trim("reject_note"))
    )
    if complete is True:
        handoffs = handoffs.filter(_feedback_complete())
    elif complete is False:
        handoffs = handoffs.exclude(_feedback_complete())
    return handoffs.select_related("lead__source", "assignee", "reject_reason").order_by(
        "-rejected_at", "-pk"
    )


def feedback_loop_completion(period: Period, filters: KpiFilters = NO_FILTERS) -> FeedbackLoop:
    row = _grouped(
        feedback_handoffs(period, filters),
        (),
        rejected=Count("pk"),
        complete=Count("pk", filter=_feedback_complete()),
    )[()]
    return FeedbackLoop(
        row["rejected"], row["complete"], kpis.rate(row["complete"], row["rejected"])
    )


# --- Re-qualification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Requalification:
    """Handoffs assigned in the period that re-qualify a lead: one handed to sales again at a
    stage where an earlier handoff of the same lead had been rejected. ``rate`` = re-qualified ÷
    handoffs opened; a high rate says the rejection or the scoring is off."""

    opened: int
    requalified: int
    rate: float | None


def _rejected_before() -> Exists:
    """An earlier handoff of the same lead at the same stage, rejected no later than this one
    was opened (the rejection may be outside the period and under any assignee)."""
    return Exists(
        Handoff.objects.filter(
            lead_id=OuterRef("lead_id"),
            stage=OuterRef("stage"),
            outcome=HandoffOutcome.REJECTED,
            rejected_at__lte=OuterRef("assigned_at"),
        ).exclude(pk=OuterRef("pk"))
    )


def requalified_handoffs(period: Period, filters: KpiFilters = NO_FILTERS) -> QuerySet[Handoff]:
    """Drill-down: the re-qualified handoffs assigned in the period."""
    return acceptance_handoffs(period, filters).filter(_rejected_before())


def requalification(period: Period, filters: KpiFilters = NO_FILTERS) -> Requalification:
    row = _grouped(
        acceptance_handoffs(period, filters),
        (),
        opened=Count("pk"),
        requalified=Count("pk", filter=Q(_rejected_before())),
    )[()]
    return Requalification(
        row["opened"], row["requalified"], kpis.rate(row["requalified"], row["opened"])
    )


# --- Cohort funnel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStageRef:
    key: str
    name: str


@dataclass(frozen=True)
class FunnelDefinition:
    """The funnel's stages in order, and which of them are "opportunity" and "won"."""

    stages: tuple[FunnelStageRef, ...]
    opportunity_key: str | None
    won_key: str | None

    @property
    def keys(self) -> list[str]:
        return [stage.key for stage in self.stages]


def funnel_definition(*, at: datetime | None = None) -> FunnelDefinition:
    """The lifecycle in force at ``at``: its open stages and its won stage, in order (nurture,
    disqualified and lost are exits, not funnel steps). Falls back to the default stages."""
    lifecycle = lifecycle_at(at)
    if not lifecycle.funnel:
        names = {row[0]: row[1] for row in DEFAULT_STAGES}
        refs = tuple(FunnelStageRef(key, names[key]) for key in FUNNEL_STAGE_KEYS)
        return FunnelDefinition(refs, "opportunity", FUNNEL_STAGE_KEYS[-1])
    refs = tuple(FunnelStageRef(key, lifecycle.names[key]) for key in lifecycle.funnel)
    return FunnelDefinition(refs, lifecycle.opportunity_key, lifecycle.won_key)


def _position_of(field: str, keys: Sequence[str]) -> Case:
    """The funnel position (0 = first stage) of the stage key in ``field``; NULL off-funnel."""
    return Case(
        *(When(**{field: key}, then=Value(index)) for index, key in enumerate(keys)),
        default=None,
        output_field=IntegerField(),
    )


def _furthest_position(keys: Sequence[str]) -> Expression:
    """How far down the funnel a lead ever got: the highest position among the stages its
    history entered or left, and its current stage. Later moves to nurture, disqualified or
    lost change nothing, and a lead that jumped a stage is past it all the same."""
    history = (
        StageTransition.objects.filter(lead=OuterRef("pk"))
        .order_by()
        .values("lead")
        .annotate(
            furthest=Greatest(
                Coalesce(Max(_position_of("to_stage", keys)), 0),
                Coalesce(Max(_position_of("from_stage", keys)), 0),
            )
        )
        .values("furthest")
    )
    return Greatest(
        Coalesce(Subquery(history, output_field=IntegerField()), 0),
        Coalesce(_position_of("stage", keys), 0),
    )


def _funnel_as_of(period: Period) -> datetime:
    return min(period.end, timezone.now())


def cohort_leads(
    period: Period,
    filters: KpiFilters = NO_FILTERS,
    *,
    reached: str | None = None,
    stopped_at: str | None = None,
    definition: FunnelDefinition | None = None,
) -> QuerySet[Lead]:
    """Drill-down: leads created in the period, annotated with ``furthest_position``; narrowed
    to those that ``reached`` a stage (or went further), or whose furthest stage is
    ``stopped_at``."""
    definition = definition or funnel_definition(at=_funnel_as_of(period))
    keys = definition.keys
    leads = (
        _leads(filters)
        .filter(_in("created_at", period))
        .annotate(furthest_position=_furthest_position(keys))
    )
    if reached is not None:
        leads = leads.filter(furthest_position__gte=keys.index(reached))
    if stopped_at is not None:
        leads = leads.filter(furthest_position=keys.index(stopped_at))
    return leads.select_related("source", "campaign", "owner").order_by("-created_at", "-pk")


@dataclass(frozen=True)
class SourceFunnel:
    source: SourceRef
    funnel: CohortFunnel
    lead_to_opportunity_rate: float | None
    opportunity_to_won_rate: float | None


@dataclass(frozen=True)
class ConversionBySource:
    stages: tuple[FunnelStageRef, ...]
    overall: SourceFunnel
    by_source: tuple[SourceFunnel, ...]


def _source_funnel(
    source: SourceRef, definition: FunnelDefinition, counts: dict[str, int]
) -> SourceFunnel:
    funnel = kpis.cohort_funnel(definition.keys, counts)
    first, opportunity, won = definition.keys[0], definition.opportunity_key, definition.won_key
    return SourceFunnel(
        source=source,
        funnel=funnel,
        lead_to_opportunity_rate=funnel.rate_between(first, opportunity) if opportunity else None,
        opportunity_to_won_rate=(
            funnel.rate_between(opportunity, won) if opportunity and won else None
        ),
    )


def conversion_by_source(period: Period, filters: KpiFilters = NO_FILTERS) -> ConversionBySource:
    """The cohort funnel of leads created in the period, overall and per source (also gives
    lead → opportunity and opportunity → won rates of that cohort)."""
    definition = funnel_definition(at=_funnel_as_of(period))
    keys = definition.keys
    rows = (
        cohort_leads(period, filters, definition=definition)
        .order_by()
        .values("source_id", "source__name", "furthest_position")
        .annotate(leads=Count("pk"))
    )
    per_source: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overall: dict[str, int] = defaultdict(int)
    for row in rows:  # at most sources × stages rows
        key = keys[row["furthest_position"]]
        per_source[(row["source_id"], row["source__name"])][key] += row["leads"]
        overall[key] += row["leads"]
    by_source = sorted(
        (
            _source_funnel(_source_ref(*source), definition, counts)
            for source, counts in per_source.items()
        ),
        key=lambda row: _source_order(row.source),
    )
    return ConversionBySource(
        stages=definition.stages,
        overall=_source_funnel(SourceRef(None, "All sources"), definition, overall),
        by_source=tuple(by_source),
    )


# --- Opportunities: win rate, deal size, sales cycle -----------------------------------------


@dataclass(frozen=True)
class OpportunityResults:
    """Opportunities closed in the period: win rate = won ÷ (won + lost); deal size = mean
    amount won; sales cycle = days from the lead's creation to the win."""

    won: int
    lost: int
    win_rate: float | None
    won_amount: Decimal
    average_deal_size: Decimal | None
    median_cycle_days: float | None
    average_cycle_days: float | None


@dataclass(frozen=True)
class SourceOpportunityResults:
    source: SourceRef
    results: OpportunityResults


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
    return SecondsBetween(F("lead__created_at"), F("closed_at"))


def _opportunity_results_by(
    period: Period, filters: KpiFilters, group_by: Sequence[str]
) -> dict[tuple, OpportunityResults]:
    closed = closed_opportunities(period, filters)
    won = Q(status=OpportunityStatus.WON)
    won_with_lead = won & Q(lead__isnull=False)
    found = _grouped(
        closed,
        group_by,
        won=Count("pk", filter=won),
        lost=Count("pk", filter=Q(status=OpportunityStatus.LOST)),
        won_amount=Sum("amount", filter=won),
        average_deal_size=Avg("amount", filter=won),
        average_cycle_seconds=Avg(_cycle_seconds(), filter=won_with_lead),
    )
    medians = _percentiles(closed.filter(won_with_lead), _cycle_seconds(), (0.5,), group_by)
    return {
        key: OpportunityResults(
            won=row["won"],
            lost=row["lost"],
            win_rate=kpis.rate(row["won"], row["won"] + row["lost"]),
            won_amount=kpis.money(row["won_amount"]) or ZERO,
            average_deal_size=kpis.money(row["average_deal_size"]),
            median_cycle_days=_scaled(medians.get(key, (None,))[0], SECONDS_PER_DAY),
            average_cycle_days=_scaled(row["average_cycle_seconds"], SECONDS_PER_DAY),
        )
        for key, row in found.items()
    }


def opportunity_results(period: Period, filters: KpiFilters = NO_FILTERS) -> OpportunityResults:
    return _opportunity_results_by(period, filters, ())[()]


def opportunity_results_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> list[SourceOpportunityResults]:
    found = _opportunity_results_by(period, filters, ("lead__source_id", "lead__source__name"))
    rows = [SourceOpportunityResults(_source_ref(*key), value) for key, value in found.items()]
    return sorted(rows, key=lambda row: _source_order(row.source))


# --- Pipeline and revenue --------------------------------------------------------------------


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


def pipeline_and_revenue(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> PipelineRevenueReport:
    as_of = _pipeline_as_of(period, now)
    open_at, won_in = _open_at(as_of), _won_in(period)
    found = _grouped(
        _opportunities(filters).filter(open_at | won_in),
        ("lead__source_id", "lead__source__name", "lead__source__origin"),
        open_count=Count("pk", filter=open_at),
        open_amount=Sum("amount", filter=open_at),
        won_count=Count("pk", filter=won_in),
        won_amount=Sum("amount", filter=won_in),
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


def pipeline_velocity(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> PipelineVelocity:
    open_count = (
        _opportunities(filters).filter(_open_at(_pipeline_as_of(period, now))).order_by().count()
    )
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


def lead_economics_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> list[SourceLeadEconomics]:
    """Revenue per lead by the lead's source; cost per lead and CAC by the campaign's source."""
    by_source = ("source_id", "source__name")
    leads = _grouped(_leads(filters).filter(_in("created_at", period)), by_source, n=Count("pk"))
    won = _grouped(
        _opportunities(filters).filter(_won_in(period)),
        ("lead__source_id", "lead__source__name"),
        amount=Sum("amount"),
    )
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
        costed_leads = _grouped(
            costed_campaign_leads(period, filters),
            ("campaign__source_id", "campaign__source__name"),
            n=Count("pk"),
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
    cost_known = not filters.splits_campaign_cost

    def count(found: dict[tuple, dict], key: tuple) -> int:
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
        rows.append(SourceLeadEconomics(_source_ref(*key), economics))
    return sorted(rows, key=lambda row: _source_order(row.source))


def lead_economics(period: Period, filters: KpiFilters = NO_FILTERS) -> LeadEconomics:
    """The whole of ``lead_economics_by_source``: its counts and amounts add up."""
    rows = [row.economics for row in lead_economics_by_source(period, filters)]
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


# --- Content utilization ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContentUtilization:
    """How sales uses marketing's content.

    Of the leads handed off in the period, those sales shared at least one asset with; of the
    opportunities created in the period, those whose lead sales shared an asset with, and those
    whose lead engaged with an asset before the opportunity was created.
    """

    handed_off_leads: int
    handed_off_leads_with_share: int
    handed_off_share_rate: float | None
    opportunities: int
    opportunities_with_share: int
    opportunity_share_rate: float | None
    opportunities_with_prior_engagement: int
    prior_engagement_rate: float | None


def _shared_with(lead_ref: OuterRef) -> Exists:
    # From the (small) table of shared assets to the activity, not from every activity of the
    # lead: breach and touch history makes the latter large.
    shares = LeadActivity.content_assets.through.objects.filter(leadactivity__lead=lead_ref)
    return Exists(shares)


def handed_off_leads(period: Period, filters: KpiFilters = NO_FILTERS) -> QuerySet[Lead]:
    """Drill-down: leads with a handoff assigned in the period (to the filtered owners)."""
    handoffs = Handoff.objects.filter(
        _in("assigned_at", period), _owner_q(filters, "assignee"), lead=OuterRef("pk")
    )
    return (
        Lead.objects.filter(_lead_q(filters), Exists(handoffs))
        .annotate(asset_shared=_shared_with(OuterRef("pk")))
        .select_related("source", "owner")
        .order_by("-created_at", "-pk")
    )


def created_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> QuerySet[Opportunity]:
    """Drill-down: opportunities created in the period, annotated with ``asset_shared`` and
    ``asset_engaged_before`` (their lead engaged with an asset before the opportunity)."""
    engaged_before = EngagementEvent.objects.filter(
        lead=OuterRef("lead_id"),
        content_asset__isnull=False,
        occurred_at__lt=OuterRef("created_at"),
    )
    return (
        _opportunities(filters)
        .filter(_in("created_at", period))
        .annotate(
            asset_shared=_shared_with(OuterRef("lead_id")),
            asset_engaged_before=Exists(engaged_before),
        )
        .select_related("lead__source", "owner")
        .order_by("-created_at", "-pk")
    )


def content_utilization(period: Period, filters: KpiFilters = NO_FILTERS) -> ContentUtilization:
    # Counted from the handoffs of the period (the same leads as ``handed_off_leads``), with
    # the leads sales shared content with as one set: no per-lead subquery over every lead.
    leads_with_shares = LeadActivity.content_assets.through.objects.values("leadactivity__lead_id")
    leads = (
        _handoffs(filters)
        .filter(_in("assigned_at", period))
        .order_by()
        .aggregate(
            total=Count("lead_id", distinct=True),
            shared=Count("lead_id", distinct=True, filter=Q(lead_id__in=leads_with_shares)),
        )
    )
    opportunities = (
        created_opportunities(period, filters)
        .order_by()
        .aggregate(
            total=Count("pk"),
            shared=Count("pk", filter=Q(asset_shared=True)),
            engaged=Count("pk", filter=Q(asset_engaged_before=True)),
        )
    )
    return ContentUtilization(
        handed_off_leads=leads["total"],
        handed_off_leads_with_share=leads["shared"],
        handed_off_share_rate=kpis.rate(leads["shared"], leads["total"]),
        opportunities=opportunities["total"],
        opportunities_with_share=opportunities["shared"],
        opportunity_share_rate=kpis.rate(opportunities["shared"], opportunities["total"]),
        opportunities_with_prior_engagement=opportunities["engaged"],
        prior_engagement_rate=kpis.rate(opportunities["engaged"], opportunities["total"]),
    )


@dataclass(frozen=True)
class AssetUse:
    asset_id: int
    title: str
    asset_type: str
    funnel_stage: str
    shares: int  # sales activities in the period that shared it
    leads: int  # distinct leads it was shared with


@dataclass(frozen=True)
class AssetUsage:
    """Per funnel stage (tofu, mofu, bofu), the assets sales shared most in the period, most
    first; and the assets sales never shared in the period."""

    most_used: dict[str, tuple[AssetUse, ...]]
    unused: tuple[AssetUse, ...]


def _share_q(period: Period, filters: KpiFilters, activity: str = "") -> Q:
    return (
        _in(f"{activity}occurred_at", period)
        & _lead_q(filters, f"{activity}lead__")
        & _owner_q(filters, f"{activity}actor")
    )


def asset_shares(
    period: Period, filters: KpiFilters = NO_FILTERS, *, asset_id: int | None = None
) -> QuerySet[LeadActivity]:
    """Drill-down: sales activities in the period that shared an asset (or this asset)."""
    activities = LeadActivity.objects.filter(_share_q(period, filters))
    if asset_id is None:
        activities = activities.filter(content_assets__isnull=False).distinct()
    else:
        activities = activities.filter(content_assets=asset_id)
    return activities.select_related("lead", "actor").order_by("-occurred_at", "-pk")


def asset_usage(period: Period, filters: KpiFilters = NO_FILTERS, *, top: int = 5) -> AssetUsage:
    shared = _share_q(period, filters, "shared_in_activities__")
    rows = (
        ContentAsset.objects.order_by()
        .values("pk", "title", "asset_type", "funnel_stage")
        .annotate(
            shares=Count("shared_in_activities", filter=shared),
            leads=Count("shared_in_activities__lead", filter=shared, distinct=True),
        )
    )
    # One row per asset (a library of tens or hundreds): ranking them is presentation.
    assets = sorted(
        (
            AssetUse(
                row["pk"],
                row["title"],
                row["asset_type"],
                row["funnel_stage"],
                row["shares"],
                row["leads"],
            )
            for row in rows
        ),
        key=lambda asset: (-asset.shares, -asset.leads, asset.title.lower(), asset.asset_id),
    )
    most_used: dict[str, list[AssetUse]] = defaultdict(list)
    for asset in assets:
        if asset.shares and len(most_used[asset.funnel_stage]) < top:
            most_used[asset.funnel_stage].append(asset)
    return AssetUsage(
        most_used={stage: tuple(used) for stage, used in most_used.items()},
        unused=tuple(asset for asset in assets if not asset.shares),
    )


# --- Time in stage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StageDuration:
    """Days between entering a stage and leaving it, over the exits in the period."""

    stage: str
    exits: int
    median_days: float | None


def stage_exits(
    period: Period, filters: KpiFilters = NO_FILTERS, *, stage: str | None = None
) -> QuerySet[StageTransition]:
    """Drill-down: transitions in the period that left a stage whose entry is on record,
    annotated with ``entered_at`` (the latest earlier transition of the lead into that stage)."""
    entry = (
        StageTransition.objects.filter(lead=OuterRef("lead_id"), to_stage=OuterRef("from_stage"))
        .filter(
            Q(transitioned_at__lt=OuterRef("transitioned_at"))
            | Q(transitioned_at=OuterRef("transitioned_at"), pk__lt=OuterRef("pk"))
        )
        .order_by("-transitioned_at", "-pk")
        .values("transitioned_at")[:1]
    )
    exits = (
        StageTransition.objects.filter(
            _in("transitioned_at", period),
            _lead_q(filters, "lead__"),
            _owner_q(filters, "lead__owner"),
        )
        .exclude(from_stage="")
        .annotate(entered_at=Subquery(entry))
        .filter(entered_at__isnull=False)
    )
    if stage is not None:
        exits = exits.filter(from_stage=stage)
    return exits.select_related("lead").order_by("-transitioned_at", "-pk")


def time_in_stage(period: Period, filters: KpiFilters = NO_FILTERS) -> list[StageDuration]:
    """Median days per stage, stages in lifecycle order (unknown keys last)."""
    exits = stage_exits(period, filters)
    counts = _grouped(exits, ("from_stage",), exits=Count("pk"))
    medians = _percentiles(
        exits, SecondsBetween(F("entered_at"), F("transitioned_at")), (0.5,), ("from_stage",)
    )
    lifecycle = lifecycle_at(_funnel_as_of(period))
    rows = [
        StageDuration(
            stage=key,
            exits=row["exits"],
            median_days=_scaled(medians.get((key,), (None,))[0], SECONDS_PER_DAY),
        )
        for (key,), row in counts.items()
    ]
    return sorted(
        rows,
        key=lambda row: (
            row.stage not in lifecycle.by_key,
            lifecycle.order_of(row.stage, 0),
            row.stage,
        ),
    )
