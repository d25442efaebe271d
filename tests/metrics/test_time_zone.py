"""Day boundaries of every KPI period are local days of ``DISPLAY_TIME_ZONE`` (New York), not
UTC days: presets, custom dates, month grouping, on a month end, a quarter end and across the
daylight-saving change of 8 March 2026."""

from datetime import UTC, date, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics.filters import DashboardFilterForm
from metrics.kpis import Period
from metrics.queries import GroupBy, opportunity_results, opportunity_results_by
from tests.metrics.factories import NEW_YORK, new_york, won

pytestmark = pytest.mark.django_db


@pytest.fixture
def late_wins():
    """Wins at 23:30 New York time (already the next day in UTC) on the last day of 2025 (a
    quarter end), of February (a month end), of March (a quarter end), on 8 March (the first
    day of daylight-saving time), and on 30 June (a quarter end, in summer time)."""
    instants = {
        "2025-12-31": datetime(2025, 12, 31, 23, 30, tzinfo=NEW_YORK),
        "2026-02-28": new_york(2, 28, 23, 30),
        "2026-03-08": new_york(3, 8, 23, 30),
        "2026-03-31": new_york(3, 31, 23, 30),
        "2026-06-30": new_york(6, 30, 23, 30),
    }
    for day, at in instants.items():
        won(lead=None, created_at=datetime(2025, 12, 1, tzinfo=UTC), closed_at=at, name=day)
    return instants


def _form_period(params: dict, *, now: datetime, monkeypatch) -> Period:
    """The period the dashboards' filter form builds at ``now``, with UTC active (as in the API
    and in workers), not the display time zone the page middleware activates."""
    monkeypatch.setattr(timezone, "now", lambda: now)
    with timezone.override(UTC):
        return DashboardFilterForm(params).period()


def test_this_quarter_is_the_local_quarter_when_utc_has_moved_on(monkeypatch):
    # 1 April 02:00 UTC is still 31 March, 22:00, in New York: the first quarter.
    period = _form_period({"preset": "this_quarter"}, now=datetime(2026, 4, 1, 2, tzinfo=UTC),
                          monkeypatch=monkeypatch)  # fmt: skip
    assert (period.first_day, period.last_day) == (date(2026, 1, 1), date(2026, 3, 31))
    assert period.start == datetime(2026, 1, 1, tzinfo=NEW_YORK)


def test_a_week_across_the_daylight_saving_change_has_167_hours(monkeypatch):
    period = _form_period({"preset": "this_week"}, now=datetime(2026, 3, 9, 3, tzinfo=UTC),
                          monkeypatch=monkeypatch)  # fmt: skip
    # 9 March 03:00 UTC is Sunday 8 March in New York: the week of Monday 2 March.
    assert (period.first_day, period.last_day) == (date(2026, 3, 2), date(2026, 3, 8))
    # Python subtracts instants of one tzinfo by wall clock: compare them in UTC.
    assert (period.end.astimezone(UTC) - period.start.astimezone(UTC)).total_seconds() == 167 * 3600


@pytest.mark.parametrize(
    ("first", "last", "counted"),
    [
        # Quarters: 23:30 on 31 December 2025 is 2025's, 23:30 on 31 March is Q1's.
        (date(2026, 1, 1), date(2026, 3, 31), {"2026-02-28", "2026-03-08", "2026-03-31"}),
        (date(2026, 4, 1), date(2026, 6, 30), {"2026-06-30"}),
        # Months: February ends at midnight New York time, not UTC.
        (date(2026, 2, 1), date(2026, 2, 28), {"2026-02-28"}),
        (date(2026, 3, 1), date(2026, 3, 31), {"2026-03-08", "2026-03-31"}),
        # The week of the change to summer time, and the week after it.
        (date(2026, 3, 2), date(2026, 3, 8), {"2026-03-08"}),
        (date(2026, 3, 9), date(2026, 3, 15), set()),
    ],
)
def test_late_evening_facts_count_on_their_local_day(late_wins, first, last, counted):
    period = Period.from_dates(first, last, "America/New_York")
    assert opportunity_results(period).won == len(counted)


def test_months_of_a_breakdown_are_local_months(late_wins):
    year = Period.from_dates(date(2025, 12, 1), date(2026, 6, 30), NEW_YORK)
    rows = opportunity_results_by(year, by=GroupBy.MONTH)
    assert [(row.group.id, row.results.won) for row in rows] == [
        (date(2025, 12, 1), 1),
        (date(2026, 2, 1), 1),
        (date(2026, 3, 1), 2),
        (date(2026, 6, 1), 1),
    ]


def test_month_breakdown_is_the_same_whatever_time_zone_is_active(late_wins):
    year = Period.from_dates(date(2025, 12, 1), date(2026, 6, 30), NEW_YORK)
    with timezone.override(UTC):
        in_utc = opportunity_results_by(year, by=GroupBy.MONTH)
    assert in_utc == opportunity_results_by(year, by=GroupBy.MONTH)


def test_the_pipeline_page_counts_the_quarter_in_local_days(admin_client, late_wins):
    response = admin_client.get(
        reverse("metrics:pipeline"),
        {"preset": "custom", "start": "2026-01-01", "end": "2026-03-31"},
    )
    assert response.context["data"]["results"].won == 3
