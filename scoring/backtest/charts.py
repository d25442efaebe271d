"""The backtest's chart: MQLs per week, current definitions beside the draft. A pure builder in
the style of ``metrics.charts`` (same look, plain JSON for ``static/js/charts.js``)."""

from collections.abc import Sequence

from metrics.charts import COUNT_AXIS, Chart, _figure, escape_label, palette, trace


def mql_volume_chart(
    weeks: Sequence[str],
    current: Sequence[int],
    draft: Sequence[int],
    *,
    current_name: str = "Current definitions",
    draft_name: str = "Draft",
    dark: bool = False,
) -> Chart | None:
    """Two lines over the weeks (ISO dates of Mondays); None when neither has an MQL."""
    if len(weeks) != len(current) or len(weeks) != len(draft):
        raise ValueError("weeks and counts differ in length")
    if not any(current) and not any(draft):
        return None
    colours = palette(dark)
    traces = []
    for name, counts, colour, dash in (
        (current_name, current, colours.neutral, "solid"),
        (draft_name, draft, colours.series[0], "solid"),
    ):
        label = escape_label(name)
        traces.append(
            trace(
                "scatter",
                name=label,
                x=list(weeks),
                y=list(counts),
                mode="lines+markers",
                line={"color": colour, "width": 2, "dash": dash},
                marker={"size": 5},
                hovertext=[
                    f"<b>{label}</b><br>week of {week}: {count:,} MQL{'s' if count != 1 else ''}"
                    for week, count in zip(weeks, counts, strict=True)
                ],
                hoverinfo="text",
            )
        )
    return _figure(
        traces,
        {
            "xaxis": {"title": {"text": "Week (Monday)"}, "type": "date"},
            "yaxis": {
                **COUNT_AXIS,
                "title": {"text": "Leads first reaching MQL"},
                # Whole leads only: with small counts Plotly would tick at halves.
                **({"dtick": 1} if max(*current, *draft) <= 10 else {}),
            },
            "height": 380,
        },
        dark=dark,
    )
