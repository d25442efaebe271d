"""Goal maths without a database: periods, pace, forecast and the status rule, on cases worked
out by hand."""

from datetime import UTC, date, datetime, timedelta

import pytest

from metrics import goals
from metrics.goals import (
    AMBER,
    GREEN,
    GREY,
    RED,
    GoalTerms,
    Reading,
    evaluate,
    forecast,
    judge,
    pace,
)

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 12, 31, tzinfo=UTC)  # 91 days, to keep the arithmetic round
TOTAL = 91.0


def at_day(days: float) -> datetime:
    return START + timedelta(days=days)


# --- Periods ---------------------------------------------------------------------------------


def test_quarter_and_month_periods_and_their_keys():
    quarter = goals.quarter_of(date(2026, 11, 15))
    assert (quarter.first_day, quarter.last_day, quarter.key, quarter.label) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
        "2026-Q4",
        "Q4 2026",
    )
    assert quarter.days == 92
    assert quarter.previous().key == "2026-Q3" and quarter.next().key == "2027-Q1"
    february = goals.parse_period_key("2028-02")
    assert (february.last_day, february.label) == (date(2028, 2, 29), "February 2028")
    assert goals.parse_period_key("2026-Q1").last_day == date(2026, 3, 31)
    for bad in ("2026-Q5", "2026-13", "Q4", ""):
        with pytest.raises(ValueError):
            goals.parse_period_key(bad)


# --- Pace ------------------------------------------------------------------------------------


def test_pace_extrapolates_a_count_by_the_share_of_the_period_gone():
    # 100 MQLs after 30.33 of 91 days → 300 by the end.
    assert pace(100, accumulates=True, elapsed=TOTAL / 3, total=TOTAL) == pytest.approx(300)


def test_pace_of_a_period_just_started():
    # Day 0: nothing can be extrapolated; day 1 of 91 with 4 MQLs: 4 × 91 = 364.
    assert pace(0, accumulates=True, elapsed=0, total=TOTAL) is None
    assert pace(4, accumulates=True, elapsed=1, total=TOTAL) == pytest.approx(364)


def test_pace_of_a_rate_is_its_value_to_date_and_a_finished_period_its_actual():
    assert pace(0.31, accumulates=False, elapsed=10, total=TOTAL) == 0.31
    assert pace(380, accumulates=True, elapsed=TOTAL, total=TOTAL) == 380
    assert pace(None, accumulates=True, elapsed=10, total=TOTAL) is None


# --- Forecast --------------------------------------------------------------------------------


def test_forecast_weights_open_pipeline_by_stage_to_won_conversion():
    # Won 100k; open 200k at SQL (20 % win from there) and 300k at opportunity (40 %);
    # 45 days left of a 90-day cycle: half can close. 100k + (40k + 120k) × 0.5 = 180k.
    expected = forecast(
        100_000,
        open_by_stage={"sql": 200_000, "opportunity": 300_000, "nurture": 50_000},
        won_rate_from={"sql": 0.2, "opportunity": 0.4},
        days_left=45,
        cycle_days=90,
    )
    assert expected == pytest.approx(180_000)


def test_forecast_caps_the_closing_share_at_all_of_the_pipeline():
    # 60 days left of a 30-day cycle: all of it can close. 0 + 1000 × 0.5 = 500.
    assert forecast(
        0, open_by_stage={"opportunity": 1000}, won_rate_from={"opportunity": 0.5},
        days_left=60, cycle_days=30,
    ) == pytest.approx(500)  # fmt: skip


def test_no_history_to_forecast_from_gives_no_forecast():
    no_rates = {"sql": None, "opportunity": None}
    args = {"open_by_stage": {"opportunity": 1000}, "days_left": 30}
    assert forecast(10, won_rate_from=no_rates, cycle_days=60, **args) is None
    assert forecast(10, won_rate_from={}, cycle_days=60, **args) is None
    # Conversion known but no deal ever closed: no cycle to time the pipeline with.
    assert forecast(10, won_rate_from={"opportunity": 0.3}, cycle_days=None, **args) is None


def test_forecast_of_a_finished_period_is_what_was_won():
    assert forecast(
        500, open_by_stage={"opportunity": 1000}, won_rate_from={"opportunity": 0.5},
        days_left=0, cycle_days=None,
    ) == 500  # fmt: skip


# --- Status ----------------------------------------------------------------------------------

MQLS = GoalTerms("mqls", target=400, higher_is_better=True)
ACCEPTANCE = GoalTerms("acceptance_rate", target=0.30, higher_is_better=True, floor=0.20)
RESPONSE = GoalTerms("response_time", target=4.0, higher_is_better=False)


def test_a_count_on_pace_is_green_short_of_it_amber_then_red():
    half = {"sample": None, "elapsed_share": 0.5}
    assert judge(MQLS, actual=200, projected=400, **half).colour == GREEN
    # Red threshold by default 10 % under the target: 360.
    assert judge(MQLS, actual=190, projected=380, **half).colour == AMBER
    assert judge(MQLS, actual=180, projected=360, **half).colour == AMBER
    status = judge(MQLS, actual=170, projected=340, **half)
    assert (status.colour, status.word) == (RED, "Off track")


def test_a_goal_already_met_is_green_whatever_the_pace():
    status = judge(MQLS, actual=410, projected=None, sample=None, elapsed_share=0.05)
    assert (status.colour, status.word) == (GREEN, "Met")


def test_an_empty_period_has_nothing_to_judge():
    status = judge(ACCEPTANCE, actual=None, projected=None, sample=0, elapsed_share=0.5)
    assert (status.colour, status.word) == (GREY, "No data")
    # A count with nothing yet, half way: zero is data, and it is far off.
    assert judge(MQLS, actual=0, projected=0, sample=None, elapsed_share=0.5).colour == RED


def test_a_period_not_started_or_just_started_is_not_rated():
    assert judge(MQLS, actual=0, projected=None, sample=None, elapsed_share=0).word == (
        "Not started"
    )
    status = judge(MQLS, actual=4, projected=364, sample=None, elapsed_share=1 / 91)
    assert (status.colour, status.word) == (GREY, "Too early")


def test_a_rate_over_too_few_items_is_not_rated():
    status = judge(ACCEPTANCE, actual=0.1, projected=0.1, sample=9, elapsed_share=0.5)
    assert (status.colour, status.word) == (GREY, "Too little data")
    assert "9 decided handoffs" in status.why


def test_a_rate_under_its_floor_is_red_even_within_the_amber_band():
    # 0.19 is below the floor of 0.20, though the red threshold would be 0.27.
    status = judge(ACCEPTANCE, actual=0.19, projected=0.19, sample=50, elapsed_share=0.5)
    assert (status.colour, status.word) == (RED, "Below floor")
    assert judge(ACCEPTANCE, actual=0.28, projected=0.28, sample=50, elapsed_share=0.5).colour == (
        AMBER
    )


def test_lower_is_better_goals_turn_the_thresholds_around():
    # Target 4 h; red past 4.4 h by default.
    kwargs = {"sample": 30, "elapsed_share": 0.5}
    assert judge(RESPONSE, actual=3.5, projected=3.5, **kwargs).colour == GREEN
    assert judge(RESPONSE, actual=4.2, projected=4.2, **kwargs).colour == AMBER
    assert judge(RESPONSE, actual=4.5, projected=4.5, **kwargs).colour == RED
    ceiling = GoalTerms("response_time", target=4.0, higher_is_better=False, floor=6.0)
    status = judge(ceiling, actual=6.5, projected=6.5, **kwargs)
    assert (status.colour, status.word) == (RED, "Above ceiling")


def test_explicit_thresholds_replace_the_defaults():
    terms = GoalTerms("mqls", target=400, higher_is_better=True, amber_at=380, red_at=300)
    kwargs = {"actual": 100, "sample": None, "elapsed_share": 0.5}
    assert judge(terms, projected=385, **kwargs).colour == GREEN
    assert judge(terms, projected=310, **kwargs).colour == AMBER
    assert judge(terms, projected=299, **kwargs).colour == RED


def test_inconsistent_thresholds_are_named():
    assert goals.terms_problems(MQLS) == {}
    higher = GoalTerms("mqls", target=400, higher_is_better=True, amber_at=300, red_at=350)
    assert "red_at" in goals.terms_problems(higher)
    lower = GoalTerms("response_time", target=4, higher_is_better=False, floor=3)
    assert "floor" in goals.terms_problems(lower)
    assert "target" in goals.terms_problems(GoalTerms("acceptance_rate", 1.5, True))


# --- One goal end to end ---------------------------------------------------------------------


def test_evaluate_a_count_a_third_of_the_way():
    result = evaluate(MQLS, Reading(120), start=START, end=END, now=at_day(TOTAL / 3))
    # 120 × 3 = 360: right on the default red threshold, so amber.
    assert result.pace == pytest.approx(360)
    assert result.forecast is None
    assert result.status.colour == AMBER
    assert result.progress == pytest.approx(0.3)


def test_evaluate_bookings_judges_the_forecast_not_the_pace():
    bookings = GoalTerms("bookings", target=1_000_000, higher_is_better=True)
    reading = Reading(
        300_000,
        open_by_stage={"opportunity": 2_000_000},
        won_rate_from={"opportunity": 0.5},
        cycle_days=45.5,
    )
    # Half way: pace 600k (red), but 1M of open pipeline is expected to close: 1.3M, green.
    result = evaluate(bookings, reading, start=START, end=END, now=at_day(TOTAL / 2))
    assert result.pace == pytest.approx(600_000)
    assert result.forecast == pytest.approx(1_300_000)
    assert (result.status.colour, result.status.word) == (GREEN, "On track")


def test_evaluate_bookings_without_history_falls_back_to_pace():
    bookings = GoalTerms("bookings", target=1_000_000, higher_is_better=True)
    reading = Reading(300_000, open_by_stage={"opportunity": 10}, won_rate_from={})
    result = evaluate(bookings, reading, start=START, end=END, now=at_day(TOTAL / 2))
    assert result.forecast is None
    assert result.status.colour == RED


def test_evaluate_response_time_uses_the_value_to_date():
    result = evaluate(RESPONSE, Reading(3.0, sample=40), start=START, end=END, now=at_day(5))
    assert result.pace == 3.0
    assert result.progress is None
    assert result.status.colour == GREEN
