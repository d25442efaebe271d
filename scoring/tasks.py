"""Celery entry points for scoring: thin, idempotent, given ids; the work is in services."""

import logging

from celery import shared_task
from django.conf import settings

from scoring import services
from scoring.models import RescoreChunk

logger = logging.getLogger(__name__)

# Leads per incremental rescore: one message, a handful of statements for the whole batch.
INCREMENTAL_BATCH = 1_000
SWEEP_REQUEUE_LIMIT = 20_000
SWEEP_MAX_MOVES = 5_000


def _safely(send, what: str) -> bool:
    # A broker outage must not fail the request that recorded the work: the work is marked in
    # the database, and the sweep enqueues it again once the broker is back.
    try:
        send()
    except Exception:  # any broker or transport error
        logger.warning(
            "Could not enqueue %s; the scoring sweep will pick it up", what, exc_info=True
        )
        return False
    return True


def enqueue_rescores(lead_ids: list[int]) -> None:
    for start in range(0, len(lead_ids), INCREMENTAL_BATCH):
        batch = lead_ids[start : start + INCREMENTAL_BATCH]
        sent = _safely(
            lambda batch=batch: rescore_leads.delay(batch), f"rescore of {len(batch)} leads"
        )
        if not sent:
            # Never sent: the next sweep re-sends it at once, not a re-send period later.
            services.rescores_unsent(lead_ids=batch)


def enqueue_job(job_id: int) -> None:
    # Newest leads first: they carry the most recent engagement and so most of a publish's
    # threshold crossings (~1.5 ms of CPU each, against ~15 µs a rescored row). Sent last, the
    # heaviest chunks ran at the end, one worker finishing them alone; sent first, they start
    # on every worker at once and the light chunks fill in behind them.
    for chunk_id in (
        RescoreChunk.objects.filter(job_id=job_id, finished_at__isnull=True)
        .order_by("-first_lead_id")
        .values_list("pk", flat=True)
    ):
        _safely(lambda chunk_id=chunk_id: run_rescore_chunk.delay(chunk_id), f"chunk {chunk_id}")


def enqueue_vacuum() -> None:
    _safely(vacuum_score_states.delay, "vacuum of score states")


@shared_task(soft_time_limit=600, time_limit=660)
def vacuum_score_states() -> bool:
    """Runs outside any transaction (VACUUM cannot run inside one)."""
    return services.score_states_vacuum()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def rescore_leads(lead_ids: list[int]) -> int:
    """Incremental path: rescore the still-dirty ones of these leads set-based — topped up with
    other dirty leads to a full batch, so many small messages cost one batch — then move those
    whose score says so. A duplicate or late message finds them clean and does nothing; leads
    another transaction holds are sent again a second later."""
    rescored, busy = 0, []
    for start in range(0, max(len(lead_ids), 1), INCREMENTAL_BATCH):
        claim = services.leads_rescore(
            lead_ids=lead_ids[start : start + INCREMENTAL_BATCH], fill_to=INCREMENTAL_BATCH
        )
        if claim.leads:
            services.threshold_moves_apply(lead_ids=claim.leads)
        rescored += len(claim.leads)
        busy += claim.busy
    if busy:
        _safely(lambda: rescore_leads.apply_async((busy,), countdown=1), "busy leads")
    return rescored


@shared_task(bind=True, acks_late=True, soft_time_limit=600, time_limit=660)
def run_rescore_chunk(self, chunk_id: int) -> int:
    """Full path: one chunk of a rescore job, resumable from its watermark; moves the leads of
    each finished bucket. Returns the moves made."""

    def report(chunk):
        self.update_state(
            state="PROGRESS",
            meta={
                "chunk": chunk.pk,
                "next_lead_id": chunk.next_lead_id,
                "processed": chunk.processed,
            },
        )

    return services.rescore_chunk_run(chunk_id=chunk_id, on_progress=report)


@shared_task(soft_time_limit=120, time_limit=150)
def sweep_scoring() -> dict:
    """Beat, every minute: re-send rescores whose message was lost (sent longer ago than
    SCORING_REQUEUE_AFTER_SECONDS and still dirty), restart stalled chunks, and move every lead
    whose stored score should have moved it (a worker that died between a rescore and its
    moves)."""
    lost = services.dirty_leads_to_requeue(
        older_than_seconds=settings.SCORING_REQUEUE_AFTER_SECONDS, limit=SWEEP_REQUEUE_LIMIT
    )
    enqueue_rescores(lost)
    stalled = services.stalled_chunk_ids(older_than_seconds=120)
    for chunk_id in stalled:
        _safely(lambda chunk_id=chunk_id: run_rescore_chunk.delay(chunk_id), f"chunk {chunk_id}")
    moved = services.threshold_moves_apply(max_moves=SWEEP_MAX_MOVES)
    return {"requeued": len(lost), "stalled_chunks": len(stalled), "moved": moved}


@shared_task(soft_time_limit=60, time_limit=90)
def start_daily_decay() -> int | None:
    """Beat, hourly: once per UTC day, move every score to today (decay needs no events)."""
    job = services.decay_job_create_if_due()
    if job is None:
        return None
    enqueue_job(job.pk)
    return job.pk
