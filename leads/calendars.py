"""Business calendars from the database as plain specs for the SLA clock (``leads.sla_clock``).

The clock itself imports no ORM; this is the one place that turns a ``BusinessCalendar`` row
and its working hours and holidays into a ``BusinessCalendarSpec``.
"""

from leads.models import BusinessCalendar
from leads.sla_clock import BusinessCalendarSpec

# For callers that build many specs: ``.prefetch_related(*CALENDAR_PREFETCH)`` on calendars,
# or with a ``calendar__`` prefix on SLA policies, makes ``calendar_spec`` query-free.
CALENDAR_PREFETCH = ("working_hours", "holidays")


def calendar_spec(calendar: BusinessCalendar) -> BusinessCalendarSpec:
    """The calendar as a spec: two queries, or none when its rows were prefetched.

    Raises ``ValueError`` (from the spec) for a calendar the clock cannot run on, such as one
    with no working hours.
    """
    return BusinessCalendarSpec.from_blocks(
        time_zone=calendar.time_zone,
        blocks=(
            (block.weekday, block.opens_at, block.closes_at)
            for block in calendar.working_hours.all()
        ),
        holidays=(holiday.date for holiday in calendar.holidays.all()),
    )
