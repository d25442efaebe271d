"""Every KPI the API serves, by name, with what it is: the same reads the dashboards call.

Each is also a snapshot page (``kpi:<name>``; the overview shares the dashboard's own), so an
integration polling a KPI is answered from a result at most a minute old, kept fresh by the same
beat task as the dashboards, instead of re-running seconds of SQL on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from metrics import dashboards, queries, snapshots
from metrics.kpis import KpiFilters, Period

# name -> (read, what it is). Each read takes (period, filters) and returns a KPI dataclass (or
# a list of them): the same functions the dashboards call.
KPIS: dict[str, tuple[Callable[[Period, KpiFilters], Any], str]] = {
    "overview": (
        dashboards.overview,
        "The overview tiles: each headline KPI now and in the previous equal period.",
    ),
    "lead_acceptance": (queries.lead_acceptance, "Accepted ÷ decided handoffs."),
    "lead_acceptance_by_source": (queries.lead_acceptance_by_source, "Acceptance per source."),
    "response_time": (queries.response_time, "Median first-response time, business hours."),
    "sla_compliance": (queries.sla_compliance, "Response and acceptance SLA met / missed."),
    "sla_compliance_by_rep": (queries.sla_compliance_by_rep, "SLA compliance per sales rep."),
    "sla_compliance_by_source": (queries.sla_compliance_by_source, "SLA compliance per source."),
    "feedback_loop_completion": (
        queries.feedback_loop_completion,
        "Rejections with a reason (and a note where needed) ÷ rejections.",
    ),
    "requalification": (
        queries.requalification,
        "Handoffs opened for a lead already rejected at the same stage, and their share of the "
        "handoffs opened.",
    ),
    "conversion_by_source": (
        queries.conversion_by_source,
        "Cohort funnel of the leads created in the period, overall and per source.",
    ),
    "opportunity_results": (
        queries.opportunity_results,
        "Won / lost, win rate and deal size of opportunities closed; the lead cycle (lead "
        "created → won, wins with a lead) and the opportunity cycle (opportunity created → "
        "closed, every closed deal; and won deals alone), in elapsed days.",
    ),
    "opportunity_results_by_source": (
        queries.opportunity_results_by_source,
        "Opportunity results per source.",
    ),
    "lead_cohort": (
        queries.lead_cohort,
        "Leads created in the period, how many have won so far (first opportunity won) and "
        "their median days to win: elapsed days (hours ÷ 24) and calendar days (win date − "
        "creation date, local to time_zone). The figure for a funnel review.",
    ),
    "pipeline_and_revenue": (
        queries.pipeline_and_revenue,
        "Open pipeline at the period's end and revenue won, per source and origin.",
    ),
    "pipeline_velocity": (queries.pipeline_velocity, "Expected revenue per day."),
    "pipeline_velocity_by_source": (
        queries.pipeline_velocity_by_source,
        "Pipeline velocity per source.",
    ),
    "lead_economics": (
        queries.lead_economics,
        "Revenue per lead, cost per lead and customer acquisition cost.",
    ),
    "lead_economics_by_source": (queries.lead_economics_by_source, "Lead economics per source."),
    "content_utilization": (
        queries.content_utilization,
        "Share of handed-off leads and opportunities sales shared content with.",
    ),
    "asset_usage": (queries.asset_usage, "Most used content assets per funnel stage, and unused."),
    "time_in_stage": (queries.time_in_stage, "Median days in each stage, over stage exits."),
}


# The KPIs that can be broken down (``group_by``): name -> read(period, filters, *, by).
GROUPED: dict[str, Callable[..., list]] = {
    "lead_acceptance": queries.lead_acceptance_by,
    "response_time": queries.response_time_by,
    "opportunity_results": queries.opportunity_results_by,
    "lead_cohort": queries.lead_cohort_by,
}


def snapshot_page(name: str, group_by: str | None = None) -> str:
    if group_by:
        return f"kpi:{name}:by:{group_by}"
    return "overview" if name == "overview" else f"kpi:{name}"


for _name, (_read, _) in KPIS.items():
    if _name != "overview":  # registered by metrics.dashboards as the overview page
        snapshots.register(snapshot_page(_name), _read)
for _name, _read in GROUPED.items():
    for _by in queries.GroupBy.VALUES:
        snapshots.register(snapshot_page(_name, _by), partial(_read, by=_by))
