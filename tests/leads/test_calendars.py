"""Calendar rows → SLA clock spec, on the default calendar shipped by migration 0002."""

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from leads.calendars import CALENDAR_PREFETCH, calendar_spec
from leads.models import BusinessCalendar
from leads.sla_clock import add_business_hours, business_seconds_between

NY = ZoneInfo("America/New_York")
DEFAULT_CALENDAR = "Sales team — New York"

pytestmark = pytest.mark.django_db


def test_default_calendar_spec():
    spec = calendar_spec(BusinessCalendar.objects.get(name=DEFAULT_CALENDAR))
    assert spec.time_zone == "America/New_York"
    assert spec.working_hours == {day: ((time(9), time(17)),) for day in range(5)}
    assert date(2026, 11, 26) in spec.holidays


def test_due_time_across_thanksgiving():
    spec = calendar_spec(BusinessCalendar.objects.get(name=DEFAULT_CALENDAR))
    # Wednesday 25 November 15:00 EST: 2 h that day, Thursday is Thanksgiving, 2 h on Friday.
    start = datetime(2026, 11, 25, 15, 0, tzinfo=NY)
    due = add_business_hours(spec, start, Decimal("4"))
    assert due == datetime(2026, 11, 27, 11, 0, tzinfo=NY)
    assert due.tzinfo is UTC
    # The 16 h accept window: 2 h Wednesday, 8 h Friday, 6 h on Monday 30 November.
    assert add_business_hours(spec, start, Decimal("16")) == datetime(
        2026, 11, 30, 15, 0, tzinfo=NY
    )
    assert business_seconds_between(spec, start, due) == 4 * 3600


def test_calendar_spec_reads_prefetched_rows_without_queries(django_assert_num_queries):
    calendar = BusinessCalendar.objects.prefetch_related(*CALENDAR_PREFETCH).get(
        name=DEFAULT_CALENDAR
    )
    with django_assert_num_queries(0):
        prefetched = calendar_spec(calendar)
    plain = BusinessCalendar.objects.get(name=DEFAULT_CALENDAR)
    with django_assert_num_queries(2):  # working hours, holidays
        fetched = calendar_spec(plain)
    assert prefetched == fetched
