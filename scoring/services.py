"""Scoring workflows: mark leads for a rescore, rescore one lead, run a full rescore, and move
leads whose score crosses a stage threshold.

Concurrency, in one place:

* Recording events bumps ``pending_seq`` of the leads' score states in the same transaction;
  the lead is dirty while ``pending_seq > scored_seq``. Only a clean → dirty change enqueues a
  task (a burst of 100 events ⇒ one task); a sweep re-enqueues dirty leads whose message was lost.
* A rescore (one lead, or a batch of a full recompute) takes a transaction-level advisory lock
  on the lead's *bucket* (``lead_id // BUCKET_SIZE``) on PostgreSQL, so a batch and an
  incremental rescore of the same lead never interleave; SQLite serializes writers anyway.
* A batch writes only rows that are stale (other ICP, model or day), so running a batch or a
  task twice changes nothing the second time.
"""

import logging
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from leads.choices import ActorType, EventKind, StageKind, Team, TriggerType
from leads.models import IcpVersion, Lead, LifecycleStage
from leads.selectors import icp_in_force, stages_in_force
from leads.services import handoff_open, lead_move_to_stage
from scoring import bulk, engine
from scoring.models import LeadScoreState, RescoreChunk, RescoreJob, ScoringModel, sum_field_name
from scoring.selectors import (
    icp_spec,
    lead_event_days,
    lead_facts,
    scoring_model_in_force,
    scoring_spec,
)

logger = logging.getLogger(__name__)

BUCKET_SIZE = 10_000
CHUNK_SIZE = 100_000
ADVISORY_NAMESPACE = 7301  # "scoring" in pg_advisory_xact_lock(namespace, bucket)


def lock_bucket(lead_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NAMESPACE, lead_id // BUCKET_SIZE]
            )


def today_day_number() -> int:
    return engine.day_number(timezone.now())


def compatible_sums_models(model: ScoringModel) -> list[int]:
    """Published models whose half-life and caps equal ``model``'s: their sums stay valid."""
    caps = dict(model.weights.values_list("kind", "daily_cap"))
    compatible = []
    for other in ScoringModel.objects.filter(
        status="published", half_life_days=model.half_life_days
    ).prefetch_related("weights"):
        other_caps = {w.kind: w.daily_cap for w in other.weights.all()}
        if all(other_caps.get(kind) == cap for kind, cap in caps.items()):
            compatible.append(other.pk)
    return compatible


# --- Incremental -------------------------------------------------------------------------


def leads_mark_dirty(*, lead_ids: list[int]) -> list[int]:
    """Record that these leads have new facts; returns the ones that just became dirty (the
    caller enqueues those). Must run inside the transaction that wrote the facts."""
    if not lead_ids:
        return []
    if connection.vendor == "postgresql":
        return _leads_mark_dirty_upsert(lead_ids)
    existing = set(
        LeadScoreState.objects.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True)
    )
    missing = [LeadScoreState(lead_id=pk) for pk in lead_ids if pk not in existing]
    LeadScoreState.objects.bulk_create(missing, ignore_conflicts=True)
    LeadScoreState.objects.filter(lead_id__in=lead_ids).update(pending_seq=F("pending_seq") + 1)
    # Read after the update: our row locks make this exact even while a rescore commits.
    return list(
        LeadScoreState.objects.filter(
            lead_id__in=lead_ids, pending_seq=F("scored_seq") + 1
        ).values_list("lead_id", flat=True)
    )


def leads_mark_dirty_sql() -> str:
    """``leads_mark_dirty`` as one PostgreSQL statement; parameter: an array of lead ids;
    returns (lead id, just became dirty) rows. Also run by the CSV import on its own cursor."""
    opts = LeadScoreState._meta
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    column = {
        name: quote(opts.get_field(name).column)
        for name in ("lead", "pending_seq", "scored_seq", "epoch_day", "as_of_day")
    }
    # Ids in order, so concurrent batches lock rows in the same order (no deadlock).
    return (
        f"INSERT INTO {table} ({column['lead']}, {column['pending_seq']}, "
        f"{column['scored_seq']}, {column['epoch_day']}, {column['as_of_day']}) "
        "SELECT DISTINCT id, 1, 0, 0, 0 FROM unnest(%s::bigint[]) AS ids(id) ORDER BY id "
        f"ON CONFLICT ({column['lead']}) DO UPDATE SET {column['pending_seq']} = "
        f"{table}.{column['pending_seq']} + 1 "
        f"RETURNING {column['lead']}, {column['pending_seq']} = {column['scored_seq']} + 1"
    )


def _leads_mark_dirty_upsert(lead_ids: list[int]) -> list[int]:
    """The same on PostgreSQL in one statement per 10,000 leads: create the missing score
    states and bump the others, returning which just became dirty."""
    became_dirty: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(lead_ids), 10_000):
            cursor.execute(leads_mark_dirty_sql(), [list(lead_ids[start : start + 10_000])])
            became_dirty += [lead_id for lead_id, dirty in cursor.fetchall() if dirty]
    return became_dirty


def lead_rescore(*, lead_id: int, at: datetime | None = None) -> engine.ScoreResult | None:
    """Rescore one lead with the engine from all its events, then apply stage thresholds."""
    at = at or timezone.now()
    with transaction.atomic():
        lock_bucket(lead_id)
        model = scoring_model_in_force(at=at)
        icp_version = icp_in_force(at=at)
        if model is None or icp_version is None:
            return None
        try:
            lead = Lead.objects.select_related("account").get(pk=lead_id)
        except Lead.DoesNotExist:
            return None
        LeadScoreState.objects.get_or_create(lead_id=lead_id)
        state = LeadScoreState.objects.select_for_update().get(lead_id=lead_id)
        spec = scoring_spec(model)
        result = engine.score_lead(
            icp_spec(icp_version),
            spec,
            lead_facts(lead),
            lead_event_days(lead_id),
            as_of_day=engine.day_number(at),
        )
        for kind in EventKind.values:
            setattr(state, sum_field_name(kind), result.sums.get(kind, 0.0))
        state.fit_points = result.fit.points
        state.fit_excluded = result.fit.excluded
        state.tier = result.tier
        state.engagement = result.engagement
        state.total = result.total
        state.grade = result.grade
        state.epoch_day = result.epoch_day
        state.as_of_day = result.as_of_day
        state.icp_version = icp_version
        state.scoring_model = model
        state.sums_model = model
        state.scored_seq = state.pending_seq
        state.scored_at = at
        state.save()
        if lead.tier != result.tier:
            lead.tier = result.tier
            lead.save(update_fields=["tier", "updated_at"])
        lead_apply_thresholds(lead=lead, state=state, model=model, at=at)
    return result


def dirty_lead_ids(*, limit: int) -> list[int]:
    return list(
        LeadScoreState.objects.filter(pending_seq__gt=F("scored_seq"))
        .order_by("lead_id")
        .values_list("lead_id", flat=True)[:limit]
    )


# --- Thresholds --------------------------------------------------------------------------


def score_target_stage(
    *, lead: Lead, state: LeadScoreState, stages: list[LifecycleStage]
) -> tuple[LifecycleStage, int] | None:
    """The furthest score-triggered stage the lead's total reaches, if the lead may move there:
    not a poor fit, and now in an earlier marketing stage or in nurture. Leads in sales stages,
    disqualified, won or lost never move on score (they do not fall back either)."""
    if state.fit_excluded:
        return None
    by_key = {stage.key: stage for stage in stages}
    current = by_key.get(lead.stage)
    if current is None:
        return None
    in_marketing = current.team == Team.MARKETING and current.kind == StageKind.OPEN
    if not (in_marketing or current.kind == StageKind.NURTURE):
        return None
    reached = [
        stage
        for stage in stages
        if stage.trigger_type == TriggerType.SCORE_THRESHOLD
        and stage.kind == StageKind.OPEN
        and stage.trigger_score is not None
        and state.total >= stage.trigger_score
        and (current.kind == StageKind.NURTURE or stage.order > current.order)
        and stage.key != lead.stage
    ]
    if not reached:
        return None
    target = max(reached, key=lambda stage: stage.order)
    return target, target.trigger_score


def lead_apply_thresholds(
    *, lead: Lead, state: LeadScoreState, model: ScoringModel, at: datetime
) -> bool:
    """Move the lead to the stage its score reached (and open the handoff that stage starts)."""
    target = score_target_stage(lead=lead, state=state, stages=stages_in_force(at=at))
    if target is None:
        return False
    stage, threshold = target
    with transaction.atomic():
        lead_move_to_stage(
            lead=lead,
            to_stage=stage.key,
            actor_type=ActorType.SCORING,
            reason=f"score {state.total:g} ≥ {threshold} under scoring model v{model.number}",
            at=at,
        )
        if stage.opens_handoff:
            handoff_open(lead=lead, stage_key=stage.key, at=at)
    return True


def leads_apply_thresholds(*, lead_ids: list[int]) -> int:
    """For leads rescored in bulk: move each one whose score reached a stage. Returns moves."""
    at = timezone.now()
    model = scoring_model_in_force(at=at)
    if model is None:
        return 0
    moved = 0
    for lead_id in lead_ids:
        with transaction.atomic():
            lock_bucket(lead_id)
            lead = (
                Lead.objects.select_related("account", "score_state")
                .select_for_update(of=("self",))
                .filter(pk=lead_id)
                .first()
            )
            if lead is None or not hasattr(lead, "score_state"):
                continue
            if lead_apply_thresholds(lead=lead, state=lead.score_state, model=model, at=at):
                moved += 1
    return moved


def threshold_candidates(*, lo: int, hi: int, at: datetime) -> list[int]:
    """Leads of a range whose score may move them (checked again, lead by lead, when applied)."""
    stages = stages_in_force(at=at)
    thresholds = [
        s.trigger_score
        for s in stages
        if s.trigger_type == TriggerType.SCORE_THRESHOLD and s.trigger_score is not None
    ]
    if not thresholds:
        return []
    movable = [
        s.key
        for s in stages
        if (s.team == Team.MARKETING and s.kind == StageKind.OPEN) or s.kind == StageKind.NURTURE
    ]
    return list(
        LeadScoreState.objects.filter(
            pk__gte=lo,
            pk__lte=hi,
            fit_excluded=False,
            total__gte=min(thresholds),
            lead__stage__in=movable,
        ).values_list("lead_id", flat=True)
    )


# --- Full recompute ----------------------------------------------------------------------


def rescore_job_create(*, reason: str, note: str = "") -> RescoreJob:
    """Split all current leads into chunks to rescore; the caller enqueues them on commit."""
    bounds = Lead.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    job = RescoreJob.objects.create(reason=reason, note=note, total_leads=Lead.objects.count())
    if bounds["lo"] is None:
        job.status = RescoreJob.Status.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        return job
    first = bounds["lo"] - bounds["lo"] % BUCKET_SIZE
    RescoreChunk.objects.bulk_create(
        RescoreChunk(
            job=job,
            first_lead_id=start,
            last_lead_id=min(start + CHUNK_SIZE - 1, bounds["hi"]),
            next_lead_id=start,
        )
        for start in range(first, bounds["hi"] + 1, CHUNK_SIZE)
    )
    return job


def rescore_chunk_run(*, chunk_id: int, on_progress=None) -> list[int]:
    """Bring a chunk's leads up to date, bucket by bucket from its watermark. Returns the ids
    of leads whose new score may move them to another stage."""
    candidates: list[int] = []
    # Published versions never change, so what is derived from them is built once per run; the
    # versions in force are still read every batch, so a publish mid-chunk takes effect.
    derived: dict[tuple[int, int], tuple] = {}
    while True:
        at = timezone.now()
        with transaction.atomic():
            chunk = RescoreChunk.objects.select_for_update().filter(pk=chunk_id).first()
            if chunk is None or chunk.finished_at is not None:
                break
            lo = chunk.next_lead_id
            hi = min(lo - lo % BUCKET_SIZE + BUCKET_SIZE - 1, chunk.last_lead_id)
            lock_bucket(lo)
            icp_version = icp_in_force(at=at)
            model = scoring_model_in_force(at=at)
            if icp_version is None or model is None:
                break
            key = (icp_version.pk, model.pk)
            if key not in derived:
                derived[key] = (
                    icp_spec(icp_version),
                    scoring_spec(model),
                    compatible_sums_models(model),
                )
            icp, spec, keep_sums_of = derived[key]
            bulk.bring_up_to_date(
                lo,
                hi,
                icp=icp,
                icp_version_id=icp_version.pk,
                spec=spec,
                model_id=model.pk,
                keep_sums_of=keep_sums_of,
                as_of_day=engine.day_number(at),
            )
            candidates += threshold_candidates(lo=lo, hi=hi, at=at)
            chunk.processed += Lead.objects.filter(pk__range=(lo, hi)).count()
            chunk.next_lead_id = hi + 1
            if chunk.next_lead_id > chunk.last_lead_id:
                chunk.finished_at = timezone.now()
            chunk.save(update_fields=["processed", "next_lead_id", "finished_at", "updated_at"])
            if chunk.finished_at is not None:
                _finish_job_if_complete(chunk.job_id)
        if on_progress is not None:
            on_progress(chunk)
    return candidates


def _finish_job_if_complete(job_id: int) -> None:
    if RescoreChunk.objects.filter(job_id=job_id, finished_at__isnull=True).exists():
        return
    finished = RescoreJob.objects.filter(pk=job_id, status=RescoreJob.Status.RUNNING).update(
        status=RescoreJob.Status.DONE, finished_at=timezone.now()
    )
    if finished:
        from scoring.tasks import enqueue_vacuum

        transaction.on_commit(enqueue_vacuum)


def score_states_vacuum() -> bool:
    """After a full rescore rewrote every score row: reclaim the old row versions so the next
    rescore updates rows in place (HOT) instead of growing the table and its indexes."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {LeadScoreState._meta.db_table}")
    return True


def job_progress(job: RescoreJob) -> dict:
    processed = sum(job.chunks.values_list("processed", flat=True))
    total = max(job.total_leads, 1)
    return {
        "job": job.pk,
        "status": job.status,
        "processed": processed,
        "total": job.total_leads,
        "percent": 100
        if job.status == RescoreJob.Status.DONE
        else min(99, processed * 100 // total),
    }


def stalled_chunk_ids(*, older_than_seconds: int) -> list[int]:
    """Unfinished chunks nobody advanced lately: their worker died or their message was lost."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        RescoreChunk.objects.filter(finished_at__isnull=True, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )


# --- Publishing hooks ----------------------------------------------------------------------


def definition_published(*, version) -> None:
    """Registered with leads.services: a published ICP or scoring model rescores every lead.
    Runs inside the publishing transaction, so the job exists exactly if the publish does."""
    from scoring.tasks import enqueue_job

    reason = (
        RescoreJob.Reason.ICP_PUBLISHED
        if isinstance(version, IcpVersion)
        else RescoreJob.Reason.MODEL_PUBLISHED
    )
    job = rescore_job_create(reason=reason, note=str(version))
    transaction.on_commit(lambda: enqueue_job(job.pk))


def events_recorded(*, lead_ids: list[int]) -> None:
    """Registered with leads.services: new events mark their leads dirty; enqueue on commit."""
    from scoring.tasks import enqueue_rescores

    became_dirty = leads_mark_dirty(lead_ids=lead_ids)
    if became_dirty:
        transaction.on_commit(lambda: enqueue_rescores(became_dirty))


def decay_job_create_if_due() -> RescoreJob | None:
    """A decay rescore, unless every lead is already scored as of today or one is running."""
    today = today_day_number()
    if RescoreJob.objects.filter(status=RescoreJob.Status.RUNNING).exists():
        return None
    if not LeadScoreState.objects.filter(as_of_day__lt=today).exists():
        return None
    with transaction.atomic():
        return rescore_job_create(reason=RescoreJob.Reason.DECAY, note=f"day {today}")


def rescore_all_now(*, note: str = "") -> RescoreJob:
    """Score every lead in this process (no worker), without moving stages: for the demo seeder
    and management commands, where history is already written."""
    with transaction.atomic():
        job = rescore_job_create(reason=RescoreJob.Reason.MANUAL, note=note)
    for chunk_id in job.chunks.values_list("pk", flat=True):
        rescore_chunk_run(chunk_id=chunk_id)
    job.refresh_from_db()
    return job
