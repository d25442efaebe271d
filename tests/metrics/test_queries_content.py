"""Content utilization: how sales uses marketing's assets."""

import pytest

from metrics.kpis import KpiFilters
from metrics.queries import (
    asset_shares,
    asset_usage,
    content_utilization,
    created_opportunities,
    handed_off_leads,
)
from tests.factories import EventFactory, UserFactory
from tests.metrics.factories import (
    MARCH,
    ContentAssetFactory,
    HandoffFactory,
    MetricLeadFactory,
    OpportunityFactory,
    shared,
    utc,
)
from tests.metrics.vendor import ON_POSTGRESQL

pytestmark = pytest.mark.django_db


@pytest.fixture
def usage():
    """Handed off in March: l1 (twice; sales shared an asset), l2 (a touch without an asset),
    l3 (no touch). Opportunities created in March: on l1 (engaged with an asset before it
    opened), on l4 (engaged only after), on l5 (an event without an asset before)."""
    case_study = ContentAssetFactory(title="Case study")
    l1, l2, l3, l4, l5 = (MetricLeadFactory() for _ in range(5))
    HandoffFactory(lead=l1, assigned_at=utc(3, 2))
    HandoffFactory(lead=l1, assigned_at=utc(3, 20))
    HandoffFactory(lead=l2, assigned_at=utc(3, 3))
    HandoffFactory(lead=l3, assigned_at=utc(3, 4))
    HandoffFactory(lead=l4, assigned_at=utc(2, 4))  # February
    shared(l1, case_study, at=utc(3, 5))
    shared(l2, at=utc(3, 5))
    OpportunityFactory(lead=l1, created_at=utc(3, 10))
    OpportunityFactory(lead=l4, created_at=utc(3, 10))
    OpportunityFactory(lead=l5, created_at=utc(3, 10))
    EventFactory(lead=l1, occurred_at=utc(3, 1), content_asset=case_study)
    EventFactory(lead=l4, occurred_at=utc(3, 11), content_asset=case_study)
    EventFactory(lead=l5, occurred_at=utc(3, 1))
    return l1, l2, l3, l4, l5


def test_content_utilization(usage, django_assert_num_queries):
    # The handoffs and the new deals (each: the rollup's state on PostgreSQL, then the raw
    # facts, the rollup not built), then the repeats and shares of the handed-off leads in one
    # statement and those of the new deals in another (read side by side outside a
    # transaction: ``revops.concurrent_reads``).
    with django_assert_num_queries(6 if ON_POSTGRESQL else 4):
        utilization = content_utilization(MARCH)
    assert (utilization.handed_off_leads, utilization.handed_off_leads_with_share) == (3, 1)
    assert utilization.handed_off_share_rate == 1 / 3
    assert (utilization.opportunities, utilization.opportunities_with_share) == (3, 1)
    assert utilization.opportunities_with_prior_engagement == 1
    assert utilization.prior_engagement_rate == 1 / 3


def test_content_drill_downs(usage):
    l1, _, _, l4, _ = usage
    assert [lead for lead in handed_off_leads(MARCH) if lead.asset_shared] == [l1]
    engaged = created_opportunities(MARCH).filter(asset_engaged_before=True)
    assert [opportunity.lead for opportunity in engaged] == [l1]
    assert l4 not in handed_off_leads(MARCH)


def test_content_utilization_without_data_is_none():
    utilization = content_utilization(MARCH)
    assert (utilization.handed_off_leads, utilization.handed_off_share_rate) == (0, None)
    assert (utilization.opportunity_share_rate, utilization.prior_engagement_rate) == (None, None)


def test_content_utilization_filters_handoffs_by_assignee(usage):
    l1, *_ = usage
    ada = UserFactory(username="ada")
    HandoffFactory(lead=l1, assigned_at=utc(3, 6), assignee=ada)
    utilization = content_utilization(MARCH, KpiFilters(owner_ids=(ada.pk,)))
    assert (utilization.handed_off_leads, utilization.handed_off_share_rate) == (1, 1.0)


@pytest.fixture
def assets():
    """Shared in March: Webinar and Checklist together with one lead, Webinar again with
    another. Pricing sheet was shared only in February; Playbook never."""
    webinar = ContentAssetFactory(title="Webinar", funnel_stage="tofu")
    checklist = ContentAssetFactory(title="Checklist", funnel_stage="tofu")
    pricing = ContentAssetFactory(title="Pricing sheet", funnel_stage="bofu")
    playbook = ContentAssetFactory(title="Playbook", funnel_stage="mofu")
    first, second = MetricLeadFactory(), MetricLeadFactory()
    shared(first, webinar, checklist, at=utc(3, 3))
    shared(second, webinar, at=utc(3, 4))
    shared(first, pricing, at=utc(2, 3))
    return webinar, checklist, pricing, playbook


def test_most_used_assets_by_funnel_stage_and_unused(assets, django_assert_num_queries):
    with django_assert_num_queries(2):  # the period's shares per asset, the library
        usage = asset_usage(MARCH)
    assert list(usage.most_used) == ["tofu"]
    assert [(a.title, a.shares, a.leads) for a in usage.most_used["tofu"]] == [
        ("Webinar", 2, 2),
        ("Checklist", 1, 1),
    ]
    assert [asset.title for asset in usage.unused] == ["Playbook", "Pricing sheet"]


def test_most_used_assets_keeps_the_top_ones(assets):
    usage = asset_usage(MARCH, top=1)
    assert [asset.title for asset in usage.most_used["tofu"]] == ["Webinar"]


def test_asset_shares_drill_down(assets):
    webinar, *_ = assets
    assert asset_shares(MARCH, asset_id=webinar.pk).count() == 2
    assert asset_shares(MARCH).count() == 2  # two March touches shared something


def test_asset_usage_without_assets():
    usage = asset_usage(MARCH)
    assert (usage.most_used, usage.unused) == ({}, ())
