"""Celery entry points for backtests: thin, idempotent, given ids; the work is in services."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from scoring.backtest import services

logger = logging.getLogger(__name__)

STALLED_AFTER_SECONDS = 120


def enqueue_backtest(backtest_id: int) -> None:
    # A broker outage must not fail the request: the backtest waits in the database as
    # "running", and the sweep enqueues it again once the broker is back.
    try:
        run_backtest.delay(backtest_id)
    except Exception:  # any broker or transport error
        logger.warning("Could not enqueue backtest %s; the sweep will", backtest_id, exc_info=True)


@shared_task(bind=True, acks_late=True, soft_time_limit=1800, time_limit=1860)
def run_backtest(self, backtest_id: int) -> str | None:
    """Simulate a draft over every lead, resuming from the backtest's watermark."""

    def report(backtest):
        self.update_state(state="PROGRESS", meta=services.backtest_progress(backtest))

    try:
        backtest = services.backtest_run(backtest_id=backtest_id, on_progress=report)
    except SoftTimeLimitExceeded:
        # Stopped between batches or mid-batch (rolled back): the sweep resumes it.
        logger.warning("Backtest %s hit its time limit; it resumes from its watermark", backtest_id)
        return None
    except Exception as error:
        services.backtest_fail(backtest_id=backtest_id, error=f"{type(error).__name__}: {error}")
        raise
    return backtest.status if backtest is not None else None


@shared_task(soft_time_limit=60, time_limit=90)
def sweep_backtests() -> int:
    """Beat: resume backtests whose worker died (no progress for a while)."""
    stalled = services.stalled_backtest_ids(older_than_seconds=STALLED_AFTER_SECONDS)
    for backtest_id in stalled:
        enqueue_backtest(backtest_id)
    return len(stalled)
