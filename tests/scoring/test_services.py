"""Scoring workflows: incremental rescoring, thresholds to MQL and handoff, full rescores."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from leads.models import EngagementEvent, Handoff, IcpVersion, Lead, SalesRep, StageTransition
from leads.services import (
    definition_create_draft,
    definition_publish,
    engagement_events_record,
    sales_rep_pick,
)
from scoring import engine, services, tasks
from scoring.models import LeadScoreState, RescoreJob, ScoringModel
from tests.factories import AccountFactory, LeadFactory

# Tuesday 2026-03-10 14:00 New York time: inside the default calendar's working hours.
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def rep(db):
    user = get_user_model().objects.create_user("rep.ana", "ana@example.com", "pw")
    return SalesRep.objects.create(user=user, region="NA")


def score(lead: Lead) -> LeadScoreState:
    return LeadScoreState.objects.get(lead_id=lead.pk)


def icp_lead(**overrides) -> Lead:
    """A tier-A fit under the default ICP: software, mid-market, NA, director."""
    account = AccountFactory(
        industry="software", employees=800, annual_revenue=50_000_000, region="NA", country="US"
    )
    return LeadFactory(account=account, seniority="director", title="Director of Ops", **overrides)


def record(lead, kind, count=1, *, at=NOW, prefix="e"):
    events = [
        EngagementEvent(
            lead=lead,
            kind=kind,
            occurred_at=at - timedelta(minutes=n),
            source_system="test",
            external_id=f"{prefix}-{lead.pk}-{kind}-{at:%Y%m%d}-{n}",
        )
        for n in range(count)
    ]
    return engagement_events_record(events=events)


def test_burst_of_events_marks_the_lead_dirty_once(db, frozen_now):
    lead = icp_lead()
    with mock.patch.object(tasks, "enqueue_rescores") as enqueue:
        for batch in range(5):
            record(lead, "page_view", 20, prefix=f"b{batch}")
    # Five transactions, one clean → dirty change: one task for 100 events. (Tests never commit,
    # so on_commit callbacks are run by hand below.)
    state = LeadScoreState.objects.get(lead=lead)
    assert (state.pending_seq, state.scored_seq) == (5, 0)
    assert enqueue.call_count == 0


def test_recording_events_enqueues_one_rescore_after_commit(
    db, frozen_now, django_capture_on_commit_callbacks
):
    lead = icp_lead()
    with (
        mock.patch.object(tasks, "enqueue_rescores") as enqueue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        record(lead, "page_view", 30)
        record(lead, "email_click", 3)
    enqueue.assert_called_once_with([lead.pk])


def test_resending_the_same_events_creates_nothing(db, frozen_now):
    lead = icp_lead()
    stored, duplicates = record(lead, "webinar_attended", 2)
    again, duplicates_again = record(lead, "webinar_attended", 2)
    assert (len(stored), duplicates) == (2, 0)
    assert (len(again), duplicates_again) == (0, 2)
    assert lead.events.count() == 2


def test_incremental_rescore_scores_with_the_engine_and_cleans_the_lead(db, frozen_now):
    lead = icp_lead()
    record(lead, "page_view", 12)  # capped at 5 a day
    record(lead, "pricing_page", 1)
    result = services.lead_rescore(lead_id=lead.pk)
    lead.refresh_from_db()
    state = LeadScoreState.objects.get(lead=lead)
    assert result.fit.tier == "A"
    assert score(lead).engagement == 5 * 1 + 8  # decay 1 on the day itself
    assert score(lead).total == score(lead).fit_points + 13
    assert score(lead).grade == "A3"
    assert state.scored_seq == state.pending_seq == 2
    assert not state.is_dirty


def test_rescoring_twice_gives_the_same_result(db, frozen_now):
    lead = icp_lead()
    record(lead, "form_fill", 2)
    record(lead, "pricing_page", 1)
    first = services.lead_rescore(lead_id=lead.pk)
    snapshot = LeadScoreState.objects.values("fit_points", "engagement", "total", "grade").get(
        lead_id=lead.pk
    )
    second = services.lead_rescore(lead_id=lead.pk)
    assert first.total == second.total
    assert (
        LeadScoreState.objects.values("fit_points", "engagement", "total", "grade").get(
            lead_id=lead.pk
        )
        == snapshot
    )
    # The first run moved the lead to MQL; the second moves nothing and opens nothing.
    assert StageTransition.objects.filter(lead=lead).count() == 1
    assert Handoff.objects.filter(lead=lead).count() == 1


def test_crossing_the_mql_threshold_moves_the_lead_and_opens_a_handoff(db, frozen_now, rep):
    lead = icp_lead()
    record(lead, "demo_request", 1)
    record(lead, "pricing_page", 2)
    services.lead_rescore(lead_id=lead.pk)
    lead.refresh_from_db()
    assert score(lead).total >= 65
    assert lead.stage == "mql"
    assert lead.in_marketing_nurture is True  # MQL is still marketing's stage
    transition = StageTransition.objects.get(lead=lead)
    assert transition.actor_type == "scoring"
    assert transition.reason == f"score {score(lead).total:g} ≥ 65 under scoring model v1"
    handoff = Handoff.objects.get(lead=lead)
    assert handoff.assignee == rep.user
    assert lead.owner == rep.user
    # Tier A policy: respond within 2 business hours, accept within 8 (Tue 14:00 New York).
    assert handoff.sla_policy.name == "Tier A MQLs"
    assert handoff.response_due_at == datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    assert handoff.accept_due_at == datetime(2026, 3, 11, 18, 0, tzinfo=UTC)  # Wed 14:00 EDT


def test_a_poor_fit_never_becomes_an_mql(db, frozen_now, rep):
    lead = icp_lead(email="student@uni.example")
    Lead.objects.filter(pk=lead.pk).update(seniority="student")
    record(lead, "demo_request", 1)
    record(lead, "webinar_attended", 1)
    record(lead, "trial_signup", 1)
    record(lead, "form_fill", 2)
    services.lead_rescore(lead_id=lead.pk)
    lead.refresh_from_db()
    assert score(lead).fit_excluded and lead.tier == "D"
    assert lead.stage == "lead"
    assert not Handoff.objects.filter(lead=lead).exists()


def test_no_eligible_rep_leaves_the_handoff_in_the_fallback_queue(db, frozen_now, rep):
    rep.out_of_office_from = date(2026, 3, 9)
    rep.out_of_office_until = date(2026, 3, 13)
    rep.save()
    lead = icp_lead()
    record(lead, "demo_request", 1)
    record(lead, "pricing_page", 2)
    services.lead_rescore(lead_id=lead.pk)
    assert Handoff.objects.get(lead=lead).assignee is None


def test_round_robin_skips_reps_at_capacity(db, frozen_now):
    users = get_user_model().objects
    busy = SalesRep.objects.create(user=users.create_user("rep.busy"), capacity=1)
    free = SalesRep.objects.create(user=users.create_user("rep.free"), capacity=5)
    assignees = []
    for _ in range(3):
        lead = icp_lead()
        record(lead, "demo_request", 1)
        record(lead, "pricing_page", 2)
        services.lead_rescore(lead_id=lead.pk)
        assignees.append(Handoff.objects.get(lead=lead).assignee)
    assert assignees == [busy.user, free.user, free.user]


def test_a_burst_of_moves_is_spread_evenly_over_the_reps_in_few_queries(
    db, frozen_now, django_assert_max_num_queries
):
    """A publish that moves many leads at once: one round robin over the whole burst (each rep
    at most one more than another, none past capacity), and the queries do not grow with it."""
    users = get_user_model().objects
    reps = [
        SalesRep.objects.create(user=users.create_user(f"rep.{n}"), capacity=cap)
        for n, cap in enumerate([100, 100, 100, 3])
    ]
    leads = []
    for n in range(30):
        lead = icp_lead(email=f"buyer{n}@acme.example")
        record(lead, "demo_request", 1, prefix=f"b{n}")
        record(lead, "pricing_page", 2, prefix=f"p{n}")
        leads.append(lead)
    services.leads_rescore(lead_ids=[lead.pk for lead in leads])
    with django_assert_max_num_queries(40):
        moved = services.threshold_moves_apply(lead_ids=[lead.pk for lead in leads])
    assert moved == 30
    counts = Counter(Handoff.objects.values_list("assignee__username", flat=True))
    assert counts["rep.3"] == 3  # capped, the rest spread over the others
    assert sorted(counts[rep.user.username] for rep in reps[:3]) == [9, 9, 9]
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list(
        "stage", flat=True)) == {"mql"}  # fmt: skip
    # The line goes on where the burst stopped: the next pick is the rep picked longest ago.
    last = Handoff.objects.order_by("-pk").first().assignee
    following = sales_rep_pick(lead=leads[0], at=NOW)
    assert following.user != last


def test_a_burst_moved_in_several_transactions_keeps_one_rotation(db, frozen_now, monkeypatch):
    monkeypatch.setattr(services, "MOVE_TRANSACTION", 1)
    users = get_user_model().objects
    for n in range(4):
        SalesRep.objects.create(user=users.create_user(f"rep.{n}"), capacity=100)
    leads = []
    for n in range(10):
        lead = icp_lead(email=f"buyer{n}@acme.example")
        record(lead, "demo_request", 1, prefix=f"b{n}")
        record(lead, "pricing_page", 2, prefix=f"p{n}")
        leads.append(lead)
    services.leads_rescore(lead_ids=[lead.pk for lead in leads])
    assert services.threshold_moves_apply(lead_ids=[lead.pk for lead in leads]) == 10
    in_order = list(Handoff.objects.order_by("pk").values_list("assignee__username", flat=True))
    # One line across ten transactions at one instant: rep.0, rep.1, rep.2, rep.3, rep.0, …
    assert in_order == [f"rep.{n % 4}" for n in range(10)]


def test_a_lead_in_a_sales_stage_does_not_fall_back_or_move_on_score(db, frozen_now):
    lead = icp_lead(stage="sal")
    record(lead, "demo_request", 1)
    record(lead, "pricing_page", 2)
    services.lead_rescore(lead_id=lead.pk)
    lead.refresh_from_db()
    assert lead.stage == "sal"


def test_a_nurtured_lead_can_cross_again(db, frozen_now, rep):
    lead = icp_lead(stage="nurture")
    record(lead, "demo_request", 1)
    record(lead, "pricing_page", 2)
    services.lead_rescore(lead_id=lead.pk)
    lead.refresh_from_db()
    assert lead.stage == "mql"


def test_decay_lowers_scores_as_days_pass(db, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    lead = icp_lead()
    record(lead, "webinar_attended", 1)
    services.lead_rescore(lead_id=lead.pk)
    thirty_days_later = NOW + timedelta(days=30)
    monkeypatch.setattr(timezone, "now", lambda: thirty_days_later)
    job = services.decay_job_create_if_due()
    for chunk in job.chunks.all():
        services.rescore_chunk_run(chunk_id=chunk.pk)
    lead.refresh_from_db()
    assert score(lead).engagement == 5.0  # 10 points, one half-life later
    assert services.decay_job_create_if_due() is None  # already current today


def publish_new_weights(**changes) -> ScoringModel:
    draft = definition_create_draft(
        model=ScoringModel, actor=None, copy_from=ScoringModel.objects.get(number=1)
    )
    for kind, points in changes.items():
        draft.weights.filter(kind=kind).update(points=points)
    return draft


def test_publishing_a_model_rescores_every_lead_from_stored_sums(
    db, frozen_now, django_capture_on_commit_callbacks
):
    leads = [icp_lead() for _ in range(3)]
    for lead in leads:
        record(lead, "page_view", 3)
        services.lead_rescore(lead_id=lead.pk)
    draft = publish_new_weights(page_view=4)
    with (
        mock.patch.object(tasks, "enqueue_job") as enqueue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        definition_publish(version=draft, actor=None, effective_from=NOW - timedelta(minutes=1))
    job = RescoreJob.objects.get()
    enqueue.assert_called_once_with(job.pk)
    with mock.patch.object(services.bulk, "reread_sums", wraps=services.bulk.reread_sums) as reread:
        for chunk in job.chunks.all():
            services.rescore_chunk_run(chunk_id=chunk.pk)
    job.refresh_from_db()
    assert job.status == "done"
    assert services.job_progress(job)["percent"] == 100
    for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads]):
        assert score(lead).engagement == 12.0
        state = LeadScoreState.objects.get(lead=lead)
        assert state.scoring_model_id == draft.pk
    # Same half-life and caps: the sums were reused, no event was re-read.
    assert all(call.kwargs["keep_sums_of"] for call in reread.call_args_list)
    assert LeadScoreState.objects.filter(sums_model__number=1).count() == 3


def test_a_job_sends_its_chunks_newest_leads_first(db, monkeypatch):
    """The newest leads carry the most recent engagement, so most threshold crossings (the
    dearest part of a chunk): sent first, the heavy chunks start at once on every worker and
    the light ones fill in at the end, instead of one worker finishing the heaviest alone."""
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    monkeypatch.setattr(services, "BUCKET_SIZE", 2)
    for _ in range(5):
        LeadFactory()
    job = services.rescore_job_create(reason="manual")
    with mock.patch.object(tasks.run_rescore_chunk, "delay") as send:
        tasks.enqueue_job(job.pk)
    sent = [call.args[0] for call in send.call_args_list]
    newest_first = job.chunks.order_by("-first_lead_id").values_list("pk", flat=True)
    assert len(sent) == 3
    assert sent == list(newest_first)


def test_changing_the_half_life_rereads_events(db, frozen_now):
    lead = icp_lead()
    record(lead, "webinar_attended", 1, at=NOW - timedelta(days=10))
    services.lead_rescore(lead_id=lead.pk)
    draft = definition_create_draft(
        model=ScoringModel, actor=None, copy_from=ScoringModel.objects.get(number=1)
    )
    ScoringModel.objects.filter(pk=draft.pk).update(half_life_days=10)
    definition_publish(version=draft, actor=None, effective_from=NOW - timedelta(minutes=1))
    job = RescoreJob.objects.get()
    for chunk in job.chunks.all():
        services.rescore_chunk_run(chunk_id=chunk.pk)
    lead.refresh_from_db()
    assert score(lead).engagement == 5.0
    assert LeadScoreState.objects.get(lead=lead).sums_model_id == draft.pk


def test_publishing_an_icp_refits_every_lead_and_running_it_twice_changes_nothing(db, frozen_now):
    lead = icp_lead()
    services.lead_rescore(lead_id=lead.pk)
    old_fit = score(lead).fit_points
    draft = definition_create_draft(
        model=IcpVersion, actor=None, copy_from=IcpVersion.objects.get(number=1)
    )
    draft.criteria.filter(name="Target industry").update(points=30)
    definition_publish(version=draft, actor=None, effective_from=NOW - timedelta(minutes=1))
    job = RescoreJob.objects.get()
    chunk = job.chunks.get()
    services.rescore_chunk_run(chunk_id=chunk.pk)
    lead.refresh_from_db()
    assert score(lead).fit_points == old_fit + 20
    assert LeadScoreState.objects.get(lead=lead).icp_version_id == draft.pk
    # A second delivery of the same chunk message finds the watermark at the end; a second job
    # finds every row current and writes nothing.
    before = LeadScoreState.objects.filter(lead=lead).values().get()
    assert services.rescore_chunk_run(chunk_id=chunk.pk) == 0
    again = services.rescore_job_create(reason="manual")
    with mock.patch.object(services.bulk, "refit_in_sql") as refit:
        services.rescore_chunk_run(chunk_id=again.chunks.get().pk)
    refit.assert_not_called()
    assert LeadScoreState.objects.filter(lead=lead).values().get() == before


def test_bulk_rescore_matches_the_engine_for_leads_never_scored(db, frozen_now):
    leads = [icp_lead() for _ in range(4)]
    record(leads[0], "content_download", 7)
    record(leads[1], "unsubscribe", 1)
    record(leads[2], "email_click", 4, at=NOW - timedelta(days=45))
    job = services.rescore_job_create(reason="manual")
    for chunk in job.chunks.all():
        services.rescore_chunk_run(chunk_id=chunk.pk)
    bulk_scores = {
        lead.pk: (
            score(lead).fit_points,
            score(lead).engagement,
            score(lead).total,
            score(lead).grade,
        )
        for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads])
    }
    for lead in leads:
        result = services.lead_rescore(lead_id=lead.pk)
        assert bulk_scores[lead.pk] == (
            result.fit.points,
            result.engagement,
            result.total,
            result.grade,
        )


def test_sweep_rescores_leads_whose_message_was_lost(
    db, frozen_now, django_capture_on_commit_callbacks, settings
):
    lead = icp_lead()

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    with (
        mock.patch.object(tasks.rescore_leads, "delay", side_effect=broker_down),
        django_capture_on_commit_callbacks(execute=True),
    ):
        stored, _ = record(lead, "demo_request", 1)
    assert stored  # the event was kept although the broker was down
    assert LeadScoreState.objects.get(lead=lead).is_dirty
    # The send failed, so the next sweep (the broker is back) sends it at once.
    assert tasks.sweep_scoring() == {"requeued": 1, "stalled_chunks": 0, "moved": 0}
    state = LeadScoreState.objects.get(lead=lead)
    assert not state.is_dirty
    assert score(lead).engagement == 30.0
    # Once rescored, the next sweep has nothing to re-send.
    assert tasks.sweep_scoring()["requeued"] == 0


def test_sweep_leaves_queued_rescores_alone_and_resends_lost_ones(
    db, frozen_now, django_capture_on_commit_callbacks, settings
):
    lead = icp_lead()
    with (
        mock.patch.object(tasks.rescore_leads, "delay") as sent,
        django_capture_on_commit_callbacks(execute=True),
    ):
        record(lead, "demo_request", 1)
    sent.assert_called_once_with([lead.pk])
    # Sent, and still waiting in the queue: the sweep sends nothing twice.
    assert tasks.sweep_scoring()["requeued"] == 0
    assert LeadScoreState.objects.get(lead=lead).is_dirty
    # Sent longer ago than the re-send period and still dirty: lost; sent again, once.
    age_enqueued_at(lead, seconds=settings.SCORING_REQUEUE_AFTER_SECONDS + 1)
    with mock.patch.object(tasks.rescore_leads, "delay") as resent:
        assert tasks.sweep_scoring()["requeued"] == 1
        assert tasks.sweep_scoring()["requeued"] == 0
    resent.assert_called_once_with([lead.pk])


def age_enqueued_at(lead, *, seconds: int) -> None:
    LeadScoreState.objects.filter(lead=lead).update(enqueued_at=Now() - timedelta(seconds=seconds))


def test_day_number_is_the_utc_date():
    assert engine.day_number(datetime(1970, 1, 2, 23, 59, tzinfo=UTC)) == 1


def test_events_arriving_during_a_full_rescore_end_with_the_right_score(
    db, frozen_now, monkeypatch, settings
):
    """One event lands in a bucket the job already finished, one in a bucket still ahead:
    after the job and the incremental rescores, every lead scores exactly as the engine says."""
    monkeypatch.setattr(services, "BUCKET_SIZE", 2)
    monkeypatch.setattr(services, "CHUNK_SIZE", 100)
    leads = [icp_lead() for _ in range(6)]
    for lead in leads:
        record(lead, "page_view", 2)
    original = services.bulk.bring_up_to_date
    calls = []

    def with_events_arriving(lo, hi, **kwargs):
        rows = original(lo, hi, **kwargs)
        calls.append((lo, hi))
        if len(calls) == 1:
            record(leads[0], "webinar_attended", 1, prefix="during")  # bucket already done
            record(leads[-1], "form_fill", 1, prefix="during")  # bucket still ahead
        return rows

    monkeypatch.setattr(services.bulk, "bring_up_to_date", with_events_arriving)
    job = services.rescore_job_create(reason="manual")
    for chunk in job.chunks.all():
        services.rescore_chunk_run(chunk_id=chunk.pk)
    assert len(calls) >= 3
    # Their rescore messages (never sent here: on-commit callbacks do not run in this test) are
    # lost; once that is long ago, the sweep sends them again.
    for lead in leads:
        age_enqueued_at(lead, seconds=settings.SCORING_REQUEUE_AFTER_SECONDS + 1)
    tasks.sweep_scoring()
    assert (
        not LeadScoreState.objects.filter(lead__in=leads, pending_seq__gt=0)
        .exclude(scored_seq__gte=models.F("pending_seq"))
        .exists()
    )
    final = {
        lead.pk: score(lead).total
        for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads])
    }
    expected = {lead.pk: services.lead_rescore(lead_id=lead.pk).total for lead in leads}
    assert final == expected
    assert final[leads[0].pk] == score(leads[0]).fit_points + 2 + 10
