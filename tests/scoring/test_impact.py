"""The publish confirmation's preview: what publishing a draft would do, held to what the
publish then does (the rescore run in-process), and read without writing anything."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.lifecycle import Stage
from leads.models import (
    EngagementEvent,
    Handoff,
    IcpCriterion,
    IcpVersion,
    Lead,
    SalesRep,
    StageTransition,
)
from leads.services import definition_create_draft, definition_publish
from scoring import services
from scoring.impact import publish_impact, target_sql
from scoring.models import EventWeight, LeadScoreState, RescoreJob, ScoringModel
from tests.factories import AccountFactory, LeadFactory, SalesRepFactory
from tests.metrics.factories import rejected

# The definitions and their rows, the id range, the one pass over the scores, the rejected
# leads' latest rejections and engagement since, the reps and their loads.
QUERIES = 14

# Tuesday 2026-03-10 14:00 New York time: inside the default calendar's working hours.
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def fit_lead(region="NA", stage="lead", **fields) -> Lead:
    """Software, 800 people, $50M, a director: 40 fit points, tier A (MQL at 65)."""
    account = AccountFactory(
        industry="software", employees=800, annual_revenue=50_000_000, region=region
    )
    return LeadFactory(account=account, seniority="director", stage=stage, **fields)


def pricing_visit(lead, at=NOW - timedelta(hours=2)) -> None:
    EngagementEvent.objects.create(
        lead=lead, kind="pricing_page", occurred_at=at, source_system="t", external_id=lead.pk
    )


def world():
    """Leads one pricing visit (8 points) below the threshold: 48 today. Reps of every kind."""
    for _ in range(5):
        pricing_visit(fit_lead("NA"))
    for _ in range(3):
        pricing_visit(fit_lead("EMEA"))
    pricing_visit(fit_lead("NA", stage="sal"))  # with sales: a score never moves it
    waiting = fit_lead("NA")  # a handoff still pending: never handed over twice
    pricing_visit(waiting)
    Handoff.objects.create(lead=waiting, stage="mql", assigned_at=NOW - timedelta(days=1))
    # Rejected after its visit: held back until it engages again.
    held = fit_lead("NA", stage="nurture")
    pricing_visit(held, at=NOW - timedelta(hours=3))
    rejected(lead=held, at=NOW - timedelta(hours=2), assigned_at=NOW - timedelta(days=2))
    # Rejected before its visit: the visit re-qualifies it.
    back = fit_lead("NA", stage="nurture")
    rejected(lead=back, at=NOW - timedelta(hours=5), assigned_at=NOW - timedelta(days=2))
    pricing_visit(back)
    SalesRepFactory(region="NA", capacity=2)
    SalesRepFactory(region="", capacity=40)
    SalesRepFactory(region="EMEA", tiers=["B"])  # takes no tier A lead
    SalesRepFactory(out_of_office_from=NOW.date())  # not eligible today
    services.rescore_all_now(note="world")


def model_draft(pricing_points: float) -> ScoringModel:
    draft = definition_create_draft(
        model=ScoringModel, actor=None, copy_from=ScoringModel.objects.get(number=1)
    )
    EventWeight.objects.filter(version=draft, kind="pricing_page").update(points=pricing_points)
    return draft


def snapshot() -> dict:
    return {
        "scores": list(
            LeadScoreState.objects.order_by("lead_id").values_list(
                "lead_id", "total", "tier", "engagement", "scoring_model_id", "icp_version_id"
            )
        ),
        "leads": list(Lead.objects.order_by("pk").values_list("pk", "stage", "tier", "owner_id")),
        "handoffs": list(Handoff.objects.order_by("pk").values_list("pk", "assignee_id")),
        "transitions": StageTransition.objects.count(),
        "reps": list(SalesRep.objects.order_by("pk").values_list("pk", "last_assigned_at")),
        "versions": list(ScoringModel.objects.order_by("pk").values_list("pk", "status")),
        "jobs": RescoreJob.objects.count(),
    }


def publish_and_rescore(version) -> dict:
    """Publish, run the rescore (with its stage moves) in this process, and report what it
    did: leads moved by scoring, new handoffs per rep user, unassigned ones."""
    handoffs_before = set(Handoff.objects.values_list("pk", flat=True))
    transitions_before = StageTransition.objects.count()
    definition_publish(version=version, actor=None)
    job = RescoreJob.objects.latest("pk")
    for chunk in job.chunks.all():
        services.rescore_chunk_run(chunk_id=chunk.pk)
    new = Handoff.objects.exclude(pk__in=handoffs_before)
    per_user: dict = {}
    for assignee_id in new.values_list("assignee_id", flat=True):
        per_user[assignee_id] = per_user.get(assignee_id, 0) + 1
    return {
        "moved": StageTransition.objects.count() - transitions_before,
        "per_user": per_user,
    }


def previewed_per_user(impact) -> dict:
    users = dict(SalesRep.objects.values_list("pk", "user_id"))
    per_user = {
        users[share.rep_id]: share.new_handoffs
        for share in impact.spread.shares
        if share.new_handoffs
    }
    if impact.spread.unassigned:
        per_user[None] = impact.spread.unassigned
    return per_user


def test_a_model_draft_preview_matches_what_its_publish_does(
    db, clock, admin_client, django_assert_num_queries
):
    world()
    draft = model_draft(pricing_points=30)  # 40 + 30 = 70 ≥ 65
    before = snapshot()

    # A fixed number of queries whatever the number of leads: one pass over the scores.
    with django_assert_num_queries(QUERIES):
        impact = publish_impact(draft)

    # 5 NA + 3 EMEA + the re-qualified one; not the sales lead, the pending one, the held one.
    assert [(m.key, m.leads) for m in impact.moves] == [("mql", 9)]
    assert impact.handoffs == 9
    assert impact.held_back_by_rejection == 1
    assert impact.leads_changing_tier == 0
    assert not impact.fit_alone_reaches
    # The NA rep's capacity is 2; the EMEA rep takes tier B only: the rest to the any-region rep.
    assert sorted(s.new_handoffs for s in impact.spread.shares) == [0, 2, 7]
    assert impact.spread.unassigned == 0

    # The admin's confirm step shows it, and viewing it changes nothing.
    page = admin_client.post(
        reverse("admin:scoring_scoringmodel_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk]},
    )
    text = page.content.decode()
    assert page.status_code == 200
    assert "Yes, publish scoring model v2" in text
    assert '<strong data-stage="mql">9</strong> leads move to MQL (Engaged), each handed' in text
    assert '<strong class="impact-handoffs">9</strong> handoffs open at once' in text
    assert "How the handoffs would be spread" in text
    assert snapshot() == before

    did = publish_and_rescore(draft)
    assert did["moved"] == impact.moved == 9
    assert did["per_user"] == previewed_per_user(impact)


def test_an_icp_draft_that_lets_fit_alone_hand_over_is_flagged_and_counted(db, clock, admin_client):
    world()
    quiet = [fit_lead("NA") for _ in range(2)]  # no engagement at all: 40 points
    services.rescore_all_now(note="quiet ones")
    draft = definition_create_draft(
        model=IcpVersion, actor=None, copy_from=IcpVersion.objects.get(number=1)
    )
    # Directors now weigh 40 instead of 10: 70 points on fit alone.
    IcpCriterion.objects.filter(version=draft, attribute="seniority", points=10).update(points=40)
    IcpVersion.objects.filter(pk=draft.pk).update(tier_a_min_points=75)
    draft.refresh_from_db()
    before = snapshot()

    impact = publish_impact(draft)

    assert impact.fit_alone_reaches
    assert "without any engagement" in impact.fit_alone_note
    # Everyone movable now moves, the two quiet ones on fit alone; the held one stays.
    assert [(m.key, m.leads) for m in impact.moves] == [("mql", 11)]
    assert impact.held_back_by_rejection == 1
    # Tier A now needs 75: every fit lead (40 points, A) is B at 70.
    assert impact.leads_changing_tier == 14
    assert [(c.before, c.after, c.leads) for c in impact.tier_changes] == [("A", "B", 14)]
    page = admin_client.post(
        reverse("admin:leads_icpversion_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk]},
    )
    text = page.content.decode()
    assert "Warning: fit alone reaches the handoff threshold." in text
    assert snapshot() == before

    did = publish_and_rescore(draft)
    assert did["moved"] == impact.moved == 11
    assert did["per_user"] == previewed_per_user(impact)
    assert all(lead.stage == "mql" for lead in Lead.objects.filter(pk__in=[q.pk for q in quiet]))


def test_confirming_in_the_admin_publishes_as_before(db, clock, admin_client):
    world()
    draft = model_draft(pricing_points=9)  # 49: nobody moves
    assert publish_impact(draft).moved == 0
    assert publish_impact(draft).caveats == ()
    ScoringModel.objects.filter(pk=draft.pk).update(half_life_days=14)
    draft.refresh_from_db()
    assert "approximate" in publish_impact(draft).caveats[0]
    response = admin_client.post(
        reverse("admin:scoring_scoringmodel_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk], "confirm": "yes"},
        follow=True,
    )
    assert "scoring model v2 is published and in force." in [
        str(message) for message in response.context["messages"]
    ]
    draft.refresh_from_db()
    assert draft.is_published
    assert RescoreJob.objects.filter(reason=RescoreJob.Reason.MODEL_PUBLISHED).exists()


def test_the_target_case_is_the_lifecycles_score_target():
    """The SQL CASE picks the furthest score stage reached, as ``score_target`` does."""
    from leads.lifecycle import Lifecycle

    lifecycle = Lifecycle(
        stages=(
            Stage("lead", "Lead", order=1),
            Stage("engaged", "Engaged", order=2, trigger_type="score", trigger_score=40),
            Stage("mql", "MQL", order=3, trigger_type="score", trigger_score=65),
            Stage("sal", "SAL", order=4, team="sales"),
            Stage("nurture", "Nurture", kind="nurture", order=9),
        )
    )
    sql, params = target_sql(lifecycle, "t", "s")
    whens = [tuple(params[i : i + 3]) for i in range(0, len(params), 3)]
    assert sql.count("WHEN") == len(whens)
    for stage in ("lead", "engaged", "sal", "nurture"):
        for total in (10, 40, 64.99, 65, 90):
            expected = lifecycle.score_target(stage, total, excluded=False)
            picked = next((t for s, m, t in whens if s == stage and total >= m), None)
            assert picked == (expected.key if expected else None), (stage, total)
