"""The lead cohort: leads created in the period, how many have won so far, and their median
days to win in elapsed days and in calendar days of the display time zone."""

import pytest

from metrics.kpis import KpiFilters
from metrics.queries import GroupBy, cohort_won_leads, lead_cohort, lead_cohort_by
from tests.factories import SourceFactory
from tests.metrics.factories import MARCH, MetricLeadFactory, lost, new_york, utc, won

pytestmark = pytest.mark.django_db

NOW = utc(4, 15)


@pytest.fixture
def cohort():
    """Created in March (New York time), and their first win:

    - late: created 23:30 on 31 March, won 09:00 on 1 April: 9.5 hours, 1 calendar day;
    - dst: created noon 7 March (EST), won noon 9 March (EDT): 47 hours, 2 calendar days;
    - twice: created noon 10 March, won on 20 March and (first) on 15 March: 5 days;
    - lost: only a lost deal; quiet: no deal; later: won on 1 May, after ``NOW``.

    Not in the cohort: a lead created at 23:30 on 28 February (New York), won in March.
    """
    webinar = SourceFactory(name="Webinar")

    def lead(created_at, source=webinar):
        return MetricLeadFactory(source=source, created_at=created_at)

    late = lead(new_york(3, 31, 23, 30))
    won(lead=late, created_at=new_york(4, 1, 8), closed_at=new_york(4, 1, 9))
    dst = lead(new_york(3, 7, 12), source=None)
    won(lead=dst, created_at=new_york(3, 8, 12), closed_at=new_york(3, 9, 12))
    twice = lead(new_york(3, 10, 12))
    won(lead=twice, created_at=new_york(3, 11), closed_at=new_york(3, 20, 12))
    won(lead=twice, created_at=new_york(3, 11), closed_at=new_york(3, 15, 12))
    lost(lead=lead(new_york(3, 10, 12)), closed_at=new_york(3, 12))
    lead(new_york(3, 12))
    won(lead=lead(new_york(3, 20)), created_at=new_york(3, 21), closed_at=utc(5, 1))
    won(lead=lead(new_york(2, 28, 23, 30)), closed_at=new_york(3, 2))
    return {"late": late, "dst": dst, "twice": twice, "webinar": webinar}


def test_the_cohort_counts_wins_so_far_and_times_them_two_ways(cohort, django_assert_num_queries):
    with django_assert_num_queries(2):
        result = lead_cohort(MARCH, now=NOW)
    assert (result.leads, result.won, result.win_rate) == (6, 3, 0.5)
    # Elapsed: 9.5 h, 47 h and 5 days → the median is 47 h.
    assert result.median_elapsed_days_to_win == pytest.approx(47 / 24)
    # Calendar days in New York: 1, 2 and 5.
    assert result.median_calendar_days_to_win == 2.0
    assert result.time_zone == "America/New_York"


def test_a_win_after_now_is_not_counted_yet(cohort):
    later = lead_cohort(MARCH, now=utc(5, 2))
    assert later.won == 4


def test_the_drill_down_lists_the_cohort_leads_that_won(cohort):
    leads = cohort_won_leads(MARCH, now=NOW)
    assert {lead.pk for lead in leads} == {cohort[k].pk for k in ("late", "dst", "twice")}
    assert {lead.won_at for lead in leads if lead.pk == cohort["twice"].pk} == {new_york(3, 15, 12)}


def test_the_cohort_by_source_and_its_no_source_row(cohort, django_assert_num_queries):
    with django_assert_num_queries(2):
        rows = lead_cohort_by(MARCH, by=GroupBy.SOURCE, now=NOW)
    found = {row.group.name: row.cohort for row in rows}
    assert list(found) == ["Webinar", "No source"]
    assert (found["Webinar"].leads, found["Webinar"].won) == (5, 2)
    assert (found["No source"].leads, found["No source"].won) == (1, 1)
    assert found["No source"].median_calendar_days_to_win == 2.0
    without = lead_cohort(MARCH, KpiFilters(without=["source"]), now=NOW)
    assert (without.leads, without.won) == (1, 1)


def test_an_empty_cohort_has_no_rate():
    result = lead_cohort(MARCH, now=NOW)
    assert (result.leads, result.won, result.win_rate) == (0, 0, None)
    assert result.median_elapsed_days_to_win is None
    assert result.median_calendar_days_to_win is None
