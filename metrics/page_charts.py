"""Which charts each dashboard page shows, built from that page's KPI reads.

The chart builders (``metrics.charts``) name a drill-down by the query behind it; this module
turns those names into the dashboards' drill-down links (``metrics.dashboards.DRILLS``)."""

from collections.abc import Callable

from metrics import charts, dashboards

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
    """The builders' ``drill_url(kpi=…, source_id=…, owner_id=…, **narrowing)`` as links."""

    def link(*, kpi: str, **kwargs) -> str | None:
        kind = _KINDS.get(kpi)
        if kind is None:
            return None
        if "source_id" in kwargs and kwargs["source_id"] is None:
            return None  # the "no source" bucket cannot be expressed as a filter
        params = {}
        for name, value in kwargs.items():
            if value is None or name in ("source_id", "source_ids"):
                continue
            if name == "owner_id":
                params["owner"] = value
            elif isinstance(value, bool):
                params[name] = "yes" if value else "no"
            else:
                params[name] = value
        return drill_url(kind=kind, source_id=kwargs.get("source_id"), **params)

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
        "revenue": charts.pipeline_revenue_by_source_chart(data["pipeline"], drill_url=link),
        "time_in_stage": charts.time_in_stage_chart(data["time_in_stage"], drill_url=link),
    }


def content(data: dict, drill_url) -> dict:
    link = _adapt(drill_url)
    return {"assets": charts.asset_usage_chart(data["usage"], drill_url=link)}
