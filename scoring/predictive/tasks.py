"""Celery entry points for the predictive score: thin and idempotent; the work is in services."""

import logging
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from scoring.predictive import services

logger = logging.getLogger(__name__)


def _summary(stored) -> dict | None:
    if stored is None:
        return None
    return {"id": stored.pk, "version": stored.version, "status": stored.status}


@shared_task(soft_time_limit=1800, time_limit=1900)
def retrain_predictive_model_if_due() -> dict | None:
    """Beat: checks often, trains once per ``PREDICTIVE_RETRAIN_HOURS`` (so a fresh install
    trains on its first check)."""
    return _summary(services.predictive_model_retrain_if_due())


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def retrain_predictive_model(requested_at: str, user_id: int | None = None) -> dict | None:
    """ "Retrain now": served once per request, however often the message is delivered."""
    return _summary(
        services.predictive_model_retrain_requested(
            requested_at=datetime.fromisoformat(requested_at), user_id=user_id
        )
    )


def enqueue_retrain(*, user_id: int | None) -> bool:
    """Nothing is written before the message, so there is no commit to wait for. False when
    the broker is unreachable (the scheduled retrain still runs once it is back)."""
    try:
        retrain_predictive_model.delay(timezone.now().isoformat(), user_id)
    except Exception:  # any broker or transport error
        logger.warning("Could not enqueue a predictive retrain", exc_info=True)
        return False
    return True
