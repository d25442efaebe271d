"""Which charts each dashboard page shows, built from that page's KPI reads.

The chart builders (``metrics.charts``) name a drill-down by the query behind it; this module
turns those names into the dashboards' drill-down links (``metrics.dashboards.DRILLS``)."""

from collections.abc import Callable

from leads.choices import AssetType
from metrics import charts, dashboards
from metrics.templatetags.kpi_format import CURRENCY

# chart drill name → dashboard drill kind
_KINDS = {
    "acceptance": "acceptance",
    "response_time": "response",
    "sla": "sla",
    "funnel": "cohort",
    "opportunities": "closed",
    "pipeline": "pipeline",
    "time_in_stage": "stage_exits",
    "asset_shares": "asset",
    "content_leads": "handed_off",
    "content_opportunities": "created_opportunities",
}


def _adapt(drill_url: Callable[..., str]) -> Callable[..., str | None]:
    """The builders' ``drill_url(kpi=…, source_id=…, source_ids=…, owner_id=…, **narrowing)``
    as links; a None id is the "no source" / "unassigned" bucket, kept as such."""

    def link(*, kpi: str, **kwargs) -> str | None:
        kind = _KINDS.get(kpi)
        if kind is None:
            return None
        params = {}
        for name, value in kwargs.items():
            if name == "source_id":
                params["source"] = value
            elif name == "source_ids":
                params["source"] = tuple(value)
            elif name == "owner_id":
                params["owner"] = value
            elif name == "asset_id":
                params["asset"] = value
            elif value is None:
                continue
            elif isinstance(value, bool):
                params[name] = "yes" if value else "no"
            else:
                params[name] = value
        return drill_url(kind=kind, **params)

    return link


def funnel(data: dict, drill_url) -> dict:
    link = _adapt(drill_url)
    return {"funnel": charts.conversion_funnel_chart(data["conversion"], drill_url=link)}


def handoffs(data: dict, drill_url) -> dict:
    link = _adapt(drill_url)
    return {
        "acceptance": charts.acceptance_by_source_chart(
            data["acceptance_by_source"], drill_url=link
        ),
        "sla_by_rep": charts.sla_by_rep_chart(
            data["sla_by_rep"][: dashboards.REPS_SHOWN], drill_url=link
        ),
    }


def pipeline(data: dict, drill_url) -> dict:
    link = _adapt(drill_url)
    return {
        "revenue": charts.pipeline_revenue_by_source_chart(
            data["pipeline"], drill_url=link, currency=CURRENCY
        ),
        "time_in_stage": charts.time_in_stage_chart(data["time_in_stage"], drill_url=link),
    }


def content(data: dict, drill_url) -> dict:
    link = _adapt(drill_url)
    types = dict(AssetType.choices)
    return {"assets": charts.asset_usage_chart(data["usage"], drill_url=link, type_labels=types)}


# KPI unit -> the trend line's value format, and what each KPI's sample counts.
_TREND_FORMATS = {"percent": "percent", "hours": "hours", "days": "days", "money": "money",
                  "money_per_day": "money"}  # fmt: skip
TREND_SAMPLES = {
    "acceptance": "decided handoffs",
    "response": "answered handoffs",
    "sla": "responses due",
    "lead_to_opportunity": "leads created",
    "win_rate": "closed opportunities",
    "deal_size": "won opportunities",
    "pipeline": "open opportunities",
    "velocity": "open opportunities",
    "feedback": "rejections",
}


def trends(data, drill_url) -> dict:
    """The trend page's lines: drawn with its snapshot (``dashboards.trends_page``)."""
    return data.lines


def trend_lines(data) -> dict:
    """One weekly line per headline KPI, keyed by the KPI (the trend page)."""
    return {
        trend.key: charts.trend_line(
            [
                (f"{point.week.day} {point.week:%b}", point.value, point.sample, point.maturing)
                for point in trend.points
            ],
            value_format=_TREND_FORMATS.get(trend.unit, "number"),
            currency=CURRENCY,
            sample_noun=TREND_SAMPLES.get(trend.key, "rows"),
        )
        for trend in data.trends
    }


def sparklines(data) -> dict:
    """The overview tiles' inline sparklines, keyed by the KPI."""
    return {
        trend.key: charts.sparkline_svg(
            [point.value for point in trend.points], [point.maturing for point in trend.points]
        )
        for trend in data.trends
    }
