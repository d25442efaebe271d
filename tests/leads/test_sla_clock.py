"""The SLA clock: due times and elapsed business time, with expected instants worked out by hand.

Pure tests: no database, nothing from Django.
"""

import copy
import os
import pickle
import time as time_module
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.sla_clock import (
    MAX_DAYS_WITHOUT_WORKING_TIME,
    BusinessCalendarSpec,
    add_business_hours,
    business_seconds_between,
    is_working_time,
    next_opening,
)

NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")
HOUR = 3600.0
MICROSECOND = timedelta(microseconds=1)


def t(hh: int, mm: int = 0) -> time:
    return time(hh, mm)


def calendar(
    time_zone: str,
    *blocks: tuple[time, time],
    days=range(5),
    holidays=(),
) -> BusinessCalendarSpec:
    return BusinessCalendarSpec(
        time_zone=time_zone,
        working_hours={day: tuple(blocks) for day in days},
        holidays=frozenset(holidays),
    )


# Mon–Fri 09:00–17:00 in New York, with 2026 holidays (Thanksgiving and Christmas each with the
# day next to it, to have consecutive holidays).
NY_OFFICE = calendar(
    "America/New_York",
    (t(9), t(17)),
    holidays=[
        date(2026, 1, 1),
        date(2026, 5, 25),  # Memorial Day, a Monday
        date(2026, 7, 3),
        date(2026, 9, 7),
        date(2026, 11, 26),  # Thanksgiving, Thursday
        date(2026, 11, 27),
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2027, 1, 1),  # Friday
    ],
)
# Mon–Fri 09:00–12:00 and 13:00–17:00 (7 hours a day) in Chicago.
LUNCH_BREAK = calendar("America/Chicago", (t(9), t(12)), (t(13), t(17)))


def due(cal, start, hours):
    result = add_business_hours(cal, start, hours)
    assert result.tzinfo is UTC
    return result


# --- Due times on an ordinary 09:00–17:00 calendar ----------------------------------------------


def test_within_a_day():
    assert due(NY_OFFICE, datetime(2026, 3, 9, 10, 0, tzinfo=NY), 3) == datetime(
        2026, 3, 9, 13, 0, tzinfo=NY
    )


def test_crossing_the_evening_into_the_next_morning():
    # Tuesday 15:00 + 4 h: 2 h on Tuesday, 2 h on Wednesday from 09:00.
    assert due(NY_OFFICE, datetime(2026, 3, 10, 15, 0, tzinfo=NY), 4) == datetime(
        2026, 3, 11, 11, 0, tzinfo=NY
    )


def test_friday_afternoon_lands_on_monday():
    # Friday 15:30 + 3 h: 1.5 h on Friday, 1.5 h on Monday.
    assert due(NY_OFFICE, datetime(2026, 3, 13, 15, 30, tzinfo=NY), 3) == datetime(
        2026, 3, 16, 10, 30, tzinfo=NY
    )


def test_assignment_at_23_59_friday_starts_the_clock_on_monday_morning():
    start = datetime(2026, 3, 13, 23, 59, tzinfo=NY)
    assert due(NY_OFFICE, start, 2) == datetime(2026, 3, 16, 11, 0, tzinfo=NY)
    assert due(NY_OFFICE, start, 0) == datetime(2026, 3, 16, 9, 0, tzinfo=NY)


def test_saturday_assignment_starts_on_monday():
    assert due(NY_OFFICE, datetime(2026, 3, 14, 10, 0, tzinfo=NY), 1) == datetime(
        2026, 3, 16, 10, 0, tzinfo=NY
    )


def test_early_morning_assignment_starts_at_that_days_opening():
    assert due(NY_OFFICE, datetime(2026, 3, 10, 7, 0, tzinfo=NY), 1) == datetime(
        2026, 3, 10, 10, 0, tzinfo=NY
    )


def test_holiday_monday_moves_the_due_time_to_tuesday():
    # Memorial Day 2026-05-25: Friday 16:00 + 2 h → 1 h Friday, 1 h Tuesday.
    assert due(NY_OFFICE, datetime(2026, 5, 22, 16, 0, tzinfo=NY), 2) == datetime(
        2026, 5, 26, 10, 0, tzinfo=NY
    )


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Wednesday before Thanksgiving; Thursday and Friday are holidays, then the weekend.
        (datetime(2026, 11, 25, 16, 0, tzinfo=NY), datetime(2026, 11, 30, 11, 0, tzinfo=NY)),
        # Wednesday 23 December; 24 and 25 December are holidays.
        (datetime(2026, 12, 23, 16, 0, tzinfo=NY), datetime(2026, 12, 28, 11, 0, tzinfo=NY)),
    ],
)
def test_consecutive_holidays_are_skipped(start, expected):
    assert due(NY_OFFICE, start, 3) == expected


def test_assignment_on_a_holiday_starts_on_the_next_working_day():
    assert due(NY_OFFICE, datetime(2026, 11, 26, 10, 0, tzinfo=NY), 1) == datetime(
        2026, 11, 30, 10, 0, tzinfo=NY
    )


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # 20 h from Monday 09:00: Monday 8, Tuesday 8, Wednesday 4.
        (datetime(2026, 3, 9, 9, 0, tzinfo=NY), 20, datetime(2026, 3, 11, 13, 0, tzinfo=NY)),
        # 20 h from Tuesday 14:00: 3 + 8 + 8, then 1 h on Friday.
        (datetime(2026, 3, 10, 14, 0, tzinfo=NY), 20, datetime(2026, 3, 13, 10, 0, tzinfo=NY)),
        # 100 h from Monday 09:00: two full weeks (80), Monday and Tuesday (96), 4 h Wednesday.
        (datetime(2026, 3, 9, 9, 0, tzinfo=NY), 100, datetime(2026, 3, 25, 13, 0, tzinfo=NY)),
        # Exactly two weeks from Monday 09:00: the second Friday's close, not the Monday after.
        (datetime(2026, 3, 9, 9, 0, tzinfo=NY), 80, datetime(2026, 3, 20, 17, 0, tzinfo=NY)),
    ],
)
def test_multi_day_slas(start, hours, expected):
    assert due(NY_OFFICE, start, hours) == expected


def test_a_year_of_business_hours_across_holidays_and_both_clock_changes():
    # 5 Jan 2026 → 4 Jan 2027 is 52 weeks of 40 h, less 8 weekday holidays: 2016 h. The last
    # working time before Monday 4 January 2027 is Thursday 31 December (1 January is a holiday).
    start = datetime(2026, 1, 5, 9, 0, tzinfo=NY)
    assert business_seconds_between(NY_OFFICE, start, datetime(2027, 1, 4, 9, 0, tzinfo=NY)) == (
        2016 * HOUR
    )
    assert due(NY_OFFICE, start, 2016) == datetime(2026, 12, 31, 17, 0, tzinfo=NY)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (datetime(2026, 3, 9, 9, 0, tzinfo=NY), 8, datetime(2026, 3, 9, 17, 0, tzinfo=NY)),
        (datetime(2026, 3, 9, 9, 0, tzinfo=NY), 16, datetime(2026, 3, 10, 17, 0, tzinfo=NY)),
        (datetime(2026, 3, 13, 13, 0, tzinfo=NY), 4, datetime(2026, 3, 13, 17, 0, tzinfo=NY)),
    ],
)
def test_a_due_time_at_closing_is_the_closing_instant_not_the_next_opening(start, hours, expected):
    assert due(NY_OFFICE, start, hours) == expected


def test_closing_instant_itself_is_outside_working_time():
    closing = datetime(2026, 3, 9, 17, 0, tzinfo=NY)
    assert not is_working_time(NY_OFFICE, closing)
    assert is_working_time(NY_OFFICE, closing - MICROSECOND)
    assert is_working_time(NY_OFFICE, datetime(2026, 3, 9, 9, 0, tzinfo=NY))
    assert not is_working_time(NY_OFFICE, datetime(2026, 3, 9, 9, 0, tzinfo=NY) - MICROSECOND)
    assert next_opening(NY_OFFICE, closing) == datetime(2026, 3, 10, 9, 0, tzinfo=NY)
    assert due(NY_OFFICE, closing, 1) == datetime(2026, 3, 10, 10, 0, tzinfo=NY)


def test_zero_hours_within_working_time_is_the_start_itself_in_utc():
    start = datetime(2026, 3, 9, 11, 17, 23, 5, tzinfo=NY)
    assert due(NY_OFFICE, start, 0) == start
    assert next_opening(NY_OFFICE, start) == start


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 3, 14, 12, 0, tzinfo=NY), datetime(2026, 3, 16, 9, 0, tzinfo=NY)),
        (datetime(2026, 5, 22, 17, 30, tzinfo=NY), datetime(2026, 5, 26, 9, 0, tzinfo=NY)),
        (datetime(2026, 3, 10, 3, 0, tzinfo=NY), datetime(2026, 3, 10, 9, 0, tzinfo=NY)),
    ],
)
def test_next_opening(at, expected):
    assert next_opening(NY_OFFICE, at) == expected
    assert next_opening(NY_OFFICE, at).tzinfo is UTC


def test_decimal_and_fractional_hours():
    start = datetime(2026, 3, 9, 10, 0, tzinfo=NY)
    assert due(NY_OFFICE, start, Decimal("2.25")) == datetime(2026, 3, 9, 12, 15, tzinfo=NY)
    assert due(NY_OFFICE, start, Decimal("0.25")) == datetime(2026, 3, 9, 10, 15, tzinfo=NY)
    assert due(NY_OFFICE, start, 7.5) == datetime(2026, 3, 10, 9, 30, tzinfo=NY)


def test_start_in_another_zone_is_the_same_instant():
    # 19:30 in Kolkata (UTC+05:30) is 14:00 UTC, 10:00 in New York (EDT).
    start = datetime(2026, 3, 9, 19, 30, tzinfo=KOLKATA)
    assert due(NY_OFFICE, start, 3) == datetime(2026, 3, 9, 13, 0, tzinfo=NY)


@pytest.mark.parametrize("hours", [-1, Decimal("-0.25"), float("nan"), float("inf")])
def test_invalid_hours_are_refused(hours):
    with pytest.raises(ValueError, match="hours must be"):
        add_business_hours(NY_OFFICE, datetime(2026, 3, 9, 10, 0, tzinfo=NY), hours)


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_hours(NY_OFFICE, datetime(2026, 3, 9, 10, 0), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_seconds_between(
            NY_OFFICE, datetime(2026, 3, 9, 10, 0, tzinfo=NY), datetime(2026, 3, 9, 12, 0)
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        is_working_time(NY_OFFICE, datetime(2026, 3, 9, 10, 0))


# --- Lunch breaks: two blocks a day ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # 1 h before lunch, 1 h after.
        (
            datetime(2026, 6, 8, 11, 0, tzinfo=CHICAGO),
            2,
            datetime(2026, 6, 8, 14, 0, tzinfo=CHICAGO),
        ),
        # Ends exactly when lunch starts: that closing instant.
        (
            datetime(2026, 6, 8, 11, 0, tzinfo=CHICAGO),
            1,
            datetime(2026, 6, 8, 12, 0, tzinfo=CHICAGO),
        ),
        # Assigned during lunch: the clock starts at 13:00.
        (
            datetime(2026, 6, 8, 12, 30, tzinfo=CHICAGO),
            0.5,
            datetime(2026, 6, 8, 13, 30, tzinfo=CHICAGO),
        ),
        # 1 h on Monday afternoon, 2 h on Tuesday morning.
        (
            datetime(2026, 6, 8, 16, 0, tzinfo=CHICAGO),
            3,
            datetime(2026, 6, 9, 11, 0, tzinfo=CHICAGO),
        ),
        # Two 7-hour days.
        (
            datetime(2026, 6, 8, 9, 0, tzinfo=CHICAGO),
            14,
            datetime(2026, 6, 9, 17, 0, tzinfo=CHICAGO),
        ),
        # 4 h from Monday 15:00: 2 h Monday, 2 h Tuesday morning.
        (
            datetime(2026, 6, 8, 15, 0, tzinfo=CHICAGO),
            4,
            datetime(2026, 6, 9, 11, 0, tzinfo=CHICAGO),
        ),
    ],
)
def test_lunch_break_calendar(start, hours, expected):
    assert due(LUNCH_BREAK, start, hours) == expected


def test_lunch_break_is_not_working_time():
    assert is_working_time(LUNCH_BREAK, datetime(2026, 6, 8, 11, 59, tzinfo=CHICAGO))
    assert not is_working_time(LUNCH_BREAK, datetime(2026, 6, 8, 12, 0, tzinfo=CHICAGO))
    assert not is_working_time(LUNCH_BREAK, datetime(2026, 6, 8, 12, 59, 59, tzinfo=CHICAGO))
    assert is_working_time(LUNCH_BREAK, datetime(2026, 6, 8, 13, 0, tzinfo=CHICAGO))
    assert business_seconds_between(
        LUNCH_BREAK,
        datetime(2026, 6, 8, 11, 0, tzinfo=CHICAGO),
        datetime(2026, 6, 8, 14, 0, tzinfo=CHICAGO),
    ) == (2 * HOUR)


# --- Daylight saving time ----------------------------------------------------------------------


def test_new_york_spring_forward_friday_to_monday():
    # Friday 6 March 16:00 EST (UTC-5) + 2 h: 1 h Friday, Monday 9 March 09:00–10:00 EDT (UTC-4).
    start = datetime(2026, 3, 6, 16, 0, tzinfo=NY)
    result = due(NY_OFFICE, start, 2)
    assert result == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert result.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 9, 10, 0)
    assert start.utcoffset() == timedelta(hours=-5)
    assert result.astimezone(NY).utcoffset() == timedelta(hours=-4)


def test_new_york_fall_back_friday_to_monday():
    # Friday 30 October 16:00 EDT (UTC-4) + 2 h → Monday 2 November 10:00 EST (UTC-5).
    start = datetime(2026, 10, 30, 16, 0, tzinfo=NY)
    result = due(NY_OFFICE, start, 2)
    assert result == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    assert result.astimezone(NY).replace(tzinfo=None) == datetime(2026, 11, 2, 10, 0)
    assert start.utcoffset() == timedelta(hours=-4)
    assert result.astimezone(NY).utcoffset() == timedelta(hours=-5)


@pytest.mark.parametrize(
    ("monday", "following_monday"),
    [(date(2026, 3, 2), date(2026, 3, 9)), (date(2026, 10, 26), date(2026, 11, 2))],
)
def test_a_week_spanning_a_clock_change_is_still_40_hours(monday, following_monday):
    start = datetime.combine(monday, t(9), tzinfo=NY)
    end = datetime.combine(following_monday, t(9), tzinfo=NY)
    assert business_seconds_between(NY_OFFICE, start, end) == 40 * HOUR


SEVEN_DAYS = calendar("America/New_York", (t(9), t(17)), days=range(7))


@pytest.mark.parametrize(
    ("sunday", "start", "expected"),
    [
        # Saturday 7 March 16:00 EST + 2 h → Sunday 8 March 10:00 EDT.
        (
            date(2026, 3, 8),
            datetime(2026, 3, 7, 16, 0, tzinfo=NY),
            datetime(2026, 3, 8, 14, 0, tzinfo=UTC),
        ),
        # Saturday 31 October 16:00 EDT + 2 h → Sunday 1 November 10:00 EST.
        (
            date(2026, 11, 1),
            datetime(2026, 10, 31, 16, 0, tzinfo=NY),
            datetime(2026, 11, 1, 15, 0, tzinfo=UTC),
        ),
    ],
)
def test_sunday_working_hours_on_the_clock_change_day(sunday, start, expected):
    assert due(SEVEN_DAYS, start, 2) == expected
    # The whole change day still holds 8 business hours: the change happens at 02:00.
    day_start = datetime.combine(sunday, t(0), tzinfo=NY)
    assert business_seconds_between(SEVEN_DAYS, day_start, day_start + timedelta(days=1)) == (
        8 * HOUR
    )


# Sunday 00:00–04:00 only: the block contains the 02:00 change itself.
SUNDAY_NIGHT = calendar("America/New_York", (t(0), t(4)), days=[6])


def test_a_block_spanning_spring_forward_lasts_its_real_length():
    # 00:00 EST (05:00 UTC) to 04:00 EDT (08:00 UTC): 3 real hours.
    assert business_seconds_between(
        SUNDAY_NIGHT,
        datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 12, 0, tzinfo=UTC),
    ) == (3 * HOUR)
    # 4 h: 3 h that night, then 1 h of the next Sunday's block (00:00 EDT = 04:00 UTC).
    assert due(SUNDAY_NIGHT, datetime(2026, 3, 8, 0, 0, tzinfo=NY), 4) == datetime(
        2026, 3, 15, 5, 0, tzinfo=UTC
    )


def test_long_spans_count_the_clock_change_inside_a_block():
    # 26 Sundays from 4 January to 28 June 2026, 4 h each, less the hour lost on 8 March.
    start = datetime(2026, 1, 4, 0, 0, tzinfo=NY)
    assert business_seconds_between(SUNDAY_NIGHT, start, datetime(2026, 7, 5, tzinfo=NY)) == (
        103 * HOUR
    )
    assert due(SUNDAY_NIGHT, start, 103) == datetime(2026, 6, 28, 4, 0, tzinfo=NY)
    # 1 July to 31 December: 26 Sundays (5 July … 27 December), plus the hour gained on 1 November.
    start = datetime(2026, 7, 1, 0, 0, tzinfo=NY)
    assert business_seconds_between(SUNDAY_NIGHT, start, datetime(2027, 1, 1, tzinfo=NY)) == (
        105 * HOUR
    )
    assert due(SUNDAY_NIGHT, start, 105) == datetime(2026, 12, 27, 4, 0, tzinfo=NY)


def test_a_block_spanning_fall_back_lasts_its_real_length():
    # 00:00 EDT (04:00 UTC) to 04:00 EST (09:00 UTC): 5 real hours.
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    assert business_seconds_between(
        SUNDAY_NIGHT, start, datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    ) == (5 * HOUR)
    assert due(SUNDAY_NIGHT, start, 5) == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    # Half an hour more: the next Sunday, 00:00 EST = 05:00 UTC, + 30 min.
    assert due(SUNDAY_NIGHT, start, 5.5) == datetime(2026, 11, 8, 5, 30, tzinfo=UTC)


def test_a_boundary_in_the_spring_forward_gap_uses_the_offset_before_the_change():
    # 02:30 does not exist on 8 March in New York; fold=0 reads it as 02:30 EST = 07:30 UTC
    # (03:30 EDT). The block then runs to 05:00 EDT = 09:00 UTC: 1.5 h.
    gap = calendar("America/New_York", (t(2, 30), t(5)), days=[6])
    sunday = datetime(2026, 3, 8, 0, 0, tzinfo=NY)
    assert next_opening(gap, sunday) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert business_seconds_between(gap, sunday, sunday + timedelta(hours=12)) == 1.5 * HOUR


def test_a_boundary_in_the_repeated_fall_back_hour_is_its_first_occurrence():
    # 01:30 happens twice on 1 November in New York; fold=0 takes 01:30 EDT = 05:30 UTC.
    # The block runs to 03:00 EST = 08:00 UTC: 2.5 h.
    ambiguous = calendar("America/New_York", (t(1, 30), t(3)), days=[6])
    sunday = datetime(2026, 11, 1, 0, 0, tzinfo=NY)
    assert next_opening(ambiguous, sunday) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert business_seconds_between(ambiguous, sunday, sunday + timedelta(hours=12)) == (2.5 * HOUR)


def test_blocks_made_to_overlap_by_the_gap_count_once():
    # 01:00–02:30 and 03:00–04:00 on 8 March: "02:30" is 07:30 UTC, after 03:00 EDT (07:00 UTC).
    # Together they cover 01:00 EST–04:00 EDT, 06:00–08:00 UTC: 2 h, not 2.5 h.
    overlapping = calendar("America/New_York", (t(1), t(2, 30)), (t(3), t(4)), days=[6])
    sunday = datetime(2026, 3, 8, 0, 0, tzinfo=NY)
    assert business_seconds_between(overlapping, sunday, sunday + timedelta(hours=12)) == (2 * HOUR)
    assert due(overlapping, sunday, 2) == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


PARIS_OFFICE = calendar("Europe/Paris", (t(9), t(18)))
LONDON_OFFICE = calendar("Europe/London", (t(9), t(17)))


@pytest.mark.parametrize(
    ("cal", "start", "hours", "expected"),
    [
        # Paris, spring forward 29 March: Friday 17:00 CET (16:00 UTC) + 2 h → Monday 10:00 CEST.
        (
            PARIS_OFFICE,
            datetime(2026, 3, 27, 17, 0, tzinfo=PARIS),
            2,
            datetime(2026, 3, 30, 8, 0, tzinfo=UTC),
        ),
        # Paris, fall back 25 October: Friday 17:00 CEST (15:00 UTC) + 2 h → Monday 10:00 CET.
        (
            PARIS_OFFICE,
            datetime(2026, 10, 23, 17, 0, tzinfo=PARIS),
            2,
            datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
        ),
        # London, spring forward: Friday 16:00 GMT + 3 h → Monday 11:00 BST = 10:00 UTC.
        (
            LONDON_OFFICE,
            datetime(2026, 3, 27, 16, 0, tzinfo=LONDON),
            3,
            datetime(2026, 3, 30, 10, 0, tzinfo=UTC),
        ),
        # London, fall back: Friday 16:00 BST (15:00 UTC) + 3 h → Monday 11:00 GMT.
        (
            LONDON_OFFICE,
            datetime(2026, 10, 23, 16, 0, tzinfo=LONDON),
            3,
            datetime(2026, 10, 26, 11, 0, tzinfo=UTC),
        ),
        # A Paris calendar fed a New York instant: 12:00 EDT on 27 March is 17:00 CET.
        (
            PARIS_OFFICE,
            datetime(2026, 3, 27, 12, 0, tzinfo=NY),
            2,
            datetime(2026, 3, 30, 8, 0, tzinfo=UTC),
        ),
    ],
)
def test_european_clock_changes(cal, start, hours, expected):
    assert due(cal, start, hours) == expected


# --- Calendars far from the input's and the server's zone --------------------------------------

TOKYO_OFFICE = calendar("Asia/Tokyo", (t(9), t(18)))
# Good Friday and Easter Monday 2026 as holidays; Sydney leaves daylight time on Sunday 5 April.
SYDNEY_OFFICE = calendar(
    "Australia/Sydney", (t(9), t(17)), holidays=[date(2026, 4, 3), date(2026, 4, 6)]
)

FAR_AWAY_CASES = [
    # 08:00 UTC is Friday 17:00 in Tokyo: 1 h Friday, 3 h Monday → 12:00 JST = 03:00 UTC.
    (
        TOKYO_OFFICE,
        datetime(2026, 3, 6, 8, 0, tzinfo=UTC),
        4,
        datetime(2026, 3, 9, 3, 0, tzinfo=UTC),
    ),
    # 05:00 UTC is Thursday 2 April 16:00 AEDT (UTC+11): 1 h Thursday, then Good Friday, the
    # weekend (with the change) and Easter Monday, 1 h Tuesday → 10:00 AEST (UTC+10).
    (
        SYDNEY_OFFICE,
        datetime(2026, 4, 2, 5, 0, tzinfo=UTC),
        2,
        datetime(2026, 4, 7, 0, 0, tzinfo=UTC),
    ),
    # Sydney enters daylight time on Sunday 4 October: Friday 16:00 AEST (06:00 UTC) + 2 h →
    # Monday 10:00 AEDT (UTC+11), which is still Sunday in UTC.
    (
        SYDNEY_OFFICE,
        datetime(2026, 10, 2, 6, 0, tzinfo=UTC),
        2,
        datetime(2026, 10, 4, 23, 0, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("cal", "start", "hours", "expected"), FAR_AWAY_CASES)
def test_calendar_in_a_far_zone_with_utc_input(cal, start, hours, expected):
    assert due(cal, start, hours) == expected


@pytest.fixture
def server_in_auckland():
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Auckland"
    time_module.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time_module.tzset()


@pytest.mark.parametrize(("cal", "start", "hours", "expected"), FAR_AWAY_CASES)
def test_the_server_time_zone_is_irrelevant(server_in_auckland, cal, start, hours, expected):
    assert time_module.localtime(0).tm_gmtoff == 12 * 3600  # the server really is in Auckland
    assert due(cal, start, hours) == expected
    assert business_seconds_between(cal, start, expected) == hours * HOUR


# --- Elapsed business time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # Same day.
        (datetime(2026, 3, 9, 10, 0, tzinfo=NY), datetime(2026, 3, 9, 12, 30, tzinfo=NY), 2.5),
        # Across the night.
        (datetime(2026, 3, 9, 16, 0, tzinfo=NY), datetime(2026, 3, 10, 10, 0, tzinfo=NY), 2),
        # Across the weekend.
        (datetime(2026, 3, 13, 16, 0, tzinfo=NY), datetime(2026, 3, 16, 10, 0, tzinfo=NY), 2),
        # Across the Memorial Day weekend.
        (datetime(2026, 5, 22, 16, 0, tzinfo=NY), datetime(2026, 5, 26, 10, 0, tzinfo=NY), 2),
        # Across Thanksgiving and the day after.
        (datetime(2026, 11, 25, 16, 0, tzinfo=NY), datetime(2026, 11, 30, 10, 0, tzinfo=NY), 2),
        # Both ends outside working hours, nothing between: Saturday noon to Sunday noon.
        (datetime(2026, 3, 14, 12, 0, tzinfo=NY), datetime(2026, 3, 15, 12, 0, tzinfo=NY), 0),
        # Friday evening to Monday before opening.
        (datetime(2026, 3, 13, 20, 0, tzinfo=NY), datetime(2026, 3, 16, 8, 0, tzinfo=NY), 0),
        # Friday evening to Tuesday before opening: all of Monday.
        (datetime(2026, 3, 13, 18, 0, tzinfo=NY), datetime(2026, 3, 17, 7, 0, tzinfo=NY), 8),
    ],
)
def test_business_seconds_between(start, end, hours):
    assert business_seconds_between(NY_OFFICE, start, end) == hours * HOUR


def test_end_at_or_before_start_is_zero():
    start = datetime(2026, 3, 9, 12, 0, tzinfo=NY)
    assert business_seconds_between(NY_OFFICE, start, start) == 0
    assert business_seconds_between(NY_OFFICE, start, start - timedelta(hours=1)) == 0
    assert business_seconds_between(NY_OFFICE, start, start - timedelta(days=30)) == 0


def test_measured_from_outside_working_time_counts_from_the_next_opening():
    saturday = datetime(2026, 3, 14, 10, 0, tzinfo=NY)
    result = due(NY_OFFICE, saturday, 5)
    assert result == datetime(2026, 3, 16, 14, 0, tzinfo=NY)
    assert business_seconds_between(NY_OFFICE, saturday, result) == 5 * HOUR
    assert business_seconds_between(NY_OFFICE, next_opening(NY_OFFICE, saturday), result) == (
        5 * HOUR
    )


# --- Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("working_hours", [{}, {0: ()}, {day: () for day in range(7)}])
def test_a_calendar_needs_working_hours(working_hours):
    with pytest.raises(ValueError, match="no working hours: its clock would never run"):
        BusinessCalendarSpec(time_zone="UTC", working_hours=working_hours)


def test_overlapping_blocks_are_refused():
    with pytest.raises(ValueError, match="Monday: blocks 09:00–12:00 and 11:00–13:00 overlap"):
        BusinessCalendarSpec(time_zone="UTC", working_hours={0: ((t(9), t(12)), (t(11), t(13)))})


@pytest.mark.parametrize("block", [(t(17), t(9)), (t(9), t(9))])
def test_a_block_must_open_before_it_closes(block):
    with pytest.raises(ValueError, match="Tuesday: a block must open before it closes"):
        BusinessCalendarSpec(time_zone="UTC", working_hours={1: (block,)})


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "America", "../etc/passwd"])
def test_unknown_time_zone_is_refused(name):
    with pytest.raises(ValueError, match="Unknown time zone"):
        BusinessCalendarSpec(time_zone=name, working_hours={0: ((t(9), t(17)),)})


def test_unknown_weekday_is_refused():
    with pytest.raises(ValueError, match="Unknown weekday 7"):
        BusinessCalendarSpec(time_zone="UTC", working_hours={7: ((t(9), t(17)),)})


def test_blocks_are_sorted_and_touching_blocks_are_allowed():
    spec = BusinessCalendarSpec(time_zone="UTC", working_hours={0: [(t(12), t(17)), (t(9), t(12))]})
    assert spec.working_hours[0] == ((t(9), t(12)), (t(12), t(17)))
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert is_working_time(spec, monday.replace(hour=12))
    assert due(spec, monday, 8) == monday.replace(hour=17)


def test_from_blocks_groups_rows_by_weekday_and_specs_are_values():
    rows = [(1, t(13), t(17)), (0, t(9), t(17)), (1, t(9), t(12))]
    spec = BusinessCalendarSpec.from_blocks(
        time_zone="Europe/Paris", blocks=rows, holidays=[date(2026, 5, 1)]
    )
    assert spec.working_hours == {0: ((t(9), t(17)),), 1: ((t(9), t(12)), (t(13), t(17)))}
    assert spec.holidays == frozenset({date(2026, 5, 1)})
    same = BusinessCalendarSpec.from_blocks(
        time_zone="Europe/Paris", blocks=reversed(rows), holidays=[date(2026, 5, 1)]
    )
    assert spec == same
    assert hash(spec) == hash(same)


def test_specs_survive_pickling_and_deep_copies():
    assert pickle.loads(pickle.dumps(NY_OFFICE)) == NY_OFFICE
    copied = copy.deepcopy(LUNCH_BREAK)
    assert copied == LUNCH_BREAK
    start = datetime(2026, 6, 8, 11, 0, tzinfo=CHICAGO)
    assert due(copied, start, 2) == due(LUNCH_BREAK, start, 2)


def test_a_search_without_working_time_stops_with_an_error():
    # Holidays every day for eleven years: no opening can be found.
    first = date(2026, 1, 1)
    always_off = calendar(
        "UTC", (t(9), t(17)), holidays=[first + timedelta(days=n) for n in range(4018)]
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=f"No working time in {MAX_DAYS_WITHOUT_WORKING_TIME}"):
        add_business_hours(always_off, start, 1)
    with pytest.raises(ValueError, match="No working time"):
        next_opening(always_off, start)
    # Ten years and a bit of holidays is fine: the clock starts once they end.
    assert next_opening(always_off, datetime(2036, 12, 1, tzinfo=UTC)) == datetime(
        2037, 1, 1, 9, 0, tzinfo=UTC
    )


# --- Performance -------------------------------------------------------------------------------


def test_ten_thousand_business_hours_is_fast():
    start = datetime(2026, 3, 6, 16, 0, tzinfo=NY)
    timings = []
    for _ in range(5):
        began = time_module.perf_counter()
        result = add_business_hours(NY_OFFICE, start, 10_000)
        timings.append(time_module.perf_counter() - began)
    assert max(timings) < 0.050
    assert business_seconds_between(NY_OFFICE, start, result) == 10_000 * HOUR


# --- Properties over random calendars ----------------------------------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "America/Santiago",  # changes at midnight
    "Europe/London",
    "Europe/Paris",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute change
]


@st.composite
def calendars(draw) -> BusinessCalendarSpec:
    working_hours = {}
    for weekday in range(7):
        # An even number of distinct 5-minute marks, paired up: sorted, non-overlapping blocks.
        marks = sorted(draw(st.sets(st.integers(0, 287), max_size=6)))
        marks = marks[: len(marks) // 2 * 2]
        minutes = [mark * 5 for mark in marks]
        working_hours[weekday] = tuple(
            (time(opens // 60, opens % 60), time(closes // 60, closes % 60))
            for opens, closes in zip(minutes[::2], minutes[1::2], strict=True)
        )
    if not any(working_hours.values()):
        working_hours[draw(st.integers(0, 6))] = ((time(9), time(17)),)
    return BusinessCalendarSpec(
        time_zone=draw(st.sampled_from(ZONES)),
        working_hours=working_hours,
        holidays=draw(st.frozensets(st.dates(date(2024, 12, 20), date(2028, 6, 30)), max_size=40)),
    )


# Days on which some of ZONES change their clocks (US, EU, Chile, south-east Australia).
CLOCK_CHANGES = [
    date(2025, 3, 9), date(2025, 11, 2), date(2026, 3, 8), date(2026, 11, 1),
    date(2027, 3, 14), date(2027, 11, 7), date(2025, 3, 30), date(2025, 10, 26),
    date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31),
    date(2025, 4, 6), date(2025, 10, 5), date(2026, 4, 5), date(2026, 10, 4),
    date(2027, 4, 4), date(2027, 10, 3), date(2025, 9, 7), date(2026, 9, 6),
]  # fmt: skip
starts = st.one_of(
    st.datetimes(
        min_value=datetime(2025, 1, 1),
        max_value=datetime(2027, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    ),
    # Up to three weeks before (or a day after) a clock change, where it matters most.
    st.builds(
        lambda day, seconds: datetime.combine(day, time(), tzinfo=UTC) + timedelta(seconds=seconds),
        st.sampled_from(CLOCK_CHANGES),
        st.integers(-21 * 86_400, 86_400),
    ),
)
hours_strategy = st.one_of(
    st.floats(min_value=0.25, max_value=200, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("0.25"), max_value=Decimal(200), places=2),
)
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def reference_add(cal: BusinessCalendarSpec, start: datetime, hours) -> datetime:
    """Day by day, block by block, no shortcuts: the oracle for the week-skipping fast path."""
    zone = ZoneInfo(cal.time_zone)
    remaining = timedelta(microseconds=int((Decimal(hours) * 3_600_000_000).to_integral_value()))
    cursor = start.astimezone(UTC)
    day = cursor.astimezone(zone).date() - timedelta(days=1)
    while True:
        if day not in cal.holidays:
            for opens, closes in cal.working_hours.get(day.weekday(), ()):
                begin = max(datetime.combine(day, opens, tzinfo=zone).astimezone(UTC), cursor)
                finish = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
                if finish <= begin:
                    continue
                if remaining <= finish - begin:
                    return begin + remaining
                remaining -= finish - begin
                cursor = finish
        day += timedelta(days=1)


@PROPERTY_SETTINGS
@given(cal=calendars(), start=starts, hours=hours_strategy)
def test_elapsed_time_is_the_inverse_of_the_due_time(cal, start, hours):
    result = add_business_hours(cal, start, hours)
    assert result.tzinfo is UTC
    assert result > start
    assert abs(business_seconds_between(cal, start, result) - float(hours) * HOUR) <= 1e-6
    opening = next_opening(cal, start)
    assert abs(business_seconds_between(cal, opening, result) - float(hours) * HOUR) <= 1e-6


@PROPERTY_SETTINGS
@given(cal=calendars(), start=starts, hours=hours_strategy)
def test_a_due_time_is_in_working_time_or_exactly_at_a_close(cal, start, hours):
    result = add_business_hours(cal, start, hours)
    # The last microsecond counted was working time; the due time itself is either still
    # working time or the closing instant of that block.
    assert is_working_time(cal, result - MICROSECOND)


@PROPERTY_SETTINGS
@given(cal=calendars(), start=starts, hours=hours_strategy)
def test_the_fast_path_agrees_with_walking_every_day(cal, start, hours):
    assert add_business_hours(cal, start, hours) == reference_add(cal, start, hours)


@PROPERTY_SETTINGS
@given(cal=calendars(), start=starts)
def test_zero_hours_is_the_next_opening_which_is_working_time(cal, start):
    opening = next_opening(cal, start)
    assert add_business_hours(cal, start, 0) == opening
    assert opening >= start
    assert is_working_time(cal, opening)
    assert business_seconds_between(cal, start, opening) == 0
    if is_working_time(cal, start):
        assert opening == start


@PROPERTY_SETTINGS
@given(
    cal=calendars(),
    start=starts,
    spans=st.tuples(st.integers(0, 90 * 86_400), st.integers(0, 90 * 86_400)),
)
def test_elapsed_time_adds_up_over_a_split(cal, start, spans):
    middle = start + timedelta(seconds=min(spans))
    end = start + timedelta(seconds=max(spans))
    whole = business_seconds_between(cal, start, end)
    parts = business_seconds_between(cal, start, middle) + business_seconds_between(
        cal, middle, end
    )
    assert abs(whole - parts) <= 1e-6
    assert 0 <= whole <= (end - start).total_seconds()
