"""The backtest's weekly MQL chart builder, without a database."""

import json

import pytest

from scoring.backtest.charts import mql_volume_chart

WEEKS = ["2026-11-09", "2026-11-16", "2026-11-23"]


def test_two_lines_current_beside_draft():
    chart = mql_volume_chart(WEEKS, [0, 1, 1], [0, 2, 3], draft_name="Draft <v2>")
    assert [trace["name"] for trace in chart["data"]] == ["Current definitions", "Draft &lt;v2&gt;"]
    assert chart["data"][1]["y"] == [0, 2, 3]
    assert chart["data"][0]["x"] == WEEKS
    assert chart["layout"]["yaxis"]["dtick"] == 1  # whole leads on a small axis
    json.dumps(chart)  # plain JSON for json_script


def test_no_mql_on_either_side_draws_nothing():
    assert mql_volume_chart(WEEKS, [0, 0, 0], [0, 0, 0]) is None


def test_large_counts_keep_automatic_ticks():
    chart = mql_volume_chart(WEEKS, [0, 40, 10], [0, 2, 3])
    assert "dtick" not in chart["layout"]["yaxis"]


def test_counts_must_match_the_weeks():
    with pytest.raises(ValueError):
        mql_volume_chart(WEEKS, [1], [1, 2, 3])
