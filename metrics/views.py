"""The shared KPI dashboards: every logged-in user sees the same numbers, computed the same way,
with every figure one click from the rows behind it and every table exportable."""

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from functools import partial
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from leads.choices import AssetType, FunnelStage
from leads.csv_export import (
    csv_response,
    decimal_cell,
    export_filename,
    money_cell,
    percent_cell,
)
from leads.selectors import stage_names_in_force
from metrics import dashboards, goal_selectors, page_charts, snapshots
from metrics.filters import DashboardFilterForm, Preset
from metrics.kpis import NONE, Period
from metrics.queries import GroupBy, GroupRef
from metrics.queries.shared import reads_shared
from revops.concurrent_reads import run_concurrently
from revops.db_router import reads_may_be_stale
from revops.pagination import page_of

PAGE_SIZE = 50
PAGES = [
    ("overview", "Overview"),
    ("funnel", "Funnel & conversion"),
    ("handoffs", "Handoffs & SLA"),
    ("pipeline", "Pipeline & revenue"),
    ("content", "Content"),
    ("trends", "Trends"),
]


def _filter_query(request, drop: Iterable[str] = ()) -> str:
    """The current filters as a query string (without paging, export or drill parameters)."""
    query = request.GET.copy()
    for name in ("page", "format", *dashboards.DRILL_PARAMETERS, *drop):
        query.pop(name, None)
    return query.urlencode()


# The filters a row of a table stands for: a drill link replaces the page's value with the
# row's own (None: the rows without one, "none" in the URL).
NARROWING = ("source", "campaign", "owner", "team", "tier")
BREAKDOWN_ROWS = 25


def _drill_url_factory(request, period: Period) -> Callable[..., str]:
    # The page's own parameters once (a page draws hundreds of drill links: copying the
    # request's QueryDict for each deep-copies it), and each kind's path once.
    dropped = {"page", "format", "group_by", *dashboards.DRILL_PARAMETERS}
    page_query = {name: values for name, values in request.GET.lists() if name not in dropped}
    paths: dict[str, str] = {}

    def drill_url(*, kind: str, group: GroupRef | None = None, **params) -> str:
        """The rows behind a figure: the drill-down ``kind`` under the page's period and
        filters, narrowed to what the figure counts. ``source``, ``campaign``, ``owner``,
        ``team`` and ``tier`` (a value, several in a tuple, or None for "none") replace that
        filter; ``group`` (a breakdown row) does the same for its dimension, and a month
        narrows the period to that month's days in it; any other parameter is the drill's own
        (``status``, ``outcome``…; None: not set)."""
        query = dict(page_query)  # name -> values, replaced whole, never changed in place
        if group is not None and group.by == GroupBy.MONTH:
            month_end = date(group.id.year + group.id.month // 12, group.id.month % 12 + 1, 1)
            query["preset"] = [Preset.CUSTOM]
            query["start"] = [max(period.first_day, group.id).isoformat()]
            query["end"] = [min(period.last_day, month_end - timedelta(days=1)).isoformat()]
        elif group is not None:
            params[group.by] = group.id
        for name, value in params.items():
            if name in NARROWING:
                values = value if isinstance(value, tuple) else (value,)
                query[name] = [NONE if item is None else str(item) for item in values]
            elif value is not None:
                query[name] = [str(value)]
        if kind not in paths:
            paths[kind] = reverse("metrics:drill", args=[kind])
        return f"{paths[kind]}?{urlencode(query, doseq=True)}"

    return drill_url


def _dashboard(request, page: str, chart_builders: Callable | None, export, is_empty, extra=()):
    # The page's snapshots (its figures, a breakdown, the overview's trends and goals) share
    # the KPI reads they repeat when they are computed in this request.
    with reads_shared():
        return _dashboard_shared(request, page, chart_builders, export, is_empty, extra)


def _dashboard_shared(request, page, chart_builders, export, is_empty, extra):
    """``extra``: functions of (period, filters) returning more of the page's context, each
    independent of the others and of the page's figures."""
    form = DashboardFilterForm(request.GET or None)
    period, filters = form.period(), form.kpi_filters()
    if request.GET.get("format") == "csv":
        data, _ = snapshots.page_data(page, period, filters)
        header, rows = export(data, form.totals_label())
        name = export_filename(page, period.first_day, period.last_day, form.describe())
        return csv_response(name, header, rows)
    by = (
        (form.breakdown() or dashboards.DEFAULT_BREAKDOWN)
        if page in dashboards.BREAKDOWNS
        else None
    )
    # The first view of a filter set computes its parts side by side; later views read them
    # from their snapshots, one after the other.
    figures, first_view = snapshots.page_data_part(page, period, filters)
    parts = [figures]
    if by is not None:
        parts.append(
            lambda: snapshots.page_data(dashboards.breakdown_page(page, by), period, filters)
        )
    parts += [partial(part, period, filters) for part in extra]
    (data, computed_at), *found = run_concurrently(parts, worth_it=first_view)
    breakdown = None
    if by is not None:
        rows, _ = found.pop(0)
        # A breakdown by owner can hold hundreds of reps, each row four drill links: a page
        # of them (the CSV export has them all).
        shown = Paginator(rows, BREAKDOWN_ROWS).get_page(request.GET.get("page"))
        breakdown = {
            "by": by,
            "label": dict(GroupBy.CHOICES)[by],
            "rows": shown.object_list,
            "page": shown,
        }
    extra_context = {key: value for part in found for key, value in part.items()}
    drill_url = _drill_url_factory(request, period)
    context = {
        "form": form,
        "options": form.options(),
        "period": period,
        "previous": period.previous(),
        "pages": PAGES,
        "page": page,
        "filters_text": form.describe(),
        "totals_label": form.totals_label(),
        "query": _filter_query(request),
        "data": data,
        "breakdown": breakdown,
        "charts": chart_builders(data, drill_url) if chart_builders else {},
        "drill_url": drill_url,
        "empty": is_empty(data),
        "computed_at": computed_at,
        **extra_context,
    }
    return render(request, f"metrics/{page}.html", context)


# --- Pages ---------------------------------------------------------------------------------


# Each KPI unit exported as its page shows it: rates in % (one decimal), money in whole units,
# hours and days with one decimal.
_UNIT_CELLS = {
    "percent": percent_cell,
    "money": money_cell,
    "money_per_day": money_cell,
    "hours": decimal_cell,
    "days": decimal_cell,
}
_UNIT_NAMES = {"percent": "%", "money": "USD", "money_per_day": "USD per day", "hours": "hours",
               "days": "days", "count": "count"}  # fmt: skip


def _overview_export(headlines, totals_label: str):
    header = ["kpi", "unit", "value", "previous period", "change", "definition"]
    rows = []
    for h in headlines:
        cell = _UNIT_CELLS.get(h.unit, lambda value: value)
        change = h.change
        rows.append(
            [
                h.label,
                _UNIT_NAMES.get(h.unit, h.unit),
                cell(change.current),
                cell(change.previous),
                cell(change.absolute),
                h.definition,
            ]
        )
    return header, rows


@login_required
@reads_may_be_stale
def overview(request):
    return _dashboard(
        request,
        "overview",
        None,
        _overview_export,
        lambda headlines: all(h.change.current in (None, 0) for h in headlines),
        extra=(_overview_trends, _overview_goals),
    )


def _overview_trends(period: Period, filters) -> dict:
    # The tiles' 13 weeks, from their own snapshot: the same period and filters as the tiles.
    weekly, _ = snapshots.page_data("trends", period, filters)
    return {"trends": weekly.by_key(), "sparklines": page_charts.sparklines(weekly)}


def _overview_goals(period: Period, filters) -> dict:
    # The goals' own period (this quarter or month), whatever the tiles' period and filters.
    goal_period = goal_selectors.scorecard_period(goal_selectors.local_today())
    return {"scorecard": goal_selectors.card_for_display(goal_selectors.scorecard(goal_period))}


def _trends_export(data, totals_label: str):
    """One row per KPI and week: value, sample size, maturing, and the last change's verdict."""
    header = ["kpi", "unit", "week starting", "value", "sample", "maturing"]
    rows = []
    for trend in data.trends:
        cell = _UNIT_CELLS.get(trend.unit, lambda value: value)
        for point in trend.points:
            rows.append(
                [
                    trend.label,
                    _UNIT_NAMES.get(trend.unit, trend.unit),
                    point.week.isoformat(),
                    cell(point.value),
                    point.sample,
                    "yes" if point.maturing else "no",
                ]
            )
    return header, rows


@login_required
@reads_may_be_stale
def trends(request):
    return _dashboard(
        request,
        "trends",
        page_charts.trends,
        _trends_export,
        lambda data: all(point.value is None for t in data.trends for point in t.points),
    )


def _funnel_export(data, totals_label: str):
    """One row per source, then the total under the same label as the page's totals row."""
    conversion = data["conversion"]
    header = ["source", "leads"] + [f"reached {stage.name}" for stage in conversion.stages]
    header += ["lead → opportunity %", "opportunity → won %"]
    rows = []
    for row in (*conversion.by_source, conversion.overall):
        steps = {step.stage: step.reached for step in row.funnel.steps}
        name = totals_label if row is conversion.overall else row.source.name
        rows.append(
            [name, row.funnel.cohort]
            + [steps.get(stage.key, 0) for stage in conversion.stages]
            + [
                percent_cell(row.lead_to_opportunity_rate),
                percent_cell(row.opportunity_to_won_rate),
            ]
        )
    return header, rows


@login_required
@reads_may_be_stale
def funnel(request):
    return _dashboard(
        request,
        "funnel",
        page_charts.funnel,
        _funnel_export,
        lambda data: data["conversion"].overall.funnel.cohort == 0,
    )


def _sla_cells(c) -> list:
    return [c.response.met, c.response.missed, percent_cell(c.response.rate),
            c.acceptance.met, c.acceptance.missed, percent_cell(c.acceptance.rate)]  # fmt: skip


def _handoffs_export(data, totals_label: str):
    header = [
        "group",
        "name",
        "accepted",
        "rejected",
        "pending",
        "acceptance rate %",
        "response SLA met",
        "response SLA missed",
        "response SLA rate %",
        "accept SLA met",
        "accept SLA missed",
        "accept SLA rate %",
    ]
    acceptance = {row.source: row.acceptance for row in data["acceptance_by_source"]}
    compliance = {row.source: row.compliance for row in data["sla_by_source"]}
    rows = []
    for source in sorted({*acceptance, *compliance}, key=lambda ref: (ref.id is None, ref.name)):
        a, c = acceptance.get(source), compliance.get(source)
        rows.append(
            ["source", source.name]
            + ([a.accepted, a.rejected, a.pending, percent_cell(a.rate)] if a else ["", "", "", ""])
            + (_sla_cells(c) if c else ["", "", "", "", "", ""])
        )
    for row in data["sla_by_rep"]:
        rows.append(["rep", row.rep_name, "", "", "", "", *_sla_cells(row.compliance)])
    return header, rows


@login_required
@reads_may_be_stale
def handoffs(request):
    return _dashboard(
        request,
        "handoffs",
        page_charts.handoffs,
        _handoffs_export,
        lambda data: (
            not any(
                (
                    data["acceptance"].accepted,
                    data["acceptance"].rejected,
                    data["acceptance"].pending,
                )
            )
        ),
    )


def _pipeline_export(data, totals_label: str):
    header = [
        "source",
        "open opportunities",
        "open amount USD",
        "won",
        "lost",
        "win rate %",
        "won amount USD",
        "average deal size USD",
        "median lead cycle days",
        "median opportunity cycle days",
    ]
    pipeline = {row.source: row.pipeline for row in data["pipeline"].by_source}
    rows = []
    for row in data["results_by_source"]:
        p, r = pipeline.get(row.source), row.results
        rows.append(
            [
                row.source.name,
                p.open_count if p else "",
                money_cell(p.open_amount) if p else "",
                r.won,
                r.lost,
                percent_cell(r.win_rate),
                money_cell(r.won_amount),
                money_cell(r.average_deal_size),
                decimal_cell(r.median_cycle_days),
                decimal_cell(r.median_opportunity_cycle_days),
            ]
        )
    return header, rows


@login_required
@reads_may_be_stale
def pipeline(request):
    return _dashboard(
        request,
        "pipeline",
        page_charts.pipeline,
        _pipeline_export,
        lambda data: (
            not (data["pipeline"].total.open_count or data["results"].won or data["results"].lost)
        ),
    )


def _content_export(data, totals_label: str):
    header = ["funnel stage", "asset", "type", "shares", "leads"]
    stages, types = dict(FunnelStage.choices), dict(AssetType.choices)
    rows = [
        [stages.get(stage, stage), use.title, types.get(use.asset_type, use.asset_type),
         use.shares, use.leads]
        for stage, uses in data["usage"].most_used.items()
        for use in uses
    ]  # fmt: skip
    rows += [
        [stages.get(use.funnel_stage, use.funnel_stage), use.title,
         types.get(use.asset_type, use.asset_type), 0, 0]
        for use in data["usage"].unused
    ]  # fmt: skip
    return header, rows


@login_required
@reads_may_be_stale
def content(request):
    return _dashboard(
        request,
        "content",
        page_charts.content,
        _content_export,
        lambda data: (
            not (data["utilization"].handed_off_leads or data["utilization"].opportunities)
        ),
    )


# --- Drill-down ----------------------------------------------------------------------------

DRILL_COLUMNS = {
    "handoffs": ["lead", "source", "assigned", "assignee", "outcome", "responded", "reason"],
    "leads": ["lead", "account", "source", "stage", "tier", "created"],
    "opportunities": [
        "opportunity",
        "lead",
        "source",
        "owner",
        "amount",
        "status",
        "created",
        "closed",
    ],
    "activities": ["when", "lead", "who", "action", "note"],
    "transitions": ["when", "lead", "from", "to", "entered"],
}


def _drill_row(layout: str, row, stage_names: dict[str, str]) -> list:
    if layout == "handoffs":
        lead = row.lead
        return [
            lead,
            lead.source,
            row.assigned_at,
            row.assignee,
            row.get_outcome_display(),
            row.first_response_at,
            row.reject_reason or "",
        ]
    if layout == "leads":
        stage = stage_names.get(row.stage, row.stage)
        return [row, row.account, row.source, stage, row.tier, row.created_at]
    if layout == "opportunities":
        lead = row.lead
        return [
            row.name,
            lead or "",
            lead.source if lead else "",
            row.owner,
            row.amount,
            row.get_status_display(),
            row.created_at,
            row.closed_at,
        ]
    if layout == "activities":
        return [row.occurred_at, row.lead, row.actor, row.get_action_display(), row.note]
    return [
        row.transitioned_at,
        row.lead,
        stage_names.get(row.from_stage, row.from_stage),
        stage_names.get(row.to_stage, row.to_stage),
        getattr(row, "entered_at", None),
    ]


def _drill_link(layout: str, row) -> str | None:
    if layout == "handoffs":
        return reverse("leads:handoff", args=[row.pk])
    lead_id = row.pk if layout == "leads" else getattr(row, "lead_id", None)
    return reverse("leads:detail", args=[lead_id]) if lead_id else None


_STAGE_LAYOUTS = ("leads", "transitions")

_DRILL_RELATED = {
    "leads": ("account", "source"),
    "opportunities": ("lead__source", "owner"),
    "activities": ("lead", "actor"),
    "transitions": ("lead",),
}


@login_required
@reads_may_be_stale
def drill(request, kind: str):
    spec = dashboards.DRILLS.get(kind)
    if spec is None:
        raise Http404("No such figure")
    form = DashboardFilterForm(request.GET or None)
    period, filters = form.period(), form.kpi_filters()
    rows = spec.rows(period, filters, request.GET)
    if spec.columns in _DRILL_RELATED:
        rows = rows.select_related(*_DRILL_RELATED[spec.columns])
    header = DRILL_COLUMNS[spec.columns]
    # Stages by name, as every page shows them (the keys are for machines: the API).
    stage_names = stage_names_in_force() if spec.columns in _STAGE_LAYOUTS else {}
    if request.GET.get("format") == "csv":
        return csv_response(
            export_filename(kind, period.first_day, period.last_day, form.describe()),
            ["id", *header],
            (
                [row.pk, *_drill_row(spec.columns, row, stage_names)]
                for row in rows.iterator(chunk_size=2_000)
            ),
        )
    page, query = page_of(request, rows, PAGE_SIZE)
    # Rows link to the lead pages only for those who may open them (not the Viewer role).
    links = request.user.has_perm("leads.view_lead")
    return render(
        request,
        "metrics/drill.html",
        {
            "title": spec.title,
            "kind": kind,
            "form": form,
            "period": period,
            "filters_text": form.describe(),
            "header": header,
            "rows": [
                (
                    _drill_link(spec.columns, row) if links else None,
                    _drill_row(spec.columns, row, stage_names),
                )
                for row in page.object_list
            ],
            "page": page,
            "query": query,
            "back_query": _filter_query(request),
        },
    )
