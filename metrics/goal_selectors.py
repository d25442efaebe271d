"""Reads for the shared goals and the alignment scorecard.

Which goals are in force for a period (``leads.selectors.version_in_force``'s rule, per period),
and each goal's reading: its KPI over the period so far, from the very reads the dashboards call
(``metrics.queries``), served through the snapshot cache (``metrics.snapshots``: one page per
metric and scope, at most a minute old). Pace, forecast and status are ``metrics.goals``.

The scorecard is plain JSON-ready data (floats, ISO dates), so the page, the overview and the
meeting's first slide render the same structure, live or frozen with the meeting.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from leads.choices import DefinitionStatus, SourceOrigin
from leads.models import Opportunity
from metrics import goals, queries, snapshots
from metrics.goals import GoalPeriod, Reading
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.models import Goal, GoalSet, KpiSnapshot
from metrics.queries.target_accounts import target_open_opportunities
from metrics.templatetags.kpi_format import count, hours, money, percent

# --- Goal sets -------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.DISPLAY_TIME_ZONE)


def local_today(now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), _zone())


def _of_period(period: GoalPeriod):
    return GoalSet.objects.filter(
        period_kind=period.kind, first_day=period.first_day, last_day=period.last_day
    )


def goal_set_in_force(period: GoalPeriod, *, at: datetime | None = None) -> GoalSet | None:
    """The published goals of ``period`` with the latest ``effective_from`` at or before ``at``
    (now), with their goals and the people they name."""
    rows = Goal.objects.select_related("source", "team_manager", "rep")
    return (
        _of_period(period)
        .filter(status=DefinitionStatus.PUBLISHED, effective_from__lte=at or timezone.now())
        .select_related("published_by", "created_by")
        .prefetch_related(Prefetch("goals", queryset=rows))
        .order_by("-effective_from")
        .first()
    )


def goal_set_draft(period: GoalPeriod) -> GoalSet | None:
    """The newest draft for ``period`` (the one the edit page works on), if any."""
    return (
        _of_period(period)
        .filter(status=DefinitionStatus.DRAFT)
        .prefetch_related("goals")
        .order_by("-number")
        .first()
    )


def goal_periods() -> list[GoalPeriod]:
    """Every period some goals were drafted or published for, latest first."""
    rows = (
        GoalSet.objects.order_by("-first_day", "period_kind")
        .values_list("first_day", "last_day", "period_kind")
        .distinct()
    )
    return [GoalPeriod(first, last, kind) for first, last, kind in rows]


def scorecard_period(today: date, *, requested: str | None = None) -> GoalPeriod:
    """The period a scorecard shows: the one asked for (``2026-Q4``, ``2026-11``), else this
    quarter when it has published goals, else this month when it has, else this quarter.
    ValueError for a request that names no period."""
    if requested:
        return goals.parse_period_key(requested)
    quarter, month = goals.quarter_of(today), goals.month_of(today)
    kinds = set(
        GoalSet.objects.filter(status=DefinitionStatus.PUBLISHED)
        .filter(
            Q(period_kind=quarter.kind, first_day=quarter.first_day)
            | Q(period_kind=month.kind, first_day=month.first_day)
        )
        .values_list("period_kind", flat=True)
    )
    return month if month.kind in kinds and quarter.kind not in kinds else quarter


# --- Readings: each goal's KPI, from the KPI reads ------------------------------------------


def scope_filters(goal: Goal) -> KpiFilters:
    """The dashboards' filters that select a goal's scope."""
    if goal.scope == Goal.Scope.CHANNEL_GROUP:
        return KpiFilters(channel_groups=(goal.channel_group,))
    if goal.scope == Goal.Scope.SOURCE:
        return KpiFilters(source_ids=(goal.source_id,))
    if goal.scope == Goal.Scope.TEAM:
        return KpiFilters(team_manager_id=goal.team_manager_id)
    if goal.scope == Goal.Scope.REP:
        return KpiFilters(owner_ids=(goal.rep_id,))
    return NO_FILTERS


def _reached(stage: str, period: Period, filters: KpiFilters) -> Reading:
    funnel = queries.conversion_by_source(period, filters).overall.funnel
    try:
        return Reading(funnel.reached(stage))
    except KeyError:  # a lifecycle without that stage
        return Reading(None)


def _months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    return date(month_index // 12, month_index % 12 + 1, 1)


def history_period(period: Period, months: int = goals.HISTORY_MONTHS) -> Period:
    """The ``months`` whole months before a goal period: where conversion rates are learnt."""
    first = _months_before(period.first_day, months)
    return Period.from_dates(first, period.first_day - timedelta(days=1), period.start.tzinfo)


def _forecast_reading(
    period: Period, filters: KpiFilters, *, won: float, open_pipeline: QuerySet[Opportunity]
) -> Reading:
    """Won so far, and what a forecast needs: ``open_pipeline`` by its lead's lifecycle stage
    (an opportunity without a lead, or a customer's, counts at the opportunity stage), each
    stage's historical stage-to-won conversion, and the average opportunity cycle."""
    history = history_period(period)
    conversion = queries.conversion_by_source(history, filters)
    funnel = conversion.overall.funnel
    definition = queries.funnel_definition(at=min(history.end, timezone.now()))
    won_rate_from: dict[str, float | None] = {}
    if definition.won_key:
        for stage in definition.keys:
            won_rate_from[stage] = funnel.rate_between(stage, definition.won_key)
    open_by_stage: dict[str, float] = {}
    for stage, amount in queries.open_amount_by_lead_stage(open_pipeline).items():
        # No lead, or a customer's new deal: weighted as a deal at the opportunity stage (a
        # won lead's own "conversion to won" would count the whole deal as won).
        if not stage or stage == definition.won_key:
            stage = definition.opportunity_key or ""
        open_by_stage[stage] = open_by_stage.get(stage, 0.0) + float(amount)
    cycle = queries.average_opportunity_cycle_days(history, filters)
    return Reading(
        won,
        open_by_stage=open_by_stage,
        won_rate_from=won_rate_from,
        cycle_days=cycle,
    )


def _won_reading(period: Period, filters: KpiFilters, *, marketing_only: bool) -> Reading:
    """Won so far (all of it, or from marketing-origin sources) and its open pipeline."""
    report = queries.pipeline_and_revenue(period, filters)
    open_pipeline = queries.open_opportunities(period, filters)
    if marketing_only:
        won = report.by_origin.get(SourceOrigin.MARKETING, queries.EMPTY_PIPELINE).won_amount
        open_pipeline = open_pipeline.filter(lead__source__origin=SourceOrigin.MARKETING)
    else:
        won = report.total.won_amount
    return _forecast_reading(period, filters, won=float(won), open_pipeline=open_pipeline)


def _target_pipeline(period: Period, filters: KpiFilters) -> Reading:
    return Reading(float(queries.target_account_figures(period, filters).pipeline_amount))


def _target_revenue(period: Period, filters: KpiFilters) -> Reading:
    """Won from target accounts, forecast from their open pipeline (the same list)."""
    won = queries.target_account_figures(period, filters).won_amount
    return _forecast_reading(
        period, filters, won=float(won), open_pipeline=target_open_opportunities(period, filters)
    )


def _marketing_pipeline(period: Period, filters: KpiFilters) -> Reading:
    created = queries.opportunities_created(period, filters, origin=SourceOrigin.MARKETING)
    return Reading(float(created.amount))


def _opportunities(period: Period, filters: KpiFilters) -> Reading:
    return Reading(queries.opportunities_created(period, filters).count)


def _acceptance(period: Period, filters: KpiFilters) -> Reading:
    acceptance = queries.lead_acceptance(period, filters)
    return Reading(acceptance.rate, sample=acceptance.accepted + acceptance.rejected)


def _response_time(period: Period, filters: KpiFilters) -> Reading:
    response = queries.response_time(period, filters)
    return Reading(response.median_hours, sample=response.answered)


def _sla(clock: str, period: Period, filters: KpiFilters) -> Reading:
    result = getattr(queries.sla_compliance(period, filters), clock)
    return Reading(result.rate, sample=result.met + result.missed)


def _feedback(period: Period, filters: KpiFilters) -> Reading:
    loop = queries.feedback_loop_completion(period, filters)
    return Reading(loop.rate, sample=loop.rejected)


# metric -> read(period, filters) -> Reading; each is a snapshot page of its own, so a goal
# costs only its own KPI, at most once a minute per scope.
READINGS = {
    "mqls": partial(_reached, "mql"),
    "sals": partial(_reached, "sal"),
    "sqls": partial(_reached, "sql"),
    "opportunities": _opportunities,
    "marketing_pipeline": _marketing_pipeline,
    "marketing_revenue": partial(_won_reading, marketing_only=True),
    "bookings": partial(_won_reading, marketing_only=False),
    "target_pipeline": _target_pipeline,
    "target_revenue": _target_revenue,
    "acceptance_rate": _acceptance,
    "response_time": _response_time,
    "sla_compliance": partial(_sla, "response"),
    "decision_sla": partial(_sla, "acceptance"),
    "feedback_loop": _feedback,
}
assert set(READINGS) == set(goals.METRICS_BY_KEY), "every goal metric needs a reading"


def reading_page(metric: str) -> str:
    return f"goal:{metric}"


for _metric, _read in READINGS.items():
    snapshots.register(reading_page(_metric), _read)


TARGET_ACCOUNT_METRICS = ("target_pipeline", "target_revenue")


def forget_target_readings(**_) -> None:
    """Publish hook of the target-account list: the target-account goals are read again on
    the next view, as the scorecard's target-account figures are (``target_selectors``)."""
    pages = [reading_page(metric) for metric in TARGET_ACCOUNT_METRICS]
    KpiSnapshot.objects.filter(params__page__in=pages).delete()


def goal_reading(goal: Goal, period: Period) -> tuple[Reading, datetime]:
    """A goal's reading over ``period`` and when it was computed (at most a minute ago)."""
    return snapshots.page_data(reading_page(goal.metric), period, scope_filters(goal))


# --- The scorecard ---------------------------------------------------------------------------

FORMATS = {"count": count, "money": money, "percent": percent, "hours": hours}


def _formatter(unit: str):
    return FORMATS.get(unit, str)


def _goal_row(
    goal: Goal, period: Period, now: datetime, read: tuple[Reading, datetime] | None = None
) -> dict:
    spec = goal.spec
    terms = goal.terms()
    reading, computed_at = read or goal_reading(goal, period)
    result = goals.evaluate(
        terms, reading, start=period.start, end=period.end, now=now, fmt=_formatter(spec.unit)
    )
    return {
        "id": goal.pk,
        "metric": spec.key,
        "label": spec.label,
        "definition": spec.definition,
        "unit": spec.unit,
        "side": goal.owner_side,
        "scope": goal.scope_label,
        "higher_is_better": terms.higher_is_better,
        "target": terms.target,
        "amber_at": terms.amber_threshold,
        "red_at": terms.red_threshold,
        "floor": terms.floor,
        "actual": result.actual,
        "sample": result.sample,
        "sample_label": spec.sample_label,
        "accumulates": spec.accumulates,
        "pace": result.pace,
        "forecast": result.forecast,
        "forecastable": spec.forecast,
        "progress": result.progress,
        "status": {
            "colour": result.status.colour,
            "word": result.status.word,
            "why": result.status.why,
        },
        "computed_at": computed_at.isoformat(),
    }


def scorecard(period: GoalPeriod, *, now: datetime | None = None) -> dict:
    """The alignment scorecard of ``period`` as JSON-ready data: the goals in force, each with
    actual to date, pace, forecast and status, in three groups (the revenue team's, marketing's
    commitments and sales' commitments). ``goal_set`` is None when no goals are published."""
    now = now or timezone.now()
    goal_set = goal_set_in_force(period, at=now)
    kpi_period = Period.from_dates(period.first_day, period.last_day, _zone())
    elapsed = goals.elapsed_days(kpi_period.start, kpi_period.end, now)
    card = {
        "period": {
            "key": period.key,
            "label": period.label,
            "kind": period.kind,
            "first_on": period.first_day.isoformat(),
            "last_on": period.last_day.isoformat(),
            "days": period.days,
            "elapsed_days": round(elapsed, 1),
        },
        "goal_set": None,
        "groups": [],
        "counts": {"green": 0, "amber": 0, "red": 0, "grey": 0},
    }
    if goal_set is None:
        return card
    publisher = goal_set.published_by
    card["goal_set"] = {
        "id": goal_set.pk,
        "number": goal_set.number,
        "note": goal_set.note,
        "published_at": goal_set.published_at.isoformat() if goal_set.published_at else None,
        "published_by": (publisher.get_full_name() or publisher.get_username())
        if publisher
        else None,
    }
    in_force = list(goal_set.goals.all())
    # Every goal's reading from its snapshot, in one query however many goals.
    readings = snapshots.pages_data(
        [(reading_page(goal.metric), kpi_period, scope_filters(goal)) for goal in in_force]
    )
    rows = [
        _goal_row(goal, kpi_period, now, read)
        for goal, read in zip(in_force, readings, strict=True)
    ]
    for row in rows:
        card["counts"][row["status"]["colour"]] += 1
    for side, title in goals.SIDES:
        card["groups"].append(
            {"side": side, "title": title, "rows": [row for row in rows if row["side"] == side]}
        )
    return card


def card_for_display(card: dict) -> dict:
    """The card with its days and instants as ``date`` / ``datetime`` for the templates (the
    meeting's ``figures_for_display`` does the same for a frozen card)."""
    shown = {**card, "period": dict(card["period"])}
    for key in ("first_on", "last_on"):
        shown["period"][key] = date.fromisoformat(card["period"][key])
    if card["goal_set"] is not None and card["goal_set"]["published_at"]:
        published_at = datetime.fromisoformat(card["goal_set"]["published_at"])
        shown["goal_set"] = {**card["goal_set"], "published_at": published_at}
    return shown


# --- Quarterly planning ----------------------------------------------------------------------


def planning(quarter: GoalPeriod, *, now: datetime | None = None) -> dict:
    """The quarterly planning page: how the quarter before ``quarter`` went (its card: goals vs
    actuals, as final as the calendar allows) and ``quarter``'s goals, agreed (published) or
    drafted, each beside the same goal's actual and pace in the quarter before, so a target
    is set against what the team just did."""
    now = now or timezone.now()
    review = scorecard(quarter.previous(), now=now)
    before = {
        (row["metric"], row["scope"]): row for group in review["groups"] for row in group["rows"]
    }
    in_force = goal_set_in_force(quarter, at=now)
    draft = goal_set_draft(quarter)
    shown = draft or in_force
    rows = []
    if shown is not None:
        goals_shown = shown.goals.select_related("source", "team_manager", "rep")
        for goal in goals_shown:
            terms = goal.terms()
            earlier = before.get((goal.metric, goal.scope_label))
            rows.append(
                {
                    "label": goal.spec.label,
                    "unit": goal.spec.unit,
                    "side": dict(goals.SIDES)[goal.owner_side],
                    "scope": goal.scope_label,
                    "higher_is_better": terms.higher_is_better,
                    "target": terms.target,
                    "previous_actual": earlier["actual"] if earlier else None,
                    "previous_pace": earlier["pace"] if earlier else None,
                    "previous_status": earlier["status"] if earlier else None,
                }
            )

    def describe(goal_set: GoalSet | None) -> dict | None:
        if goal_set is None:
            return None
        person = goal_set.published_by or goal_set.created_by
        return {
            "number": goal_set.number,
            "status": goal_set.status,
            "note": goal_set.note,
            "at": goal_set.published_at or goal_set.created_at,
            "by": (person.get_full_name() or person.get_username()) if person else None,
        }

    return {
        "quarter": quarter,
        "review": card_for_display(review),
        "in_force": describe(in_force),
        "draft": describe(draft),
        "rows": rows,
    }
