"""When a running SLA clock next pauses (``clock_stops_at``) and the live countdown built on it.

Pure tests: no database, nothing from Django. Expected instants are worked out by hand.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.sla_clock import (
    BusinessCalendarSpec,
    business_seconds_between,
    clock_stops_at,
    countdown,
    is_working_time,
)

NY = ZoneInfo("America/New_York")
TICK = timedelta(microseconds=1)
HOUR = 3600.0


def calendar(time_zone: str, *blocks: tuple[time, time], days=range(5), holidays=()):
    return BusinessCalendarSpec(
        time_zone=time_zone,
        working_hours={day: tuple(blocks) for day in days},
        holidays=frozenset(holidays),
    )


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Mon–Fri 09:00–17:00 in New York, Memorial Day off: the default calendar's shape.
NY_OFFICE = calendar("America/New_York", (time(9), time(17)), holidays=[date(2026, 5, 25)])
NY_LUNCH = calendar("America/New_York", (time(9), time(12)), (time(13), time(17)))
TOKYO = calendar("Asia/Tokyo", (time(9), time(18)))
LA_EVENINGS = calendar("America/Los_Angeles", (time(18), time(23, 59, 59, 999999)))
NY_NIGHTS = calendar("America/New_York", (time(1), time(4)), days=range(7))
NY_EARLY = calendar("America/New_York", (time(0), time(3)), days=range(7))


@pytest.mark.parametrize(
    ("spec", "at", "expected"),
    [
        # Tuesday 2026-03-10, EDT (UTC−4): open 13:00–21:00 UTC.
        (NY_OFFICE, utc(2026, 3, 10, 18), utc(2026, 3, 10, 21)),
        (NY_OFFICE, utc(2026, 3, 10, 13), utc(2026, 3, 10, 21)),  # the opening instant runs
        (NY_OFFICE, utc(2026, 3, 10, 21) - TICK, utc(2026, 3, 10, 21)),
        (NY_OFFICE, utc(2026, 3, 10, 21), None),  # the closing instant does not
        (NY_OFFICE, utc(2026, 3, 10, 13) - TICK, None),
        (NY_OFFICE, utc(2026, 3, 14, 18), None),  # Saturday
        (NY_OFFICE, utc(2026, 5, 25, 15), None),  # Memorial Day
        (NY_OFFICE, utc(2026, 1, 13, 15), utc(2026, 1, 13, 22)),  # EST (UTC−5)
        # A lunch break pauses the clock.
        (NY_LUNCH, utc(2026, 3, 10, 14), utc(2026, 3, 10, 16)),
        (NY_LUNCH, utc(2026, 3, 10, 16, 30), None),
        (NY_LUNCH, utc(2026, 3, 10, 17), utc(2026, 3, 10, 21)),
        # East of UTC the local day starts the evening before (Wednesday 09:00 JST).
        (TOKYO, utc(2026, 3, 11, 0), utc(2026, 3, 11, 9)),
        (TOKYO, utc(2026, 3, 10, 23, 59), None),
        # West of UTC a block ends on the next UTC day (Tuesday 22:00 PDT).
        (LA_EVENINGS, utc(2026, 3, 11, 5), utc(2026, 3, 11, 6, 59, 59, 999999)),
        # Spring forward (Sunday 2026-03-08): 01:00 EST–04:00 EDT is two real hours.
        (NY_NIGHTS, utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8)),
        (NY_NIGHTS, utc(2026, 3, 8, 6), utc(2026, 3, 8, 8)),
        (NY_NIGHTS, utc(2026, 3, 8, 5, 59), None),
        # Fall back (Sunday 2026-11-01): 00:00 EDT–03:00 EST is four real hours, through both
        # readings of 01:30.
        (NY_EARLY, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8)),
        (NY_EARLY, utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 8)),
    ],
)
def test_clock_stops_at(spec, at, expected):
    stops = clock_stops_at(spec, at)
    assert stops == expected
    if stops is not None:
        assert stops.tzinfo is UTC


def test_clock_stops_at_reads_any_time_zone_of_its_input():
    local = datetime(2026, 3, 10, 14, 0, tzinfo=NY)
    tokyo = local.astimezone(ZoneInfo("Asia/Tokyo"))
    assert clock_stops_at(NY_OFFICE, local) == clock_stops_at(NY_OFFICE, tokyo)
    assert clock_stops_at(NY_OFFICE, tokyo) == utc(2026, 3, 10, 21)


def test_clock_stops_at_refuses_naive_and_non_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        clock_stops_at(NY_OFFICE, datetime(2026, 3, 10, 18))
    with pytest.raises(TypeError):
        clock_stops_at(NY_OFFICE, "2026-03-10T18:00:00Z")


@given(
    st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    )
)
def test_clock_stops_at_agrees_with_the_clock(at):
    """Running at ``at`` ⇔ a stop is given; the clock then runs without a pause until the stop
    and not at the stop itself (the lunch calendar's blocks do not touch)."""
    stops = clock_stops_at(NY_LUNCH, at)
    assert (stops is not None) == is_working_time(NY_LUNCH, at)
    if stops is not None:
        assert at < stops <= at + timedelta(hours=4)
        assert is_working_time(NY_LUNCH, stops - TICK)
        assert not is_working_time(NY_LUNCH, stops)
        assert business_seconds_between(NY_LUNCH, at, stops) == (stops - at).total_seconds()


# --- Countdown -----------------------------------------------------------------------------------


def test_countdown_ticks_inside_working_hours_until_the_close():
    clock = countdown(NY_OFFICE, due=utc(2026, 3, 10, 20), now=utc(2026, 3, 10, 18))
    assert (clock.seconds_left, clock.running, clock.changes_at) == (
        2 * HOUR,
        True,
        utc(2026, 3, 10, 21),
    )
    assert not clock.overdue


def test_countdown_counts_only_business_time_to_a_due_time_tomorrow():
    # Tuesday 14:00 → Wednesday 10:00 New York time: 3 hours today, 1 tomorrow.
    clock = countdown(NY_OFFICE, due=utc(2026, 3, 11, 14), now=utc(2026, 3, 10, 18))
    assert clock.seconds_left == 4 * HOUR
    assert clock.running and clock.changes_at == utc(2026, 3, 10, 21)


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        (utc(2026, 3, 14, 18), utc(2026, 3, 16, 13)),  # Saturday → Monday 09:00 EDT
        (utc(2026, 3, 13, 22), utc(2026, 3, 16, 13)),  # Friday after close
        (utc(2026, 3, 16, 12), utc(2026, 3, 16, 13)),  # Monday before opening
    ],
)
def test_countdown_holds_outside_working_hours_until_the_opening(now, opens):
    clock = countdown(NY_OFFICE, due=utc(2026, 3, 16, 15), now=now)  # Monday 11:00 EDT
    assert (clock.seconds_left, clock.running, clock.changes_at) == (2 * HOUR, False, opens)


def test_countdown_goes_negative_once_overdue():
    clock = countdown(NY_OFFICE, due=utc(2026, 3, 10, 16), now=utc(2026, 3, 10, 18))
    assert clock.seconds_left == -2 * HOUR
    assert clock.overdue and clock.running


def test_overdue_time_counts_only_business_time():
    # Due Monday 16:00, now Tuesday 10:00 New York time: an hour late each day, not 18.
    clock = countdown(NY_OFFICE, due=utc(2026, 3, 9, 20), now=utc(2026, 3, 10, 14))
    assert clock.seconds_left == -2 * HOUR
    assert clock.overdue


def test_countdown_at_the_due_instant_is_zero_and_not_yet_overdue():
    clock = countdown(NY_OFFICE, due=utc(2026, 3, 10, 18), now=utc(2026, 3, 10, 18))
    assert clock.seconds_left == 0
    assert not clock.overdue
