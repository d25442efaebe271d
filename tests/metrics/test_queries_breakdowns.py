"""Breakdowns (group_by) of the opportunity and handoff KPIs, the opportunity cycle beside the
lead cycle, and the "no source / no owner / no team" filters a breakdown's rows stand for.

Hand-computed on a small world where, as after a CRM import, some deals have no lead and some
owners are inactive users without a sales-rep record."""

from datetime import date
from decimal import Decimal

import pytest

from leads.choices import OpportunityStatus
from metrics.kpis import KpiFilters, Period
from metrics.queries import (
    GroupBy,
    average_opportunity_cycle_days,
    closed_opportunities,
    lead_acceptance_by,
    opportunity_results,
    opportunity_results_by,
    response_time_by,
)
from tests.factories import CampaignFactory, SourceFactory, UserFactory
from tests.metrics.factories import (
    MARCH,
    NEW_YORK,
    HandoffFactory,
    MetricLeadFactory,
    accepted,
    lost,
    new_york,
    rejected,
    sales_rep,
    utc,
    won,
)
from tests.metrics.vendor import rollup_states

pytestmark = pytest.mark.django_db

Q1 = Period.from_dates(date(2026, 1, 1), date(2026, 3, 31), NEW_YORK)
# From 1 March 23:30 to 31 March 23:30 New York time: 30 days less the hour lost on 8 March.
IMPORTED_CYCLE = 30 - 1 / 24


@pytest.fixture
def deals():
    """Closed in March (New York time):

    ===  ========  ====================================  ==========  ======  =====  ========
    #    owner     lead                                  created     closed  amount lead/opp
    ===  ========  ====================================  ==========  ======  =====  ========
    1    Ada       Webinar, Spring campaign, tier A, 2/1  2/20       won 3/3  1,000  30 / 11
    2    Ada       Webinar, no campaign, tier B           2/25       lost 3/15 9,000  – / 18
    3    Bob       none                                   3/1        won 3/21 2,000  – / 20
    4    imported  none                                   3/1 23:30  won 3/31 23:30 (NY) 4,000
    5    nobody    no source, tier C                      3/2        lost 3/10  500  – / 8
    ===  ========  ====================================  ==========  ======  =====  ========

    Ada and Bob are reps on Mia's team; the imported owner is an inactive user with no rep
    record. Not in March: Ada's win at 23:30 on 28 February (New York) and one in April.
    """
    mia = UserFactory(username="mia", first_name="Mia")
    ada = sales_rep("ada", manager=mia).user
    bob = sales_rep("bob", manager=mia).user
    for user, name in ((ada, "Ada"), (bob, "Bob")):
        user.first_name = name
        user.save(update_fields=["first_name"])
    imported = UserFactory(username="z.imported", is_active=False)
    webinar = SourceFactory(name="Webinar")
    spring = CampaignFactory(name="Spring", source=webinar)

    def lead(**kwargs):
        return MetricLeadFactory(**kwargs)

    won(
        owner=ada,
        lead=lead(source=webinar, campaign=spring, tier="A", created_at=utc(2, 1)),
        created_at=utc(2, 20),
        closed_at=utc(3, 3),
        amount=1000,
    )
    lost(
        owner=ada,
        lead=lead(source=webinar, tier="B", created_at=utc(2, 21)),
        created_at=utc(2, 25),
        closed_at=utc(3, 15),
        amount=9000,
    )
    won(owner=bob, lead=None, created_at=utc(3, 1), closed_at=utc(3, 21), amount=2000)
    won(
        owner=imported,
        lead=None,
        created_at=new_york(3, 1, 23, 30),
        closed_at=new_york(3, 31, 23, 30),
        amount=4000,
    )
    lost(
        owner=None,
        lead=lead(source=None, tier="C", created_at=utc(3, 1)),
        created_at=utc(3, 2),
        closed_at=utc(3, 10),
        amount=500,
    )
    won(owner=ada, lead=None, created_at=utc(2, 1), closed_at=new_york(2, 28, 23, 30))
    won(owner=ada, lead=None, created_at=utc(3, 1), closed_at=utc(4, 10))
    return {"mia": mia, "ada": ada, "bob": bob, "imported": imported, "webinar": webinar}


def _rows(rows):
    return {row.group.name: row.results for row in rows}


# --- Opportunity cycle beside the lead cycle -------------------------------------------------


def test_the_opportunity_cycle_covers_every_closed_deal_with_or_without_a_lead(deals):
    results = opportunity_results(MARCH)
    assert (results.won, results.lost) == (3, 2)
    # Lead cycle: the one win with a lead, 1 February → 3 March.
    assert results.median_cycle_days == 30.0
    # Opportunity cycle over all five closed deals: 8, 11, 18, 20 and 30 − 1 h.
    assert results.median_opportunity_cycle_days == 18.0
    assert results.average_opportunity_cycle_days == pytest.approx(
        (8 + 11 + 18 + 20 + IMPORTED_CYCLE) / 5
    )
    # Over the three wins: 11, 20 and 30 − 1 h.
    assert results.median_won_opportunity_cycle_days == 20.0
    # The mean a goal's forecast reads on its own (without the counts and medians).
    assert average_opportunity_cycle_days(MARCH) == pytest.approx(
        (8 + 11 + 18 + 20 + IMPORTED_CYCLE) / 5
    )


def test_a_deal_without_a_lead_has_an_opportunity_cycle():
    won(lead=None, created_at=utc(3, 1), closed_at=utc(3, 11, 0), amount=500)
    results = opportunity_results(MARCH)
    assert results.median_cycle_days is None
    assert results.median_opportunity_cycle_days == 9.5


# --- Opportunity results by owner, team, source, campaign, tier, month ------------------------


def test_results_by_owner_count_imported_owners_and_deals_without_one(
    deals, django_assert_num_queries
):
    with django_assert_num_queries(3):  # counts, the cycles and the rollup's state
        rows = opportunity_results_by(MARCH, by=GroupBy.OWNER)
    assert [row.group.name for row in rows] == ["Ada", "Bob", "z.imported", "No owner"]
    assert [row.group.id for row in rows] == [
        deals["ada"].pk,
        deals["bob"].pk,
        deals["imported"].pk,
        None,
    ]
    ada, bob, imported, nobody = (row.results for row in rows)
    assert (ada.won, ada.lost, ada.win_rate, ada.average_deal_size) == (1, 1, 0.5, Decimal(1000))
    assert (ada.median_cycle_days, ada.median_opportunity_cycle_days) == (30.0, 14.5)
    assert (bob.won, bob.win_rate, bob.median_cycle_days) == (1, 1.0, None)
    assert bob.median_opportunity_cycle_days == 20.0
    assert (imported.won, imported.won_amount) == (1, Decimal("4000"))
    assert imported.median_won_opportunity_cycle_days == pytest.approx(IMPORTED_CYCLE)
    assert (nobody.won, nobody.lost, nobody.win_rate) == (0, 1, 0.0)


def test_results_by_team(deals):
    rows = _rows(opportunity_results_by(MARCH, by=GroupBy.TEAM))
    assert list(rows) == ["Mia", "No team"]
    assert (rows["Mia"].won, rows["Mia"].lost) == (2, 1)
    # The imported owner (no rep record) and the deal without an owner.
    assert (rows["No team"].won, rows["No team"].lost) == (1, 1)


def test_results_by_source_campaign_and_tier(deals):
    by_source = _rows(opportunity_results_by(MARCH, by=GroupBy.SOURCE))
    assert {name: (r.won, r.lost) for name, r in by_source.items()} == {
        "Webinar": (1, 1),
        "No source": (2, 1),  # two deals without a lead, one lead without a source
    }
    by_campaign = _rows(opportunity_results_by(MARCH, by=GroupBy.CAMPAIGN))
    assert {name: (r.won, r.lost) for name, r in by_campaign.items()} == {
        "Spring": (1, 0),
        "No campaign": (2, 2),
    }
    by_tier = _rows(opportunity_results_by(MARCH, by=GroupBy.TIER))
    assert {name: (r.won, r.lost) for name, r in by_tier.items()} == {
        "Tier A": (1, 0),
        "Tier B": (0, 1),
        "Tier C": (0, 1),
        "No tier (no lead)": (2, 0),
    }


def test_results_by_month_use_the_display_time_zone(deals):
    rows = opportunity_results_by(Q1, by=GroupBy.MONTH)
    # 23:30 on 28 February in New York is 1 March in UTC: February's. 23:30 on 31 March is
    # 1 April in UTC: March's.
    assert [(row.group.id, row.group.name) for row in rows] == [
        (date(2026, 2, 1), "February 2026"),
        (date(2026, 3, 1), "March 2026"),
    ]
    assert [(row.results.won, row.results.lost) for row in rows] == [(1, 0), (3, 2)]


def test_an_unknown_dimension_is_refused(deals):
    with pytest.raises(ValueError, match="Cannot group by 'region'"):
        opportunity_results_by(MARCH, by="region")


# --- The filters a breakdown row stands for --------------------------------------------------


@pytest.mark.parametrize(
    ("by", "filters_of"),
    [
        (GroupBy.OWNER, lambda g: KpiFilters(owner_ids=[g.id]) if g.id else None),
        (GroupBy.TEAM, lambda g: KpiFilters(team_manager_id=g.id) if g.id else None),
        (GroupBy.SOURCE, lambda g: KpiFilters(source_ids=[g.id]) if g.id else None),
        (GroupBy.CAMPAIGN, lambda g: KpiFilters(campaign_ids=[g.id]) if g.id else None),
        (GroupBy.TIER, lambda g: KpiFilters(tiers=[g.id]) if g.id else None),
    ],
)
def test_each_row_of_a_breakdown_is_its_filter(deals, by, filters_of):
    """Filtering by a row's value (or by "none" for the "no …" row) lists exactly its deals."""
    for row in opportunity_results_by(MARCH, by=by):
        filters = filters_of(row.group) or KpiFilters(without=[by])
        listed = closed_opportunities(MARCH, filters)
        assert listed.filter(status=OpportunityStatus.WON).count() == row.results.won, row
        assert listed.filter(status=OpportunityStatus.LOST).count() == row.results.lost, row


def test_no_owner_and_no_team_beside_chosen_values(deals):
    no_owner = closed_opportunities(MARCH, KpiFilters(without=["owner"]))
    assert list(no_owner.values_list("amount", flat=True)) == [Decimal("500")]
    either = closed_opportunities(MARCH, KpiFilters(owner_ids=[deals["bob"].pk], without=["owner"]))
    assert sorted(either.values_list("amount", flat=True)) == [Decimal("500"), Decimal("2000")]
    team_or_none = closed_opportunities(
        MARCH, KpiFilters(team_manager_id=deals["mia"].pk, without=["team"])
    )
    assert team_or_none.count() == 5


# --- Handoff KPIs by owner, team, month ------------------------------------------------------


@pytest.fixture
def handoffs(deals):
    """Assigned in March: Ada 2 accepted (answered in 1 h and 3 h), 1 rejected; the imported
    owner 1 pending unanswered; one unassigned, pending. Bob: one assigned at 23:30 on 28
    February New York time (February's)."""
    accepted(at=utc(3, 3), assignee=deals["ada"], response_business_seconds=3600,
             first_response_at=utc(3, 2, 13))  # fmt: skip
    accepted(at=utc(3, 3), assignee=deals["ada"], response_business_seconds=3 * 3600,
             first_response_at=utc(3, 2, 15))  # fmt: skip
    rejected(at=utc(3, 4), assignee=deals["ada"])
    HandoffFactory(assignee=deals["imported"])
    HandoffFactory(assignee=None)
    HandoffFactory(assignee=deals["bob"], assigned_at=new_york(2, 28, 23, 30))
    return deals


def test_acceptance_by_owner(handoffs, django_assert_num_queries):
    with django_assert_num_queries(1 + rollup_states(1)):  # metrics.queries.rolled
        rows = lead_acceptance_by(MARCH, by=GroupBy.OWNER)
    found = {row.group.name: row.acceptance for row in rows}
    assert list(found) == ["Ada", "z.imported", "No owner"]
    assert (found["Ada"].accepted, found["Ada"].rejected, found["Ada"].rate) == (2, 1, 2 / 3)
    assert (found["z.imported"].pending, found["z.imported"].rate) == (1, None)
    assert found["No owner"].pending == 1


def test_acceptance_by_month_puts_a_late_evening_in_its_local_month(handoffs):
    rows = lead_acceptance_by(Q1, by=GroupBy.MONTH)
    assert [(row.group.id, row.acceptance.pending) for row in rows] == [
        (date(2026, 2, 1), 1),
        (date(2026, 3, 1), 2),
    ]


def test_response_time_by_team(handoffs, django_assert_num_queries):
    with django_assert_num_queries(2 + rollup_states(1)):  # counts, percentiles
        rows = response_time_by(MARCH, by=GroupBy.TEAM)
    found = {row.group.name: row.response for row in rows}
    assert list(found) == ["Mia", "No team"]
    assert (found["Mia"].answered, found["Mia"].median_hours) == (2, 2.0)
    assert (found["No team"].answered, found["No team"].unanswered) == (0, 2)
    assert found["No team"].median_hours is None
