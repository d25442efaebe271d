"""Chart builders: KPI dataclasses in, Plotly figures out, as plain JSON-ready dicts.

Each builder takes what ``metrics.queries`` returns and gives ``{"data", "layout", "config"}``
for ``Plotly.newPlot`` (``static/js/charts.js`` draws them from Django's ``json_script``), or
None when there is nothing to draw, so the template shows an empty state instead of blank axes.
No ORM, no request: a builder is a pure function, tested without a database.

Conventions every builder follows:

- **Plain JSON.** Amounts (``Decimal``) become floats and no NumPy array is ever passed, so the
  result goes through ``json.dumps`` (and ``json_script``) as it is; no
  ``plotly.utils.PlotlyJSONEncoder`` is needed.
- **Plotly's JSON, written here.** A trace is ``trace("bar", x=…, …)``: the dict that
  ``go.Bar(x=…, …).to_plotly_json()`` gives. Building figures with ``plotly.graph_objects``
  validated every attribute on every request: ~5 ms a figure (its template above all), ~130 ms
  for a web process's first one (the validators load), tens of figures a page. The tests turn
  ``VALIDATE_FIGURES`` on: every figure then goes through ``go.Figure`` too, and must come out
  equal, so a misspelt attribute or a wrong value still fails there, not in a browser.
- **Drill-down.** A point that stands for rows carries the URL of those rows in ``customdata``
  (``charts.js`` follows it on click). The URL comes from the caller's ``drill_url(kpi=...,
  **narrowing)``: ``kpi`` is a key of ``DRILL_DOWNS`` (which names the drill-down function of
  ``metrics.queries`` behind it), the other keywords are that function's keywords (``outcome``,
  ``status``, ``reached``…) plus the filter a bar stands for: ``source_id`` (None is the
  "No source" bucket: ``KpiFilters.without``), ``source_ids`` (several sources, for origins;
  None among them for "no source") or ``owner_id`` (a rep: the assignee's user id,
  ``KpiFilters.owner_ids``; None: unassigned). A keyword that is not passed does not narrow.
  ``drill_url`` may return None, and the point is then simply not clickable. Where a point's
  rows can be counted, the trace's ``meta`` holds, per point, how many rows its link lists.
- **Text is text.** Plotly renders a subset of HTML in labels, legends and hover text, so every
  name from the data goes through ``escape_label``; the markup in hover text is ours only.
- **Readable.** 14 px type, axis titles with units, rates on 0–100 % axes, amounts with
  thousands separators, colours with at least 3:1 contrast against the background (4.5:1 for
  text), and ``dark=True`` for the projector.
"""

from __future__ import annotations

import copy
import html
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metrics.kpis import FunnelStep
    from metrics.queries import (
        AssetUsage,
        ContentUtilization,
        ConversionBySource,
        PipelineRevenue,
        PipelineRevenueReport,
        RepSlaCompliance,
        ResponseTime,
        SlaCompliance,
        SlaResult,
        SourceAcceptance,
        SourceFunnel,
        SourceOpportunityResults,
        SourceRef,
        SourceSlaCompliance,
        StageDuration,
    )

Chart = dict[str, Any]
Trace = dict[str, Any]
# On in the tests (tests/conftest.py): each figure is also built with plotly.graph_objects, which
# validates it, and must equal the JSON written here.
VALIDATE_FIGURES = False
# drill_url(kpi="acceptance", source_id=3, outcome="rejected") -> "/metrics/…" (None: no link)
DrillUrl = Callable[..., str | None]

# kpi → the drill-down function of metrics.queries whose keywords the other arguments are.
DRILL_DOWNS = {
    "acceptance": "acceptance_handoffs",
    "response_time": "response_time_handoffs",
    "sla": "sla_handoffs",
    "funnel": "cohort_leads",
    "opportunities": "closed_opportunities",
    "pipeline": "open_opportunities",
    "time_in_stage": "stage_exits",
    "asset_shares": "asset_shares",
    "content_leads": "handed_off_leads",
    "content_opportunities": "created_opportunities",
}

# The labels of leads.choices.FunnelStage and SourceOrigin, repeated here so that this module
# imports nothing from Django (a test keeps them equal).
FUNNEL_STAGE_LABELS = {
    "tofu": "Top of funnel",
    "mofu": "Middle of funnel",
    "bofu": "Bottom of funnel",
}
ORIGIN_LABELS = {"marketing": "Marketing-sourced", "sales": "Sales-sourced"}
UNKNOWN_ORIGIN = "Unknown origin"

CONFIG = {
    "displaylogo": False,
    "responsive": True,
    # Box and lasso selection mean nothing on these charts and crowd the toolbar.
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}

FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", sans-serif'
FONT_SIZE = 14


# --- Look ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    """Colours for one background. ``series`` cycles over traces; ``good`` / ``bad`` /
    ``neutral`` carry meaning (accepted / rejected / pending)."""

    name: str
    background: str
    text: str
    grid: str
    series: tuple[str, ...]
    good: str
    bad: str
    neutral: str


LIGHT = Palette(
    name="revops-light",
    background="#ffffff",
    text="#1d2433",
    grid="#e3e6ee",
    # Twelve qualitative colours, told apart by hue and lightness; a thirteenth series reuses
    # the first colour with a hatch pattern (``series_style``), so no two sources look alike.
    series=(
        "#2f5bea",  # blue, the app's accent
        "#c2410c",  # orange
        "#15803d",  # green
        "#7e22ce",  # purple
        "#be123c",  # crimson
        "#0f766e",  # teal
        "#a16207",  # ochre
        "#475569",  # slate
        "#db2777",  # pink
        "#0e7490",  # cyan
        "#4d7c0f",  # olive
        "#7c2d12",  # brown
    ),
    good="#15803d",
    bad="#b42318",
    neutral="#6b7385",
)

DARK = Palette(
    name="revops-dark",
    background="#0f1420",
    text="#f3f4f6",
    grid="#2b3345",
    series=(
        "#7aa2ff",
        "#fb923c",
        "#4ade80",
        "#c084fc",
        "#fb7185",
        "#2dd4bf",
        "#facc15",
        "#cbd5e1",
        "#f472b6",
        "#22d3ee",
        "#a3e635",
        "#d6a77a",
    ),
    good="#4ade80",
    bad="#f87171",
    neutral="#9ca3af",
)


def palette(dark: bool = False) -> Palette:
    return DARK if dark else LIGHT


# Hatches for series beyond the palette's colours: series 13–24 are hatched "/", and so on.
PATTERNS = ("", "/", ".", "x", "-", "+", "\\", "|")


def series_style(index: int, colours: Palette) -> tuple[str, str]:
    """The colour and hatch pattern of the ``index``-th series: each of the first 12 has its
    own colour; later ones repeat a colour with a pattern, so no two series look the same."""
    count = len(colours.series)
    return colours.series[index % count], PATTERNS[(index // count) % len(PATTERNS)]


def _template(colours: Palette) -> dict:
    """A small Plotly template (Plotly's own ones weigh ~7 kB per chart and miss our colours)."""
    axis = {
        "gridcolor": colours.grid,
        "linecolor": colours.grid,
        "zerolinecolor": colours.grid,
        "automargin": True,
        "title": {"standoff": 12},
        "tickfont": {"color": colours.text},
    }
    return {
        "layout": {
            "font": {"family": FONT_FAMILY, "size": FONT_SIZE, "color": colours.text},
            "paper_bgcolor": colours.background,
            "plot_bgcolor": colours.background,
            "colorway": list(colours.series),
            "xaxis": axis,
            "yaxis": axis,
            "hoverlabel": {
                "font": {"family": FONT_FAMILY, "size": FONT_SIZE, "color": colours.text},
                "bgcolor": colours.background,
                "bordercolor": colours.text,
                "align": "left",
            },
            "legend": {
                "orientation": "h",
                "x": 0,
                "xanchor": "left",
                "y": 1.02,
                "yanchor": "bottom",
            },
            "margin": {"l": 16, "r": 24, "t": 48, "b": 16, "pad": 4},
            "hovermode": "closest",
            "separators": ".,",
            # Labels too small to read inside a bar are hidden; the hover still has them.
            "uniformtext": {"minsize": 12, "mode": "hide"},
        }
    }


def trace(kind: str, **properties: Any) -> Trace:
    """A trace as Plotly's JSON: its type and the properties given; None leaves a property
    unset, as it does in ``go.Bar(…)``."""
    return {
        "type": kind,
        **{name: value for name, value in properties.items() if value is not None},
    }


def _figure(traces: Iterable[Trace], layout: Mapping[str, Any], *, dark: bool) -> Chart:
    colours = palette(dark)
    # A copy: the layouts share axis and legend constants, and a figure is the caller's to keep.
    layout = copy.deepcopy({"template": _template(colours), **layout})
    data = [dict(one) for one in traces]
    if VALIDATE_FIGURES:
        _validate(data, layout)
    return {"data": data, "layout": layout, "config": dict(CONFIG)}


def _validate(data: list[Trace], layout: dict[str, Any]) -> None:
    """Build the figure with plotly.graph_objects, which refuses an unknown attribute or a bad
    value, and require its JSON to be the one written here."""
    import plotly.graph_objects as go  # only here: loading its validators costs ~0.1 s

    spec = go.Figure(data=data, layout=layout).to_plotly_json()
    if spec["data"] != data or spec["layout"] != layout:
        raise ValueError(
            "The figure's JSON differs from what plotly.graph_objects makes of it: "
            f"{spec['data']!r} {spec['layout']!r} against {data!r} {layout!r}"
        )


# --- Text and numbers for people -------------------------------------------------------------


def escape_label(text: object) -> str:
    """``text`` as literal text for Plotly, which renders ``<b>``, ``<a href>``, ``<br>``… in
    labels and decodes entities: ``<``, ``>`` and ``&`` become entities, shown as typed."""
    return html.escape(str(text), quote=False)


def _unique(labels: Sequence[str]) -> list[str]:
    """Category labels made distinct (two reps called "Sam Lee"): a category axis would
    otherwise draw both rows as one bar."""
    totals, seen = Counter(labels), Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(f"{label} ({seen[label]})" if totals[label] > 1 else label)
    return unique


def _number(value: float | int | Decimal | None) -> float | None:
    return None if value is None else float(value)


def _percent(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value * 100:.1f}".removesuffix(".0") + "%"


def _count(value: int, noun: str, plural: str | None = None) -> str:
    return f"{value:,} {noun if value == 1 else plural or noun + 's'}"


def _money(value: float | Decimal | None, currency: str) -> str:
    return "no data" if value is None else f"{currency}{value:,.0f}"


def _hours(value: float | None) -> str:
    return "no data" if value is None else f"{value:,.1f} h"


def _days(value: float | None) -> str:
    return "no data" if value is None else f"{value:,.1f} days"


def _hover(title: str, *lines: str) -> str:
    """Hover text: the (escaped) title in bold, one fact per line."""
    return "<br>".join([f"<b>{title}</b>", *lines])


PERCENT_AXIS = {"tickformat": ".0%", "range": [0, 1], "rangemode": "nonnegative"}
COUNT_AXIS = {"tickformat": ",d", "rangemode": "tozero"}
# Below this, Plotly would put ticks between whole numbers ("0 1 1 2 2 3" once rounded).
SMALL_COUNT = 10


def count_axis(largest: float) -> dict:
    """An axis of whole counts with whole ticks only: a tick per unit up to ``SMALL_COUNT``,
    Plotly's own (whole) steps above, never a fraction."""
    if largest <= SMALL_COUNT:
        return {**COUNT_AXIS, "tick0": 0, "dtick": 1, "range": [0, max(largest, 1) * 1.05]}
    return {**COUNT_AXIS, "tick0": 0}


# One series needs no legend, nor the room kept above the plot for one.
NO_LEGEND = {"showlegend": False, "margin": {"t": 16}}


def _money_axis(title: str, currency: str) -> dict:
    return {"title": {"text": title}, "tickformat": ",.0f", "tickprefix": currency}


def _category_axis() -> dict:
    # Reversed, so the first row (alphabetical, as the KPI returns them) is on top.
    # Long names get the margin they need (automargin), not an ellipsis.
    return {"autorange": "reversed", "type": "category", "automargin": True}


def _no_data_notes(labels: Sequence[str], values: Sequence[Any], dark: bool) -> list[dict]:
    """Notes saying "no data" where a horizontal bar has none: an empty row reads as 0."""
    return [
        {
            "x": 0,
            "y": label,
            "xref": "x",
            "yref": "y",
            "text": "no data",
            "showarrow": False,
            "xanchor": "left",
            "font": {"color": palette(dark).neutral},
        }
        for label, value in zip(labels, values, strict=True)
        if value is None
    ]


def _all_none(values: Iterable[Any]) -> bool:
    return all(value is None for value in values)


def _bar(
    name: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    texts: Sequence[str],
    hovers: Sequence[str],
    urls: Sequence[str | None],
    colour: str | None = None,
    pattern: str = "",
    horizontal: bool = True,
    textposition: str = "auto",
    rows: Sequence[int] | None = None,
) -> Trace:
    """One bar trace: values on the value axis, ``labels`` on the category axis. ``name``,
    ``labels`` and ``hovers`` must be escaped already (``escape_label``). ``rows``: how many
    rows each bar's link lists (``meta``)."""
    categories, amounts = list(labels), list(values)
    position = {"y": categories, "x": amounts} if horizontal else {"x": categories, "y": amounts}
    return trace(
        "bar",
        name=name,
        orientation="h" if horizontal else "v",
        **position,
        text=list(texts),
        # A zero bar has no inside: its label goes beside it, so 0 reads as 0, not as missing.
        textposition=(
            [("outside" if value == 0 else "auto") for value in values]
            if textposition == "auto"
            else textposition
        ),
        hovertext=list(hovers),
        hoverinfo="text",
        customdata=list(urls),
        meta=list(rows) if rows is not None else None,
        marker=(
            {"color": colour, **({"pattern": {"shape": pattern}} if pattern else {})}
            if colour
            else None
        ),
        cliponaxis=False,
    )


def _source_names(sources: Sequence[SourceRef]) -> list[str]:
    return _unique([escape_label(source.name) for source in sources])


# --- Funnel ----------------------------------------------------------------------------------


def _has_cohort(funnels: Iterable[SourceFunnel]) -> bool:
    return any(row.funnel.cohort for row in funnels)


def _funnel_hover(
    source: str, stage: str, previous: str | None, step: FunnelStep, cohort: int
) -> str:
    lines = [f"{step.reached:,} of {cohort:,} leads reached it ({_percent(step.share_of_cohort)})"]
    if previous is not None:
        lines.append(f"From {previous}: {_percent(step.rate_from_previous)}")
        lines.append(f"Dropped after {previous}: {step.dropped:,} ({_percent(step.drop_rate)})")
    return _hover(f"{source} · {stage}", *lines)


def conversion_funnel_chart(
    conversion: ConversionBySource, *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Cohort funnel by source: per stage, the share of each source's leads that reached it
    (grouped bars, one colour per source), with counts, stage-to-stage rates and drop-off in the
    hover. A bar opens the source's cohort leads that reached the stage."""
    if not _has_cohort(conversion.by_source):
        return None
    all_names = _unique([escape_label(stage.name) for stage in conversion.stages])
    # Every lead is in the first stage: its bar would be 100 % for every source. The stages
    # after it carry the information (the cohort size is in each hover).
    stages, stage_names = conversion.stages[1:], all_names[1:]
    previous_names = all_names[:-1]
    if not stages:
        return None
    source_names = _source_names([row.source for row in conversion.by_source])
    colours = palette(dark)
    traces = []
    for index, (source_name, row) in enumerate(
        zip(source_names, conversion.by_source, strict=True)
    ):
        if not row.funnel.cohort:
            continue
        steps = [row.funnel.step(stage.key) for stage in stages]
        colour, pattern = series_style(index, colours)
        traces.append(
            _bar(
                source_name,
                stage_names,
                [step.share_of_cohort for step in steps],
                texts=[_percent(step.share_of_cohort) for step in steps],
                hovers=[
                    _funnel_hover(source_name, name, previous, step, row.funnel.cohort)
                    for name, previous, step in zip(stage_names, previous_names, steps, strict=True)
                ],
                urls=[
                    drill_url(kpi="funnel", source_id=row.source.id, reached=stage.key)
                    for stage in stages
                ],
                colour=colour,
                pattern=pattern,
                horizontal=False,
                textposition="none",
                rows=[step.reached for step in steps],
            )
        )
    return _figure(
        traces,
        {
            "barmode": "group",
            "xaxis": {"title": {"text": "Stage reached"}, "type": "category"},
            "yaxis": {"title": {"text": "Share of the source's new leads (%)"}, **PERCENT_AXIS},
            "legend": {"title": {"text": "Source"}},
        },
        dark=dark,
    )


def cohort_funnel_chart(
    conversion: ConversionBySource,
    *,
    drill_url: DrillUrl,
    source: SourceRef | None = None,
    dark: bool = False,
) -> Chart | None:
    """One cohort as a funnel, all sources (``source`` None) or one source: leads that reached
    each stage, with the share of the cohort and the stage-to-stage rate."""
    if source is None:
        row, narrowing = conversion.overall, {}
    else:
        found = [candidate for candidate in conversion.by_source if candidate.source == source]
        if not found:
            return None
        row, narrowing = found[0], {"source_id": source.id}
    if not row.funnel.cohort:
        return None
    names = _unique([escape_label(stage.name) for stage in conversion.stages])
    steps = [row.funnel.step(stage.key) for stage in conversion.stages]
    title = escape_label(row.source.name)
    funnel = trace(
        "funnel",
        name=title,
        y=names,
        x=[step.reached for step in steps],
        text=[
            f"{step.reached:,} · {_percent(step.share_of_cohort)}"
            if step.rate_from_previous is None
            else f"{step.reached:,} · {_percent(step.rate_from_previous)} of previous"
            for step in steps
        ],
        textinfo="text",
        textposition="inside",
        hovertext=[
            _funnel_hover(title, name, previous, step, row.funnel.cohort)
            for name, previous, step in zip(names, [None, *names[:-1]], steps, strict=True)
        ],
        hoverinfo="text",
        customdata=[
            drill_url(kpi="funnel", reached=stage.key, **narrowing) for stage in conversion.stages
        ],
        marker={"color": palette(dark).series[0]},
        connector={"fillcolor": palette(dark).grid},
    )
    return _figure([funnel], {"yaxis": {"type": "category"}, **NO_LEGEND}, dark=dark)


# --- Handoffs and SLA ------------------------------------------------------------------------


def acceptance_by_source_chart(
    rows: Sequence[SourceAcceptance], *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Handoffs assigned in the period by source, stacked accepted / rejected / pending, the
    acceptance rate in the hover (pending shown, not counted). A segment opens its handoffs."""
    rows = [
        row
        for row in rows
        if row.acceptance.accepted + row.acceptance.rejected + row.acceptance.pending
    ]
    if not rows:
        return None
    colours = palette(dark)
    names = _source_names([row.source for row in rows])
    hovers = [
        _hover(
            name,
            f"Acceptance rate: {_percent(row.acceptance.rate)}",
            f"Accepted {row.acceptance.accepted:,} · rejected {row.acceptance.rejected:,}",
            f"Pending (not in the rate): {row.acceptance.pending:,}",
        )
        for name, row in zip(names, rows, strict=True)
    ]
    traces = []
    for outcome, label, colour in (
        ("accepted", "Accepted", colours.good),
        ("rejected", "Rejected", colours.bad),
        ("pending", "Pending", colours.neutral),
    ):
        counts = [getattr(row.acceptance, outcome) for row in rows]
        traces.append(
            _bar(
                label,
                names,
                counts,
                texts=[f"{count:,}" if count else "" for count in counts],
                hovers=hovers,
                urls=[
                    drill_url(kpi="acceptance", source_id=row.source.id, outcome=outcome)
                    for row in rows
                ],
                colour=colour,
                textposition="inside",
                rows=counts,
            )
        )
    return _figure(
        traces,
        {
            "barmode": "stack",
            # Plotly lists stacked traces last-first (for vertical stacks); ours run left to right.
            "legend": {"traceorder": "normal"},
            "xaxis": {
                "title": {"text": "Handoffs assigned (count)"},
                **count_axis(
                    max(
                        row.acceptance.accepted + row.acceptance.rejected + row.acceptance.pending
                        for row in rows
                    )
                ),
            },
            "yaxis": _category_axis(),
        },
        dark=dark,
    )


def response_time_chart(
    rows: Sequence[tuple[int | None, str, ResponseTime]],
    *,
    drill_url: DrillUrl,
    by: str = "source",
    dark: bool = False,
) -> Chart | None:
    """Median and p90 business hours to first response, per group: ``rows`` are
    ``(id, name, ResponseTime)`` with ``by`` "source" (id: source id) or "rep" (id: the rep's
    user id). A bar opens the group's answered handoffs."""
    if by not in ("source", "rep"):
        raise ValueError(f"response_time_chart groups by 'source' or 'rep', not {by!r}.")
    rows = [row for row in rows if row[2].median_hours is not None or row[2].p90_hours is not None]
    if not rows:
        return None
    key = "source_id" if by == "source" else "owner_id"
    names = _unique([escape_label(name) for _, name, _ in rows])
    hovers = [
        _hover(
            name,
            f"Median {_hours(response.median_hours)} · p90 {_hours(response.p90_hours)}",
            f"{_count(response.answered, 'handoff')} answered · "
            f"{response.unanswered:,} still unanswered",
        )
        for name, (_, _, response) in zip(names, rows, strict=True)
    ]
    urls = [drill_url(kpi="response_time", answered=True, **{key: group}) for group, _, _ in rows]
    colours = palette(dark)
    traces = [
        _bar(
            label,
            names,
            [getattr(response, field) for _, _, response in rows],
            texts=[_hours(getattr(response, field)) for _, _, response in rows],
            hovers=hovers,
            urls=urls,
            colour=colour,
            rows=[response.answered for _, _, response in rows],
        )
        for field, label, colour in (
            ("median_hours", "Median", colours.series[0]),
            ("p90_hours", "p90 (9 in 10 answered within)", colours.series[1]),
        )
    ]
    return _figure(
        traces,
        {
            "barmode": "group",
            "xaxis": {
                "title": {"text": "Business hours to first response"},
                "rangemode": "tozero",
                "tickformat": ",.0f",
            },
            "yaxis": _category_axis(),
        },
        dark=dark,
    )


def _sla_chart(
    groups: Sequence[tuple[dict[str, Any], str, SlaCompliance]],
    drill_url: DrillUrl,
    dark: bool,
) -> Chart | None:
    groups = [
        group
        for group in groups
        if group[2].response.rate is not None or group[2].acceptance.rate is not None
    ]
    if not groups:
        return None
    names = _unique([escape_label(name) for _, name, _ in groups])
    colours = palette(dark)
    clocks = (
        ("response", "First response on time", colours.series[0]),
        ("acceptance", "Accepted or rejected on time", colours.series[1]),
    )

    def facts(result: SlaResult) -> str:
        return (
            f"{_percent(result.rate)} (met {result.met:,} · missed {result.missed:,}"
            f" · {result.open:,} not yet due, not in the rate)"
        )

    # Both clocks in every hover: a clock with no data has no bar to hover.
    hovers = [
        _hover(
            name,
            *(f"{label}: {facts(getattr(compliance, clock))}" for clock, label, _ in clocks),
        )
        for name, (_, _, compliance) in zip(names, groups, strict=True)
    ]
    traces = []
    for clock, label, colour in clocks:
        rates = [getattr(compliance, clock).rate for _, _, compliance in groups]
        traces.append(
            _bar(
                label,
                names,
                rates,
                texts=[_percent(rate) for rate in rates],
                hovers=hovers,
                urls=[drill_url(kpi="sla", clock=clock, **narrowing) for narrowing, _, _ in groups],
                colour=colour,
                rows=[_due(getattr(compliance, clock)) for _, _, compliance in groups],
            )
        )
    return _figure(
        traces,
        {
            "barmode": "group",
            "xaxis": {"title": {"text": "Handoffs on time (%)"}, **PERCENT_AXIS},
            "yaxis": _category_axis(),
        },
        dark=dark,
    )


def _due(result: SlaResult) -> int:
    return result.met + result.missed + result.open


def sla_by_rep_chart(
    rows: Sequence[RepSlaCompliance], *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Response and acceptance SLA compliance per rep (the assignee). A bar opens the handoffs
    of that clock due in the period for that rep."""
    return _sla_chart(
        [({"owner_id": row.rep_id}, row.rep_name, row.compliance) for row in rows],
        drill_url,
        dark,
    )


def sla_by_source_chart(
    rows: Sequence[SourceSlaCompliance], *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Response and acceptance SLA compliance per lead source."""
    return _sla_chart(
        [({"source_id": row.source.id}, row.source.name, row.compliance) for row in rows],
        drill_url,
        dark,
    )


# --- Opportunities ---------------------------------------------------------------------------


def _by_source_chart(
    rows: Sequence[SourceOpportunityResults],
    *,
    value: Callable[[Any], float | None],
    text: Callable[[float | None], str],
    hover: Callable[[Any], list[str]],
    status: str | None,
    axis: dict,
    drill_url: DrillUrl,
    dark: bool,
    name: str,
) -> Chart | None:
    rows = [row for row in rows if value(row.results) is not None]
    if not rows:
        return None
    names = _source_names([row.source for row in rows])
    values = [_number(value(row.results)) for row in rows]
    narrowing = {"status": status} if status else {}
    bars = _bar(
        name,
        names,
        values,
        texts=[text(number) for number in values],
        hovers=[_hover(label, *hover(row.results)) for label, row in zip(names, rows, strict=True)],
        urls=[drill_url(kpi="opportunities", source_id=row.source.id, **narrowing) for row in rows],
        colour=palette(dark).series[0],
        rows=[
            row.results.won if status == "won" else row.results.won + row.results.lost
            for row in rows
        ],
    )
    return _figure([bars], {"xaxis": axis, "yaxis": _category_axis(), **NO_LEGEND}, dark=dark)


def win_rate_chart(
    rows: Sequence[SourceOpportunityResults], *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Won ÷ (won + lost) of opportunities closed in the period, per source. A bar opens the
    source's closed opportunities."""
    return _by_source_chart(
        rows,
        value=lambda results: results.win_rate,
        text=_percent,
        hover=lambda results: [
            f"Win rate {_percent(results.win_rate)}",
            f"Won {results.won:,} · lost {results.lost:,}",
        ],
        status=None,
        axis={"title": {"text": "Win rate (%)"}, **PERCENT_AXIS},
        drill_url=drill_url,
        dark=dark,
        name="Win rate",
    )


def deal_size_chart(
    rows: Sequence[SourceOpportunityResults],
    *,
    drill_url: DrillUrl,
    currency: str = "",
    dark: bool = False,
) -> Chart | None:
    """Mean amount of opportunities won in the period, per source. A bar opens the wins."""
    return _by_source_chart(
        rows,
        value=lambda results: results.average_deal_size,
        text=lambda amount: _money(amount, currency),
        hover=lambda results: [
            f"Average deal {_money(results.average_deal_size, currency)}",
            f"{_count(results.won, 'deal')} won, {_money(results.won_amount, currency)} in all",
        ],
        status="won",
        axis=_money_axis("Average deal size (amount won ÷ deals won)", currency),
        drill_url=drill_url,
        dark=dark,
        name="Average deal size",
    )


def sales_cycle_chart(
    rows: Sequence[SourceOpportunityResults], *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Median days from lead creation to win, for opportunities won in the period, per source.
    A bar opens the wins."""
    return _by_source_chart(
        rows,
        value=lambda results: results.median_cycle_days,
        text=_days,
        hover=lambda results: [
            f"Median {_days(results.median_cycle_days)} · mean {_days(results.average_cycle_days)}",
            f"Over {_count(results.won, 'deal')} won",
        ],
        status="won",
        axis={"title": {"text": "Median sales cycle (days)"}, "rangemode": "tozero"},
        drill_url=drill_url,
        dark=dark,
        name="Median sales cycle",
    )


def _pipeline_traces(
    labels: Sequence[str],
    pipelines: Sequence[PipelineRevenue],
    open_urls: Sequence[str | None],
    won_urls: Sequence[str | None],
    currency: str,
    colours: Palette,
) -> list[Trace]:
    hovers = [
        _hover(
            label,
            f"Open pipeline {_money(pipeline.open_amount, currency)} "
            f"({_count(pipeline.open_count, 'opportunity', 'opportunities')})",
            f"Won in the period {_money(pipeline.won_amount, currency)} "
            f"({_count(pipeline.won_count, 'deal')})",
        )
        for label, pipeline in zip(labels, pipelines, strict=True)
    ]
    traces = []
    for field, count, name, colour, urls in (
        ("open_amount", "open_count", "Open pipeline", colours.series[0], open_urls),
        ("won_amount", "won_count", "Won in the period", colours.good, won_urls),
    ):
        amounts = [_number(getattr(pipeline, field)) for pipeline in pipelines]
        traces.append(
            _bar(
                name,
                labels,
                amounts,
                texts=[_money(amount, currency) for amount in amounts],
                hovers=hovers,
                urls=urls,
                colour=colour,
                rows=[getattr(pipeline, count) for pipeline in pipelines],
            )
        )
    return traces


def _has_amounts(pipelines: Iterable[PipelineRevenue]) -> bool:
    return any(pipeline.open_amount or pipeline.won_amount for pipeline in pipelines)


def pipeline_revenue_by_source_chart(
    report: PipelineRevenueReport,
    *,
    drill_url: DrillUrl,
    currency: str = "",
    dark: bool = False,
) -> Chart | None:
    """Open pipeline amount (at the period's end) and amount won in the period, per source.
    Open bars open the open opportunities; won bars the wins."""
    rows = [row for row in report.by_source if _has_amounts([row.pipeline])]
    if not rows:
        return None
    labels = _source_names([row.source for row in rows])
    traces = _pipeline_traces(
        labels,
        [row.pipeline for row in rows],
        [drill_url(kpi="pipeline", source_id=row.source.id) for row in rows],
        [drill_url(kpi="opportunities", source_id=row.source.id, status="won") for row in rows],
        currency,
        palette(dark),
    )
    return _figure(
        traces,
        {
            "barmode": "group",
            "xaxis": _money_axis("Amount", currency),
            "yaxis": _category_axis(),
        },
        dark=dark,
    )


def pipeline_revenue_by_origin_chart(
    report: PipelineRevenueReport,
    *,
    drill_url: DrillUrl,
    currency: str = "",
    dark: bool = False,
) -> Chart | None:
    """Marketing- vs sales-sourced: open pipeline and amount won, per source origin (leads
    without a source: "Unknown origin"). A bar opens the rows of the origin's sources, passed
    as ``source_ids`` (a tuple; it holds None for the "No source" bucket)."""
    order = [*ORIGIN_LABELS, None]
    origins = [origin for origin in order if origin in report.by_origin]
    origins += sorted((origin for origin in report.by_origin if origin not in order), key=str)
    origins = [origin for origin in origins if _has_amounts([report.by_origin[origin]])]
    if not origins:
        return None
    source_ids = {
        origin: tuple(row.source.id for row in report.by_source if row.origin == origin)
        for origin in origins
    }
    labels = _unique(
        [
            escape_label(ORIGIN_LABELS.get(origin, origin) if origin else UNKNOWN_ORIGIN)
            for origin in origins
        ]
    )
    traces = _pipeline_traces(
        labels,
        [report.by_origin[origin] for origin in origins],
        [drill_url(kpi="pipeline", source_ids=source_ids[origin]) for origin in origins],
        [
            drill_url(kpi="opportunities", source_ids=source_ids[origin], status="won")
            for origin in origins
        ],
        currency,
        palette(dark),
    )
    return _figure(
        traces,
        {
            "barmode": "group",
            "xaxis": _money_axis("Amount", currency),
            "yaxis": _category_axis(),
        },
        dark=dark,
    )


# --- Lifecycle -------------------------------------------------------------------------------


def time_in_stage_chart(
    rows: Sequence[StageDuration],
    *,
    drill_url: DrillUrl,
    stage_names: Mapping[str, str] | None = None,
    dark: bool = False,
) -> Chart | None:
    """Median days spent in each stage (over exits in the period), stages in the order given.
    ``stage_names`` maps stage keys to names (e.g. from ``ConversionBySource.stages``); a key
    without one is shown as is. A bar opens the stage's exits."""
    rows = [row for row in rows if row.median_days is not None]
    if not rows:
        return None
    names = stage_names or {}
    labels = _unique([escape_label(names.get(row.stage, row.stage)) for row in rows])
    bars = _bar(
        "Median days in stage",
        labels,
        [row.median_days for row in rows],
        texts=[_days(row.median_days) for row in rows],
        hovers=[
            _hover(label, f"Median {_days(row.median_days)}", f"Over {_count(row.exits, 'exit')}")
            for label, row in zip(labels, rows, strict=True)
        ],
        urls=[drill_url(kpi="time_in_stage", stage=row.stage) for row in rows],
        colour=palette(dark).series[0],
        horizontal=False,
        rows=[row.exits for row in rows],
    )
    return _figure(
        [bars],
        {
            "xaxis": {"title": {"text": "Stage"}, "type": "category"},
            "yaxis": {"title": {"text": "Median days in stage"}, "rangemode": "tozero"},
            **NO_LEGEND,
        },
        dark=dark,
    )


# --- Content ---------------------------------------------------------------------------------


def asset_usage_chart(
    usage: AssetUsage,
    *,
    drill_url: DrillUrl,
    stage_labels: Mapping[str, str] = FUNNEL_STAGE_LABELS,
    type_labels: Mapping[str, str] | None = None,
    dark: bool = False,
) -> Chart | None:
    """The assets sales shared most in the period, grouped by the asset's funnel stage (top,
    middle, bottom; others after), most shared first. A bar opens the touches that shared it;
    its hover names the asset's type by ``type_labels`` ("Case study" for ``case_study``)."""
    type_labels = type_labels or {}
    order = [stage for stage in stage_labels if usage.most_used.get(stage)]
    order += sorted(stage for stage in usage.most_used if stage not in stage_labels)
    order = [stage for stage in order if usage.most_used.get(stage)]
    if not order:
        return None
    colours = palette(dark)
    traces = []
    for index, stage in enumerate(order):
        assets = usage.most_used[stage]
        stage_label = escape_label(stage_labels.get(stage, stage))
        titles = _unique([escape_label(asset.title) for asset in assets])
        traces.append(
            _bar(
                stage_label,
                # Two-level axis: titles grouped under their stage, so equal titles at two
                # stages stay two bars.
                [[stage_label] * len(assets), titles],
                [asset.shares for asset in assets],
                texts=[f"{asset.shares:,}" for asset in assets],
                hovers=[
                    _hover(
                        title,
                        f"{escape_label(type_labels.get(asset.asset_type, asset.asset_type))}"
                        f" · {stage_label}",
                        f"Shared {_count(asset.shares, 'time')} with {_count(asset.leads, 'lead')}",
                    )
                    for title, asset in zip(titles, assets, strict=True)
                ],
                urls=[drill_url(kpi="asset_shares", asset_id=asset.asset_id) for asset in assets],
                colour=series_style(index, colours)[0],
                pattern=series_style(index, colours)[1],
                rows=[asset.shares for asset in assets],
            )
        )
    return _figure(
        traces,
        {
            "xaxis": {
                "title": {"text": "Times shared by sales"},
                **count_axis(
                    max(asset.shares for stage in order for asset in usage.most_used[stage])
                ),
            },
            "yaxis": {"autorange": "reversed", "type": "multicategory"},
        },
        dark=dark,
    )


def content_utilization_chart(
    utilization: ContentUtilization, *, drill_url: DrillUrl, dark: bool = False
) -> Chart | None:
    """Three shares: handed-off leads sales shared content with, opportunities whose lead got
    content, and opportunities whose lead engaged with content before the opportunity. A bar
    opens the handed-off leads or the opportunities created in the period."""
    measures = [
        (
            "Handed-off leads that got content",
            utilization.handed_off_share_rate,
            utilization.handed_off_leads_with_share,
            _count(utilization.handed_off_leads, "lead"),
            "content_leads",
        ),
        (
            "Opportunities whose lead got content",
            utilization.opportunity_share_rate,
            utilization.opportunities_with_share,
            _count(utilization.opportunities, "opportunity", "opportunities"),
            "content_opportunities",
        ),
        (
            "Opportunities whose lead engaged before",
            utilization.prior_engagement_rate,
            utilization.opportunities_with_prior_engagement,
            _count(utilization.opportunities, "opportunity", "opportunities"),
            "content_opportunities",
        ),
    ]
    if _all_none(rate for _, rate, *_ in measures):
        return None

    labels, rates = [label for label, *_ in measures], [rate for _, rate, *_ in measures]
    bars = _bar(
        "Share",
        labels,
        rates,
        texts=[_percent(rate) for rate in rates],
        hovers=[
            _hover(label, _percent(rate), f"{part:,} of {whole}")
            for label, rate, part, whole, _ in measures
        ],
        urls=[drill_url(kpi=kpi) for *_, kpi in measures],
        colour=palette(dark).series[0],
    )
    notes = _no_data_notes(labels, rates, dark)
    return _figure(
        [bars],
        {
            "xaxis": {"title": {"text": "Share (%)"}, **PERCENT_AXIS},
            "yaxis": _category_axis(),
            **NO_LEGEND,
            # Plotly's JSON has no empty list of annotations.
            **({"annotations": notes} if notes else {}),
        },
        dark=dark,
    )


# --- Trend -----------------------------------------------------------------------------------

_TREND_FORMATS: dict[str, Callable[[float], str]] = {
    "number": lambda value: f"{value:,.0f}",
    "percent": _percent,
    "hours": _hours,
    "days": _days,
}


def trend_sparkline(
    points: Sequence[tuple[str, float | int | Decimal | None]],
    *,
    value_format: str = "number",
    currency: str = "",
    dark: bool = False,
) -> Chart | None:
    """A small line of a KPI over periods, oldest first: ``points`` are ``(label, value)``
    (None: no data that period, drawn as a gap). ``value_format``: "number", "percent",
    "money", "hours" or "days". No axes, no toolbar; the hover gives each value."""
    if value_format != "money" and value_format not in _TREND_FORMATS:
        raise ValueError(f"Unknown value format {value_format!r}.")
    show = _TREND_FORMATS.get(value_format) or partial(_money, currency=currency)
    if _all_none(value for _, value in points):
        return None
    labels = _unique([escape_label(label) for label, _ in points])
    values = [_number(value) for _, value in points]
    colours = palette(dark)
    line = trace(
        "scatter",
        x=labels,
        y=values,
        mode="lines+markers",
        line={"color": colours.series[0], "width": 2},
        marker={"size": 6},
        hovertext=[
            f"{label}: {'no data' if value is None else show(value)}"
            for label, value in zip(labels, values, strict=True)
        ],
        hoverinfo="text",
        showlegend=False,
    )
    hidden = {"visible": False, "fixedrange": True}
    chart = _figure(
        [line],
        {
            "xaxis": {**hidden, "type": "category"},
            "yaxis": hidden,
            "height": 64,
            "margin": {"l": 4, "r": 4, "t": 4, "b": 4, "pad": 0},
            "hovermode": "x",
        },
        dark=dark,
    )
    # A sparkline sits inside a KPI tile: a toolbar would be bigger than the chart.
    chart["config"] = {**chart["config"], "displayModeBar": False}
    return chart


def trend_line(
    points: Sequence[tuple[str, float | int | Decimal | None, int | None, bool]],
    *,
    value_format: str = "number",
    currency: str = "",
    sample_noun: str = "rows",
    dark: bool = False,
) -> Chart | None:
    """A KPI week by week, oldest first: ``points`` are ``(label, value, sample, maturing)``
    (value None: a gap). A maturing week is drawn as a hollow marker and says so in its hover;
    every hover names the sample size. Rates on a 0–100 % axis."""
    if value_format != "money" and value_format not in _TREND_FORMATS:
        raise ValueError(f"Unknown value format {value_format!r}.")
    show = _TREND_FORMATS.get(value_format) or partial(_money, currency=currency)
    if _all_none(value for _, value, _, _ in points):
        return None
    labels = _unique([escape_label(label) for label, *_ in points])
    values = [_number(value) for _, value, _, _ in points]
    colours = palette(dark)
    hover = []
    for label, (_, value, sample, maturing) in zip(labels, points, strict=True):
        lines = ["no data" if value is None else show(float(value))]
        if sample is not None:
            lines.append(f"n = {sample:,} {escape_label(sample_noun)}")
        if maturing:
            lines.append("maturing: still converting, not a drop")
        hover.append(_hover(label, *lines))
    line = trace(
        "scatter",
        x=labels,
        y=values,
        mode="lines+markers",
        line={"color": colours.series[0], "width": 2},
        marker={
            "size": 9,
            "symbol": ["circle-open" if point[3] else "circle" for point in points],
            "line": {"width": 2, "color": colours.series[0]},
        },
        hovertext=hover,
        hoverinfo="text",
        showlegend=False,
    )
    if value_format == "percent":
        yaxis = {"title": {"text": "%"}, "tickformat": ".0%", "range": [0, 1.05]}
    elif value_format == "money":
        yaxis = _money_axis("Amount", currency)
    else:
        yaxis = {"title": {"text": value_format}, "rangemode": "tozero"}
    chart = _figure(
        [line],
        {
            "xaxis": {"type": "category", "title": {"text": "Week starting"}},
            "yaxis": yaxis,
            "height": 240,
            "margin": {"l": 64, "r": 16, "t": 8, "b": 56},
        },
        dark=dark,
    )
    chart["config"] = {**chart["config"], "displayModeBar": False}
    return chart


@dataclass(frozen=True)
class SparklineSvg:
    """A sparkline drawn as inline SVG (no script: the overview's tiles load no charting
    library): the polyline's runs (split at gaps) and each point's position, in a
    ``width`` × ``height`` box."""

    width: int
    height: int
    runs: tuple[str, ...]  # "x,y x,y …" per unbroken run of values
    dots: tuple[tuple[float, float, bool], ...]  # (x, y, maturing) per point with a value


def sparkline_svg(
    values: Sequence[float | int | Decimal | None],
    maturing: Sequence[bool] = (),
    *,
    width: int = 120,
    height: int = 28,
    pad: float = 3.0,
) -> SparklineSvg | None:
    """Scale ``values`` (oldest first; None: a gap) into the box, lowest value at the bottom.
    A flat series sits in the middle. None when there is no value at all."""
    numbers = [_number(value) for value in values]
    present = [value for value in numbers if value is not None]
    if not present:
        return None
    low, high = min(present), max(present)
    step = (width - 2 * pad) / max(len(numbers) - 1, 1)

    def y_of(value: float) -> float:
        if high == low:
            return round(height / 2, 1)
        return round(height - pad - (value - low) / (high - low) * (height - 2 * pad), 1)

    runs: list[str] = []
    current: list[str] = []
    dots = []
    for index, value in enumerate(numbers):
        if value is None:
            if current:
                runs.append(" ".join(current))
            current = []
            continue
        x, y = round(pad + index * step, 1), y_of(value)
        current.append(f"{x},{y}")
        dots.append((x, y, bool(maturing[index]) if index < len(maturing) else False))
    if current:
        runs.append(" ".join(current))
    return SparklineSvg(width, height, tuple(runs), tuple(dots))
