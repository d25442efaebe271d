"""What each dashboard page shows: KPI reads composed per page, and the drill-down registry that
maps every number to the rows behind it. Views stay thin; the KPI maths is in ``queries``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db.models import QuerySet

from metrics import kpis, queries, snapshots
from metrics.kpis import KpiFilters, Period


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
    return {
        "pipeline": queries.pipeline_and_revenue(period, filters),
        "results": queries.opportunity_results(period, filters),
        "results_by_source": queries.opportunity_results_by_source(period, filters),
        "cohort": queries.lead_cohort(period, filters),
        "velocity": queries.pipeline_velocity(period, filters),
        "economics": queries.lead_economics(period, filters),
        "economics_by_source": queries.lead_economics_by_source(period, filters),
        "time_in_stage": queries.time_in_stage(period, filters),
    }


def content_page(period: Period, filters: KpiFilters) -> dict:
    return {
        "utilization": queries.content_utilization(period, filters),
        "usage": queries.asset_usage(period, filters, top=5),
    }


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
