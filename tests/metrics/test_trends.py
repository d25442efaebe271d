"""The trends' rules, on hand-computed cases: which weeks are shown, when a weekly cohort is
still maturing, and when a week-over-week change is outside normal variation."""

from datetime import date

import pytest

from metrics import trends
from metrics.trends import WeekPoint, judge_change


def weekly(values, *, samples=None, maturing=()) -> list[WeekPoint]:
    """Points for consecutive Mondays from 7 Sep 2026; ``maturing`` are indices."""
    first = date(2026, 9, 7)
    return [
        WeekPoint(
            date.fromordinal(first.toordinal() + 7 * index),
            value,
            None if samples is None else samples[index],
            index in maturing,
        )
        for index, value in enumerate(values)
    ]


# --- Which weeks ---------------------------------------------------------------------------


def test_the_weeks_read_are_whole_weeks_ending_before_the_first_day_not_counted():
    # Friday 4 Dec 2026: the running week (from Monday 30 Nov) is not whole; the last whole one
    # starts on 23 Nov, and 14 are read (13 shown and one before them).
    weeks = trends.weeks_to_read(date(2026, 12, 4))
    assert len(weeks) == trends.WEEKS_READ == 14
    assert weeks[-1] == date(2026, 11, 23) and weeks[0] == date(2026, 8, 24)
    assert all(week.weekday() == 0 for week in weeks)
    # A period ending on Sunday 29 Nov (first day not counted: Monday 30 Nov) ends on that week.
    assert trends.weeks_to_read(date(2026, 11, 30))[-1] == date(2026, 11, 23)


# --- Maturity ------------------------------------------------------------------------------


def test_a_cohort_is_maturing_while_younger_than_the_typical_time_to_convert():
    # Week of 23 Nov ends (exclusive) on 30 Nov; on 4 Dec 4 days have passed.
    week = date(2026, 11, 23)
    assert trends.is_maturing(week, today=date(2026, 12, 4), typical_days=10)
    assert trends.is_maturing(week, today=date(2026, 12, 4), typical_days=4.5)
    assert not trends.is_maturing(week, today=date(2026, 12, 4), typical_days=4)
    assert not trends.is_maturing(week, today=date(2026, 12, 20), typical_days=10)


def test_without_a_history_to_learn_from_nothing_is_marked_maturing():
    assert not trends.is_maturing(date(2026, 11, 23), today=date(2026, 11, 30), typical_days=None)


def test_a_maturing_cohort_is_never_coloured_as_a_drop():
    # The last cohort converted 5 % against the usual 20 %: far outside any variation, but it
    # is three days old.
    points = weekly([0.20] * 12 + [0.05], samples=[400] * 13, maturing={12})
    verdict = judge_change(points, is_rate=True)
    assert not verdict.unusual and "maturing" in verdict.reason
    result = trends.trend(
        key="lead_to_opportunity",
        label="Lead → opportunity",
        unit="percent",
        higher_is_better=True,
        is_rate=True,
        points=points,
    )
    assert result.colour == "muted" and result.change == pytest.approx(-0.15)


# --- Unusual changes: rates by a two-proportion test ---------------------------------------


def test_the_two_proportion_z_statistic_by_hand():
    # 50 of 100 against 30 of 100: pooled 0.4, se = sqrt(0.4 · 0.6 · (1/100 + 1/100)) = 0.069282,
    # z = −0.2 / 0.069282 = −2.8868.
    assert trends.two_proportion_z(0.5, 100, 0.3, 100) == pytest.approx(-2.88675, abs=1e-4)
    assert trends.two_proportion_z(0.5, 0, 0.3, 100) is None
    assert trends.two_proportion_z(1.0, 10, 1.0, 20) == 0.0  # all accepted both weeks


def test_a_real_drop_in_a_rate_is_coloured():
    points = weekly([0.5] * 12 + [0.3], samples=[100] * 13)
    verdict = judge_change(points, is_rate=True)
    assert verdict.unusual and "z = -2.89" in verdict.reason
    result = trends.trend(
        key="acceptance",
        label="Lead acceptance rate",
        unit="percent",
        higher_is_better=True,
        is_rate=True,
        points=points,
    )
    assert result.colour == "negative"


def test_the_same_move_on_a_small_sample_is_noise():
    # 5 of 10 against 3 of 10: z = −0.2 / sqrt(0.4 · 0.6 · 0.2) = −0.9129.
    verdict = judge_change(weekly([0.5, 0.3], samples=[10, 10]), is_rate=True)
    assert not verdict.unusual and "z = -0.91" in verdict.reason


# --- Unusual changes: other figures against the earlier weekly changes ---------------------


def test_too_few_weeks_to_judge():
    # Three earlier changes (four weeks before the last): fewer than MIN_CHANGES = 4.
    verdict = judge_change(weekly([10, 12, 10, 12, 40]), is_rate=False)
    assert not verdict.unusual and "too few weeks" in verdict.reason
    assert not judge_change(weekly([10]), is_rate=False).unusual


def test_a_change_beyond_two_standard_deviations_is_unusual():
    # Earlier changes +2, −2, +2, −2: mean 0, population SD 2. A change of +5 is 2.5 SD away;
    # +4 is exactly 2 SD, not beyond.
    assert judge_change(weekly([10, 12, 10, 12, 10, 15]), is_rate=False).unusual
    verdict = judge_change(weekly([10, 12, 10, 12, 10, 14]), is_rate=False)
    assert not verdict.unusual and "2.0 SD" in verdict.reason


def test_with_zero_variance_any_different_change_is_unusual():
    flat = weekly([7, 7, 7, 7, 7, 7])
    assert not judge_change(flat, is_rate=False).unusual
    verdict = judge_change(weekly([7, 7, 7, 7, 7, 6]), is_rate=False)
    assert verdict.unusual and "never varied" in verdict.reason


def test_only_the_last_twelve_changes_are_the_yardstick():
    # With a swing of ±100 among the earlier changes, a +3 is ordinary; once twelve quiet
    # weeks (+1, −1, …: mean 0, SD 1) have pushed it out of the window, +3 is 3 SD: unusual.
    swing_inside = [10, 110, 10, 11, 10, 11, 10, 11, 10, 11, 10, 13]
    swing_outside = [10, 110, 10] + [11, 10] * 6 + [13]
    assert not judge_change(weekly(swing_inside), is_rate=False).unusual
    assert judge_change(weekly(swing_outside), is_rate=False).unusual


def test_a_gap_breaks_no_rule_but_is_not_a_change():
    points = weekly([10, None, 12, 10, 12, 10, 12, None])
    verdict = judge_change(points, is_rate=False)
    assert not verdict.unusual and "no week before" in verdict.reason


def test_a_rate_without_samples_falls_back_to_the_spread_rule():
    verdict = judge_change(weekly([0.5, 0.52, 0.5, 0.52, 0.5, 0.9]), is_rate=True)
    assert verdict.unusual and "SD" in verdict.reason


def test_the_trend_shows_thirteen_weeks_and_judges_the_last_change():
    points = weekly(list(range(14)))
    result = trends.trend(
        key="pipeline",
        label="Open pipeline",
        unit="money",
        higher_is_better=True,
        is_rate=False,
        points=points,
    )
    assert len(result.points) == 13 and result.points[0].value == 1
    assert result.change == 1 and not result.verdict.unusual  # steady +1 a week
    assert result.colour == "muted"
