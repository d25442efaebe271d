"""Backtest workflows: start a simulation of a draft, run it chunk by chunk (resumable, safe to
run twice), sum it up, and publish the draft through the normal publish.

Nothing here writes a score state, a lead, a stage transition or a handoff: a backtest's only
writes are its own ``Backtest`` and ``BacktestLead`` rows.
"""

import logging
from datetime import UTC, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from leads.choices import DefinitionStatus
from leads.models import IcpVersion, Lead
from leads.selectors import icp_in_force, lifecycle_at
from leads.services import definition_publish
from scoring import engine
from scoring.backtest import simulate, specs
from scoring.backtest.models import Backtest, BacktestLead
from scoring.backtest.selectors import (
    lead_records,
    outcome_rows,
)
from scoring.models import ScoringModel
from scoring.selectors import icp_spec, scoring_model_in_force, scoring_spec

logger = logging.getLogger(__name__)

BATCH_SIZE = 2_000
SIDES = ("current", "draft")


def required_permissions(*, draft_icp: bool, draft_model: bool) -> list[str]:
    """Running (or publishing) a backtest's drafts = changing those definitions."""
    perms = []
    if draft_icp:
        perms.append("leads.change_icpversion")
    if draft_model:
        perms.append("scoring.change_scoringmodel")
    return perms


def _ensure_allowed(actor, perms: list[str]) -> None:
    if actor is not None and not actor.has_perms(perms):
        raise PermissionDenied("You may not simulate or publish this definition.")


def draft_fingerprint(*, draft_icp: IcpVersion | None, draft_model: ScoringModel | None) -> str:
    """A digest of the drafts as they are now: differs from a backtest's once a draft is edited."""
    return specs.fingerprint(
        {
            "icp": specs.icp_to_json(icp_spec(draft_icp)) if draft_icp is not None else None,
            "model": specs.scoring_to_json(scoring_spec(draft_model))
            if draft_model is not None
            else None,
        }
    )


def _draft_side(draft_icp, draft_model, current_icp, current_model) -> dict:
    icp = draft_icp or current_icp
    model = draft_model or current_model
    return {
        "icp": specs.icp_to_json(icp_spec(icp)) if icp is not None else None,
        "model": specs.scoring_to_json(scoring_spec(model)) if model is not None else None,
        "drafts": {
            "icp": draft_icp.pk if draft_icp is not None else None,
            "model": draft_model.pk if draft_model is not None else None,
        },
    }


def backtest_start(
    *,
    actor: AbstractBaseUser | None,
    draft_icp: IcpVersion | None = None,
    draft_model: ScoringModel | None = None,
) -> Backtest:
    """Freeze both sides' definitions, count the leads and enqueue the run on commit."""
    if draft_icp is None and draft_model is None:
        raise ValidationError("Pick a draft ICP, a draft scoring model or both to simulate.")
    _ensure_allowed(
        actor,
        required_permissions(draft_icp=draft_icp is not None, draft_model=draft_model is not None),
    )
    for draft in (draft_icp, draft_model):
        if draft is not None and draft.status != DefinitionStatus.DRAFT:
            raise ValidationError(
                f"{draft.label} v{draft.number} is already published: only drafts are simulated."
            )
    current_icp = icp_in_force()
    current_model = scoring_model_in_force()
    if current_icp is None or current_model is None:
        raise ValidationError(
            "Publish an ICP and a scoring model first: there is nothing to compare the draft with."
        )
    current = {
        "icp": specs.icp_to_json(icp_spec(current_icp)),
        "model": specs.scoring_to_json(scoring_spec(current_model)),
    }
    draft = _draft_side(draft_icp, draft_model, current_icp, current_model)
    if draft["icp"]["criteria"] == [] and draft_icp is not None:
        raise ValidationError(f"ICP v{draft_icp.number} has no criteria yet: add some first.")
    with transaction.atomic():
        bounds = Lead.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
        threshold = lifecycle_at().handoff_threshold
        backtest = Backtest.objects.create(
            draft_icp=draft_icp,
            draft_model=draft_model,
            current_icp=current_icp,
            current_model=current_model,
            current_spec=current,
            draft_spec=draft,
            draft_fingerprint=draft_fingerprint(draft_icp=draft_icp, draft_model=draft_model),
            mql_threshold=float(threshold) if threshold is not None else None,
            as_of_day=engine.day_number(timezone.now()),
            first_lead_id=bounds["lo"] or 0,
            next_lead_id=bounds["lo"] or 0,
            last_lead_id=bounds["hi"] if bounds["hi"] is not None else -1,
            total_leads=Lead.objects.count(),
            tallies=_empty_tallies(),
            created_by=actor,
        )
        from scoring.backtest.tasks import enqueue_backtest

        transaction.on_commit(lambda: enqueue_backtest(backtest.pk))
    return backtest


def _empty_tallies() -> dict:
    side = {"eligible": 0, "tiers": {tier: 0 for tier in "ABCD"}, "weekly": [0] * 52}
    return {
        "current": {**side, "tiers": dict(side["tiers"]), "weekly": list(side["weekly"])},
        "draft": {**side, "tiers": dict(side["tiers"]), "weekly": list(side["weekly"])},
        "tier_changed": 0,
        "becomes_eligible": 0,
        "stops_eligible": 0,
        "would_move_now": 0,
    }


def backtest_run(*, backtest_id: int, on_progress=None) -> Backtest | None:
    """Simulate batch by batch from the watermark; each batch replaces its own result rows and
    advances the watermark and tallies in one transaction, so a crash loses at most the batch
    under way and running twice counts nothing twice. Finishes with the summary."""
    sides: dict | None = None
    while True:
        with transaction.atomic():
            backtest = Backtest.objects.select_for_update().filter(pk=backtest_id).first()
            if backtest is None or not backtest.is_running:
                return backtest
            if backtest.next_lead_id > backtest.last_lead_id:
                _finish(backtest)
                return backtest
            if sides is None:
                sides = _sides(backtest)
            lo = backtest.next_lead_id
            hi = min(lo + BATCH_SIZE - 1, backtest.last_lead_id)
            _simulate_batch(backtest, sides, lo, hi)
            backtest.next_lead_id = hi + 1
            backtest.save(update_fields=["next_lead_id", "processed", "tallies", "updated_at"])
        if on_progress is not None:
            on_progress(backtest)


def _sides(backtest: Backtest) -> dict:
    lifecycle = lifecycle_at()
    weeks = simulate.week_starts(backtest.as_of_day)
    current_model = specs.scoring_from_json(backtest.current_spec["model"])
    draft_model = specs.scoring_from_json(backtest.draft_spec["model"])
    return {
        "current": (specs.icp_from_json(backtest.current_spec["icp"]), current_model),
        "draft": (specs.icp_from_json(backtest.draft_spec["icp"]), draft_model),
        "same_model": current_model == draft_model,
        "movable": frozenset(lifecycle.score_movable_keys),
        "weeks": weeks,
    }


def _simulate_batch(backtest: Backtest, sides: dict, lo: int, hi: int) -> None:
    # The day's end: every event of the simulated day counts, as it does for the engine.
    day_end = datetime.combine(
        engine.EPOCH + timedelta(days=backtest.as_of_day + 1), time.min, tzinfo=UTC
    )
    records = lead_records(lo=lo, hi=hi, as_of=day_end)
    threshold = backtest.mql_threshold
    tallies = backtest.tallies
    rows = []
    first_days: dict[str, list[int | None]] = {"current": [], "draft": []}
    for record in records:
        replays = {}
        series = None
        for side in SIDES:
            icp, spec = sides[side]
            # Replaying the events is most of a lead's cost: done once when only the ICP differs.
            if series is None or not sides["same_model"]:
                series = simulate.engagement_series(
                    spec,
                    record.facts.email,
                    record.counts,
                    created_day=record.created_day,
                    as_of_day=backtest.as_of_day,
                )
            replay = simulate.replay_with_fit(
                engine.fit(icp, record.facts),
                series,
                as_of_day=backtest.as_of_day,
                mql_threshold=threshold,
                cutoff_day=record.first_handoff_day,
            )
            replays[side] = replay
            tally = tallies[side]
            tally["tiers"][replay.tier] += 1
            tally["eligible"] += replay.is_mql_eligible(threshold)
            first_days[side].append(replay.first_mql_day)
        current, draft = replays["current"], replays["draft"]
        current_eligible = current.is_mql_eligible(threshold)
        draft_eligible = draft.is_mql_eligible(threshold)
        tier_changed = current.tier != draft.tier
        movable = record.stage in sides["movable"]
        tallies["tier_changed"] += tier_changed
        tallies["becomes_eligible"] += draft_eligible and not current_eligible
        tallies["stops_eligible"] += current_eligible and not draft_eligible
        tallies["would_move_now"] += movable and draft_eligible and not current_eligible
        changed = tier_changed or current_eligible != draft_eligible
        if changed or record.outcome:
            rows.append(
                BacktestLead(
                    backtest=backtest,
                    lead_id=record.lead_id,
                    current_total=current.total_today,
                    draft_total=draft.total_today,
                    current_tier=current.tier,
                    draft_tier=draft.tier,
                    current_eligible=current_eligible,
                    draft_eligible=draft_eligible,
                    current_peak=current.peak_total,
                    draft_peak=draft.peak_total,
                    current_reached=current.reached_threshold(threshold),
                    draft_reached=draft.reached_threshold(threshold),
                    changed=changed,
                    movable=movable,
                    outcome=record.outcome,
                )
            )
    for side in SIDES:
        weekly = simulate.weekly_counts(first_days[side], sides["weeks"])
        tallies[side]["weekly"] = [
            a + b for a, b in zip(tallies[side]["weekly"], weekly, strict=True)
        ]
    # Rows of a batch a crashed run had written are replaced, never added to.
    BacktestLead.objects.filter(backtest=backtest, lead__gte=lo, lead__lte=hi).delete()
    BacktestLead.objects.bulk_create(rows, batch_size=1_000)
    backtest.processed += len(records)
    backtest.tallies = tallies


def _finish(backtest: Backtest) -> None:
    backtest.summary = backtest_summary(backtest)
    backtest.status = Backtest.Status.DONE
    backtest.finished_at = timezone.now()
    backtest.save(update_fields=["summary", "status", "finished_at", "updated_at"])


def backtest_summary(backtest: Backtest) -> dict:
    """Both columns' figures, as JSON: counts today, MQLs per week, outcome metrics."""
    rows = outcome_rows(backtest)
    labels = [row[4] for row in rows]
    columns = {}
    for index, side in enumerate(SIDES):
        metrics = simulate.outcome_metrics(
            [row[index] for row in rows], [row[2 + index] for row in rows], labels
        )
        tally = backtest.tallies[side]
        columns[side] = {
            "eligible": tally["eligible"],
            "tiers": tally["tiers"],
            "weekly": tally["weekly"],
            "mqls_12_months": sum(tally["weekly"]),
            "outcome_leads": metrics.leads,
            "won": metrics.won,
            "bands": [
                {"label": b.label, "leads": b.leads, "won": b.won, "rate": simulate.rounded(b.rate)}
                for b in metrics.bands
            ],
            "precision": simulate.rounded(metrics.classification.precision),
            "recall": simulate.rounded(metrics.classification.recall),
            "auc": simulate.rounded(metrics.auc),
            "flagged": metrics.classification.true_positives
            + metrics.classification.false_positives,
            "missed_wins": metrics.missed_wins,
        }
    weeks = simulate.week_starts(backtest.as_of_day)
    return {
        "columns": columns,
        "weeks": [(engine.EPOCH + timedelta(days=monday)).isoformat() for monday in weeks],
        "changes": {
            key: backtest.tallies[key]
            for key in ("tier_changed", "becomes_eligible", "stops_eligible", "would_move_now")
        },
    }


def backtest_fail(*, backtest_id: int, error: str) -> None:
    Backtest.objects.filter(pk=backtest_id, status=Backtest.Status.RUNNING).update(
        status=Backtest.Status.FAILED, error=error[:2000], updated_at=timezone.now()
    )


def backtest_resume(*, backtest: Backtest, actor: AbstractBaseUser | None) -> Backtest:
    """Start a stalled or failed backtest again from its watermark (nothing is counted twice)."""
    _ensure_allowed(
        actor,
        required_permissions(
            draft_icp=backtest.draft_icp_id is not None,
            draft_model=backtest.draft_model_id is not None,
        ),
    )
    with transaction.atomic():
        Backtest.objects.filter(pk=backtest.pk, status=Backtest.Status.FAILED).update(
            status=Backtest.Status.RUNNING, error="", updated_at=timezone.now()
        )
        from scoring.backtest.tasks import enqueue_backtest

        transaction.on_commit(lambda: enqueue_backtest(backtest.pk))
    backtest.refresh_from_db()
    return backtest


def backtest_progress(backtest: Backtest, *, stalled_after_seconds: int = 120) -> dict:
    total = max(backtest.total_leads, 1)
    stalled = (
        backtest.is_running
        and backtest.updated_at is not None
        and timezone.now() - backtest.updated_at > timedelta(seconds=stalled_after_seconds)
    )
    return {
        "backtest": backtest.pk,
        "status": backtest.status,
        "processed": backtest.processed,
        "total": backtest.total_leads,
        "percent": 100
        if backtest.status == Backtest.Status.DONE
        else min(99, backtest.processed * 100 // total),
        "stalled": stalled,
    }


def stalled_backtest_ids(*, older_than_seconds: int) -> list[int]:
    """Running backtests nobody advanced lately: their worker died or their message was lost."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        Backtest.objects.filter(status=Backtest.Status.RUNNING, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )


def backtest_publish_draft(
    *, backtest: Backtest, which: str, actor: AbstractBaseUser | None
) -> IcpVersion | ScoringModel:
    """Publish one of the backtest's drafts with the normal publish (and its rescore)."""
    drafts = {"icp": backtest.draft_icp, "model": backtest.draft_model}
    if which not in drafts or drafts[which] is None:
        raise ValidationError("This backtest has no such draft to publish.")
    version = drafts[which]
    _ensure_allowed(
        actor, required_permissions(draft_icp=which == "icp", draft_model=which == "model")
    )
    return definition_publish(version=version, actor=actor)
