"""Lead cohort KPIs from stage history: conversion by source, and time in stage."""

import pytest

from leads.models import Lead, StageTransition
from metrics.kpis import KpiFilters
from metrics.queries import (
    cohort_leads,
    conversion_by_source,
    funnel_definition,
    stage_exits,
    time_in_stage,
)
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import MARCH, MetricLeadFactory, history, new_york, utc
from tests.metrics.vendor import ON_POSTGRESQL, rollup_states

pytestmark = pytest.mark.django_db

FULL_WAY = ["lead", "mql", "sal", "sql", "opportunity", "customer"]


@pytest.fixture
def cohort():
    """Six leads created in March (New York time), two sources, and two outside the period.

    Webinar: a1 went all the way (won in May, after the period: "ever" counts); a2 became an
    MQL and was then disqualified; a3 jumped from lead straight to SQL, then went to nurture;
    a4 was created at 23:30 on 31 March New York time and never moved.
    Ads: b1 reached opportunity and was lost; b2 was imported straight into MQL, no history.
    """
    webinar, ads = SourceFactory(name="Webinar"), SourceFactory(name="Ads")
    leads = {}

    def lead(name, source, created_at, *moves):
        leads[name] = MetricLeadFactory(source=source, created_at=created_at)
        if moves:
            history(leads[name], ("lead", created_at), *moves)
        return leads[name]

    lead(
        "a1",
        webinar,
        utc(3, 2),
        ("mql", utc(3, 4)),
        ("sal", utc(3, 5)),
        ("sql", utc(3, 9)),
        ("opportunity", utc(3, 20)),
        ("customer", utc(5, 4)),
    )
    lead("a2", webinar, utc(3, 3), ("mql", utc(3, 6)), ("disqualified", utc(3, 8)))
    lead("a3", webinar, utc(3, 3), ("sql", utc(3, 6)), ("nurture", utc(3, 30)))
    lead("a4", webinar, new_york(3, 31, 23, 30))
    lead(
        "b1",
        ads,
        utc(3, 10),
        ("mql", utc(3, 11)),
        ("sal", utc(3, 12)),
        ("sql", utc(3, 13)),
        ("opportunity", utc(3, 14)),
        ("closed_lost", utc(4, 2)),
    )
    leads["b2"] = MetricLeadFactory(source=ads, created_at=utc(3, 12), stage="mql")
    # Outside March in New York time, though inside it in UTC, and the other way round.
    lead("early", webinar, new_york(2, 28, 23, 30), ("mql", utc(3, 4)))
    lead("late", webinar, new_york(4, 1, 0, 30), ("mql", utc(4, 4)))
    return leads


def test_funnel_follows_the_lifecycle_in_force():
    definition = funnel_definition()
    assert definition.keys == FULL_WAY
    assert (definition.opportunity_key, definition.won_key) == ("opportunity", "customer")


def test_conversion_funnel_overall(cohort, django_assert_num_queries):
    # stages_in_force (2 queries) + the cohort aggregate.
    with django_assert_num_queries(3 + rollup_states(1)):  # metrics.queries.rolled
        conversion = conversion_by_source(MARCH)
    overall = conversion.overall.funnel
    assert overall.cohort == 6
    # Reached: every lead; MQL all but a4; SAL and SQL a1, a3 (skipped them), b1; ...
    assert [step.reached for step in overall.steps] == [6, 5, 3, 3, 2, 1]
    assert [step.dropped for step in overall.steps] == [None, 1, 2, 0, 1, 1]
    assert overall.step("mql").share_of_cohort == 5 / 6
    assert overall.step("sal").rate_from_previous == 3 / 5
    assert conversion.overall.lead_to_opportunity_rate == 2 / 6
    assert conversion.overall.opportunity_to_won_rate == 0.5


def test_conversion_funnel_by_source(cohort):
    by_source = {row.source.name: row for row in conversion_by_source(MARCH).by_source}
    assert list(by_source) == ["Ads", "Webinar"]
    webinar, ads = by_source["Webinar"], by_source["Ads"]
    assert [step.reached for step in webinar.funnel.steps] == [4, 3, 2, 2, 1, 1]
    assert (webinar.lead_to_opportunity_rate, webinar.opportunity_to_won_rate) == (0.25, 1.0)
    assert [step.reached for step in ads.funnel.steps] == [2, 2, 1, 1, 1, 0]
    assert (ads.lead_to_opportunity_rate, ads.opportunity_to_won_rate) == (0.5, 0.0)


def test_lead_that_skipped_stages_counts_as_having_passed_them(cohort):
    sal = cohort_leads(MARCH, reached="sal")
    assert cohort["a3"] in sal


def test_leads_later_disqualified_or_lost_still_count_for_stages_reached(cohort):
    mql = set(cohort_leads(MARCH, reached="mql"))
    opportunity = set(cohort_leads(MARCH, reached="opportunity"))
    assert cohort["a2"] in mql  # disqualified after MQL
    assert cohort["b1"] in opportunity  # closed lost


def test_cohort_drill_down_by_furthest_stage(cohort):
    assert set(cohort_leads(MARCH, stopped_at="mql")) == {cohort["a2"], cohort["b2"]}
    assert list(cohort_leads(MARCH, stopped_at="lead")) == [cohort["a4"]]


def test_cohort_is_cut_at_midnight_new_york_time(cohort):
    members = set(cohort_leads(MARCH))
    assert cohort["a4"] in members
    assert cohort["early"] not in members
    assert cohort["late"] not in members


def test_conversion_filters_by_source(cohort):
    ads = cohort["b1"].source
    conversion = conversion_by_source(MARCH, KpiFilters(source_ids=(ads.pk,)))
    assert conversion.overall.funnel.cohort == 2
    assert [row.source.name for row in conversion.by_source] == ["Ads"]


def test_conversion_filters_by_lead_owner(cohort):
    owner = UserFactory(username="owner")
    Lead.objects.filter(pk__in=[cohort["a1"].pk, cohort["b2"].pk]).update(owner=owner)
    funnel = conversion_by_source(MARCH, KpiFilters(owner_ids=(owner.pk,))).overall.funnel
    assert [step.reached for step in funnel.steps] == [2, 2, 1, 1, 1, 1]


def test_conversion_without_leads_has_no_rates():
    conversion = conversion_by_source(MARCH)
    assert conversion.overall.funnel.cohort == 0
    assert conversion.by_source == ()
    assert conversion.overall.lead_to_opportunity_rate is None
    assert conversion.overall.funnel.step("mql").share_of_cohort is None


# --- Time in stage ---------------------------------------------------------------------------


@pytest.fixture
def stage_history():
    """x: in lead 10 days, in MQL 2.5 days (left SAL in April: not counted).
    y: in lead 4 days, MQL 1 day, nurture 2 days, MQL again 0.5 day (from its latest entry).
    z: imported mid-funnel, its first move leaves SQL with no entry on record."""
    x = MetricLeadFactory(created_at=utc(2, 20))
    history(
        x,
        ("lead", utc(2, 20)),
        ("mql", utc(3, 2)),
        ("sal", utc(3, 5, 0)),
        ("disqualified", utc(4, 5)),
    )
    y = MetricLeadFactory(created_at=utc(3, 1))
    history(
        y,
        ("lead", utc(3, 1)),
        ("mql", utc(3, 5)),
        ("nurture", utc(3, 6)),
        ("mql", utc(3, 8)),
        ("sal", utc(3, 9, 0)),
    )
    z = MetricLeadFactory(created_at=utc(3, 1), stage="sql")
    StageTransition.objects.create(
        lead=z,
        from_stage="sql",
        to_stage="opportunity",
        transitioned_at=utc(3, 10),
        actor_type="user",
    )
    return x, y, z


def test_time_in_stage_medians_over_exits_in_the_period(stage_history, django_assert_num_queries):
    # stages_in_force (2), the rollup's state (PostgreSQL), then the counts with the medians
    # (SQLite: counts, then medians)
    with django_assert_num_queries(rollup_states(1) + (3 if ON_POSTGRESQL else 4)):
        durations = time_in_stage(MARCH)
    assert [(row.stage, row.exits, row.median_days) for row in durations] == [
        ("lead", 2, 7.0),  # 10 and 4 days
        ("mql", 3, 1.0),  # 2.5, 1 and 0.5 days
        ("nurture", 1, 2.0),
    ]


def test_time_in_stage_drill_down_lists_the_exits(stage_history):
    x, y, _ = stage_history
    exits = list(stage_exits(MARCH, stage="mql"))
    assert sorted(exit.lead_id for exit in exits) == sorted([x.pk, y.pk, y.pk])
    assert {exit.entered_at for exit in exits} == {utc(3, 2), utc(3, 5), utc(3, 8)}


def test_time_in_stage_filters_by_lead(stage_history):
    x, _, _ = stage_history
    durations = time_in_stage(MARCH, KpiFilters(source_ids=(x.source_id,)))
    assert [(row.stage, row.exits, row.median_days) for row in durations] == [
        ("lead", 1, 10.0),
        ("mql", 1, 2.5),
    ]


def test_time_in_stage_without_exits_is_empty():
    assert time_in_stage(MARCH) == []
