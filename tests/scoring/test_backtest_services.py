"""Backtests: the figures of a small hand-computed world, nothing live changes, re-runs and
crashes count nothing twice."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from leads.choices import DefinitionStatus
from leads.models import Handoff, IcpVersion, Lead, StageTransition
from leads.services import definition_create_draft
from scoring.backtest import services
from scoring.backtest.models import Backtest, BacktestLead
from scoring.models import LeadScoreState, RescoreJob
from scoring.selectors import scoring_model_in_force
from scoring.services import rescore_chunk_run
from tests.factories import UserFactory
from tests.scoring.backtest_world import build_world, draft_model_doubling_demo_requests

pytestmark = pytest.mark.django_db


def live_snapshot() -> dict:
    states = LeadScoreState.objects.order_by("lead_id").values_list(
        "lead_id", "total", "tier", "engagement", "fit_points", "grade", "scored_at",
        "icp_version_id", "scoring_model_id",
    )  # fmt: skip
    return {
        "leads": list(Lead.objects.order_by("pk").values_list("pk", "stage", "tier", "updated_at")),
        "handoffs": list(Handoff.objects.order_by("pk").values_list("pk", "outcome", "revision")),
        "transitions": StageTransition.objects.count(),
        "states": list(states),
    }


def run(draft_model=None, draft_icp=None, actor=None, capture=None) -> Backtest:
    with capture(execute=True):
        backtest = services.backtest_start(
            actor=actor, draft_model=draft_model, draft_icp=draft_icp
        )
    backtest.refresh_from_db()
    return backtest


@pytest.fixture
def world():
    return build_world()


def test_the_simulation_changes_nothing_live(world, django_capture_on_commit_callbacks):
    before = live_snapshot()
    assert len(before["states"]) == 4
    backtest = run(draft_model_doubling_demo_requests(), capture=django_capture_on_commit_callbacks)
    assert backtest.status == Backtest.Status.DONE
    assert backtest.summary["changes"]["would_move_now"] == 1  # it would move someone…
    assert live_snapshot() == before  # …but moved no one and rescored nothing


def test_both_columns_of_the_hand_computed_world(world, django_capture_on_commit_callbacks):
    backtest = run(draft_model_doubling_demo_requests(), capture=django_capture_on_commit_callbacks)
    current = backtest.summary["columns"]["current"]
    draft = backtest.summary["columns"]["draft"]
    assert backtest.processed == backtest.total_leads == 4
    assert (current["eligible"], draft["eligible"]) == (1, 2)  # warm; hot and warm
    assert current["tiers"] == draft["tiers"] == {"A": 0, "B": 4, "C": 0, "D": 0}
    # Each first reached 65 today: the last week of the 52.
    assert current["weekly"][-1] == 1 and draft["weekly"][-1] == 2
    assert (current["mqls_12_months"], draft["mqls_12_months"]) == (1, 2)
    assert backtest.summary["changes"] == {
        "tier_changed": 0,
        "becomes_eligible": 1,
        "stops_eligible": 0,
        "would_move_now": 1,
    }
    # Known outcomes: hot won (55 / 85), warm lost (69), cold rejected (26).
    assert (current["outcome_leads"], current["won"]) == (3, 1)
    assert (current["precision"], current["recall"], current["missed_wins"]) == (0, 0, 1)
    assert (draft["precision"], draft["recall"], draft["missed_wins"]) == (0.5, 1, 0)
    assert (current["auc"], draft["auc"]) == (0.5, 1.0)
    by_band = {band["label"]: (band["leads"], band["won"]) for band in current["bands"]}
    assert by_band["40–60"] == (1, 1) and by_band["60–80"] == (1, 0) and by_band["20–40"] == (1, 0)
    draft_bands = {band["label"]: (band["leads"], band["won"]) for band in draft["bands"]}
    assert draft_bands["80–100"] == (1, 1) and draft_bands["40–60"] == (0, 0)


def test_the_drill_down_holds_the_leads_that_change(world, django_capture_on_commit_callbacks):
    backtest = run(draft_model_doubling_demo_requests(), capture=django_capture_on_commit_callbacks)
    changed = BacktestLead.objects.get(backtest=backtest, changed=True)
    assert changed.lead_id == world["hot"].pk
    assert (changed.current_total, changed.draft_total) == (55, 85)
    assert (changed.current_eligible, changed.draft_eligible, changed.movable) == (
        False,
        True,
        True,
    )
    # Outcome rows for the metrics; the quiet lead (no change, no outcome) is not stored.
    assert not BacktestLead.objects.filter(backtest=backtest, lead=world["quiet"]).exists()


def test_a_draft_icp_changes_tiers(world, django_capture_on_commit_callbacks):
    draft = definition_create_draft(
        model=IcpVersion, actor=None, copy_from=IcpVersion.objects.get(number=1)
    )
    draft.criteria.filter(name="Target industry").update(points=30)  # fit 45: tier A
    backtest = run(draft_icp=draft, capture=django_capture_on_commit_callbacks)
    summary = backtest.summary
    assert summary["columns"]["draft"]["tiers"]["A"] == 4
    assert summary["changes"]["tier_changed"] == 4
    # 45 + engagement: cold (46) and quiet (45) stay below 65; hot reaches 75.
    assert summary["columns"]["draft"]["eligible"] == 2
    assert backtest.subject == "ICP v2 (draft) + scoring model v1"


def test_running_twice_or_after_a_crash_counts_nothing_twice(
    world, django_capture_on_commit_callbacks, monkeypatch
):
    draft = draft_model_doubling_demo_requests()
    reference = run(draft, capture=django_capture_on_commit_callbacks)

    monkeypatch.setattr(services, "BATCH_SIZE", 1)
    monkeypatch.setattr("scoring.backtest.tasks.enqueue_backtest", lambda backtest_id: None)
    backtest = services.backtest_start(actor=None, draft_model=draft)

    class WorkerDied(Exception):
        pass

    def die_after_two_batches(progress):
        if progress.processed == 2:
            raise WorkerDied

    with pytest.raises(WorkerDied):
        services.backtest_run(backtest_id=backtest.pk, on_progress=die_after_two_batches)
    backtest.refresh_from_db()
    assert backtest.status == Backtest.Status.RUNNING and backtest.processed == 2
    services.backtest_run(backtest_id=backtest.pk)  # the sweep's redelivery
    services.backtest_run(backtest_id=backtest.pk)  # and a duplicate message
    backtest.refresh_from_db()
    assert backtest.status == Backtest.Status.DONE
    assert backtest.processed == 4
    assert backtest.summary == reference.summary
    assert backtest.leads.count() == reference.leads.count()


def test_a_stalled_backtest_is_found_by_the_sweep(world):
    draft = draft_model_doubling_demo_requests()
    backtest = services.backtest_start(actor=None, draft_model=draft)  # never enqueued
    assert services.stalled_backtest_ids(older_than_seconds=3600) == []
    Backtest.objects.filter(pk=backtest.pk).update(
        updated_at=backtest.updated_at - timedelta(hours=2)
    )
    assert services.stalled_backtest_ids(older_than_seconds=3600) == [backtest.pk]
    assert services.backtest_progress(Backtest.objects.get(pk=backtest.pk))["stalled"] is True


def test_only_drafts_and_only_with_the_permission(world):
    with pytest.raises(ValidationError):
        services.backtest_start(actor=None)
    published = IcpVersion.objects.get(number=1)
    with pytest.raises(ValidationError, match="already published"):
        services.backtest_start(actor=None, draft_icp=published)
    viewer = UserFactory()
    with pytest.raises(PermissionDenied):
        services.backtest_start(actor=viewer, draft_model=draft_model_doubling_demo_requests())
    assert not Backtest.objects.exists()


def test_publishing_from_a_backtest_is_the_normal_publish(
    world, django_capture_on_commit_callbacks
):
    draft = draft_model_doubling_demo_requests()
    backtest = run(draft, capture=django_capture_on_commit_callbacks)
    services.backtest_publish_draft(backtest=backtest, which="model", actor=None)
    draft.refresh_from_db()
    assert draft.status == DefinitionStatus.PUBLISHED
    assert scoring_model_in_force() == draft
    # The normal publish starts the rescore of every lead: hot becomes 85.
    job = RescoreJob.objects.get(reason=RescoreJob.Reason.MODEL_PUBLISHED)
    for chunk_id in job.chunks.values_list("pk", flat=True):
        rescore_chunk_run(chunk_id=chunk_id)
    assert LeadScoreState.objects.get(lead=world["hot"]).total == 85
    with pytest.raises(ValidationError):
        services.backtest_publish_draft(backtest=backtest, which="icp", actor=None)


def test_batch_reads_take_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    from django.utils import timezone

    from scoring.backtest.selectors import lead_records

    # leads, the stages in force, events, first handoffs, and three for the outcome facts
    with django_assert_max_num_queries(9):
        records = lead_records(lo=0, hi=10**9, as_of=timezone.now())
    assert len(records) == 4
    assert connection.vendor in ("postgresql", "sqlite")
