"""Pipeline and revenue from target accounts: the one aggregate on hand-computed fixtures, which
list a period is counted under, the drill-downs behind each figure, and the scorecard's card."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads.roles import VIEWER
from leads.target_accounts import services
from metrics import goals, queries
from metrics.models import KpiSnapshot
from metrics.target_selectors import PAGE
from tests.factories import AccountFactory, UserFactory
from tests.metrics.factories import (
    MARCH,
    MetricLeadFactory,
    OpportunityFactory,
    lost,
    new_york,
    won,
)

pytestmark = pytest.mark.django_db

MAY = datetime(2026, 5, 1, tzinfo=UTC)  # March is over


def publish(*domains: str, at: datetime):
    """A list of exactly ``domains`` (the draft's copy of the list in force emptied first)."""
    draft = services.target_list_draft(actor=None)
    copied = list(draft.accounts.values_list("account_id", flat=True))
    if copied:
        services.target_accounts_remove(draft=draft, account_ids=copied)
    services.target_accounts_import(draft=draft, text="\n".join(domains))
    return services.target_list_publish(draft=draft, actor=None, effective_from=at)


@pytest.fixture
def deals():
    """March 2026 (New York). Acme and Globex are on list v1 (from 1 Feb); Initech is not.

    created in March: o1 Acme 1000 · o2 Globex through its lead 2500 · o3 Initech 4000 ·
      o6 Acme 200 (won 25 Mar) · o7 Acme 50 (lost 26 Mar) · o8 Initech 600 (its lead is
      Acme's: the deal's own account counts)
    won in March: o4 Acme 7000 (created Feb) · o5 Initech 300 (created Feb) · o6
    outside: o9 Acme created 2 April
    """
    acme = AccountFactory(name="Acme", domain="acme.com")
    globex = AccountFactory(name="Globex", domain="globex.com")
    initech = AccountFactory(name="Initech", domain="initech.com")
    publish("acme.com", "globex.com", at=new_york(2, 1))
    made = {
        "o1": OpportunityFactory(account=acme, amount=1000, created_at=new_york(3, 5)),
        "o2": OpportunityFactory(
            lead=MetricLeadFactory(account=globex), amount=2500, created_at=new_york(3, 6)
        ),
        "o3": OpportunityFactory(account=initech, amount=4000, created_at=new_york(3, 7)),
        "o4": won(account=acme, amount=7000, created_at=new_york(2, 10), closed_at=new_york(3, 20)),
        "o5": won(
            account=initech, amount=300, created_at=new_york(2, 11), closed_at=new_york(3, 21)
        ),
        "o6": won(account=acme, amount=200, created_at=new_york(3, 8), closed_at=new_york(3, 25)),
        "o7": lost(account=acme, amount=50, created_at=new_york(3, 9), closed_at=new_york(3, 26)),
        "o8": OpportunityFactory(
            account=initech,
            lead=MetricLeadFactory(account=acme),
            amount=600,
            created_at=new_york(3, 10),
        ),
        "o9": OpportunityFactory(account=acme, amount=900, created_at=new_york(4, 2)),
    }
    return made


def test_pipeline_and_revenue_from_target_accounts_in_one_query(deals, django_assert_num_queries):
    with django_assert_num_queries(1):
        figures = queries.target_account_figures(MARCH, now=MAY)
    assert figures == queries.TargetAccountFigures(
        pipeline_count=4,  # o1, o2, o6, o7
        pipeline_amount=Decimal("3750.00"),
        won_count=2,  # o4, o6
        won_amount=Decimal("7200.00"),
        all_pipeline_amount=Decimal("8350.00"),  # o1 o2 o3 o6 o7 o8
        all_won_amount=Decimal("7500.00"),  # o4 o5 o6
    )
    assert figures.won_share == pytest.approx(0.96)
    assert figures.pipeline_share == pytest.approx(3750 / 8350)


def test_a_list_published_after_the_period_changes_none_of_its_figures(deals):
    before = queries.target_account_figures(MARCH, now=MAY)
    publish("initech.com", at=new_york(4, 10))
    assert queries.target_account_figures(MARCH, now=MAY) == before


def test_a_period_is_counted_under_the_list_in_force_at_its_end(deals):
    publish("initech.com", at=new_york(3, 15))
    figures = queries.target_account_figures(MARCH, now=MAY)
    assert (figures.pipeline_count, figures.pipeline_amount) == (2, Decimal("4600.00"))  # o3 o8
    assert (figures.won_count, figures.won_amount) == (1, Decimal("300.00"))  # o5
    # While March ran, before the new list took force, it was counted under v1.
    running = queries.target_account_figures(MARCH, now=new_york(3, 12))
    assert running.pipeline_amount == Decimal("3750.00")


def test_no_list_counts_nothing(db):
    OpportunityFactory(account=AccountFactory(), amount=1000, created_at=new_york(3, 5))
    figures = queries.target_account_figures(MARCH, now=MAY)
    assert (figures.pipeline_count, figures.pipeline_amount) == (0, Decimal("0.00"))
    assert figures.all_pipeline_amount == Decimal("1000.00")


def test_the_drill_downs_list_the_opportunities_behind_each_figure(deals):
    pipeline = queries.target_pipeline_opportunities(MARCH, now=MAY)
    revenue = queries.target_won_opportunities(MARCH, now=MAY)
    names = {deal.pk: key for key, deal in deals.items()}
    assert sorted(names[o.pk] for o in pipeline) == ["o1", "o2", "o6", "o7"]
    assert sorted(names[o.pk] for o in revenue) == ["o4", "o6"]


def test_the_drill_page_lists_them_for_everyone(client, deals):
    client.force_login(UserFactory(username="viewer", role=VIEWER))
    params = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}
    page = client.get(reverse("metrics:drill", args=["target_won"]), params).text
    assert deals["o4"].name in page and deals["o6"].name in page
    assert deals["o5"].name not in page


@pytest.fixture
def in_q1(monkeypatch):
    now = datetime(2026, 4, 15, tzinfo=UTC)  # Q1 2026 is over
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


def test_the_scorecard_shows_the_figures_with_their_list_and_drill_downs(client, deals, in_q1):
    client.force_login(UserFactory(username="viewer", role=VIEWER))
    period = goals.quarter_of(date(2026, 1, 1))
    page = client.get(reverse("metrics:scorecard"), {"period": period.key}).text
    card = page[page.index('id="target-accounts"') :]
    assert "list</a> v1" in card
    pipeline_row = card[card.index('data-figure="target_pipeline"') :]
    # Q1: March's target pipeline (o1 o2 o6 o7) and February's o4.
    assert "$10,750" in pipeline_row.split("</tr>")[0]
    revenue_row = card[card.index('data-figure="target_revenue"') :]
    assert "$7,200" in revenue_row.split("</tr>")[0]
    assert "/dashboards/drill/target_pipeline/?preset=custom&amp;start=2026-01-01" in card


def test_publishing_a_list_forgets_the_cards_snapshots(client, deals, in_q1):
    client.force_login(UserFactory(username="viewer", role=VIEWER))
    client.get(reverse("metrics:scorecard"), {"period": "2026-Q2"})
    assert KpiSnapshot.objects.filter(params__page=PAGE).exists()
    publish("initech.com", at=in_q1)
    assert not KpiSnapshot.objects.filter(params__page=PAGE).exists()


@pytest.mark.django_db(transaction=False)
def test_the_demo_data_shows_target_account_figures_on_first_run(monkeypatch):
    from leads.demo.hooks import demo_seeded
    from leads.demo.loader import demo_data_seed
    from metrics.target_selectors import target_accounts_card

    as_of = datetime(2026, 3, 4, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: as_of)
    demo_data_seed(seed=42, leads=400, events_per_lead=1, as_of=as_of)
    summaries = demo_seeded(as_of=as_of)
    assert any(line.startswith("Demo target accounts: list v1 with") for line in summaries)
    for quarter in (goals.quarter_of(date(2026, 1, 1)), goals.quarter_of(date(2025, 10, 1))):
        card = target_accounts_card(quarter)
        assert card["version_number"] == 1
        assert card["figures"].pipeline_amount > 0


def test_the_figures_read_a_lead_only_for_a_deal_without_an_account(deals):
    # Each deal's account is its own; the lead table is read only for the listed accounts'
    # leads (a subquery), never joined to every deal (a probe per deal at 1M leads).
    with CaptureQueriesContext(connection) as captured:
        queries.target_account_figures(MARCH, now=MAY)
    (statement,) = (query["sql"] for query in captured.captured_queries)
    assert 'JOIN "leads_lead"' not in statement
    assert 'FROM "leads_lead"' in statement
