"""Celery entry point for large imports: thin, given an id; the work is in services."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


def enqueue_import(job_id: int) -> None:
    # The job is queued in the database first: a broker outage leaves it "queued", and sending
    # the task again (or `manage.py import_csv`) imports it.
    try:
        run_import.delay(job_id)
    except Exception:  # any broker or transport error
        logger.warning("Could not enqueue import #%s", job_id, exc_info=True)


@shared_task(name="leads.imports.tasks.run_import", acks_late=True, soft_time_limit=3600,
             time_limit=3660)  # fmt: skip
def run_import(job_id: int) -> str | None:
    """Import one uploaded file in one transaction. Safe to run twice: only a queued job (or
    one whose worker died, its transaction rolled back) is claimed."""
    from leads.imports.services import import_job_run

    job = import_job_run(job_id=job_id)
    return job.status if job is not None else None


@shared_task(name="leads.imports.tasks.expire_import_uploads")
def expire_import_uploads() -> int:
    """Beat, daily: delete uploads past their retention (idempotent)."""
    from leads.imports.services import import_uploads_expire

    return import_uploads_expire()
