"""What each dashboard page shows: KPI reads composed per page, and the drill-down registry that
maps every number to the rows behind it. Views stay thin; the KPI maths is in ``queries``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from metrics import kpis, queries, snapshots, trends
from metrics.kpis import KpiFilters, Period
from metrics.queries import trends as weekly
from revops.concurrent_reads import run_concurrently


@dataclass(frozen=True)
class Headline:
    """One overview tile: the figure now, the change from the previous equal period, how it is
    computed, and where its rows are."""

    key: str
    label: str
    unit: str  # "percent", "hours", "days", "money", "count", "money_per_day"
    change: kpis.Change
    definition: str
    drill: dict[str, str]
    higher_is_better: bool = True
    rows: int | None = None  # how many rows its drill-down lists


def _handoffs_assigned(once, period: Period) -> int:
    acceptance = once(queries.lead_acceptance, period)
    return acceptance.accepted + acceptance.rejected + acceptance.pending


def _responses_due(once, period: Period) -> int:
    response = once(queries.sla_compliance, period).response
    return response.met + response.missed + response.open


def _cohort_reached_opportunity(once, period: Period) -> int | None:
    try:
        return once(queries.conversion_by_source, period).overall.funnel.reached("opportunity")
    except KeyError:  # a lifecycle without an "opportunity" stage
        return None


def _closed(once, period: Period) -> int:
    results = once(queries.opportunity_results, period)
    return results.won + results.lost


# key, label, unit, value (from the period's KPI reads), definition, drill-down, higher is
# better, and the number of rows the drill-down lists (from the same reads)
HEADLINES: list[tuple[str, str, str, Callable[..., Any], str, dict, bool, Callable[..., Any]]] = [
    (
        "acceptance",
        "Lead acceptance rate",
        "percent",
        lambda once, p: once(queries.lead_acceptance, p).rate,
        "Accepted ÷ (accepted + rejected), over handoffs assigned in the period; pending "
        "handoffs are not counted.",
        {"kind": "acceptance"},
        True,
        _handoffs_assigned,
    ),
    (
        "response",
        "Median response time",
        "hours",
        lambda once, p: once(queries.response_time, p).median_hours,
        "First response − assignment in business hours of the SLA calendar, median over "
        "handoffs assigned in the period that have a response.",
        {"kind": "response", "answered": "yes"},
        False,
        lambda once, p: once(queries.response_time, p).answered,
    ),
    (
        "sla",
        "Response SLA compliance",
        "percent",
        lambda once, p: once(queries.sla_compliance, p).response.rate,
        "Handoffs answered by their response due time ÷ handoffs whose response was due in the "
        "period (unanswered past due count as missed).",
        {"kind": "sla", "clock": "response"},
        True,
        _responses_due,
    ),
    (
        "lead_to_opportunity",
        "Lead → opportunity",
        "percent",
        lambda once, p: once(queries.conversion_by_source, p).overall.lead_to_opportunity_rate,
        "Share of leads created in the period that ever reached Opportunity (cohort, from "
        "stage history).",
        {"kind": "cohort", "reached": "opportunity"},
        True,
        _cohort_reached_opportunity,
    ),
    (
        "win_rate",
        "Win rate",
        "percent",
        lambda once, p: once(queries.opportunity_results, p).win_rate,
        "Won ÷ (won + lost), over opportunities closed in the period.",
        {"kind": "closed"},
        True,
        _closed,
    ),
    (
        "deal_size",
        "Average deal size",
        "money",
        lambda once, p: once(queries.opportunity_results, p).average_deal_size,
        "Mean amount of the opportunities won in the period.",
        {"kind": "closed", "status": "won"},
        True,
        lambda once, p: once(queries.opportunity_results, p).won,
    ),
    (
        "pipeline",
        "Open pipeline",
        "money",
        lambda once, p: once(queries.pipeline_and_revenue, p).total.open_amount,
        "Amount of the opportunities open at the end of the period (now, for a running one).",
        {"kind": "pipeline"},
        True,
        lambda once, p: once(queries.pipeline_and_revenue, p).total.open_count,
    ),
    (
        "velocity",
        "Pipeline velocity",
        "money_per_day",
        lambda once, p: once(queries.pipeline_velocity, p).per_day,
        "(Open opportunities × win rate × average deal size) ÷ average sales cycle in days.",
        {"kind": "pipeline"},
        True,
        lambda once, p: once(queries.pipeline_and_revenue, p).total.open_count,
    ),
    (
        "feedback",
        "Feedback-loop completion",
        "percent",
        lambda once, p: once(queries.feedback_loop_completion, p).rate,
        "Rejections with a reason (and a note where the reason needs one) ÷ rejections in the "
        "period.",
        {"kind": "feedback"},
        True,
        lambda once, p: once(queries.feedback_loop_completion, p).rejected,
    ),
]


def overview(period: Period, filters: KpiFilters) -> list[Headline]:
    previous = period.previous()
    computed: dict[tuple, Any] = {}

    def once(read: Callable[[Period, KpiFilters], Any], at: Period) -> Any:
        # Several tiles read the same KPI (win rate and deal size): query it once per period.
        if (read, at) not in computed:
            computed[(read, at)] = read(at, filters)
        return computed[(read, at)]

    return [
        Headline(
            key=key,
            label=label,
            unit=unit,
            change=kpis.change(compute(once, period), compute(once, previous)),
            definition=definition,
            drill=drill,
            higher_is_better=better,
            rows=rows(once, period),
        )
        for key, label, unit, compute, definition, drill, better, rows in HEADLINES
    ]


# --- Trends: the headlines week by week -----------------------------------------------------

# Months of lead history the typical time to convert is learnt from.
CONVERT_HISTORY_DAYS = 182


@dataclass(frozen=True)
class TrendsPage:
    """The headline KPIs over the 13 whole weeks before the period's end (or today)."""

    weeks: tuple[date, ...]
    trends: tuple[trends.Trend, ...]
    typical_days_to_opportunity: float | None
    as_of: date
    # The weekly lines as Plotly figures (JSON-ready dicts): building nine takes longer than
    # reading the snapshot, so they are drawn once per refresh, with the figures.
    lines: dict[str, Any] = dataclasses.field(default_factory=dict)

    def by_key(self) -> dict[str, trends.Trend]:
        return {trend.key: trend for trend in self.trends}


def _rate_point(week: date, found: dict, maturing: bool = False) -> trends.WeekPoint:
    row = found.get(week)
    if row is None:
        return trends.WeekPoint(week, None, 0, maturing)
    return trends.WeekPoint(week, row.rate, row.sample, maturing)


def _trends_as_of(period: Period) -> date:
    # The weeks shown end before the period's end, or before today for a running period.
    return min(
        period.last_day + timedelta(days=1), timezone.localdate(timezone.now(), period.start.tzinfo)
    )


def trends_period(period: Period) -> Period:
    """What the trends of ``period`` depend on: its last day, up to yesterday. Every period
    running today (this week, the last four weeks, this quarter) has the same trends."""
    last = _trends_as_of(period) - timedelta(days=1)
    return Period.from_dates(last, last, period.start.tzinfo)


def trends_page(period: Period, filters: KpiFilters) -> TrendsPage:
    """Every headline KPI week by week: one grouped query per KPI over the weeks read (the 13
    shown and one before), velocity from the pipeline's and the results' weekly rows."""
    zone = period.start.tzinfo
    today = timezone.localdate(timezone.now(), zone)
    as_of = _trends_as_of(period)
    weeks = trends.weeks_to_read(as_of)
    window = Period.from_dates(weeks[0], weeks[-1] + timedelta(days=6), zone)
    definition = queries.funnel_definition(at=min(window.end, timezone.now()))
    history = Period.from_dates(
        weeks[0] - timedelta(days=CONVERT_HISTORY_DAYS), weeks[0] - timedelta(days=1), zone
    )
    typical = weekly.typical_days_to_opportunity(history, filters, definition=definition)

    acceptance = weekly.weekly_acceptance(window, filters)
    response = weekly.weekly_response(window, filters)
    sla = weekly.weekly_response_sla(window, filters)
    cohorts = weekly.weekly_lead_to_opportunity(window, filters, definition=definition)
    results = weekly.weekly_results(window, filters)
    pipeline = weekly.weekly_open_pipeline(weeks, window, filters)
    feedback = weekly.weekly_feedback(window, filters)

    def result_point(week: date, value, sample) -> trends.WeekPoint:
        found = results.get(week)
        if found is None:
            return trends.WeekPoint(week, None, 0)
        return trends.WeekPoint(week, value(found), sample(found))

    def velocity(week: date) -> trends.WeekPoint:
        open_count, _ = pipeline.get(week, (0, 0))
        found = results.get(week)
        per_day = None
        if found is not None:
            per_day = kpis.pipeline_velocity(
                open_opportunities=open_count,
                win_rate=found.win_rate,
                average_deal_size=found.average_deal_size,
                average_cycle_days=found.average_cycle_days,
            )
        return trends.WeekPoint(week, per_day, open_count)

    def number(value) -> float | None:
        return None if value is None else float(value)

    series: dict[str, list[trends.WeekPoint]] = {
        "acceptance": [_rate_point(week, acceptance) for week in weeks],
        "response": [trends.WeekPoint(week, *response.get(week, (None, 0))) for week in weeks],
        "sla": [_rate_point(week, sla) for week in weeks],
        "lead_to_opportunity": [
            _rate_point(
                week,
                cohorts,
                trends.is_maturing(week, today=today, typical_days=typical),
            )
            for week in weeks
        ],
        "win_rate": [
            result_point(week, lambda r: r.win_rate, lambda r: r.won + r.lost) for week in weeks
        ],
        "deal_size": [
            result_point(week, lambda r: number(r.average_deal_size), lambda r: r.won)
            for week in weeks
        ],
        "pipeline": [
            trends.WeekPoint(week, float(pipeline[week][1]), pipeline[week][0])
            if week in pipeline
            else trends.WeekPoint(week, None, 0)
            for week in weeks
        ],
        "velocity": [velocity(week) for week in weeks],
        "feedback": [_rate_point(week, feedback) for week in weeks],
    }
    rates = {"acceptance", "sla", "lead_to_opportunity", "win_rate", "feedback"}
    shown = tuple(
        trends.trend(
            key=key,
            label=label,
            unit=unit,
            higher_is_better=better,
            is_rate=key in rates,
            points=series[key],
            typical_days=typical if key == "lead_to_opportunity" else None,
        )
        for key, label, unit, _, _, _, better, _ in HEADLINES
    )
    page = TrendsPage(
        weeks=tuple(weeks[-trends.WEEKS :]),
        trends=shown,
        typical_days_to_opportunity=typical,
        as_of=as_of,
    )
    from metrics import page_charts  # imports this module: read at call time, not import

    return dataclasses.replace(page, lines=page_charts.trend_lines(page))


def funnel_page(period: Period, filters: KpiFilters) -> dict:
    return {
        "conversion": queries.conversion_by_source(period, filters),
        "cohort": queries.lead_cohort(period, filters),
    }


def handoff_page(period: Period, filters: KpiFilters) -> dict:
    return {
        "acceptance": queries.lead_acceptance(period, filters),
        "acceptance_by_source": queries.lead_acceptance_by_source(period, filters),
        "response": queries.response_time(period, filters),
        "sla": queries.sla_compliance(period, filters),
        # Reps with the most missed responses first: the page shows the top of this list.
        "sla_by_rep": sorted(
            queries.sla_compliance_by_rep(period, filters),
            key=lambda row: (-row.compliance.response.missed, row.rep_name),
        ),
        "sla_by_source": queries.sla_compliance_by_source(period, filters),
        "feedback": queries.feedback_loop_completion(period, filters),
        "requalification": queries.requalification(period, filters),
    }


# A team page shows this many reps; the CSV export has them all.
REPS_SHOWN = 15


def pipeline_page(period: Period, filters: KpiFilters) -> dict:
    economics_by_source = queries.lead_economics_by_source(period, filters)
    return {
        "pipeline": queries.pipeline_and_revenue(period, filters),
        "results": queries.opportunity_results(period, filters),
        "results_by_source": queries.opportunity_results_by_source(period, filters),
        "cohort": queries.lead_cohort(period, filters),
        "velocity": queries.pipeline_velocity(period, filters),
        "economics": queries.lead_economics_total(economics_by_source, filters),
        "economics_by_source": economics_by_source,
        "time_in_stage": queries.time_in_stage(period, filters),
    }


def content_page(period: Period, filters: KpiFilters) -> dict:
    # Independent reads: side by side on a first view (``revops.concurrent_reads``).
    utilization, usage = run_concurrently(
        [
            partial(queries.content_utilization, period, filters),
            partial(queries.asset_usage, period, filters, top=5),
        ]
    )
    return {"utilization": utilization, "usage": usage}


# --- Breakdowns ------------------------------------------------------------------------------

# The breakdown a page shows until another is chosen.
DEFAULT_BREAKDOWN = queries.GroupBy.OWNER


@dataclass(frozen=True)
class HandoffBreakdownRow:
    """One group of the handoffs assigned in the period: its acceptance and response time."""

    group: queries.GroupRef
    acceptance: queries.Acceptance
    response: queries.ResponseTime | None


def handoff_breakdown(period: Period, filters: KpiFilters, *, by: str) -> list:
    """Acceptance and response time per group (two reads of the same handoffs, one GROUP BY
    each, joined on the group)."""
    response = {row.group: row.response for row in queries.response_time_by(period, filters, by=by)}
    return [
        HandoffBreakdownRow(row.group, row.acceptance, response.get(row.group))
        for row in queries.lead_acceptance_by(period, filters, by=by)
    ]


# page -> the breakdown it shows, read(period, filters, *, by)
BREAKDOWNS: dict[str, Callable[..., list]] = {
    "pipeline": queries.opportunity_results_by,
    "handoffs": handoff_breakdown,
}


def breakdown_page(page: str, by: str) -> str:
    return f"breakdown:{page}:{by}"


# --- Drill-downs ---------------------------------------------------------------------------


def _flag(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@dataclass(frozen=True)
class Drill:
    title: str
    rows: Callable[[Period, KpiFilters, Any], QuerySet]
    columns: str  # which table layout: "handoffs", "leads", "opportunities", "activities", …


DRILLS: dict[str, Drill] = {
    "acceptance": Drill(
        "Handoffs assigned in the period",
        lambda p, f, q: queries.acceptance_handoffs(p, f, outcome=q.get("outcome") or None),
        "handoffs",
    ),
    "response": Drill(
        "Handoffs and their response",
        lambda p, f, q: queries.response_time_handoffs(p, f, answered=_flag(q.get("answered"))),
        "handoffs",
    ),
    "sla": Drill(
        "Handoffs due in the period",
        lambda p, f, q: queries.sla_handoffs(
            p,
            f,
            clock=q.get("clock") or queries.SlaClock.RESPONSE,
            status=q.get("status") or None,
        ),
        "handoffs",
    ),
    "feedback": Drill(
        "Rejected handoffs",
        lambda p, f, q: queries.feedback_handoffs(p, f, complete=_flag(q.get("complete"))),
        "handoffs",
    ),
    "requalified": Drill(
        "Re-qualified handoffs: handed over again after a rejection at the same stage",
        lambda p, f, q: queries.requalified_handoffs(p, f),
        "handoffs",
    ),
    "cohort_won": Drill(
        "Leads created in the period that have won so far",
        lambda p, f, q: queries.cohort_won_leads(p, f),
        "leads",
    ),
    "cohort": Drill(
        "Leads created in the period",
        lambda p, f, q: queries.cohort_leads(
            p, f, reached=q.get("reached") or None, stopped_at=q.get("stopped_at") or None
        ),
        "leads",
    ),
    "closed": Drill(
        "Opportunities closed in the period",
        lambda p, f, q: queries.closed_opportunities(p, f, status=q.get("status") or None),
        "opportunities",
    ),
    "pipeline": Drill(
        "Open opportunities", lambda p, f, q: queries.open_opportunities(p, f), "opportunities"
    ),
    "handed_off": Drill(
        "Leads handed to sales in the period",
        lambda p, f, q: queries.handed_off_leads(p, f),
        "leads",
    ),
    "created_opportunities": Drill(
        "Opportunities created in the period",
        lambda p, f, q: queries.created_opportunities(p, f),
        "opportunities",
    ),
    "asset": Drill(
        "Sales touches that shared content",
        lambda p, f, q: queries.asset_shares(p, f, asset_id=_int(q.get("asset"))),
        "activities",
    ),
    "stage_exits": Drill(
        "Stage exits in the period",
        lambda p, f, q: queries.stage_exits(p, f, stage=q.get("stage") or None),
        "transitions",
    ),
    "target_pipeline": Drill(
        "Opportunities created in the period on target accounts",
        lambda p, f, q: queries.target_pipeline_opportunities(p, f),
        "opportunities",
    ),
    "target_won": Drill(
        "Opportunities won in the period on target accounts",
        lambda p, f, q: queries.target_won_opportunities(p, f),
        "opportunities",
    ),
    "costed_leads": Drill(
        "Leads from campaigns with a known cost",
        lambda p, f, q: queries.costed_campaign_leads(p, f),
        "leads",
    ),
}

# Query parameters a drill link may add on top of the filters.
DRILL_PARAMETERS = (
    "outcome",
    "answered",
    "clock",
    "status",
    "complete",
    "reached",
    "stopped_at",
    "asset",
    "stage",
)


snapshots.register("trends", trends_page, depends_on=trends_period)
for _page, _build in (
    ("overview", overview),
    ("funnel", funnel_page),
    ("handoffs", handoff_page),
    ("pipeline", pipeline_page),
    ("content", content_page),
):
    snapshots.register(_page, _build)
for _page, _read in BREAKDOWNS.items():
    for _by in queries.GroupBy.VALUES:
        snapshots.register(breakdown_page(_page, _by), partial(_read, by=_by))
