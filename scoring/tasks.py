"""Celery entry points for scoring: thin, idempotent, given ids; the work is in services."""

import logging

from celery import shared_task

from scoring import services
from scoring.models import RescoreChunk

logger = logging.getLogger(__name__)

THRESHOLD_BATCH = 500


def _safely(send, what: str) -> None:
    # A broker outage must not fail the request that recorded the work: the work is marked in
    # the database, and the sweep enqueues it again once the broker is back.
    try:
        send()
    except Exception:  # any broker or transport error
        logger.warning(
            "Could not enqueue %s; the scoring sweep will pick it up", what, exc_info=True
        )


def enqueue_rescores(lead_ids: list[int]) -> None:
    _safely(lambda: rescore_leads.delay(lead_ids), f"rescore of {len(lead_ids)} leads")


def enqueue_job(job_id: int) -> None:
    for chunk_id in RescoreChunk.objects.filter(
        job_id=job_id, finished_at__isnull=True
    ).values_list("pk", flat=True):
        _safely(lambda chunk_id=chunk_id: run_rescore_chunk.delay(chunk_id), f"chunk {chunk_id}")


def enqueue_vacuum() -> None:
    _safely(vacuum_score_states.delay, "vacuum of score states")


@shared_task(soft_time_limit=600, time_limit=660)
def vacuum_score_states() -> bool:
    """Runs outside any transaction (VACUUM cannot run inside one)."""
    return services.score_states_vacuum()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def rescore_leads(lead_ids: list[int]) -> int:
    """Incremental path: rescore each lead from its events (coalesced by the dirty flag)."""
    for lead_id in lead_ids:
        services.lead_rescore(lead_id=lead_id)
    return len(lead_ids)


@shared_task(bind=True, acks_late=True, soft_time_limit=600, time_limit=660)
def run_rescore_chunk(self, chunk_id: int) -> int:
    """Full path: one chunk of a rescore job, resumable from its watermark."""

    def report(chunk):
        self.update_state(
            state="PROGRESS",
            meta={
                "chunk": chunk.pk,
                "next_lead_id": chunk.next_lead_id,
                "processed": chunk.processed,
            },
        )

    candidates = services.rescore_chunk_run(chunk_id=chunk_id, on_progress=report)
    for start in range(0, len(candidates), THRESHOLD_BATCH):
        batch = candidates[start : start + THRESHOLD_BATCH]
        _safely(lambda batch=batch: apply_score_thresholds.delay(batch), "threshold moves")
    return len(candidates)


@shared_task(acks_late=True, soft_time_limit=300, time_limit=330)
def apply_score_thresholds(lead_ids: list[int]) -> int:
    return services.leads_apply_thresholds(lead_ids=lead_ids)


@shared_task(soft_time_limit=120, time_limit=150)
def sweep_scoring() -> dict:
    """Beat, every minute: rescore dirty leads whose message was lost; restart stalled chunks."""
    dirty = services.dirty_lead_ids(limit=5000)
    for start in range(0, len(dirty), 200):
        enqueue_rescores(dirty[start : start + 200])
    stalled = services.stalled_chunk_ids(older_than_seconds=120)
    for chunk_id in stalled:
        _safely(lambda chunk_id=chunk_id: run_rescore_chunk.delay(chunk_id), f"chunk {chunk_id}")
    return {"dirty": len(dirty), "stalled_chunks": len(stalled)}


@shared_task(soft_time_limit=60, time_limit=90)
def start_daily_decay() -> int | None:
    """Beat, hourly: once per UTC day, move every score to today (decay needs no events)."""
    job = services.decay_job_create_if_due()
    if job is None:
        return None
    enqueue_job(job.pk)
    return job.pk
