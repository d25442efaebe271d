"""Trends: the weekly series (one grouped query per KPI) equal the tiles' figures week by week,
young cohorts are marked maturing, and the trend page and the overview's tiles are served from
snapshots in a pinned number of queries."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.roles import VIEWER
from metrics import dashboards, queries, trends
from metrics.kpis import NO_FILTERS, Period
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import (
    MetricLeadFactory,
    OpportunityFactory,
    accepted,
    history,
    rejected,
    won,
)

NEW_YORK = ZoneInfo("America/New_York")
# March 2026 in New York: the first day not counted is Wednesday 1 April, so the last whole week
# starts on Monday 23 March.
MARCH = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31), NEW_YORK)
MARCH_QUERY = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}
WEEK_OF_16_MARCH, WEEK_OF_23_MARCH = date(2026, 3, 16), date(2026, 3, 23)


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=NEW_YORK)


def week_period(monday: date) -> Period:
    return Period.from_dates(monday, monday + timedelta(days=6), NEW_YORK)


@pytest.fixture
def march_weeks(db):
    """Week of 16 March: 2 accepted, 1 rejected; three leads created, one reaches opportunity.
    Week of 23 March: 1 accepted (Sunday 29 March 23:30 New York is still that week), one lead.
    One deal won on 18 March, one opportunity open from 10 March."""
    source = SourceFactory(name="Webinars")
    for _ in range(2):
        accepted(at=at(date(2026, 3, 17)), assigned_at=at(date(2026, 3, 16)))
    rejected(at=at(date(2026, 3, 18)), assigned_at=at(date(2026, 3, 17)))
    sunday_night = datetime(2026, 3, 29, 23, 30, tzinfo=NEW_YORK)
    accepted(at=sunday_night, assigned_at=sunday_night)
    leads = [MetricLeadFactory(source=source, created_at=at(date(2026, 3, 16))) for _ in range(3)]
    history(leads[0], ("lead", at(date(2026, 3, 16))), ("opportunity", at(date(2026, 3, 20))))
    MetricLeadFactory(source=source, created_at=at(date(2026, 3, 24)))
    won(closed_at=at(date(2026, 3, 18)), created_at=at(date(2026, 3, 2)), amount=5_000)
    OpportunityFactory(created_at=at(date(2026, 3, 10)), amount=7_000)


def test_each_week_of_the_series_is_the_tiles_figure_for_that_week(march_weeks):
    page = dashboards.trends_page(MARCH, NO_FILTERS)
    assert page.weeks[-1] == WEEK_OF_23_MARCH and len(page.weeks) == trends.WEEKS
    series = page.by_key()
    for monday in (WEEK_OF_16_MARCH, WEEK_OF_23_MARCH):
        week = week_period(monday)
        acceptance = next(p for p in series["acceptance"].points if p.week == monday)
        expected = queries.lead_acceptance(week)
        assert acceptance.value == expected.rate
        assert acceptance.sample == expected.accepted + expected.rejected
        cohort = next(p for p in series["lead_to_opportunity"].points if p.week == monday)
        assert cohort.value == queries.conversion_by_source(week).overall.lead_to_opportunity_rate
        pipeline = next(p for p in series["pipeline"].points if p.week == monday)
        assert pipeline.value == float(queries.pipeline_and_revenue(week).total.open_amount)
    by_week = {p.week: p for p in series["acceptance"].points}
    assert (by_week[WEEK_OF_16_MARCH].value, by_week[WEEK_OF_16_MARCH].sample) == (2 / 3, 3)
    assert (by_week[WEEK_OF_23_MARCH].value, by_week[WEEK_OF_23_MARCH].sample) == (1.0, 1)
    cohorts = {p.week: p for p in series["lead_to_opportunity"].points}
    assert (cohorts[WEEK_OF_16_MARCH].value, cohorts[WEEK_OF_16_MARCH].sample) == (1 / 3, 3)
    assert by_week[date(2026, 3, 2)].value is None  # a week without handoffs is a gap


def test_the_weekly_series_take_one_grouped_query_per_kpi(
    march_weeks, django_assert_max_num_queries
):
    # Funnel definition, typical time to convert, acceptance, response (counts and medians),
    # SLA, cohorts, results (counts and medians), pipeline at every week end, feedback: the
    # same whatever the number of weeks; and the rollups' state for the eight series that read
    # them (typical time, acceptance, response, SLA, cohorts, results, pipeline, feedback).
    with django_assert_max_num_queries(20):
        dashboards.trends_page(MARCH, NO_FILTERS)


@pytest.fixture
def converting_leads(db):
    """Leads created 200 days ago (the half-year before the weeks shown) reached opportunity 30
    days later: the typical time to convert is 30 days. Leads created in the last few weeks
    have not yet."""
    now = timezone.now()
    for _ in range(3):
        lead = MetricLeadFactory(created_at=now - timedelta(days=200))
        history(
            lead,
            ("lead", now - timedelta(days=200)),
            ("opportunity", now - timedelta(days=170)),
        )
    for days_ago in (8, 15, 22, 50):
        MetricLeadFactory(created_at=now - timedelta(days=days_ago))


def test_cohorts_younger_than_the_typical_time_to_convert_are_maturing(converting_leads):
    today = timezone.localdate(timezone.now(), NEW_YORK)
    period = Period.from_dates(today - timedelta(days=27), today, NEW_YORK)
    page = dashboards.trends_page(period, NO_FILTERS)
    assert page.typical_days_to_opportunity == pytest.approx(30, abs=0.05)
    cohort = page.by_key()["lead_to_opportunity"]
    for point in cohort.points:
        days_since_end = (today - (point.week + timedelta(days=7))).days
        assert point.maturing == (days_since_end < 30)
    assert cohort.points[-1].maturing and not cohort.points[0].maturing
    assert not cohort.verdict.unusual and "maturing" in cohort.verdict.reason
    # Other KPIs are not cohorts: never maturing.
    assert not any(p.maturing for p in page.by_key()["acceptance"].points)


def test_the_trend_page_shows_every_headline_with_its_sample_and_exports(admin_client, march_weeks):
    response = admin_client.get(reverse("metrics:trends"), MARCH_QUERY)
    body = response.content.decode()
    assert response.status_code == 200
    assert [t.key for t in response.context["data"].trends] == [h[0] for h in dashboards.HEADLINES]
    assert 'id="trend-acceptance"' in body and "n = 3 decided handoffs" in body
    assert "vendor/plotly.min.js" in body  # the page draws its lines with Plotly
    export = admin_client.get(reverse("metrics:trends"), {**MARCH_QUERY, "format": "csv"})
    rows = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert rows[0] == "kpi,unit,week starting,value,sample,maturing"
    assert "Lead acceptance rate,%,2026-03-16,66.7,3,no" in rows


def test_the_overview_tiles_carry_their_weeks_without_loading_plotly(admin_client, march_weeks):
    body = admin_client.get(reverse("metrics:overview"), MARCH_QUERY).content.decode()
    assert 'data-trend="acceptance"' in body and '<svg class="sparkline"' in body
    assert "last week 100.0 %, n = 1" in body
    # The overview draws no Plotly chart: 4.6 MB of script took seconds per visit to parse.
    assert "plotly.min.js" not in body
    # The period's change is grey: only an unusual weekly change is coloured.
    assert 'class="change negative"' not in body and 'class="change positive"' not in body


def warm_queries(client, name: str) -> int:
    """Queries of a second visit (the first computes and stores the snapshots)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(reverse(name), MARCH_QUERY)
    with CaptureQueriesContext(connection) as queries_done:
        assert client.get(reverse(name), MARCH_QUERY).status_code == 200
    return len(queries_done.captured_queries)


def test_the_trend_page_and_the_overview_are_served_from_snapshots(client, march_weeks):
    """Pinned against the funnel page, one snapshot read plus the chrome every dashboard has
    (session, user, filter menus, permissions), so the pin holds however the menus are read."""
    client.force_login(UserFactory(username="room", role=VIEWER))
    chrome = warm_queries(client, "metrics:funnel")
    # The trends: their one snapshot, however many weeks, KPIs and rows.
    assert warm_queries(client, "metrics:trends") == chrome
    # The overview: its tiles' snapshot, the trends' snapshot, and the scorecard (its period
    # and the goals in force: none here). Nothing recomputed on a warm visit.
    assert warm_queries(client, "metrics:overview") == chrome + 3
