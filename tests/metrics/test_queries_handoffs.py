"""Handoff KPIs: acceptance, response time, SLA compliance, feedback-loop completion."""

import pytest

from leads.choices import HandoffOutcome
from metrics.kpis import KpiFilters, change
from metrics.queries import (
    SlaClock,
    SlaStatus,
    acceptance_handoffs,
    feedback_handoffs,
    feedback_loop_completion,
    lead_acceptance,
    lead_acceptance_by_source,
    requalification,
    requalified_handoffs,
    response_time,
    response_time_handoffs,
    sla_compliance,
    sla_compliance_by_rep,
    sla_compliance_by_source,
    sla_handoffs,
)
from tests.factories import CampaignFactory, SourceFactory, UserFactory
from tests.metrics.factories import (
    MARCH,
    HandoffFactory,
    MetricLeadFactory,
    accepted,
    new_york,
    rejected,
    sales_rep,
    utc,
)
from tests.metrics.vendor import rollup_states

pytestmark = pytest.mark.django_db

HOUR = 3600


# --- Lead acceptance -------------------------------------------------------------------------


def test_acceptance_rate_counts_decisions_and_shows_pending_beside(django_assert_num_queries):
    accepted(at=utc(3, 3), assigned_at=utc(3, 2))
    accepted(at=utc(3, 6), assigned_at=utc(3, 5))
    rejected(at=utc(3, 6), assigned_at=utc(3, 5))
    HandoffFactory(assigned_at=utc(3, 20))
    HandoffFactory(assigned_at=utc(3, 21))
    with django_assert_num_queries(1 + rollup_states(1)):  # metrics.queries.rolled
        acceptance = lead_acceptance(MARCH)
    assert (acceptance.accepted, acceptance.rejected, acceptance.pending) == (2, 1, 2)
    assert acceptance.rate == 2 / 3


def test_acceptance_counts_handoffs_by_assignment_not_decision_time():
    # Assigned in February, accepted in March: February's handoff.
    accepted(at=utc(3, 2), assigned_at=utc(2, 27))
    assert lead_acceptance(MARCH).accepted == 0


def test_acceptance_with_only_pending_handoffs_has_no_rate():
    HandoffFactory(assigned_at=utc(3, 10))
    HandoffFactory(assigned_at=utc(3, 11))
    acceptance = lead_acceptance(MARCH)
    assert (acceptance.pending, acceptance.rate) == (2, None)


def test_acceptance_without_handoffs_is_none_not_zero():
    acceptance = lead_acceptance(MARCH)
    assert (acceptance.accepted, acceptance.rejected, acceptance.pending) == (0, 0, 0)
    assert acceptance.rate is None


def test_acceptance_period_is_cut_at_midnight_new_york_time():
    # 23:30 on 31 March in New York is already 1 April in UTC: still March here.
    last_evening = accepted(at=new_york(4, 1, 9), assigned_at=new_york(3, 31, 23, 30))
    # 23:30 on 28 February in New York is 1 March in UTC: still February here.
    accepted(at=new_york(3, 1, 9), assigned_at=new_york(2, 28, 23, 30))
    # 00:30 on 1 April in New York: April.
    accepted(at=new_york(4, 1, 9), assigned_at=new_york(4, 1, 0, 30))
    assert list(acceptance_handoffs(MARCH)) == [last_evening]


def test_acceptance_change_from_the_previous_equal_period():
    # February's evening handoff (23:30 New York time, 1 March in UTC) is in the previous
    # period, which is the 31 days before March: 29 January to 28 February.
    rejected(at=utc(3, 2), assigned_at=new_york(2, 28, 23, 30))
    accepted(at=utc(2, 1), assigned_at=new_york(1, 29, 0, 0))
    accepted(at=utc(3, 3), assigned_at=utc(3, 2))
    moved = change(lead_acceptance(MARCH).rate, lead_acceptance(MARCH.previous()).rate)
    assert (moved.current, moved.previous, moved.absolute, moved.relative) == (1.0, 0.5, 0.5, 1.0)


def test_acceptance_filters_by_channel_group_and_campaign():
    paid = SourceFactory(name="Ads", channel_group="paid_search")
    campaign = CampaignFactory(source=paid)
    accepted(at=utc(3, 3), lead=MetricLeadFactory(source=paid, campaign=campaign))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=paid))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=SourceFactory(channel_group="events")))
    assert lead_acceptance(MARCH, KpiFilters(channel_groups=("paid_search",))).rate == 0.5
    assert lead_acceptance(MARCH, KpiFilters(campaign_ids=(campaign.pk,))).rate == 1.0


def test_acceptance_by_source():
    webinar, ads = SourceFactory(name="Webinar"), SourceFactory(name="Ads")
    accepted(at=utc(3, 3), lead=MetricLeadFactory(source=webinar))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=webinar))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(source=ads))
    HandoffFactory(lead=MetricLeadFactory(source=None))
    rows = {row.source.name: row.acceptance for row in lead_acceptance_by_source(MARCH)}
    assert rows["Webinar"].rate == 0.5
    assert rows["Ads"].rate == 0.0
    assert (rows["No source"].pending, rows["No source"].rate) == (1, None)
    assert [row.source.name for row in lead_acceptance_by_source(MARCH)] == [
        "Ads",
        "Webinar",
        "No source",
    ]


def test_acceptance_filters_by_lead_tier_and_by_assignee():
    ada = UserFactory(username="ada")
    accepted(at=utc(3, 3), lead=MetricLeadFactory(tier="A"), assignee=ada)
    rejected(at=utc(3, 3), lead=MetricLeadFactory(tier="A"))
    rejected(at=utc(3, 3), lead=MetricLeadFactory(tier="C"), assignee=ada)
    assert lead_acceptance(MARCH, KpiFilters(tiers=("A",))).rate == 0.5
    assert lead_acceptance(MARCH, KpiFilters(owner_ids=(ada.pk,))).rate == 0.5
    assert lead_acceptance(MARCH, KpiFilters(tiers=("A",), owner_ids=(ada.pk,))).rate == 1.0


def test_acceptance_filters_by_team():
    manager = UserFactory(username="manager")
    on_team = sales_rep("on-team", manager=manager)
    sales_rep("elsewhere")
    accepted(at=utc(3, 3), assignee=on_team.user)
    rejected(at=utc(3, 3), assignee=on_team.user)
    rejected(at=utc(3, 3), assignee=UserFactory(username="elsewhere"))
    acceptance = lead_acceptance(MARCH, KpiFilters(team_manager_id=manager.pk))
    assert (acceptance.accepted, acceptance.rejected) == (1, 1)


def test_acceptance_drill_down_lists_the_counted_handoffs():
    mine = accepted(at=utc(3, 3))
    rejected(at=utc(3, 3))
    assert list(acceptance_handoffs(MARCH, outcome=HandoffOutcome.ACCEPTED)) == [mine]
    assert acceptance_handoffs(MARCH).count() == 2


# --- Response time ---------------------------------------------------------------------------


def test_response_time_median_and_p90_in_business_hours(django_assert_num_queries):
    for hours in (1, 2, 3, 4):
        HandoffFactory(
            assigned_at=utc(3, 2),
            first_response_at=utc(3, 5),
            response_business_seconds=hours * HOUR,
        )
    HandoffFactory(assigned_at=utc(3, 2))  # still unanswered
    HandoffFactory(assigned_at=utc(2, 2), first_response_at=utc(3, 2), response_business_seconds=1)
    with django_assert_num_queries(2 + rollup_states(1)):  # counts, percentiles
        timing = response_time(MARCH)
    assert (timing.answered, timing.unanswered) == (4, 1)
    assert timing.median_hours == 2.5
    # Position (4 − 1) × 0.9 = 2.7: 3 h + 0.7 × (4 h − 3 h).
    assert timing.p90_hours == pytest.approx(3.7, abs=1e-9)


def test_response_time_of_one_answer():
    HandoffFactory(first_response_at=utc(3, 3), response_business_seconds=5400)
    timing = response_time(MARCH)
    assert (timing.median_hours, timing.p90_hours) == (1.5, 1.5)


def test_response_time_with_only_unanswered_handoffs():
    HandoffFactory(assigned_at=utc(3, 2))
    HandoffFactory(assigned_at=utc(3, 3))
    timing = response_time(MARCH)
    assert (timing.answered, timing.unanswered) == (0, 2)
    assert (timing.median_hours, timing.p90_hours) == (None, None)


def test_response_time_without_handoffs():
    timing = response_time(MARCH)
    assert (timing.answered, timing.unanswered, timing.median_hours) == (0, 0, None)


def test_response_time_drill_down():
    unanswered = HandoffFactory(assigned_at=utc(3, 2))
    HandoffFactory(first_response_at=utc(3, 3), response_business_seconds=60)
    assert list(response_time_handoffs(MARCH, answered=False)) == [unanswered]
    assert response_time_handoffs(MARCH, answered=True).count() == 1


# --- SLA compliance --------------------------------------------------------------------------

NOW = utc(3, 20)  # inside March: some handoffs are not due yet


def _response_clock_fixture():
    """Response due in March: 2 met, 2 missed (late, unanswered past due), 1 still open."""
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    webinar, ads = SourceFactory(name="Webinar"), SourceFactory(name="Ads")
    due = utc(3, 10)
    HandoffFactory(
        response_due_at=due,
        first_response_at=utc(3, 9),
        assignee=ada,
        lead=MetricLeadFactory(source=webinar),
    )
    # Answered at the due time itself: on time.
    HandoffFactory(
        response_due_at=due,
        first_response_at=due,
        assignee=ada,
        lead=MetricLeadFactory(source=webinar),
    )
    HandoffFactory(
        response_due_at=due,
        first_response_at=utc(3, 11),
        assignee=bob,
        lead=MetricLeadFactory(source=ads),
    )
    HandoffFactory(response_due_at=due, assignee=bob, lead=MetricLeadFactory(source=ads))
    HandoffFactory(response_due_at=utc(3, 25), assignee=bob, lead=MetricLeadFactory(source=ads))
    # Due in February: not March's business, whenever it was answered.
    HandoffFactory(
        assigned_at=utc(2, 1),
        response_due_at=utc(2, 2),
        first_response_at=utc(3, 2),
        assignee=ada,
    )
    return ada, bob


def test_response_sla_compliance(django_assert_num_queries):
    _response_clock_fixture()
    with django_assert_num_queries(1 + rollup_states(1)):  # metrics.queries.rolled
        response = sla_compliance(MARCH, now=NOW).response
    assert (response.met, response.missed, response.open) == (2, 2, 1)
    assert response.rate == 0.5


def test_response_sla_compliance_by_rep_and_by_source():
    _response_clock_fixture()
    by_rep = {
        row.rep_name: row.compliance.response for row in sla_compliance_by_rep(MARCH, now=NOW)
    }
    assert (by_rep["ada"].met, by_rep["ada"].missed, by_rep["ada"].rate) == (2, 0, 1.0)
    assert (by_rep["bob"].met, by_rep["bob"].missed, by_rep["bob"].open) == (0, 2, 1)
    assert by_rep["bob"].rate == 0.0
    by_source = {
        row.source.name: row.compliance for row in sla_compliance_by_source(MARCH, now=NOW)
    }
    assert by_source["Webinar"].response.rate == 1.0
    assert by_source["Ads"].response.rate == 0.0


def test_response_sla_open_handoff_counts_as_missed_once_past_due():
    _response_clock_fixture()
    response = sla_compliance(MARCH, now=utc(4, 10)).response
    assert (response.met, response.missed, response.open) == (2, 3, 0)


def test_sla_drill_down_lists_the_missed_handoffs():
    _response_clock_fixture()
    missed = sla_handoffs(MARCH, clock=SlaClock.RESPONSE, status=SlaStatus.MISSED, now=NOW)
    assert sorted(h.first_response_at is None for h in missed) == [False, True]


def test_acceptance_sla_compliance():
    due = utc(3, 12)
    accepted(at=utc(3, 11), accept_due_at=due, first_response_at=utc(3, 10))
    rejected(at=due, accept_due_at=due, first_response_at=utc(3, 10))
    accepted(at=utc(3, 13), accept_due_at=due, first_response_at=utc(3, 10))
    HandoffFactory(accept_due_at=due)  # undecided past due: missed
    HandoffFactory(accept_due_at=utc(3, 30))  # not due yet: open
    acceptance = sla_compliance(MARCH, now=NOW).acceptance
    assert (acceptance.met, acceptance.missed, acceptance.open) == (2, 2, 1)
    assert acceptance.rate == 0.5


def test_sla_compliance_without_due_handoffs_is_none():
    HandoffFactory(assigned_at=utc(3, 2))  # no policy, so no due times
    compliance = sla_compliance(MARCH, now=NOW)
    assert (compliance.response.rate, compliance.acceptance.rate) == (None, None)
    assert sla_compliance_by_rep(MARCH, now=NOW) == []


# --- Feedback loop ---------------------------------------------------------------------------


def test_feedback_loop_completion(django_assert_num_queries):
    rejected(at=utc(3, 3), reason_key="not_icp_fit")
    rejected(at=utc(3, 4), reason_key="other", note="Works for a competitor")
    incomplete = rejected(at=utc(3, 5), reason_key="other", note="   ")
    rejected(at=utc(2, 5), reason_key="other")  # rejected in February
    accepted(at=utc(3, 3))
    with django_assert_num_queries(1 + rollup_states(1)):  # metrics.queries.rolled
        feedback = feedback_loop_completion(MARCH)
    assert (feedback.rejected, feedback.complete) == (3, 2)
    assert feedback.rate == 2 / 3
    assert list(feedback_handoffs(MARCH, complete=False)) == [incomplete]


def test_feedback_loop_without_rejections_is_none():
    accepted(at=utc(3, 3))
    feedback = feedback_loop_completion(MARCH)
    assert (feedback.rejected, feedback.rate) == (0, None)


# --- Re-qualification ------------------------------------------------------------------------


def _requalification_world() -> dict:
    """Ten handoffs assigned in March, two of them re-qualified (hand-counted):

    - bounced: rejected in February as MQL, handed over again on 10 March → re-qualified;
    - twice: rejected on 3 March, handed over again on 15 March → the second is re-qualified;
    - kept: accepted on 2 March, handed over again on 20 March → not (nothing was rejected);
    - other_stage: rejected as SQL, handed over as MQL → not (another stage);
    - overlapping: handed over on 10 March while an earlier handoff was still open, that one
      rejected on 12 March → not (no rejection before it opened);
    - single: one pending handoff → not.
    """
    ada = UserFactory(username="ada")
    bounced, twice, kept = MetricLeadFactory(), MetricLeadFactory(), MetricLeadFactory()
    other_stage, overlapping = MetricLeadFactory(), MetricLeadFactory()
    rejected(at=utc(2, 20), assigned_at=utc(2, 18), lead=bounced)
    world = {
        "bounced": HandoffFactory(assigned_at=utc(3, 10), lead=bounced),
        "twice_first": rejected(at=utc(3, 3), assigned_at=utc(3, 2), lead=twice),
        "twice": accepted(at=utc(3, 16), assigned_at=utc(3, 15), lead=twice, assignee=ada),
        "ada": ada,
    }
    accepted(at=utc(3, 3), assigned_at=utc(3, 2), lead=kept)
    HandoffFactory(assigned_at=utc(3, 20), lead=kept)
    rejected(at=utc(3, 3), assigned_at=utc(3, 2), lead=other_stage, stage="sql")
    HandoffFactory(assigned_at=utc(3, 10), lead=other_stage)
    rejected(at=utc(3, 12), assigned_at=utc(3, 8), lead=overlapping)
    HandoffFactory(assigned_at=utc(3, 10), lead=overlapping)
    HandoffFactory(assigned_at=utc(3, 21))
    return world


def test_requalification_counts_handoffs_after_a_rejection_at_the_same_stage(
    django_assert_num_queries,
):
    _requalification_world()
    with django_assert_num_queries(1 + rollup_states(1)):
        found = requalification(MARCH)
    assert (found.opened, found.requalified) == (10, 2)
    assert found.rate == 2 / 10


def test_requalification_drill_down_lists_the_requalified_handoffs():
    world = _requalification_world()
    assert list(requalified_handoffs(MARCH)) == [world["twice"], world["bounced"]]


def test_requalification_filters_describe_the_new_handoff_not_the_rejection():
    # The first handoff of "twice" was someone else's; the re-qualified one is Ada's.
    world = _requalification_world()
    found = requalification(MARCH, KpiFilters(owner_ids=(world["ada"].pk,)))
    assert (found.opened, found.requalified, found.rate) == (1, 1, 1.0)


def test_requalification_counts_a_handoff_in_the_period_it_was_assigned():
    # Rejected and handed over again in February: February's re-qualification, not March's.
    lead = MetricLeadFactory()
    rejected(at=utc(2, 5), assigned_at=utc(2, 4), lead=lead)
    HandoffFactory(assigned_at=utc(2, 20), lead=lead)
    assert requalification(MARCH.previous()).requalified == 1
    assert requalification(MARCH).opened == 0


def test_requalification_without_handoffs_is_none():
    found = requalification(MARCH)
    assert (found.opened, found.requalified, found.rate) == (0, 0, None)
