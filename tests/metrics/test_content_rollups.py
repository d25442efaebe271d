"""Content utilization read from the rollups (every handoff and new deal of the period) and the
narrow share table (``ContentShare``, kept by trigger) equals the raw computation from the
handoffs, the touches' links and the content events: a lead handed off twice, to two reps, or
once before the period; late shares; a backdated handoff; a backdated content event; deletes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from leads.choices import HandoffOutcome
from leads.models import ContentEvent, Handoff, LeadActivity, Opportunity, SalesRep
from metrics import kpis, rollups
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries import asset_usage, content_utilization
from metrics.queries.common import _handoffs, _in, _opportunities
from metrics.queries.content import ContentUtilization
from metrics.queries.rolled import rollup_split
from metrics.rollup_models import RollupFact
from tests.factories import EventFactory, SourceFactory, UserFactory
from tests.metrics.factories import (
    ContentAssetFactory,
    HandoffFactory,
    MetricLeadFactory,
    OpportunityFactory,
    shared,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the rollups exist on PostgreSQL only"
    ),
]

ZONE = ZoneInfo(settings.DISPLAY_TIME_ZONE)


def _days_ago(days: int, hour: int = 15) -> datetime:
    day = timezone.localtime(timezone.now(), ZONE).date() - timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


def _fortnight() -> Period:
    today = timezone.localtime(timezone.now(), ZONE).date()
    return Period.from_dates(today - timedelta(days=13), today, ZONE)


def raw_utilization(period: Period, filters: KpiFilters) -> ContentUtilization:
    """The definition, from the handoffs, the touches' asset links and the content events."""

    def shared_with(lead: OuterRef) -> Exists:
        links = LeadActivity.content_assets.through.objects.filter(leadactivity__lead=lead)
        return Exists(links)

    leads = (
        _handoffs(filters)
        .filter(_in("assigned_at", period))
        .annotate(asset_shared=shared_with(OuterRef("lead_id")))
        .aggregate(
            total=Count("lead_id", distinct=True),
            shared=Count("lead_id", distinct=True, filter=Q(asset_shared=True)),
        )
    )
    engaged = ContentEvent.objects.filter(
        lead=OuterRef("lead_id"), occurred_at__lt=OuterRef("created_at")
    )
    deals = (
        _opportunities(filters)
        .filter(_in("created_at", period))
        .annotate(asset_shared=shared_with(OuterRef("lead_id")), asset_engaged=Exists(engaged))
        .aggregate(
            total=Count("pk"),
            shared=Count("pk", filter=Q(asset_shared=True)),
            engaged=Count("pk", filter=Q(asset_engaged=True)),
        )
    )
    return ContentUtilization(
        leads["total"],
        leads["shared"],
        kpis.rate(leads["shared"], leads["total"]),
        deals["total"],
        deals["shared"],
        kpis.rate(deals["shared"], deals["total"]),
        deals["engaged"],
        kpis.rate(deals["engaged"], deals["total"]),
    )


@pytest.fixture
def world():
    manager = UserFactory(username="manager")
    reps = [UserFactory(username=f"rep{n}") for n in range(3)]
    SalesRep.objects.create(user=manager)
    for rep in reps[:2]:
        SalesRep.objects.create(user=rep, manager=manager)
    events = SourceFactory(name="Webinar", channel_group="events")
    ads = SourceFactory(name="Ads", channel_group="paid_search")
    guide = ContentAssetFactory(title="Guide")
    l1 = MetricLeadFactory(source=events, tier="A", created_at=_days_ago(40))
    l2 = MetricLeadFactory(source=ads, tier="B", created_at=_days_ago(40))
    l3 = MetricLeadFactory(source=events, tier="B", created_at=_days_ago(40))
    l4 = MetricLeadFactory(source=None, tier="A", created_at=_days_ago(40))
    # l1 twice in the period, to two reps of the team; shared in the period.
    HandoffFactory(lead=l1, assignee=reps[0], assigned_at=_days_ago(5))
    HandoffFactory(
        lead=l1,
        assignee=reps[1],
        assigned_at=_days_ago(3),
        outcome=HandoffOutcome.ACCEPTED,
        accepted_at=_days_ago(3, 16),
    )
    HandoffFactory(lead=l2, assignee=reps[0], assigned_at=_days_ago(4))
    # l3 once, shared long before the period; l4 before the period and in it (the outsider).
    HandoffFactory(lead=l3, assignee=reps[1], assigned_at=_days_ago(3, 9))
    HandoffFactory(lead=l4, assignee=reps[2], assigned_at=_days_ago(30))
    HandoffFactory(lead=l4, assignee=reps[2], assigned_at=_days_ago(2))
    shared(l1, guide, at=_days_ago(4), actor=reps[0])
    shared(l3, guide, at=_days_ago(60), actor=reps[1])
    # Deals: l1's engaged before it, l2's engaged only after, l3's shared, one without lead.
    OpportunityFactory(lead=l1, owner=reps[1], created_at=_days_ago(2))
    OpportunityFactory(lead=l2, owner=reps[0], created_at=_days_ago(4))
    OpportunityFactory(lead=l3, owner=reps[2], created_at=_days_ago(6))
    OpportunityFactory(lead=None, owner=reps[0], created_at=_days_ago(6))
    EventFactory(lead=l1, occurred_at=_days_ago(10), content_asset=guide)
    EventFactory(lead=l2, occurred_at=_days_ago(1), content_asset=guide)
    return {
        "manager": manager,
        "reps": reps,
        "sources": (events, ads),
        "leads": (l1, l2, l3, l4),
        "guide": guide,
    }


def _filter_sets(world) -> list[KpiFilters]:
    events, ads = world["sources"]
    reps = world["reps"]
    return [
        NO_FILTERS,
        KpiFilters(source_ids=(events.pk,)),
        KpiFilters(channel_groups=("paid_search",)),
        KpiFilters(tiers=("A",)),
        KpiFilters(without=("source",)),
        KpiFilters(owner_ids=(reps[0].pk,)),
        KpiFilters(owner_ids=(reps[1].pk,), tiers=("A",)),
        KpiFilters(team_manager_id=world["manager"].pk),
        KpiFilters(source_ids=(ads.pk,), owner_ids=(reps[2].pk,)),  # nothing
    ]


def assert_equal_raw(world) -> ContentUtilization:
    for filters in _filter_sets(world):
        assert content_utilization(_fortnight(), filters) == raw_utilization(
            _fortnight(), filters
        ), filters
    return content_utilization(_fortnight(), NO_FILTERS)


def test_read_from_the_rollups_it_counts_a_lead_once_and_equals_the_raw_count(world):
    rollups.rollups_rebuild()
    assert rollup_split(RollupFact.HANDOFF, _fortnight()) is not None
    assert rollup_split(RollupFact.OPPORTUNITY, _fortnight()) is not None
    found = assert_equal_raw(world)
    assert (found.handed_off_leads, found.handed_off_leads_with_share) == (4, 2)
    assert (found.opportunities, found.opportunities_with_share) == (4, 2)
    assert found.opportunities_with_prior_engagement == 1


def test_late_shares_backdated_facts_and_deletes_are_counted_at_once(world):
    l1, l2, l3, l4 = world["leads"]
    guide = world["guide"]
    rollups.rollups_rebuild()
    # A share logged late (today, on a lead handed off last week), and one backdated.
    shared(l2, guide, at=timezone.now(), actor=world["reps"][0])
    touch = shared(l4, guide, at=_days_ago(20))
    assert assert_equal_raw(world).handed_off_leads_with_share == 4
    # A backdated handoff: l2 handed off earlier in the period too (its day waits for the
    # refresh, read raw); then rolled up.
    HandoffFactory(lead=l2, assignee=world["reps"][1], assigned_at=_days_ago(9))
    assert assert_equal_raw(world).handed_off_leads == 4
    rollups.rollups_refresh()
    assert assert_equal_raw(world).handed_off_leads == 4
    # A content event backdated before l2's deal: engaged before it now.
    EventFactory(lead=l2, occurred_at=_days_ago(12), content_asset=guide)
    assert assert_equal_raw(world).opportunities_with_prior_engagement == 2
    # Deletes: a share unlinked, l1's touches and their links, a lead with its handoffs (its deal
    # stays, without a lead), a handoff.
    touch.content_assets.clear()
    LeadActivity.objects.filter(lead=l1).delete()
    assert assert_equal_raw(world).handed_off_leads_with_share == 2
    l3.delete()
    Handoff.objects.filter(lead=l1, assigned_at=_days_ago(5)).delete()
    assert assert_equal_raw(world).handed_off_leads == 3
    rollups.rollups_refresh()
    found = assert_equal_raw(world)
    assert (found.handed_off_leads, found.opportunities) == (3, 4)
    assert (found.opportunities_with_share, found.opportunities_with_prior_engagement) == (1, 2)
    assert Opportunity.objects.filter(lead=None).count() == 2


def test_asset_usage_probes_the_lead_filters_and_filters_the_actor(world):
    events, _ads = world["sources"]
    _l1, l2, _l3, _l4 = world["leads"]
    reps = world["reps"]
    shared(l2, world["guide"], at=_days_ago(1), actor=reps[1])
    usage = asset_usage(_fortnight())
    assert [(a.title, a.shares, a.leads) for a in usage.most_used["tofu"]] == [("Guide", 2, 2)]
    for filters, expected in [
        (KpiFilters(source_ids=(events.pk,)), [("Guide", 1, 1)]),
        (KpiFilters(channel_groups=("paid_search",)), [("Guide", 1, 1)]),
        (KpiFilters(tiers=("A",), owner_ids=(reps[0].pk,)), [("Guide", 1, 1)]),
        (KpiFilters(tiers=("A",), owner_ids=(reps[1].pk,)), []),
        (KpiFilters(without=("source",)), []),
    ]:
        usage = asset_usage(_fortnight(), filters)
        assert [(a.title, a.shares, a.leads) for a in usage.most_used.get("tofu", ())] == (
            expected
        ), filters
