"""Lead cohort KPIs: the cohort funnel by source, the cohort's wins and days to win, and time in
stage (docs/kpis.md, "Funnel")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Expression,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Greatest, TruncDate
from django.utils import timezone

from leads.choices import OpportunityStatus
from leads.defaults import DEFAULT_STAGES, FUNNEL_STAGE_KEYS
from leads.models import (
    Lead,
    Opportunity,
    StageTransition,
)
from leads.selectors import lifecycle_at
from metrics import kpis
from metrics.expressions import DaysBetween, SecondsBetween
from metrics.kpis import NO_FILTERS, CohortFunnel, KpiFilters, Period
from metrics.queries.common import (
    SECONDS_PER_DAY,
    FactPaths,
    GroupRef,
    SourceRef,
    _group_order,
    _grouped,
    _grouped_by,
    _in,
    _lead_q,
    _leads,
    _medians,
    _owner_q,
    _percentiles,
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
from metrics.rollup_models import CohortDay, RollupFact, StageExitDay

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


def cohort_rules(definition: FunnelDefinition) -> list[str]:
    """What the cohort rollup is built under (``RollupState.funnel_keys``): the funnel's stages,
    which stage counts as the opportunity (its days-to-opportunity values start there)."""
    return [*definition.keys, f"opportunity:{definition.opportunity_key or ''}"]


def reached_opportunity_at(definition: FunnelDefinition) -> Subquery | None:
    """A lead's first entry into the opportunity stage or a later one (None: the funnel has no
    opportunity stage)."""
    if not definition.opportunity_key:
        return None
    later = definition.keys[definition.keys.index(definition.opportunity_key) :]
    return Subquery(
        StageTransition.objects.filter(lead=OuterRef("pk"), to_stage__in=later)
        .order_by()
        .values("lead")
        .annotate(first=Min("transitioned_at"))
        .values("first")
    )


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


@shared_read
def conversion_by_source(period: Period, filters: KpiFilters = NO_FILTERS) -> ConversionBySource:
    """The cohort funnel of leads created in the period, overall and per source (also gives
    lead → opportunity and opportunity → won rates of that cohort)."""
    definition = funnel_definition(at=_funnel_as_of(period))
    keys = definition.keys
    leads = cohort_leads(period, filters, definition=definition)
    # The rollup's days only where it was built with this funnel's stages.
    split = rollup_split(RollupFact.COHORT, period, funnel_keys=cohort_rules(definition))
    if split is not None:
        leads = leads.filter(split.raw_q("created_at"))
    rows = [
        (row["source_id"], row["source__name"], keys[row["furthest_position"]], row["leads"])
        for row in leads.order_by()
        .values("source_id", "source__name", "furthest_position")
        .annotate(leads=Count("pk"))
    ]
    if split is not None:
        rolled = rolled_grouped(
            split, CohortDay, filters, ("source_id", "source__name", "furthest_stage"), ("leads",)
        )
        rows += [(*key, row["leads"]) for key, row in rolled.items()]
    per_source: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overall: dict[str, int] = defaultdict(int)
    for source_id, source_name, key, count in rows:  # at most sources × stages rows, twice
        per_source[(source_id, source_name)][key] += count
        overall[key] += count
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


# --- Lead cohort: wins so far and days to win ------------------------------------------------


@dataclass(frozen=True)
class LeadCohort:
    """The leads **created** in the period (the cohort) and how many of them have won so far
    (when it was computed: a snapshot's ``computed_at``): a lead wins with its first
    opportunity won. Days to win run from the lead's
    creation to that first win, two ways:

    - **elapsed days** = elapsed time ÷ 24 hours (36 hours → 1.5);
    - **calendar days** = the win's date − the creation's date, both dates local to
      ``time_zone`` (created 23:30 on 31 March, won 09:00 on 1 April → 1).

    A young cohort has had less time to win: compare cohorts of the same age.
    """

    leads: int
    won: int
    win_rate: float | None
    median_elapsed_days_to_win: float | None
    median_calendar_days_to_win: float | None
    time_zone: str


@dataclass(frozen=True)
class GroupLeadCohort:
    group: GroupRef
    cohort: LeadCohort


LEAD_PATHS = FactPaths(lead="", owner="owner", instant="created_at")


def first_win(as_of: datetime) -> Subquery:
    """When the lead's first opportunity was won (closed won by ``as_of``); NULL if none."""
    wins = (
        Opportunity.objects.filter(
            lead=OuterRef("pk"), status=OpportunityStatus.WON, closed_at__lte=as_of
        )
        .order_by()
        .values("lead")
        .annotate(first=Min("closed_at"))
        .values("first")
    )
    return Subquery(wins, output_field=DateTimeField())


def _cohort(period: Period, filters: KpiFilters, now: datetime | None) -> QuerySet[Lead]:
    return (
        _leads(filters)
        .filter(_in("created_at", period))
        .annotate(won_at=first_win(now or timezone.now()))
    )


def cohort_won_leads(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> QuerySet[Lead]:
    """Drill-down: the leads created in the period that have won so far, with ``won_at``."""
    return (
        _cohort(period, filters, now)
        .filter(won_at__isnull=False)
        .select_related("source", "campaign", "owner")
        .order_by("-created_at", "-pk")
    )


def cohort_win_values(zone) -> dict[str, Expression]:
    """A cohort lead's time to its first win (NULL without one), as the rollup keeps it
    (``CohortDay.won_seconds`` / ``won_calendar_days``) and the raw read takes its median."""
    return {
        "won_seconds": SecondsBetween(F("created_at"), F("won_at")),
        "won_calendar_days": Cast(
            DaysBetween(TruncDate("created_at", tzinfo=zone), TruncDate("won_at", tzinfo=zone)),
            FloatField(),
        ),
    }


def _lead_cohort(row: dict, median: dict[str, float | None] | tuple | None, zone) -> LeadCohort:
    median = median or {}
    return LeadCohort(
        leads=row["leads"],
        won=row["won"],
        win_rate=kpis.rate(row["won"], row["leads"]),
        median_elapsed_days_to_win=_scaled(median.get("won_seconds"), SECONDS_PER_DAY),
        median_calendar_days_to_win=median.get("won_calendar_days"),
        time_zone=str(zone),
    )


def _lead_cohort_grouped(
    leads: QuerySet[Lead], group_by: Sequence[str], zone
) -> dict[tuple, LeadCohort]:
    found = _grouped(
        leads, group_by, leads=Count("pk"), won=Count("pk", filter=Q(won_at__isnull=False))
    )
    medians = _medians(leads, cohort_win_values(zone), group_by)
    return {key: _lead_cohort(row, medians.get(key), zone) for key, row in found.items()}


@shared_read
def lead_cohort(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> LeadCohort:
    """The period's lead cohort: leads created, won so far, win rate, median days to win. The
    cohort rollup's days (wins as of its refresh; a new or changed deal marks its lead's day)
    and the raw leads of the rest; as of another instant (``now``), all raw."""
    zone = period.start.tzinfo
    leads = _cohort(period, filters, now)
    split = rollup_split(RollupFact.COHORT, period) if now is None else None
    if split is None:
        return _lead_cohort_grouped(leads, (), zone)[()]
    raw = leads.filter(split.raw_q("created_at"))
    counts = added(
        ("leads", "won"),
        _grouped(raw, (), leads=Count("pk"), won=Count("pk", filter=Q(won_at__isnull=False))),
        rolled_grouped(split, CohortDay, filters, (), ("leads", "won")),
    )[()]
    medians = rolled_value_stats(
        split,
        CohortDay,
        filters,
        raw,
        {name: RolledValues(name, value) for name, value in cohort_win_values(split.zone).items()},
    )[()]
    return _lead_cohort(counts, {name: found[0] for name, found in medians.items()}, zone)


def lead_cohort_by(
    period: Period, filters: KpiFilters = NO_FILTERS, *, by: str, now: datetime | None = None
) -> list[GroupLeadCohort]:
    """The lead cohort broken down ``by`` owner (the lead's), team, source, campaign, tier or
    month (of the lead's creation): one GROUP BY."""
    leads, columns, ref = _grouped_by(_cohort(period, filters, now), by, LEAD_PATHS, period)
    found = _lead_cohort_grouped(leads, columns, period.start.tzinfo)
    rows = [GroupLeadCohort(ref(key), value) for key, value in found.items()]
    return sorted(rows, key=lambda row: _group_order(row.group))


# --- Time in stage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StageDuration:
    """Days between entering a stage and leaving it, over the exits in the period."""

    stage: str
    exits: int
    median_days: float | None


def exits_with_entry(transitions: QuerySet[StageTransition]) -> QuerySet[StageTransition]:
    """The ``transitions`` that left a stage, annotated with ``entered_at``: the latest earlier
    transition of the lead into that stage (NULL when none is on record)."""
    entry = (
        StageTransition.objects.filter(lead=OuterRef("lead_id"), to_stage=OuterRef("from_stage"))
        .filter(
            Q(transitioned_at__lt=OuterRef("transitioned_at"))
            | Q(transitioned_at=OuterRef("transitioned_at"), pk__lt=OuterRef("pk"))
        )
        .order_by("-transitioned_at", "-pk")
        .values("transitioned_at")[:1]
    )
    return transitions.exclude(from_stage="").annotate(entered_at=Subquery(entry))


def stay_seconds() -> SecondsBetween:
    """How long an exit stayed in the stage it left (``exits_with_entry``)."""
    return SecondsBetween(F("entered_at"), F("transitioned_at"))


def _exits_with_entry(period: Period, filters: KpiFilters) -> QuerySet[StageTransition]:
    return exits_with_entry(
        StageTransition.objects.filter(
            _in("transitioned_at", period),
            _lead_q(filters, "lead__"),
            _owner_q(filters, "lead__owner"),
        )
    )


def stage_exits(
    period: Period, filters: KpiFilters = NO_FILTERS, *, stage: str | None = None
) -> QuerySet[StageTransition]:
    """Drill-down: transitions in the period that left a stage whose entry is on record,
    annotated with ``entered_at`` (the latest earlier transition of the lead into that stage)."""
    exits = _exits_with_entry(period, filters).filter(entered_at__isnull=False)
    if stage is not None:
        exits = exits.filter(from_stage=stage)
    return exits.select_related("lead").order_by("-transitioned_at", "-pk")


def _stage_medians_postgresql(exits: QuerySet[StageTransition]) -> dict[tuple, dict]:
    """Exits and median seconds per stage left, each exit's entry looked up once: the ORM
    would repeat the lookup in the WHERE, the count and the median (three index probes per
    exit). ``OFFSET 0`` keeps the planner from folding the inner query into the outer one,
    which would copy the lookup into each aggregate again."""
    inner = exits.annotate(stay=stay_seconds()).order_by().values("from_stage", "stay")
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:
        return {}
    with connections[inner.db].cursor() as cursor:
        cursor.execute(
            "SELECT from_stage, count(stay), percentile_cont(0.5) WITHIN GROUP (ORDER BY stay) "
            f"FROM ({sql} OFFSET 0) AS exits WHERE stay IS NOT NULL GROUP BY from_stage",
            params,
        )
        return {(stage,): {"exits": count, "median": median} for stage, count, median in cursor}


def _stage_medians_rolled(split: RollupSplit, period: Period, filters: KpiFilters) -> dict:
    """``_stage_medians_postgresql`` from the stage-exit rollup's days (counts, and the stays
    they keep) and the raw exits of the rest, in three queries."""
    raw = _exits_with_entry(period, filters).filter(split.raw_q("transitioned_at"))
    group = ("from_stage",)
    counts = added(
        ("exits",),
        _grouped(raw.filter(entered_at__isnull=False), group, exits=Count("pk")),
        rolled_grouped(split, StageExitDay, filters, group, ("exits",)),
        group_by=group,
    )
    stats = rolled_value_stats(
        split,
        StageExitDay,
        filters,
        raw,
        {"stay": RolledValues("stay_seconds", stay_seconds())},
        group,
    )
    return {
        key: {"exits": row["exits"], "median": stats.get(key, {"stay": (None,)})["stay"][0]}
        for key, row in counts.items()
    }


def time_in_stage(period: Period, filters: KpiFilters = NO_FILTERS) -> list[StageDuration]:
    """Median days per stage, stages in lifecycle order (unknown keys last)."""
    exits = stage_exits(period, filters)
    seconds = SecondsBetween(F("entered_at"), F("transitioned_at"))
    if connection.vendor == "postgresql":
        split = rollup_split(RollupFact.STAGE_EXIT, period)
        if split is None:
            counts = _stage_medians_postgresql(_exits_with_entry(period, filters))
        else:
            counts = _stage_medians_rolled(split, period, filters)
        medians = {key: (row["median"],) for key, row in counts.items()}
    else:
        counts = _grouped(exits, ("from_stage",), exits=Count("pk"))
        medians = _percentiles(exits, seconds, (0.5,), ("from_stage",))
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
