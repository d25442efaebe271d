"""The open deals kept per lead for the meeting's content slide (``metrics.open_deals``): the
slide read from them equals the slide read from the raw facts, before a refresh (the marked
leads computed at read time) and after it, whatever changed; the triggers mark only what the
slide reads; a ``now`` before a kept fact reads the raw facts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from leads.choices import ActivityAction, ActorType, HandoffOutcome, OpportunityStatus
from leads.models import Handoff, Lead, LeadActivity, ObjectionTag, Opportunity
from metrics import rollups
from metrics.meeting import content_section
from metrics.open_deals import deal_rows_sql, open_deals_answer
from metrics.queries import open_amount_by_lead_stage
from metrics.queries.content import open_deal_content
from metrics.rollup_models import OpenDealDirty, OpenDealRow, RollupFact, RollupState
from tests.factories import AccountFactory
from tests.metrics.factories import (
    HandoffFactory,
    MetricLeadFactory,
    OpportunityFactory,
    reason,
)
from tests.metrics.test_meeting_content import NOW, world  # noqa: F401  (the fixture)
from tests.metrics.test_rollups import rolled_back

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="kept on PostgreSQL only"),
]

OPEN_STAGES = ["sal", "sql", "opportunity"]
LATER = datetime(2031, 1, 1, tzinfo=UTC)  # after every fact: the kept rows answer
LEAD_STAGES = ["lead", "mql", "sal", "sql", "opportunity", "customer", "nurture"]
OBJECTIONS = ["price", "timing", "competitor"]


def slide(kept: bool, now: datetime = LATER):
    return open_deal_content(now, open_stages=OPEN_STAGES, top=100, assets=3, kept=kept)


def assert_kept_equals_raw(now: datetime = LATER):
    kept, raw = slide(True, now), slide(False, now)
    assert kept == raw
    return kept


def kept_rows() -> list[tuple]:
    columns = [
        "lead_id", "kind", "deal_id", "stage", "outcome", "lead_stage", "objection_id",
        "heard_any", "amount", "industry", "since",
    ]  # fmt: skip
    return sorted(OpenDealRow.objects.values_list(*columns), key=repr)


def kept_groups_equal_rows() -> None:
    """The kept groups are the kept rows counted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, stage, outcome, lead_stage, objection_key, heard_any, industry, deals, "
            "amount FROM metrics_opendealgroup"
        )
        groups = sorted(cursor.fetchall(), key=repr)
        cursor.execute(
            "SELECT kind, stage, outcome, lead_stage, COALESCE(objection_id, 0), heard_any, "
            "industry, COUNT(*), COALESCE(SUM(amount), 0) FROM metrics_opendealrow "
            "GROUP BY 1, 2, 3, 4, 5, 6, 7"
        )
        assert groups == sorted(cursor.fetchall(), key=repr)


def recomputed_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(deal_rows_sql("IS NOT NULL"))
        return sorted(map(tuple, cursor.fetchall()), key=repr)


def outcome_set(handoff: Handoff, outcome: str) -> None:
    """The handoff decided (or undecided again) with the fields its outcome requires."""
    decided = handoff.assigned_at + timedelta(hours=2)
    handoff.outcome = outcome
    handoff.accepted_at = decided if outcome == HandoffOutcome.ACCEPTED else None
    handoff.rejected_at = decided if outcome == HandoffOutcome.REJECTED else None
    handoff.reject_reason = reason("not_icp_fit") if outcome == HandoffOutcome.REJECTED else None
    handoff.save()


def handoff_with(lead, outcome: str, **fields) -> Handoff:
    handoff = HandoffFactory(lead=lead, **fields)
    if outcome != HandoffOutcome.PENDING:
        outcome_set(handoff, outcome)
    return handoff


def heard(lead, *keys, at) -> LeadActivity:
    activity = LeadActivity.objects.create(
        lead=lead, action=ActivityAction.TOUCHED, occurred_at=at, actor_type=ActorType.USER
    )
    activity.objections.set(ObjectionTag.objects.filter(key__in=keys))
    return activity


def test_the_slide_from_the_kept_rows_is_the_slide_from_the_raw_facts(world):  # noqa: F811
    assert rollups.rollups_refresh()[RollupFact.OPEN_DEALS] == -1  # built on the first refresh
    assert kept_rows() == recomputed_rows()
    kept_groups_equal_rows()
    found = assert_kept_equals_raw()
    assert [group.stage for group in found.groups[:3]] == ["proposal", "sql", "demo"]
    assert found.open_handoffs == 1
    with connection.cursor() as cursor:
        assert open_deals_answer(cursor, LATER)
        # Every deal and objection of the fixture is dated before NOW: the kept rows answer
        # for the instant its own tests read at too.
        assert open_deals_answer(cursor, NOW)
    assert_kept_equals_raw(NOW)
    assert content_section(NOW)["groups"][0]["deals"] == 2


def test_a_lead_with_a_fact_after_now_is_read_as_it_stood_then():
    at = datetime(2030, 6, 1, tzinfo=UTC)
    lead = MetricLeadFactory(stage="sql", created_at=at - timedelta(days=30))
    OpportunityFactory(lead=lead, stage="demo", created_at=at - timedelta(days=2))
    heard(lead, "price", at=at)
    OpportunityFactory(lead=MetricLeadFactory(stage="sal"), stage="proposal", created_at=at)
    rollups.rollups_refresh()
    before = at - timedelta(days=1)
    with connection.cursor() as cursor:
        assert open_deals_answer(cursor, before)  # the kept rows, those two leads afresh
    # A day before the objection the deal has none, and the later deal is not open yet: as
    # the raw facts say.
    found = assert_kept_equals_raw(before)
    assert [(g.stage, g.objection_key) for g in found.groups] == [("demo", None)]
    found = assert_kept_equals_raw(at)
    assert [(g.stage, g.objection_key) for g in found.groups] == [
        ("demo", "price"),
        ("proposal", None),
    ]
    # The page's own read (no ``kept`` forced) takes the kept path and says the same.
    auto = open_deal_content(before, open_stages=OPEN_STAGES)
    assert auto == open_deal_content(before, open_stages=OPEN_STAGES, kept=False)


def test_only_what_the_slide_reads_marks_a_lead():
    lead = MetricLeadFactory(stage="sal")
    handoff = handoff_with(lead, HandoffOutcome.ACCEPTED)
    OpportunityFactory(lead=None, stage="demo")
    rollups.rollups_refresh()
    assert not OpenDealDirty.objects.exists()

    # The breach sweep's, the feedback's and a rescore's columns: nothing to recompute.
    Handoff.objects.update(first_response_at=LATER, response_business_seconds=60.0)
    Lead.objects.update(tier="A", stage_entered_at=LATER)
    Opportunity.objects.update(name="Renamed")
    assert not OpenDealDirty.objects.exists()

    Lead.objects.filter(pk=lead.pk).update(stage="sql")
    outcome_set(handoff, HandoffOutcome.REJECTED)
    assert list(OpenDealDirty.objects.values_list("lead_id", flat=True)) == [lead.pk, lead.pk]
    assert_kept_equals_raw()
    assert rollups.rollups_refresh()[RollupFact.OPEN_DEALS] == 1
    assert kept_rows() == recomputed_rows()
    kept_groups_equal_rows()


def test_past_a_backlog_of_marked_leads_the_raw_facts_answer(monkeypatch):
    from metrics import open_deals

    lead = MetricLeadFactory(stage="sal")
    rollups.rollups_refresh()
    monkeypatch.setattr(open_deals, "FRESH_LEADS_AT_MOST", 1)
    HandoffFactory(lead=lead)
    with connection.cursor() as cursor:
        assert open_deals_answer(cursor, LATER)  # one marked lead: computed at read time
        HandoffFactory(lead=MetricLeadFactory(stage="sal"))
        assert not open_deals_answer(cursor, LATER)  # two: the raw statement
    rollups.rollups_refresh()
    with connection.cursor() as cursor:
        assert open_deals_answer(cursor, LATER)
    assert_kept_equals_raw()


def test_past_many_marked_leads_the_refresh_rebuilds_every_row(monkeypatch):
    from metrics import open_deals

    rollups.rollups_refresh()
    monkeypatch.setattr(open_deals, "REBUILD_PAST_LEADS", 1)
    HandoffFactory(lead=MetricLeadFactory(stage="sal"))
    assert rollups.rollups_refresh()[RollupFact.OPEN_DEALS] == 1  # one lead: lead by lead
    HandoffFactory(lead=MetricLeadFactory(stage="sal"))
    HandoffFactory(lead=MetricLeadFactory(stage="sql"))
    assert rollups.rollups_refresh()[RollupFact.OPEN_DEALS] == -1
    assert not OpenDealDirty.objects.exists()
    assert kept_rows() == recomputed_rows()
    kept_groups_equal_rows()
    assert_kept_equals_raw()


def test_a_truncate_unbuilds_the_kept_rows_and_the_refresh_builds_them_again():
    HandoffFactory(lead=MetricLeadFactory(stage="mql"))
    rollups.rollups_rebuild()
    assert RollupState.objects.get(fact=RollupFact.OPEN_DEALS).built
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE leads_handoff CASCADE")
        assert not open_deals_answer(cursor, LATER)
    assert rollups.rollups_refresh()[RollupFact.OPEN_DEALS] == -1
    assert not OpenDealRow.objects.exists()


def test_a_refresh_that_fails_loses_no_mark(monkeypatch):
    rollups.rollups_refresh()
    HandoffFactory(lead=MetricLeadFactory(stage="mql"))
    assert OpenDealDirty.objects.count() == 1

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(rollups, "open_deals_refresh", crash)
    with pytest.raises(RuntimeError):
        rollups.rollups_refresh()
    assert OpenDealDirty.objects.count() == 1
    monkeypatch.undo()
    rollups.rollups_refresh()
    assert not OpenDealDirty.objects.exists()
    assert OpenDealRow.objects.count() == 1


# --- Random facts and changes ------------------------------------------------------------------

CHANGES = (
    "lead_stage",
    "lead_account",
    "account_industry",
    "handoff_outcome",
    "handoff_stage",
    "handoff_delete",
    "opportunity_status",
    "opportunity_amount",
    "opportunity_unlinked",
    "opportunity_delete",
    "objection_heard",
    "touch_delete",
    "lead_delete",
    "handoff_new",
    "opportunity_new",
)


def _facts_create(data) -> list:
    accounts = [AccountFactory(industry=industry) for industry in ("healthcare", "software")]
    at = datetime(2026, 1, 5, tzinfo=UTC)
    leads = []
    for index in range(data.draw(st.integers(3, 7), label="leads")):
        leads.append(
            MetricLeadFactory(
                stage=data.draw(st.sampled_from(LEAD_STAGES)),
                account=data.draw(st.sampled_from([None, *accounts])),
                created_at=at + timedelta(hours=index),
            )
        )
    for index in range(data.draw(st.integers(0, 8), label="handoffs")):
        handoff_with(
            data.draw(st.sampled_from(leads)),
            data.draw(st.sampled_from(list(HandoffOutcome.values))),
            stage=data.draw(st.sampled_from(["mql", "sql"])),
            assigned_at=at + timedelta(days=1, hours=index),
        )
    for index in range(data.draw(st.integers(0, 5), label="opportunities")):
        status = data.draw(st.sampled_from(list(OpportunityStatus.values)))
        created_at = at + timedelta(days=2, hours=index)
        OpportunityFactory(
            lead=data.draw(st.sampled_from([None, *leads])),
            account=data.draw(st.sampled_from([None, *accounts])),
            stage=data.draw(st.sampled_from(["discovery", "demo", "proposal"])),
            status=status,
            closed_at=None if status == OpportunityStatus.OPEN else created_at,
            amount=data.draw(st.integers(0, 5000)),
            created_at=created_at,
        )
    for index in range(data.draw(st.integers(0, 5), label="touches")):
        keys = data.draw(st.lists(st.sampled_from(OBJECTIONS), min_size=1, max_size=2))
        heard(data.draw(st.sampled_from(leads)), *keys, at=at + timedelta(days=3, hours=index))
    return accounts


def _change(data, accounts) -> None:
    change = data.draw(st.sampled_from(CHANGES), label="change")
    leads = list(Lead.objects.order_by("pk"))
    handoffs = list(Handoff.objects.order_by("pk"))
    deals = list(Opportunity.objects.order_by("pk"))
    touches = list(LeadActivity.objects.order_by("pk"))
    later = datetime(2026, 2, 1, tzinfo=UTC)
    if change == "lead_stage" and leads:
        lead = data.draw(st.sampled_from(leads))
        Lead.objects.filter(pk=lead.pk).update(stage=data.draw(st.sampled_from(LEAD_STAGES)))
    elif change == "lead_account" and leads:
        lead = data.draw(st.sampled_from(leads))
        lead.account = data.draw(st.sampled_from([None, *accounts]))
        lead.save()
    elif change == "account_industry":
        account = data.draw(st.sampled_from(accounts))
        account.industry = data.draw(st.sampled_from(["", "retail", "software"]))
        account.save()
    elif change == "handoff_outcome" and handoffs:
        outcome_set(
            data.draw(st.sampled_from(handoffs)),
            data.draw(st.sampled_from(list(HandoffOutcome.values))),
        )
    elif change == "handoff_stage" and handoffs:
        Handoff.objects.filter(pk=data.draw(st.sampled_from(handoffs)).pk).update(stage="sal")
    elif change == "handoff_delete" and handoffs:
        data.draw(st.sampled_from(handoffs)).delete()
    elif change == "opportunity_status" and deals:
        deal = data.draw(st.sampled_from(deals))
        status = data.draw(st.sampled_from(list(OpportunityStatus.values)))
        Opportunity.objects.filter(pk=deal.pk).update(
            status=status, closed_at=None if status == OpportunityStatus.OPEN else later
        )
    elif change == "opportunity_amount" and deals:
        Opportunity.objects.filter(pk=data.draw(st.sampled_from(deals)).pk).update(amount=12345)
    elif change == "opportunity_unlinked" and deals:
        Opportunity.objects.filter(pk=data.draw(st.sampled_from(deals)).pk).update(lead=None)
    elif change == "opportunity_delete" and deals:
        data.draw(st.sampled_from(deals)).delete()
    elif change == "objection_heard" and leads:
        heard(data.draw(st.sampled_from(leads)), data.draw(st.sampled_from(OBJECTIONS)), at=later)
    elif change == "touch_delete" and touches:
        data.draw(st.sampled_from(touches)).delete()
    elif change == "lead_delete" and leads:
        data.draw(st.sampled_from(leads)).delete()
    elif change == "handoff_new" and leads:
        HandoffFactory(lead=data.draw(st.sampled_from(leads)), stage="sql", assigned_at=later)
    elif change == "opportunity_new" and leads:
        OpportunityFactory(lead=data.draw(st.sampled_from(leads)), created_at=later)


@hypothesis_settings(
    max_examples=12,
    phases=[Phase.explicit, Phase.generate],
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_kept_slide_equals_the_raw_one_on_random_facts_and_changes(data):
    with rolled_back():
        accounts = _facts_create(data)
        rollups.rollups_refresh()
        assert kept_rows() == recomputed_rows()
        kept_groups_equal_rows()
        assert_kept_equals_raw()
        for _ in range(data.draw(st.integers(1, 6), label="changes")):
            _change(data, accounts)
            assert_kept_equals_raw()  # the marked leads computed at read time
        rollups.rollups_refresh()
        assert not OpenDealDirty.objects.exists()
        assert kept_rows() == recomputed_rows()
        kept_groups_equal_rows()
        assert_kept_equals_raw()


def forecast_read() -> dict:
    return open_amount_by_lead_stage(Opportunity.objects.filter(status=OpportunityStatus.OPEN))


def test_the_forecast_reads_the_open_deals_lead_stages_from_the_kept_rows():
    at_sql, at_opportunity = MetricLeadFactory(stage="sql"), MetricLeadFactory(stage="opportunity")
    OpportunityFactory(lead=at_sql, amount=1000)
    OpportunityFactory(lead=at_opportunity, amount=2000)
    OpportunityFactory(lead=None, amount=300)
    OpportunityFactory(lead=at_sql, amount=50, status=OpportunityStatus.WON, closed_at=LATER)
    expected = {"sql": Decimal("1000"), "opportunity": Decimal("2000"), None: Decimal("300")}
    assert forecast_read() == expected  # nothing kept yet: each lead probed
    rollups.rollups_refresh()
    assert forecast_read() == expected

    # The kept row answers, not the lead: a row made to disagree (no mark) shows which is read.
    OpenDealRow.objects.filter(lead=at_opportunity, objection=None).update(lead_stage="demo")
    assert forecast_read() == {
        "sql": Decimal("1000"),
        "demo": Decimal("2000"),
        None: Decimal("300"),
    }

    row = OpenDealRow.objects.filter(lead=at_opportunity, objection=None)
    row.update(lead_stage="opportunity")

    # A lead whose stage moved since the refresh is marked: its own stage, until the refresh.
    Lead.objects.filter(pk=at_sql.pk).update(stage="opportunity")
    assert OpenDealDirty.objects.filter(lead_id=at_sql.pk).exists()
    after_move = {"opportunity": Decimal("3000"), None: Decimal("300")}
    assert forecast_read() == after_move
    rollups.rollups_refresh()
    assert forecast_read() == after_move

    # Rows that are not built (a bulk load with the triggers off) are not read.
    row.update(lead_stage="demo")
    RollupState.objects.filter(fact=RollupFact.OPEN_DEALS).update(built=False)
    assert forecast_read() == after_move
