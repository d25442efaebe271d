"""Reads for the monthly review: funnel trends, conversion by source and campaign, and the
campaigns that create pipeline, as plain JSON-ready data (like ``metrics.meeting``), so the page
renders live figures and a frozen ``MonthlyReviewSnapshot`` alike.

Every figure comes from the KPI reads of ``metrics.queries``: the cohort funnel per month
(``conversion_by_source``), per source, and per campaign (``lead_cohort_by``), opportunity
results per campaign (``opportunity_results_by``), and the opportunities created in the month
(``created_opportunities``). Served from a snapshot at most a minute old.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from metrics import goal_selectors, goals, kpis, queries, snapshots
from metrics.goals import GoalPeriod
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.meeting import display_zone
from metrics.models import FIGURES_VERSION, MonthlyReview, MonthlyReviewSnapshot

TREND_MONTHS = 6
TOP = 8
TREND_STAGES = ("mql", "sql", "opportunity")
NO_CAMPAIGN = "No campaign"


def month_period(month: GoalPeriod) -> Period:
    return Period.from_dates(month.first_day, month.last_day, display_zone())


def _reached(funnel, key: str) -> int | None:
    try:
        return funnel.reached(key)
    except KeyError:
        return None


def _amount(value) -> str:
    return str(value or queries.ZERO)


def trend_section(month: GoalPeriod) -> list[dict]:
    """The last ``TREND_MONTHS`` months' cohort funnels, oldest first: leads created in each
    month and how many of them reached MQL, SQL, an opportunity and a win so far. A young
    cohort has had less time to convert: the latest months are marked ``maturing``."""
    months = [month]
    while len(months) < TREND_MONTHS:
        months.insert(0, months[0].previous())
    rows = []
    for index, each in enumerate(months):
        conversion = queries.conversion_by_source(month_period(each), NO_FILTERS)
        funnel = conversion.overall.funnel
        won_key = conversion.stages[-1].key if conversion.stages else None
        row = {
            "month_on": each.first_day.isoformat(),
            "label": each.first_day.strftime("%b %Y"),
            "leads": funnel.cohort,
            "won": _reached(funnel, won_key) if won_key else None,
            "lead_to_opportunity": conversion.overall.lead_to_opportunity_rate,
            # The two latest cohorts are still converting (most wins take weeks).
            "maturing": index >= len(months) - 2,
        }
        row.update({stage: _reached(funnel, stage) for stage in TREND_STAGES})
        rows.append(row)
    return rows


def source_section(period: Period) -> list[dict]:
    """The month's cohort per source: leads, reached an opportunity, lead → opportunity and
    opportunity → won rates; biggest sources first."""
    conversion = queries.conversion_by_source(period, NO_FILTERS)
    rows = [
        {
            "name": row.source.name,
            "leads": row.funnel.cohort,
            "opportunities": _reached(row.funnel, "opportunity"),
            "lead_to_opportunity": row.lead_to_opportunity_rate,
            "opportunity_to_won": row.opportunity_to_won_rate,
        }
        for row in conversion.by_source
    ]
    return sorted(rows, key=lambda row: (-row["leads"], row["name"].lower()))[:TOP]


def campaign_section(period: Period) -> list[dict]:
    """Per campaign: leads created in the month (and won so far), opportunities created in the
    month from its leads and their amount (the pipeline it created), and amount won in the
    month. Campaigns that created the most pipeline first."""
    rows: dict = {}

    def entry(campaign_id, name) -> dict:
        return rows.setdefault(
            campaign_id,
            {"name": name or NO_CAMPAIGN, "leads": 0, "won_leads": 0, "opportunities": 0,
             "pipeline_amount": queries.ZERO, "won_amount": queries.ZERO},
        )  # fmt: skip

    for row in queries.lead_cohort_by(period, NO_FILTERS, by=queries.GroupBy.CAMPAIGN):
        cohort = entry(row.group.id, row.group.name)
        cohort["leads"], cohort["won_leads"] = row.cohort.leads, row.cohort.won
    created = (
        queries.created_opportunities(period, NO_FILTERS)
        .order_by()
        .values("lead__campaign_id", "lead__campaign__name")
        .annotate(n=Count("pk"), amount=Sum("amount"))
    )
    for row in created:
        pipeline = entry(row["lead__campaign_id"], row["lead__campaign__name"])
        pipeline["opportunities"] = row["n"]
        # In cents on every database (SQLite sums decimals without their scale).
        pipeline["pipeline_amount"] = kpis.money(row["amount"]) or queries.ZERO
    for row in queries.opportunity_results_by(period, NO_FILTERS, by=queries.GroupBy.CAMPAIGN):
        entry(row.group.id, row.group.name)["won_amount"] = row.results.won_amount
    ranked = sorted(
        rows.values(),
        key=lambda row: (-row["pipeline_amount"], -row["leads"], row["name"].lower()),
    )
    return [
        {**row, "pipeline_amount": _amount(row["pipeline_amount"]),
         "won_amount": _amount(row["won_amount"])}
        for row in ranked[:TOP]
    ]  # fmt: skip


def monthly_figures(period: Period, filters: KpiFilters = NO_FILTERS) -> dict:
    """Every figure of the monthly review of the month ``period`` covers (without the goals,
    which are read live: see ``review_page_figures``)."""
    month = goals.month_of(period.first_day)
    return {
        "version": FIGURES_VERSION,
        "computed_at": timezone.now().isoformat(),
        "time_zone": settings.DISPLAY_TIME_ZONE,
        "month": {
            "key": month.key,
            "label": month.label,
            "first_on": month.first_day.isoformat(),
            "last_on": month.last_day.isoformat(),
        },
        "trend": trend_section(month),
        "by_source": source_section(period),
        "by_campaign": campaign_section(period),
    }


snapshots.register("monthly", monthly_figures)


def review_page_figures(review: MonthlyReview, *, now: datetime | None = None) -> dict:
    """The live figures of a review (from a snapshot at most a minute old, or computed at
    ``now`` when freezing) with the scorecard of its month's (or quarter's) goals."""
    month = goals.month_of(review.month)
    if now is None:
        figures, _ = snapshots.page_data("monthly", month_period(month), NO_FILTERS)
    else:
        figures = monthly_figures(month_period(month))
    period = goal_selectors.scorecard_period(review.month)
    return {**figures, "scorecard": goal_selectors.scorecard(period, now=now)}


def review_latest_snapshot(review: MonthlyReview) -> MonthlyReviewSnapshot | None:
    return (
        MonthlyReviewSnapshot.objects.filter(review=review)
        .select_related("frozen_by")
        .order_by("-frozen_at", "-pk")
        .first()
    )


def review_for_display(figures: dict) -> dict:
    """Days and instants back as ``date`` / ``datetime`` for the template."""
    shown = {**figures, "month": dict(figures["month"])}
    for key in ("first_on", "last_on"):
        shown["month"][key] = date.fromisoformat(figures["month"][key])
    shown["computed_at"] = datetime.fromisoformat(figures["computed_at"])
    shown["scorecard"] = goal_selectors.card_for_display(figures["scorecard"])
    return shown
