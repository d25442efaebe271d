"""Which grain of a rollup a read sums: the coarsest that holds what it filters and groups by."""

import pytest
from django.db.models import Q

from metrics.kpis import KpiFilters
from metrics.queries.rolled import _grain, q_fields
from metrics.rollup_models import HandoffDay, HandoffLeadDay, HandoffOwnerDay


@pytest.mark.parametrize(
    "filters, columns, grain",
    [
        (KpiFilters(), (), HandoffLeadDay),
        (KpiFilters(source_ids=(1,)), ("source_id", "source__name"), HandoffLeadDay),
        (KpiFilters(channel_groups=("events",)), ("group_week",), HandoffLeadDay),
        (KpiFilters(without=("campaign",)), (), HandoffLeadDay),
        (KpiFilters(), ("owner_id", "owner__first_name"), HandoffOwnerDay),
        (KpiFilters(team_manager_id=7), (), HandoffOwnerDay),
        (KpiFilters(without=("team",)), ("group_month",), HandoffOwnerDay),
        (KpiFilters(tiers=("A",)), (), HandoffLeadDay),
        (KpiFilters(tiers=("A",)), ("owner_id",), HandoffOwnerDay),
        (KpiFilters(owner_ids=(3,), without=("tier",)), ("tier",), HandoffOwnerDay),
        (KpiFilters(tiers=("A",)), ("owner_id", "campaign_id"), HandoffDay),
        (KpiFilters(owner_ids=(3,)), ("source__origin__in",), HandoffDay),
    ],
)
def test_a_read_sums_the_coarsest_grain_holding_its_dimensions(filters, columns, grain):
    assert _grain(HandoffDay, filters, columns) is grain


def test_the_lookups_of_a_nested_q_are_read_for_the_grain():
    where = Q(source__origin__in=["marketing"]) | (Q(tier="A") & ~Q(owner_id=None))
    assert q_fields(where) == ["source__origin__in", "tier", "owner_id"]
