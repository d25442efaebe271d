"""Writes for the predictive score: train (or refuse), store a version, write predictions."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from scoring.predictive.features import LEAD_SPEC, lead_feature_row
from scoring.predictive.models import LeadPrediction, PredictiveModel
from scoring.predictive.selectors import (
    closed_outcome_records,
    latest_attempt,
    lead_record_chunks,
    leads_exist_after,
    model_in_use,
    newest_predicted_lead_id,
)

if TYPE_CHECKING:
    from scoring.predictive.learning import TrainedModel

logger = logging.getLogger(__name__)

WRITE_BATCH = 1000
# New leads predicted per scheduled check (every minute by default): a bulk import catches up
# over a few checks instead of one long task.
NEW_LEADS_PER_RUN = 20_000
TOP_REASONS = 3
# Any constant: one predictive training at a time across every worker (PostgreSQL only).
ADVISORY_LOCK_KEY = 0x5052_4544  # "PRED"


@contextmanager
def _training_lock() -> Iterator[bool]:
    """Yields False if another worker is training now. SQLite (the embedded run) serialises
    writes by itself, and its single worker pool runs one training at a time anyway."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


def _learning():
    """The training module, imported when a model is trained or used: it imports scikit-learn
    and SciPy (~0.8 s), which the URLconf, and so every web process's first request, would
    otherwise pay through the model page's views."""
    from scoring.predictive import learning

    return learning


def dump_model(model: TrainedModel) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def load_model(stored: PredictiveModel) -> TrainedModel:
    import joblib

    return joblib.load(io.BytesIO(bytes(stored.pipeline)))


def predictive_model_train(
    *,
    trigger: str = PredictiveModel.Trigger.SCHEDULED,
    trained_by=None,
    now: datetime | None = None,
) -> PredictiveModel | None:
    """Train on every closed outcome and store the next version with every lead's prediction,
    or store a refusal saying how much data is missing. None if another training is running."""
    now = now or timezone.now()
    with _training_lock() as acquired:
        if not acquired:
            logger.info("A predictive training is already running; skipped")
            return None
        labelled = closed_outcome_records(now=now)
        rows = [lead_feature_row(record) for record, _ in labelled]
        outcomes = [outcome for _, outcome in labelled]
        n_positive = sum(outcomes)
        learning = _learning()
        try:
            trained = learning.train(rows, outcomes, LEAD_SPEC)
        except learning.TooLittleData as refusal:
            return PredictiveModel.objects.create(
                status=PredictiveModel.Status.TOO_LITTLE_DATA,
                message=str(refusal),
                trigger=trigger,
                trained_at=now,
                trained_by=trained_by,
                n_outcomes=len(outcomes),
                n_positive=n_positive,
            )
        with transaction.atomic():
            version = (PredictiveModel.objects.aggregate(top=Max("version"))["top"] or 0) + 1
            stored = PredictiveModel.objects.create(
                version=version,
                status=PredictiveModel.Status.TRAINED,
                trigger=trigger,
                trained_at=now,
                trained_by=trained_by,
                n_outcomes=trained.n_outcomes,
                n_positive=trained.n_positive,
                holdout_auc=trained.holdout_auc,
                holdout_brier=trained.holdout_brier,
                cv_auc=trained.cv_auc,
                regularization_c=trained.c,
                features=[feature.label for feature in LEAD_SPEC.features],
                interactions=[list(pair) for pair in trained.interactions],
                pipeline=dump_model(trained),
            )
            stored.n_predictions = lead_predictions_write(model=stored, trained=trained, now=now)
            stored.save(update_fields=["n_predictions"])
        return stored


def lead_predictions_write(
    *,
    model: PredictiveModel,
    trained: TrainedModel,
    now: datetime,
    after_id: int = 0,
    limit: int | None = None,
) -> int:
    """The probability and top reasons under ``model`` of every lead (or of at most ``limit``
    leads above ``after_id``), upserted in bulk."""
    written = 0
    for records in lead_record_chunks(now=now, after_id=after_id, limit=limit):
        rows = [lead_feature_row(record) for record in records]
        explanations = _learning().explain(trained, rows, top=TOP_REASONS)
        predictions = [
            LeadPrediction(
                lead_id=record.lead_id,
                model=model,
                probability=explanation.probability,
                explanation={
                    "baseline": explanation.baseline_probability,
                    "up": [[c.label, c.log_odds] for c in explanation.up],
                    "down": [[c.label, c.log_odds] for c in explanation.down],
                },
                predicted_at=now,
            )
            for record, explanation in zip(records, explanations, strict=True)
        ]
        LeadPrediction.objects.bulk_create(
            predictions,
            batch_size=WRITE_BATCH,
            update_conflicts=True,
            unique_fields=["lead"],
            update_fields=["model", "probability", "explanation", "predicted_at"],
        )
        written += len(predictions)
    return written


def last_scheduled_instant(now: datetime, hour_utc: int) -> datetime:
    """The latest ``hour_utc`` o'clock (UTC) at or before ``now``."""
    today = now.astimezone(UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def retrain_due(*, now: datetime | None = None) -> bool:
    """Due when nothing was ever tried, or the last attempt (model or refusal) came before the
    latest nightly slot (``PREDICTIVE_RETRAIN_HOUR_UTC``)."""
    now = now or timezone.now()
    attempt = latest_attempt()
    slot = last_scheduled_instant(now, settings.PREDICTIVE_RETRAIN_HOUR_UTC)
    return attempt is None or attempt.trained_at < slot


def predictive_model_retrain_if_due(*, now: datetime | None = None) -> PredictiveModel | None:
    """The scheduled path: safe to run as often as beat likes; trains at most once a night,
    and between trainings predicts the leads that arrived since the last predictions."""
    now = now or timezone.now()
    if not retrain_due(now=now):
        new_leads_predict(now=now)
        return None
    return predictive_model_train(trigger=PredictiveModel.Trigger.SCHEDULED, now=now)


def new_leads_predict(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Predict, under the model in use, up to ``limit`` leads newer than every prediction (a
    lead created after the nightly training would otherwise wait a day). Re-running it predicts
    nobody twice: each run starts above the newest predicted lead."""
    now = now or timezone.now()
    limit = limit or NEW_LEADS_PER_RUN
    in_use = model_in_use()
    after_id = newest_predicted_lead_id()
    if in_use is None or not leads_exist_after(after_id):
        return 0
    trained = load_model(PredictiveModel.objects.get(pk=in_use.pk))
    written = lead_predictions_write(
        model=in_use, trained=trained, now=now, after_id=after_id, limit=limit
    )
    PredictiveModel.objects.filter(pk=in_use.pk).update(n_predictions=F("n_predictions") + written)
    return written


def predictive_model_retrain_requested(
    *, requested_at: datetime, user_id: int | None
) -> PredictiveModel | None:
    """The "retrain now" path: a request is served once — if an attempt already started after
    it was made (a redelivered message, a double click), nothing more is done."""
    from django.contrib.auth import get_user_model

    if PredictiveModel.objects.filter(trained_at__gte=requested_at).exists():
        return None
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return predictive_model_train(trigger=PredictiveModel.Trigger.MANUAL, trained_by=user)
