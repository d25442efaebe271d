"""Opportunity KPIs: win rate, deal size, sales cycle, pipeline and revenue, velocity, lead
economics (revenue per lead, cost per lead, CAC)."""

from datetime import date
from decimal import Decimal

import pytest

from leads.choices import OpportunityStatus
from leads.models import Campaign
from metrics.kpis import KpiFilters
from metrics.queries import (
    closed_opportunities,
    costed_campaign_leads,
    lead_economics,
    lead_economics_by_source,
    open_opportunities,
    opportunity_results,
    opportunity_results_by_source,
    pipeline_and_revenue,
    pipeline_velocity,
    pipeline_velocity_by_source,
)
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import (
    MARCH,
    MetricLeadFactory,
    OpportunityFactory,
    lost,
    new_york,
    utc,
    won,
)
from tests.metrics.vendor import ON_POSTGRESQL, rollup_states

pytestmark = pytest.mark.django_db

AFTER_MARCH = utc(4, 10)


@pytest.fixture
def deals():
    """Closed in March (New York time): Webinar won 1,000 after 30 days and 3,000 after 9.5 days
    and lost one; Referral won 2,000 after 20 days. Plus: Referral's deal open in March and lost
    in April, Webinar's deal opened in March and still open, one opened in April, one won at
    23:30 New York time on 28 February, and a March win without a lead."""
    webinar = SourceFactory(name="Webinar", origin="marketing")
    referral = SourceFactory(name="Referral", origin="sales")

    def lead(source, created_at):
        return MetricLeadFactory(source=source, created_at=created_at)

    won(lead=lead(webinar, utc(2, 1)), amount=1000, created_at=utc(2, 20), closed_at=utc(3, 3))
    won(lead=lead(webinar, utc(2, 21)), amount=3000, created_at=utc(2, 25), closed_at=utc(3, 3, 0))
    lost(lead=lead(webinar, utc(2, 1)), amount=9000, created_at=utc(2, 20), closed_at=utc(3, 15))
    won(lead=lead(referral, utc(3, 1)), amount=2000, created_at=utc(3, 5), closed_at=utc(3, 21))
    lost(lead=lead(referral, utc(1, 5)), amount=700, created_at=utc(2, 10), closed_at=utc(4, 5))
    OpportunityFactory(lead=lead(webinar, utc(3, 1)), amount=5000, created_at=utc(3, 5))
    OpportunityFactory(lead=lead(webinar, utc(3, 1)), amount=400, created_at=utc(4, 2))
    won(
        lead=lead(webinar, utc(1, 1)),
        amount=8000,
        created_at=utc(2, 1),
        closed_at=new_york(2, 28, 23, 30),
    )
    return webinar, referral


def test_opportunity_results_overall(deals, django_assert_num_queries):
    with django_assert_num_queries(3):  # counts, the cycles and the rollup's state
        results = opportunity_results(MARCH)
    assert (results.won, results.lost, results.win_rate) == (3, 1, 0.75)
    assert results.won_amount == Decimal("6000.00")
    assert results.average_deal_size == Decimal("2000.00")
    assert results.median_cycle_days == 20.0  # of 30, 9.5 and 20 days
    assert results.average_cycle_days == pytest.approx(59.5 / 3)


def test_opportunity_results_by_source(deals):
    rows = {row.source.name: row.results for row in opportunity_results_by_source(MARCH)}
    webinar, referral = rows["Webinar"], rows["Referral"]
    assert (webinar.won, webinar.lost, webinar.win_rate) == (2, 1, 2 / 3)
    assert (webinar.won_amount, webinar.average_deal_size) == (Decimal("4000"), Decimal("2000"))
    assert webinar.median_cycle_days == 19.75
    assert (referral.win_rate, referral.average_deal_size) == (1.0, Decimal("2000"))
    assert referral.median_cycle_days == 20.0


def test_win_without_a_lead_counts_but_has_no_cycle():
    won(lead=None, amount=500, closed_at=utc(3, 10))
    results = opportunity_results(MARCH)
    assert (results.won, results.average_deal_size) == (1, Decimal("500"))
    assert (results.median_cycle_days, results.average_cycle_days) == (None, None)


def test_opportunity_results_without_closed_deals():
    OpportunityFactory()  # open
    results = opportunity_results(MARCH)
    assert (results.won, results.lost, results.win_rate) == (0, 0, None)
    assert (results.won_amount, results.average_deal_size) == (Decimal("0"), None)
    assert results.median_cycle_days is None
    assert opportunity_results_by_source(MARCH) == []


def test_closed_opportunities_drill_down(deals):
    assert closed_opportunities(MARCH).count() == 4
    assert sorted(o.amount for o in closed_opportunities(MARCH, status=OpportunityStatus.WON)) == [
        1000,
        2000,
        3000,
    ]


def test_win_rate_filters_by_source(deals):
    webinar, _ = deals
    assert opportunity_results(MARCH, KpiFilters(source_ids=(webinar.pk,))).win_rate == 2 / 3


def test_win_rate_filters_by_opportunity_owner(deals):
    ada = UserFactory(username="ada")
    won(owner=ada, closed_at=utc(3, 10))
    lost(owner=ada, closed_at=utc(3, 11), lead=None)
    assert opportunity_results(MARCH, KpiFilters(owner_ids=(ada.pk,))).win_rate == 0.5


# --- Pipeline and revenue --------------------------------------------------------------------


def test_pipeline_and_revenue_of_a_past_period_is_as_at_its_end(deals, django_assert_num_queries):
    with django_assert_num_queries(1 + rollup_states(2)):  # rollup states: open at, won in
        report = pipeline_and_revenue(MARCH, now=AFTER_MARCH)
    assert report.as_of == MARCH.end
    # Open at the end of March: the Webinar deal still open, and Referral's lost only in April.
    assert (report.total.open_count, report.total.open_amount) == (2, Decimal("5700"))
    assert (report.total.won_count, report.total.won_amount) == (3, Decimal("6000"))
    by_source = {row.source.name: row.pipeline for row in report.by_source}
    assert by_source["Webinar"].open_amount == Decimal("5000")
    assert by_source["Webinar"].won_amount == Decimal("4000")
    assert by_source["Referral"].open_amount == Decimal("700")
    marketing, sales = report.by_origin["marketing"], report.by_origin["sales"]
    assert (marketing.open_amount, marketing.won_amount) == (Decimal("5000"), Decimal("4000"))
    assert (sales.open_amount, sales.won_amount) == (Decimal("700"), Decimal("2000"))


def test_pipeline_of_a_running_period_is_open_now(deals):
    now = utc(3, 10)
    report = pipeline_and_revenue(MARCH, now=now)
    assert report.as_of == now
    # Open on 10 March: the deals closed later in March (lost 9,000, won 2,000) and in April
    # (lost 700) were all still open, as was the Webinar deal opened on 5 March.
    assert (report.total.open_count, report.total.open_amount) == (4, Decimal("16700"))
    assert set(open_opportunities(MARCH, now=now).values_list("amount", flat=True)) == {
        Decimal("700"),
        Decimal("2000"),
        Decimal("5000"),
        Decimal("9000"),
    }


def test_pipeline_without_opportunities():
    report = pipeline_and_revenue(MARCH, now=AFTER_MARCH)
    assert (report.total.open_count, report.total.won_amount) == (0, Decimal("0"))
    assert report.by_source == ()
    assert report.by_origin == {}


# --- Pipeline velocity -----------------------------------------------------------------------


def test_pipeline_velocity(deals, django_assert_num_queries):
    # The open count, the results (counts, cycles) and the three rollup states they read.
    with django_assert_num_queries(6 if ON_POSTGRESQL else 4):  # SQLite: raw, cycles apart
        velocity = pipeline_velocity(MARCH, now=AFTER_MARCH)
    # 2 open × 75% × 2,000 ÷ (59.5 ÷ 3) days.
    assert velocity.open_opportunities == 2
    assert velocity.per_day == pytest.approx(2 * 0.75 * 2000 / (59.5 / 3))


def test_pipeline_velocity_by_source(deals):
    rows = {
        row.source.name: row.velocity for row in pipeline_velocity_by_source(MARCH, now=AFTER_MARCH)
    }
    # Webinar: 1 open × 2/3 × 2,000 ÷ 19.75 days; Referral: 1 × 100% × 2,000 ÷ 20 days.
    assert rows["Webinar"].per_day == pytest.approx(2000 * 2 / 3 / 19.75)
    assert rows["Referral"].per_day == pytest.approx(100.0)


def test_pipeline_velocity_without_closed_deals_is_none():
    OpportunityFactory()
    velocity = pipeline_velocity(MARCH, now=AFTER_MARCH)
    assert (velocity.open_opportunities, velocity.per_day) == (1, None)


# --- Revenue per lead, cost per lead, CAC ----------------------------------------------------


@pytest.fixture
def campaigns():
    """Webinar: a 3,000 campaign over 30 days, 16 of them in March (1,600 for March), and one
    without a cost. Ads: 1,000 over ten March days, 500 without dates, 900 all in April."""
    webinar, ads = SourceFactory(name="Webinar"), SourceFactory(name="Ads")

    def campaign(name, source, cost, starts_on=None, ends_on=None):
        return Campaign.objects.create(
            name=name, source=source, cost=cost, starts_on=starts_on, ends_on=ends_on
        )

    spring = campaign("Spring webinar", webinar, 3000, date(2026, 2, 15), date(2026, 3, 16))
    free = campaign("Community", webinar, None, date(2026, 1, 1), date(2026, 12, 31))
    search = campaign("Search", ads, 1000, date(2026, 3, 10), date(2026, 3, 19))
    undated = campaign("Undated", ads, 500)
    campaign("April push", ads, 900, date(2026, 4, 1), date(2026, 4, 30))

    def leads(count, source, campaign=None, created_at=None):
        return [
            MetricLeadFactory(source=source, campaign=campaign, created_at=created_at or utc(3, 12))
            for _ in range(count)
        ]

    leads(3, webinar, spring)
    leads(1, webinar, free)
    leads(1, webinar)
    leads(2, ads, search)
    leads(1, ads, undated)
    leads(1, None)
    # Customers won in March: one from a February Spring-webinar lead, one from a Search lead.
    (february_lead,) = leads(1, webinar, spring, created_at=utc(2, 20))
    won(lead=february_lead, amount=4000, closed_at=utc(3, 20))
    won(lead=MetricLeadFactory(source=ads, campaign=search), amount=2000, closed_at=utc(3, 25))
    return webinar, ads


def test_lead_economics_by_source(campaigns, django_assert_num_queries):
    # Leads created (the cohort rollup's state, the raw count), the pipeline report's won
    # amounts (its reads, shared with the pipeline page's), the campaigns' costs; SQLite has
    # no rollup state to read.
    with django_assert_num_queries(8 if ON_POSTGRESQL else 5):
        rows = {row.source.name: row.economics for row in lead_economics_by_source(MARCH)}
    webinar, ads, none = rows["Webinar"], rows["Ads"], rows["No source"]
    assert (webinar.leads, webinar.won_amount, webinar.revenue_per_lead) == (
        5,
        Decimal("4000"),
        Decimal("800.00"),
    )
    assert (webinar.campaign_cost, webinar.costed_leads, webinar.new_customers) == (
        Decimal("1600.00"),
        3,
        1,
    )
    assert (webinar.cost_per_lead, webinar.customer_acquisition_cost) == (
        Decimal("533.33"),
        Decimal("1600.00"),
    )
    # Ads: four leads created in March (the customer's lead included), three from Search.
    assert (ads.leads, ads.revenue_per_lead) == (4, Decimal("500.00"))
    assert (ads.campaign_cost, ads.costed_leads, ads.new_customers) == (Decimal("1000"), 3, 1)
    assert (ads.cost_per_lead, ads.customer_acquisition_cost) == (
        Decimal("333.33"),
        Decimal("1000.00"),
    )
    assert (none.leads, none.revenue_per_lead, none.cost_per_lead) == (1, Decimal("0"), None)


def test_lead_economics_overall_adds_up_the_sources(campaigns):
    total = lead_economics(MARCH)
    assert (total.leads, total.won_amount, total.revenue_per_lead) == (
        10,
        Decimal("6000"),
        Decimal("600.00"),
    )
    assert (total.campaign_cost, total.costed_leads, total.new_customers) == (
        Decimal("2600"),
        6,
        2,
    )
    assert (total.cost_per_lead, total.customer_acquisition_cost) == (
        Decimal("433.33"),
        Decimal("1300.00"),
    )


def test_cost_kpis_follow_a_campaign_filter(campaigns):
    search = Campaign.objects.get(name="Search")
    total = lead_economics(MARCH, KpiFilters(campaign_ids=(search.pk,)))
    assert (total.campaign_cost, total.costed_leads, total.cost_per_lead) == (
        Decimal("1000"),
        3,
        Decimal("333.33"),
    )
    assert costed_campaign_leads(MARCH, KpiFilters(campaign_ids=(search.pk,))).count() == 3


def test_cost_kpis_are_not_computed_under_a_tier_filter(campaigns):
    total = lead_economics(MARCH, KpiFilters(tiers=("D",)))
    assert total.leads == 10  # every factory lead is tier D
    assert (total.campaign_cost, total.cost_per_lead, total.customer_acquisition_cost) == (
        None,
        None,
        None,
    )


def test_lead_economics_without_data():
    total = lead_economics(MARCH)
    assert (total.leads, total.revenue_per_lead) == (0, None)
    assert (total.campaign_cost, total.cost_per_lead, total.customer_acquisition_cost) == (
        Decimal("0"),
        None,
        None,
    )
