"""The KPI maths, without a database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from metrics.kpis import (
    KpiFilters,
    Period,
    change,
    cohort_funnel,
    median,
    money_per,
    percentile,
    pipeline_velocity,
    rate,
)

NEW_YORK = "America/New_York"
STAGES = ["lead", "mql", "sal", "sql", "opportunity", "customer"]


# --- Rates and percentiles -------------------------------------------------------------------


def test_rate_divides():
    assert rate(1, 4) == 0.25


def test_rate_of_nothing_is_none_not_zero():
    assert rate(0, 0) is None


def test_rate_of_zero_out_of_some_is_zero():
    assert rate(0, 5) == 0.0


def test_percentile_interpolates_between_closest_ranks():
    # Positions (n − 1) × p: 1.5 → halfway between 2 and 3; 2.7 → 70% from 3 to 4.
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile([1, 2, 3, 4], 0.9) == pytest.approx(3.7, abs=1e-12)
    assert percentile([1, 2, 3, 4], 0.0) == 1
    assert percentile([1, 2, 3, 4], 1.0) == 4


def test_median_of_an_odd_count_is_the_middle_value():
    assert median([9, 1, 5]) == 5


def test_percentile_of_one_value_is_that_value():
    assert percentile([7], 0.9) == 7


def test_percentile_of_nothing_is_none():
    assert median([]) is None


def test_percentile_refuses_a_fraction_outside_zero_to_one():
    with pytest.raises(ValueError):
        percentile([1], 90)


def test_money_per_rounds_to_cents():
    assert money_per(Decimal("100"), 3) == Decimal("33.33")
    assert money_per(Decimal("200"), 3) == Decimal("66.67")


def test_money_per_nothing_is_none_and_no_money_is_zero():
    assert money_per(Decimal("100"), 0) is None
    assert money_per(None, 4) == Decimal("0.00")


# --- Change vs the previous period -----------------------------------------------------------


def test_change_gives_difference_and_relative_change():
    moved = change(150, 100)
    assert (moved.absolute, moved.relative) == (50, 0.5)


def test_change_of_a_rate_is_in_points():
    moved = change(0.6, 0.5)
    assert moved.absolute == pytest.approx(0.1)
    assert moved.relative == pytest.approx(0.2)


def test_change_from_zero_has_no_relative_change():
    moved = change(5, 0)
    assert (moved.absolute, moved.relative) == (5, None)


def test_change_with_no_data_on_either_side_is_none():
    assert change(None, 3).absolute is None
    assert change(3, None).relative is None


# --- Pipeline velocity -----------------------------------------------------------------------


def test_pipeline_velocity():
    # 10 open × 25% × 4,000 ÷ 50 days = 200 a day.
    velocity = pipeline_velocity(
        open_opportunities=10,
        win_rate=0.25,
        average_deal_size=Decimal("4000"),
        average_cycle_days=50,
    )
    assert velocity == 200.0


def test_pipeline_velocity_of_an_empty_pipeline_is_zero():
    assert (
        pipeline_velocity(
            open_opportunities=0, win_rate=0.5, average_deal_size=1000, average_cycle_days=10
        )
        == 0.0
    )


@pytest.mark.parametrize(
    ("win_rate", "deal_size", "cycle_days"),
    [(None, 1000, 10), (0.5, None, 10), (0.5, 1000, None), (0.5, 1000, 0)],
)
def test_pipeline_velocity_without_closed_deals_is_none(win_rate, deal_size, cycle_days):
    assert (
        pipeline_velocity(
            open_opportunities=3,
            win_rate=win_rate,
            average_deal_size=deal_size,
            average_cycle_days=cycle_days,
        )
        is None
    )


# --- Cohort funnel ---------------------------------------------------------------------------


def test_cohort_funnel_counts_a_lead_at_every_stage_up_to_its_furthest():
    funnel = cohort_funnel(STAGES, {"lead": 4, "mql": 2, "sal": 1, "opportunity": 2, "customer": 1})
    assert funnel.cohort == 10
    assert [step.reached for step in funnel.steps] == [10, 6, 4, 3, 3, 1]
    assert [step.dropped for step in funnel.steps] == [None, 4, 2, 1, 0, 2]
    assert funnel.step("mql").share_of_cohort == 0.6
    assert funnel.step("sal").rate_from_previous == 4 / 6
    assert funnel.step("sql").drop_rate == 0.25
    assert funnel.step("opportunity").rate_from_previous == 1.0
    assert funnel.rate_between("lead", "opportunity") == 0.3
    assert funnel.rate_between("opportunity", "customer") == 1 / 3


def test_first_funnel_step_has_no_rate_from_a_previous_stage():
    first = cohort_funnel(STAGES, {"mql": 1}).step("lead")
    assert (first.reached, first.rate_from_previous, first.dropped) == (1, None, None)


def test_empty_cohort_funnel_has_no_rates():
    funnel = cohort_funnel(STAGES, {})
    assert funnel.cohort == 0
    assert {step.share_of_cohort for step in funnel.steps} == {None}
    assert funnel.rate_between("lead", "customer") is None


def test_cohort_funnel_refuses_stages_outside_it():
    with pytest.raises(ValueError):
        cohort_funnel(STAGES, {"nurture": 1})


# --- Periods and filters ---------------------------------------------------------------------


def test_period_from_dates_runs_midnight_to_midnight_in_the_display_time_zone():
    march = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31), NEW_YORK)
    # New York is UTC−5 on 1 March and UTC−4 (daylight time) by 31 March.
    assert march.start == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert march.end == datetime(2026, 4, 1, 4, tzinfo=UTC)
    assert (march.first_day, march.last_day, march.days) == (
        date(2026, 3, 1),
        date(2026, 3, 31),
        31,
    )


def test_previous_period_has_the_same_number_of_days():
    march = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31), NEW_YORK)
    assert march.previous() == Period.from_dates(date(2026, 1, 29), date(2026, 2, 28), NEW_YORK)


def test_previous_week_across_daylight_saving_is_a_whole_week():
    # Clocks moved forward on Sunday 8 March 2026: that week lasted 167 hours.
    week = Period.from_dates(date(2026, 3, 9), date(2026, 3, 15), NEW_YORK)
    previous = week.previous()
    assert previous == Period.from_dates(date(2026, 3, 2), date(2026, 3, 8), NEW_YORK)
    assert previous.end.astimezone(UTC) - previous.start.astimezone(UTC) == timedelta(hours=167)


def test_previous_of_a_period_not_in_whole_days_moves_back_by_its_elapsed_time():
    # 00:00–12:00 New York time on 8 March lasted 11 hours (clocks skipped 02:00–03:00), so
    # the period before starts 11 hours earlier: 13:00 on 7 March, not 12:00.
    zone = ZoneInfo(NEW_YORK)
    morning = Period(datetime(2026, 3, 8, 0, tzinfo=zone), datetime(2026, 3, 8, 12, tzinfo=zone))
    previous = morning.previous()
    assert previous.start == datetime(2026, 3, 7, 13, tzinfo=zone)
    assert previous.end == morning.start


def test_period_refuses_naive_or_backwards_instants():
    with pytest.raises(ValueError):
        Period(datetime(2026, 3, 1), datetime(2026, 3, 2))
    with pytest.raises(ValueError):
        Period.from_dates(date(2026, 3, 2), date(2026, 3, 1), NEW_YORK)


def test_filters_are_canonical_so_equal_filters_compare_equal():
    assert KpiFilters(source_ids=[3, 1, 3], tiers=("B", "A")) == KpiFilters(
        source_ids=(1, 3), tiers=("A", "B")
    )
    assert hash(KpiFilters(source_ids=[2])) == hash(KpiFilters(source_ids=(2,)))


def test_cost_cannot_follow_tier_or_owner_filters():
    assert not KpiFilters(source_ids=(1,), campaign_ids=(2,)).splits_campaign_cost
    assert KpiFilters(tiers=("A",)).splits_campaign_cost
    assert KpiFilters(team_manager_id=5).splits_campaign_cost
