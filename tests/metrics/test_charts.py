"""The chart builders, on hand-made KPI results: no database."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from leads.choices import FunnelStage, SourceOrigin
from metrics import charts
from metrics.kpis import cohort_funnel
from metrics.queries import (
    Acceptance,
    AssetUsage,
    AssetUse,
    ContentUtilization,
    ConversionBySource,
    FunnelStageRef,
    OpportunityResults,
    PipelineRevenue,
    PipelineRevenueReport,
    RepSlaCompliance,
    ResponseTime,
    SlaCompliance,
    SlaResult,
    SourceAcceptance,
    SourceFunnel,
    SourceOpportunityResults,
    SourcePipelineRevenue,
    SourceRef,
    SourceSlaCompliance,
    StageDuration,
)

WEBINAR = SourceRef(3, "Webinar")
ADS = SourceRef(7, "Ads")
NO_SOURCE = SourceRef(None, "No source")
MARKUP = "<b>Acme</b><script>"
ESCAPED = "&lt;b&gt;Acme&lt;/b&gt;&lt;script&gt;"
STAGES = (
    FunnelStageRef("lead", "Lead"),
    FunnelStageRef("mql", "MQL"),
    FunnelStageRef("sql", "SQL"),
)


def drill_url(**kwargs):
    """A stand-in for the view's URL builder: the arguments, readable in the URL."""
    kpi = kwargs.pop("kpi")
    query = "&".join(
        f"{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}"
        for key, value in sorted(kwargs.items())
    )
    return f"/drill/{kpi}/?{query}"


def trace(chart, name):
    return next(item for item in chart["data"] if item["name"] == name)


# --- Hand-made KPI results -------------------------------------------------------------------


def acceptance_rows(name="Webinar"):
    return [
        SourceAcceptance(SourceRef(3, name), Acceptance(6, 2, 1, 0.75)),
        SourceAcceptance(NO_SOURCE, Acceptance(0, 1, 0, 0.0)),
    ]


def source_funnel(source, counts):
    funnel = cohort_funnel([stage.key for stage in STAGES], counts)
    return SourceFunnel(source, funnel, None, None)


def conversion(name="Webinar"):
    # Webinar: 4 leads, 2 got at most to MQL, 1 to SQL → reached: lead 4, MQL 3, SQL 1.
    webinar = source_funnel(SourceRef(3, name), {"lead": 1, "mql": 2, "sql": 1})
    ads = source_funnel(ADS, {"lead": 2})
    overall = source_funnel(SourceRef(None, "All sources"), {"lead": 3, "mql": 2, "sql": 1})
    return ConversionBySource(STAGES, overall, (webinar, ads))


def response_rows():
    return [
        (11, "Sam Lee", ResponseTime(answered=4, unanswered=1, median_hours=2.5, p90_hours=7.25)),
        (12, "Ana Ruiz", ResponseTime(answered=1, unanswered=0, median_hours=1.0, p90_hours=1.0)),
    ]


def sla(response_rate, acceptance_rate):
    return SlaCompliance(
        response=SlaResult(3, 1, 2, response_rate), acceptance=SlaResult(1, 1, 0, acceptance_rate)
    )


def opportunity_rows():
    return [
        SourceOpportunityResults(
            WEBINAR,
            OpportunityResults(
                won=3,
                lost=1,
                win_rate=0.75,
                won_amount=Decimal("37500.00"),
                average_deal_size=Decimal("12500.00"),
                median_cycle_days=42.5,
                average_cycle_days=40.0,
            ),
        ),
        SourceOpportunityResults(ADS, OpportunityResults(0, 2, 0.0, Decimal("0.00"), *[None] * 3)),
    ]


def pipeline_report():
    webinar = PipelineRevenue(2, Decimal("20000.00"), 1, Decimal("12500.50"))
    ads = PipelineRevenue(1, Decimal("5000.00"), 0, Decimal("0.00"))
    unsourced = PipelineRevenue(1, Decimal("1000.00"), 0, Decimal("0.00"))
    return PipelineRevenueReport(
        as_of=datetime(2026, 4, 1, tzinfo=UTC),
        total=PipelineRevenue(4, Decimal("26000.00"), 1, Decimal("12500.50")),
        by_source=(
            SourcePipelineRevenue(ADS, "marketing", ads),
            SourcePipelineRevenue(NO_SOURCE, None, unsourced),
            SourcePipelineRevenue(WEBINAR, "marketing", webinar),
        ),
        by_origin={
            None: unsourced,
            "marketing": PipelineRevenue(3, Decimal("25000.00"), 1, Decimal("12500.50")),
        },
    )


def stage_durations():
    return [
        StageDuration("mql", exits=4, median_days=3.5),
        StageDuration("sql", exits=2, median_days=10.0),
        StageDuration("nurture", exits=1, median_days=None),
    ]


def asset_usage():
    def use(asset_id, title, stage, shares):
        return AssetUse(asset_id, title, "case_study", stage, shares, leads=shares - 1)

    return AssetUsage(
        most_used={
            "bofu": (use(5, "Pricing guide", "bofu", 4),),
            "tofu": (use(1, "Playbook", "tofu", 9), use(2, "Pricing guide", "tofu", 2)),
        },
        unused=(use(9, "Old deck", "mofu", 0),),
    )


def utilization(rate=0.5):
    return ContentUtilization(
        handed_off_leads=4,
        handed_off_leads_with_share=2,
        handed_off_share_rate=rate,
        opportunities=1,
        opportunities_with_share=1,
        opportunity_share_rate=1.0 if rate is not None else None,
        opportunities_with_prior_engagement=0,
        prior_engagement_rate=0.0 if rate is not None else None,
    )


EMPTY_FUNNEL = source_funnel(SourceRef(None, "All sources"), {})
NOTHING_WON = OpportunityResults(0, 0, None, Decimal("0.00"), None, None, None)
NO_SLA = SlaCompliance(SlaResult(0, 0, 1, None), SlaResult(0, 0, 0, None))
NO_PIPELINE = PipelineRevenue(0, Decimal("0.00"), 0, Decimal("0.00"))


# Every builder with a full input, for the checks that hold for all of them.
BUILDERS = {
    "conversion_funnel": lambda **kw: charts.conversion_funnel_chart(conversion(), **kw),
    "cohort_funnel": lambda **kw: charts.cohort_funnel_chart(conversion(), **kw),
    "acceptance": lambda **kw: charts.acceptance_by_source_chart(acceptance_rows(), **kw),
    "response_time": lambda **kw: charts.response_time_chart(response_rows(), by="rep", **kw),
    "sla_by_rep": lambda **kw: charts.sla_by_rep_chart(
        [RepSlaCompliance(11, "Sam Lee", sla(0.75, 0.5))], **kw
    ),
    "sla_by_source": lambda **kw: charts.sla_by_source_chart(
        [SourceSlaCompliance(WEBINAR, sla(0.75, None))], **kw
    ),
    "win_rate": lambda **kw: charts.win_rate_chart(opportunity_rows(), **kw),
    "deal_size": lambda **kw: charts.deal_size_chart(opportunity_rows(), **kw),
    "sales_cycle": lambda **kw: charts.sales_cycle_chart(opportunity_rows(), **kw),
    "pipeline_by_source": lambda **kw: charts.pipeline_revenue_by_source_chart(
        pipeline_report(), **kw
    ),
    "pipeline_by_origin": lambda **kw: charts.pipeline_revenue_by_origin_chart(
        pipeline_report(), **kw
    ),
    "time_in_stage": lambda **kw: charts.time_in_stage_chart(stage_durations(), **kw),
    "asset_usage": lambda **kw: charts.asset_usage_chart(asset_usage(), **kw),
    "content_utilization": lambda **kw: charts.content_utilization_chart(utilization(), **kw),
    "trend": lambda drill_url, **kw: charts.trend_sparkline([("W1", 3), ("W2", 5)], **kw),
    "trend_line": lambda drill_url, **kw: charts.trend_line(
        [("7 Sep", 0.4, 10, False), ("14 Sep", 0.5, 12, True)], value_format="percent", **kw
    ),
}


# --- Escaping --------------------------------------------------------------------------------


def test_escape_label_turns_markup_into_literal_text():
    assert charts.escape_label(MARKUP) == ESCAPED
    assert charts.escape_label("R&D <3") == "R&amp;D &lt;3"


def test_a_source_name_with_markup_is_shown_as_text_on_the_axis_and_in_the_hover():
    chart = charts.acceptance_by_source_chart(acceptance_rows(name=MARKUP), drill_url=drill_url)
    accepted = trace(chart, "Accepted")
    assert accepted["y"][0] == ESCAPED
    assert accepted["hovertext"][0].startswith(f"<b>{ESCAPED}</b><br>")
    assert "<script>" not in json.dumps(chart)


def test_a_source_name_with_markup_is_escaped_in_the_legend():
    chart = charts.conversion_funnel_chart(conversion(name=MARKUP), drill_url=drill_url)
    assert [item["name"] for item in chart["data"]] == [ESCAPED, "Ads"]
    assert "<script>" not in json.dumps(chart)


# With names full of markup wherever a name from the data reaches the chart.
MARKUP_SOURCE = SourceRef(3, MARKUP)
MARKUP_BUILDERS = {
    "conversion_funnel": lambda: charts.conversion_funnel_chart(
        conversion(name=MARKUP), drill_url=drill_url
    ),
    "cohort_funnel": lambda: charts.cohort_funnel_chart(
        conversion(name=MARKUP), source=MARKUP_SOURCE, drill_url=drill_url
    ),
    "acceptance": lambda: charts.acceptance_by_source_chart(
        acceptance_rows(name=MARKUP), drill_url=drill_url
    ),
    "response_time": lambda: charts.response_time_chart(
        [(11, MARKUP, response_rows()[0][2])], by="rep", drill_url=drill_url
    ),
    "sla_by_rep": lambda: charts.sla_by_rep_chart(
        [RepSlaCompliance(11, MARKUP, sla(0.5, 0.5))], drill_url=drill_url
    ),
    "sla_by_source": lambda: charts.sla_by_source_chart(
        [SourceSlaCompliance(MARKUP_SOURCE, sla(0.5, 0.5))], drill_url=drill_url
    ),
    "win_rate": lambda: charts.win_rate_chart(
        [SourceOpportunityResults(MARKUP_SOURCE, opportunity_rows()[0].results)],
        drill_url=drill_url,
    ),
    "pipeline_by_source": lambda: charts.pipeline_revenue_by_source_chart(
        PipelineRevenueReport(
            datetime(2026, 4, 1, tzinfo=UTC),
            NO_PIPELINE,
            (SourcePipelineRevenue(MARKUP_SOURCE, "sales", pipeline_report().total),),
            {},
        ),
        drill_url=drill_url,
    ),
    "pipeline_by_origin": lambda: charts.pipeline_revenue_by_origin_chart(
        PipelineRevenueReport(
            datetime(2026, 4, 1, tzinfo=UTC), NO_PIPELINE, (), {MARKUP: pipeline_report().total}
        ),
        drill_url=drill_url,
    ),
    "time_in_stage": lambda: charts.time_in_stage_chart(
        stage_durations(), stage_names={"mql": MARKUP}, drill_url=drill_url
    ),
    "asset_usage": lambda: charts.asset_usage_chart(
        AssetUsage({"tofu": (AssetUse(1, MARKUP, MARKUP, "tofu", 2, 1),)}, ()),
        drill_url=drill_url,
    ),
    "trend": lambda: charts.trend_sparkline([(MARKUP, 1)]),
    "trend_line": lambda: charts.trend_line([(MARKUP, 1, 2, False)], sample_noun=MARKUP),
}


@pytest.mark.parametrize("name", MARKUP_BUILDERS)
def test_every_chart_escapes_names_once(name):
    text = json.dumps(MARKUP_BUILDERS[name]())
    assert ESCAPED in text
    assert "<script>" not in text
    assert "Acme</b>" not in text
    assert "&amp;lt;" not in text  # escaped twice, it would show the entities


# --- What each builder draws -----------------------------------------------------------------


def test_conversion_funnel_shows_the_share_of_each_source_that_reached_each_stage():
    chart = charts.conversion_funnel_chart(conversion(), drill_url=drill_url)
    webinar = trace(chart, "Webinar")
    # No "Lead" bar: every lead is a lead, so it would be 100 % for every source.
    assert webinar["x"] == ["MQL", "SQL"]
    assert webinar["y"] == [0.75, 0.25]
    assert webinar["customdata"] == [
        "/drill/funnel/?reached=mql&source_id=3",
        "/drill/funnel/?reached=sql&source_id=3",
    ]
    assert chart["layout"]["barmode"] == "group"
    assert chart["layout"]["yaxis"]["tickformat"] == ".0%"


def test_conversion_funnel_hover_gives_counts_stage_to_stage_rate_and_drop_off():
    webinar = trace(charts.conversion_funnel_chart(conversion(), drill_url=drill_url), "Webinar")
    assert webinar["hovertext"][0] == (
        "<b>Webinar · MQL</b><br>3 of 4 leads reached it (75%)"
        "<br>From Lead: 75%<br>Dropped after Lead: 1 (25%)"
    )
    assert webinar["hovertext"][1] == (
        "<b>Webinar · SQL</b><br>1 of 4 leads reached it (25%)"
        "<br>From MQL: 33.3%<br>Dropped after MQL: 2 (66.7%)"
    )


def test_conversion_funnel_gives_up_to_twelve_sources_twelve_colours_and_hatches_the_rest():
    sources = [source_funnel(SourceRef(n, f"Source {n}"), {"lead": 1, "mql": 1}) for n in range(14)]
    chart = charts.conversion_funnel_chart(
        ConversionBySource(STAGES, sources[0], tuple(sources)), drill_url=drill_url
    )

    styles = [
        (bar["marker"]["color"], bar["marker"].get("pattern", {}).get("shape", ""))
        for bar in chart["data"]
    ]
    assert len({colour for colour, _ in styles[:12]}) == 12
    assert len(set(styles)) == 14  # the 13th and 14th repeat a colour, hatched
    assert styles[12] == (charts.LIGHT.series[0], "/")


def test_a_funnel_of_one_stage_has_nothing_to_compare():
    single = ConversionBySource(
        STAGES[:1], source_funnel(WEBINAR, {"lead": 1}), (source_funnel(WEBINAR, {"lead": 1}),)
    )
    assert charts.conversion_funnel_chart(single, drill_url=drill_url) is None


@pytest.mark.parametrize("largest", [0, 1, 3, 10])
def test_a_small_count_axis_ticks_whole_numbers_only(largest):
    axis = charts.count_axis(largest)
    assert (axis["tickformat"], axis["tick0"], axis["dtick"]) == (",d", 0, 1)
    assert axis["range"][1] >= max(largest, 1)


def test_a_large_count_axis_keeps_plotly_steps_but_whole_labels():
    axis = charts.count_axis(250)
    assert axis["tickformat"] == ",d" and "dtick" not in axis


def test_count_charts_use_whole_ticks():
    acceptance = charts.acceptance_by_source_chart(acceptance_rows(), drill_url=drill_url)
    assets = charts.asset_usage_chart(asset_usage(), drill_url=drill_url)
    assert acceptance["layout"]["xaxis"]["dtick"] == 1
    assert assets["layout"]["xaxis"]["dtick"] == 1


def test_long_category_names_get_the_margin_they_need():
    rows = acceptance_rows(name="Google Ads — brand campaigns, North America")
    chart = charts.acceptance_by_source_chart(rows, drill_url=drill_url)
    assert chart["layout"]["yaxis"]["automargin"] is True
    assert trace(chart, "Accepted")["y"][0] == "Google Ads — brand campaigns, North America"


def test_cohort_funnel_draws_the_overall_cohort_without_narrowing_by_source():
    chart = charts.cohort_funnel_chart(conversion(), drill_url=drill_url)
    (funnel,) = chart["data"]
    assert funnel["type"] == "funnel"
    assert funnel["x"] == [6, 3, 1]
    assert funnel["customdata"][1] == "/drill/funnel/?reached=mql"


def test_cohort_funnel_of_one_source_drills_into_that_source():
    chart = charts.cohort_funnel_chart(conversion(), source=WEBINAR, drill_url=drill_url)
    assert chart["data"][0]["x"] == [4, 3, 1]
    assert chart["data"][0]["customdata"][0] == "/drill/funnel/?reached=lead&source_id=3"


def test_acceptance_stacks_accepted_rejected_and_pending_per_source():
    chart = charts.acceptance_by_source_chart(acceptance_rows(), drill_url=drill_url)
    assert [item["name"] for item in chart["data"]] == ["Accepted", "Rejected", "Pending"]
    assert trace(chart, "Accepted")["x"] == [6, 0]
    assert trace(chart, "Rejected")["x"] == [2, 1]
    assert trace(chart, "Rejected")["y"] == ["Webinar", "No source"]
    assert trace(chart, "Rejected")["customdata"] == [
        "/drill/acceptance/?outcome=rejected&source_id=3",
        "/drill/acceptance/?outcome=rejected&source_id=None",
    ]
    assert chart["layout"]["barmode"] == "stack"
    assert "Acceptance rate: 75%" in trace(chart, "Accepted")["hovertext"][0]


def test_a_point_the_view_cannot_link_stays_unclickable():
    def no_link_without_source(**kwargs):
        return None if kwargs.get("source_id") is None else drill_url(**kwargs)

    chart = charts.acceptance_by_source_chart(acceptance_rows(), drill_url=no_link_without_source)
    assert trace(chart, "Rejected")["customdata"][1] is None


def test_response_time_by_rep_shows_median_and_p90_hours_and_drills_into_answered_handoffs():
    chart = charts.response_time_chart(response_rows(), by="rep", drill_url=drill_url)
    median, p90 = chart["data"]
    assert median["y"] == ["Sam Lee", "Ana Ruiz"]
    assert median["x"] == [2.5, 1.0]
    assert p90["x"] == [7.25, 1.0]
    assert median["customdata"][0] == "/drill/response_time/?answered=True&owner_id=11"
    assert "4 handoffs answered · 1 still unanswered" in median["hovertext"][0]


def test_response_time_by_source_narrows_by_source():
    chart = charts.response_time_chart(response_rows(), drill_url=drill_url)
    assert chart["data"][0]["customdata"][1] == "/drill/response_time/?answered=True&source_id=12"


def test_response_time_refuses_an_unknown_grouping():
    with pytest.raises(ValueError, match="source' or 'rep"):
        charts.response_time_chart(response_rows(), by="team", drill_url=drill_url)


def test_sla_by_rep_compares_response_and_acceptance_on_a_percent_axis():
    rows = [RepSlaCompliance(11, "Sam Lee", sla(0.75, 0.5))]
    chart = charts.sla_by_rep_chart(rows, drill_url=drill_url)
    response, acceptance = chart["data"]
    assert (response["x"], acceptance["x"]) == ([0.75], [0.5])
    assert response["customdata"] == ["/drill/sla/?clock=response&owner_id=11"]
    assert acceptance["customdata"] == ["/drill/sla/?clock=acceptance&owner_id=11"]
    assert chart["layout"]["xaxis"]["tickformat"] == ".0%"
    assert chart["layout"]["xaxis"]["range"] == [0, 1]
    assert response["hovertext"][0] == (
        "<b>Sam Lee</b>"
        "<br>First response on time: 75% (met 3 · missed 1 · 2 not yet due, not in the rate)"
        "<br>Accepted or rejected on time: 50% (met 1 · missed 1 · 0 not yet due, not in the rate)"
    )


def test_sla_by_source_leaves_a_gap_where_a_clock_has_no_data():
    rows = [SourceSlaCompliance(WEBINAR, sla(0.75, None))]
    chart = charts.sla_by_source_chart(rows, drill_url=drill_url)
    assert chart["data"][1]["x"] == [None]
    assert chart["data"][0]["customdata"] == ["/drill/sla/?clock=response&source_id=3"]
    # The missing clock has no bar to hover, so the other bar's hover says so.
    assert "Accepted or rejected on time: no data" in chart["data"][0]["hovertext"][0]


def test_two_reps_with_the_same_name_stay_two_bars():
    rows = [
        RepSlaCompliance(11, "Sam Lee", sla(0.75, 0.5)),
        RepSlaCompliance(12, "Sam Lee", sla(0.5, 0.5)),
    ]
    chart = charts.sla_by_rep_chart(rows, drill_url=drill_url)
    assert chart["data"][0]["y"] == ["Sam Lee (1)", "Sam Lee (2)"]


def test_win_rate_by_source_drills_into_closed_opportunities():
    chart = charts.win_rate_chart(opportunity_rows(), drill_url=drill_url)
    (bars,) = chart["data"]
    assert bars["y"] == ["Webinar", "Ads"]
    assert bars["x"] == [0.75, 0.0]
    assert bars["customdata"] == [
        "/drill/opportunities/?source_id=3",
        "/drill/opportunities/?source_id=7",
    ]


def test_deal_size_is_in_money_with_thousands_separators_and_leaves_out_sources_without_wins():
    chart = charts.deal_size_chart(opportunity_rows(), drill_url=drill_url, currency="$")
    (bars,) = chart["data"]
    assert bars["y"] == ["Webinar"]
    assert bars["x"] == [12500.0]
    assert bars["text"] == ["$12,500"]
    assert bars["customdata"] == ["/drill/opportunities/?source_id=3&status=won"]
    assert chart["layout"]["xaxis"]["tickformat"] == ",.0f"
    assert chart["layout"]["xaxis"]["tickprefix"] == "$"


def test_sales_cycle_shows_median_days_per_source():
    (bars,) = charts.sales_cycle_chart(opportunity_rows(), drill_url=drill_url)["data"]
    assert (bars["y"], bars["x"]) == (["Webinar"], [42.5])
    assert "Median 42.5 days · mean 40.0 days" in bars["hovertext"][0]


def test_pipeline_by_source_shows_open_and_won_amounts_with_their_own_drill_downs():
    chart = charts.pipeline_revenue_by_source_chart(pipeline_report(), drill_url=drill_url)
    open_bars, won_bars = chart["data"]
    assert open_bars["y"] == ["Ads", "No source", "Webinar"]
    assert open_bars["x"] == [5000.0, 1000.0, 20000.0]
    assert won_bars["x"] == [0.0, 0.0, 12500.5]
    assert open_bars["customdata"][2] == "/drill/pipeline/?source_id=3"
    assert won_bars["customdata"][2] == "/drill/opportunities/?source_id=3&status=won"
    assert "Open pipeline 20,000 (2 opportunities)" in open_bars["hovertext"][2]


def test_pipeline_by_origin_compares_marketing_and_sales_sourced_and_drills_by_their_sources():
    chart = charts.pipeline_revenue_by_origin_chart(pipeline_report(), drill_url=drill_url)
    open_bars, won_bars = chart["data"]
    assert open_bars["y"] == ["Marketing-sourced", "Unknown origin"]
    assert open_bars["x"] == [25000.0, 1000.0]
    assert open_bars["customdata"] == [
        "/drill/pipeline/?source_ids=7,3",
        "/drill/pipeline/?source_ids=None",
    ]
    assert won_bars["customdata"][0] == "/drill/opportunities/?source_ids=7,3&status=won"


def test_time_in_stage_names_the_stages_and_drills_into_their_exits():
    chart = charts.time_in_stage_chart(
        stage_durations(), stage_names={"mql": "MQL", "sql": "SQL"}, drill_url=drill_url
    )
    (bars,) = chart["data"]
    assert (bars["x"], bars["y"]) == (["MQL", "SQL"], [3.5, 10.0])
    assert bars["customdata"] == [
        "/drill/time_in_stage/?stage=mql",
        "/drill/time_in_stage/?stage=sql",
    ]
    assert chart["layout"]["yaxis"]["title"]["text"] == "Median days in stage"


def test_asset_usage_groups_the_most_shared_assets_under_their_funnel_stage_in_funnel_order():
    chart = charts.asset_usage_chart(asset_usage(), drill_url=drill_url)
    top, bottom = chart["data"]
    assert top["name"] == "Top of funnel"
    assert top["y"] == [["Top of funnel", "Top of funnel"], ["Playbook", "Pricing guide"]]
    assert top["x"] == [9, 2]
    assert top["customdata"] == [
        "/drill/asset_shares/?asset_id=1",
        "/drill/asset_shares/?asset_id=2",
    ]
    assert bottom["y"] == [["Bottom of funnel"], ["Pricing guide"]]
    assert chart["layout"]["yaxis"]["type"] == "multicategory"


def test_asset_usage_names_the_asset_type_not_its_key():
    chart = charts.asset_usage_chart(
        asset_usage(), drill_url=drill_url, type_labels={"case_study": "Case study"}
    )
    hovers = [text for bar in chart["data"] for text in bar["hovertext"]]
    assert all("Case study · " in text and "case_study" not in text for text in hovers)


def test_content_utilization_shows_three_shares_with_their_drill_downs():
    (bars,) = charts.content_utilization_chart(utilization(), drill_url=drill_url)["data"]
    assert bars["x"] == [0.5, 1.0, 0.0]
    assert bars["customdata"] == [
        "/drill/content_leads/?",
        "/drill/content_opportunities/?",
        "/drill/content_opportunities/?",
    ]
    assert "2 of 4 leads" in bars["hovertext"][0]
    assert "1 of 1 opportunity" in bars["hovertext"][1]


def test_a_share_with_no_data_is_marked_not_left_looking_like_zero():
    partial = ContentUtilization(4, 2, 0.5, 0, 0, None, 0, None)
    chart = charts.content_utilization_chart(partial, drill_url=drill_url)
    assert chart["data"][0]["x"] == [0.5, None, None]
    notes = chart["layout"]["annotations"]
    assert [(note["y"], note["text"]) for note in notes] == [
        ("Opportunities whose lead got content", "no data"),
        ("Opportunities whose lead engaged before", "no data"),
    ]


def test_a_zero_bar_has_its_label_beside_it():
    (bars,) = charts.win_rate_chart(opportunity_rows(), drill_url=drill_url)["data"]
    assert bars["text"] == ["75%", "0%"]
    assert bars["textposition"] == ["auto", "outside"]


def test_trend_sparkline_draws_a_bare_line_with_gaps_for_missing_periods():
    chart = charts.trend_sparkline(
        [("W1", 0.5), ("W2", None), ("W3", Decimal("0.625"))], value_format="percent"
    )
    (line,) = chart["data"]
    assert (line["x"], line["y"]) == (["W1", "W2", "W3"], [0.5, None, 0.625])
    assert line["hovertext"] == ["W1: 50%", "W2: no data", "W3: 62.5%"]
    assert chart["layout"]["xaxis"]["visible"] is False
    assert chart["config"]["displayModeBar"] is False


def test_trend_sparkline_formats_money():
    chart = charts.trend_sparkline(
        [("Q1", Decimal("1234567.89"))], value_format="money", currency="€"
    )
    assert chart["data"][0]["hovertext"] == ["Q1: €1,234,568"]


def test_trend_sparkline_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="Unknown value format"):
        charts.trend_sparkline([("W1", 1)], value_format="furlongs")


def test_trend_line_names_the_sample_and_draws_a_maturing_week_hollow():
    chart = charts.trend_line(
        [("16 Nov", 0.04, 400, False), ("23 Nov", 0.01, 438, True), ("30 Nov", None, 0, True)],
        value_format="percent",
        sample_noun="leads created",
    )
    (line,) = chart["data"]
    assert line["y"] == [0.04, 0.01, None]
    assert line["marker"]["symbol"] == ["circle", "circle-open", "circle-open"]
    assert line["hovertext"][0] == "<b>16 Nov</b><br>4%<br>n = 400 leads created"
    assert "maturing: still converting, not a drop" in line["hovertext"][1]
    assert chart["layout"]["yaxis"]["tickformat"] == ".0%"


def test_the_svg_sparkline_scales_into_its_box_and_breaks_at_gaps():
    # Box 120 × 28 with 3 px padding: x steps of (120 − 6) / 3 = 38; the lowest value sits at
    # y = 25, the highest at y = 3.
    line = charts.sparkline_svg([1, 3, None, 2], [False, False, False, True])
    assert line.runs == ("3.0,25.0 41.0,3.0", "117.0,14.0")
    assert line.dots[-1] == (117.0, 14.0, True)
    flat = charts.sparkline_svg([5, 5])
    assert flat.runs == ("3.0,14.0 117.0,14.0",)  # a flat line in the middle


# --- Empty input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: charts.conversion_funnel_chart(
            ConversionBySource(STAGES, EMPTY_FUNNEL, ()), drill_url=drill_url
        ),
        lambda: charts.conversion_funnel_chart(
            ConversionBySource(STAGES, EMPTY_FUNNEL, (EMPTY_FUNNEL,)), drill_url=drill_url
        ),
        lambda: charts.cohort_funnel_chart(
            ConversionBySource(STAGES, EMPTY_FUNNEL, ()), drill_url=drill_url
        ),
        lambda: charts.cohort_funnel_chart(conversion(), source=NO_SOURCE, drill_url=drill_url),
        lambda: charts.acceptance_by_source_chart([], drill_url=drill_url),
        lambda: charts.acceptance_by_source_chart(
            [SourceAcceptance(WEBINAR, Acceptance(0, 0, 0, None))], drill_url=drill_url
        ),
        lambda: charts.response_time_chart(
            [(3, "Webinar", ResponseTime(0, 2, None, None))], drill_url=drill_url
        ),
        lambda: charts.sla_by_rep_chart(
            [RepSlaCompliance(11, "Sam Lee", NO_SLA)], drill_url=drill_url
        ),
        lambda: charts.sla_by_source_chart([], drill_url=drill_url),
        lambda: charts.win_rate_chart(
            [SourceOpportunityResults(WEBINAR, NOTHING_WON)], drill_url=drill_url
        ),
        lambda: charts.deal_size_chart([], drill_url=drill_url),
        lambda: charts.sales_cycle_chart(
            [SourceOpportunityResults(WEBINAR, NOTHING_WON)], drill_url=drill_url
        ),
        lambda: charts.pipeline_revenue_by_source_chart(
            PipelineRevenueReport(datetime(2026, 4, 1, tzinfo=UTC), NO_PIPELINE, (), {}),
            drill_url=drill_url,
        ),
        lambda: charts.pipeline_revenue_by_origin_chart(
            PipelineRevenueReport(
                datetime(2026, 4, 1, tzinfo=UTC),
                NO_PIPELINE,
                (SourcePipelineRevenue(WEBINAR, "sales", NO_PIPELINE),),
                {"sales": NO_PIPELINE},
            ),
            drill_url=drill_url,
        ),
        lambda: charts.time_in_stage_chart(
            [StageDuration("mql", exits=0, median_days=None)], drill_url=drill_url
        ),
        lambda: charts.asset_usage_chart(AssetUsage({}, ()), drill_url=drill_url),
        lambda: charts.content_utilization_chart(utilization(rate=None), drill_url=drill_url),
        lambda: charts.trend_sparkline([]),
        lambda: charts.trend_sparkline([("W1", None), ("W2", None)]),
        lambda: charts.trend_line([("W1", None, 0, False)]),
        lambda: charts.sparkline_svg([None, None]),
    ],
)
def test_nothing_to_draw_gives_none_for_the_empty_state(build):
    assert build() is None


# --- Every chart -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_every_chart_goes_through_json_unchanged(name):
    chart = BUILDERS[name](drill_url=drill_url)
    assert json.loads(json.dumps(chart)) == chart


@pytest.mark.parametrize("name", BUILDERS)
def test_every_chart_has_readable_defaults_and_no_plotly_logo(name):
    chart = BUILDERS[name](drill_url=drill_url)
    assert chart["config"]["displaylogo"] is False
    assert chart["config"]["responsive"] is True
    assert chart["layout"]["template"]["layout"]["font"]["size"] == 14


@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"trend", "trend_line"}))
def test_every_drillable_point_carries_a_site_relative_url(name):
    chart = BUILDERS[name](drill_url=drill_url)
    urls = [url for item in chart["data"] for url in item["customdata"]]
    assert urls
    assert all(url.startswith("/drill/") for url in urls)


@pytest.mark.parametrize("name", BUILDERS)
def test_dark_mode_switches_background_text_and_trace_colours(name):
    light = BUILDERS[name](drill_url=drill_url)
    dark = BUILDERS[name](drill_url=drill_url, dark=True)
    light_look, dark_look = (chart["layout"]["template"]["layout"] for chart in (light, dark))
    assert light_look["paper_bgcolor"] == charts.LIGHT.background
    assert dark_look["paper_bgcolor"] == charts.DARK.background
    assert dark_look["font"]["color"] == charts.DARK.text
    assert dark_look["colorway"] == list(charts.DARK.series)
    light_colours = [item.get("marker", {}).get("color") for item in light["data"]]
    dark_colours = [item.get("marker", {}).get("color") for item in dark["data"]]
    assert light_colours != dark_colours or set(light_colours) == {None}


def _luminance(colour):
    def channel(value):
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _contrast(first, second):
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("colours", [charts.LIGHT, charts.DARK], ids=["light", "dark"])
def test_colours_stand_out_from_the_background(colours):
    # WCAG: 4.5:1 for text, 3:1 for graphical objects such as bars and lines.
    assert _contrast(colours.text, colours.background) >= 4.5
    for colour in (*colours.series, colours.good, colours.bad, colours.neutral):
        assert _contrast(colour, colours.background) >= 3, colour


def test_stage_and_origin_labels_match_the_models_choices():
    assert dict(FunnelStage.choices) == charts.FUNNEL_STAGE_LABELS
    assert dict(SourceOrigin.choices) == charts.ORIGIN_LABELS
