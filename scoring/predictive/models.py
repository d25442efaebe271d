"""Stored predictive models (one row per training attempt) and each lead's latest prediction.

Imported by ``scoring/models.py``, so the tables belong to the scoring app (permissions
``scoring.add_predictivemodel`` etc.).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leads.models import Lead


class PredictiveModel(models.Model):
    """A training attempt: a versioned model, or a plain refusal ("too little data")."""

    class Status(models.TextChoices):
        TRAINED = "trained", "Trained"
        TOO_LITTLE_DATA = "too_little_data", "Too little data"

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        MANUAL = "manual", "Retrain now"

    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="1, 2, 3… for trained models; empty for a refusal."
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    message = models.CharField(max_length=300, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    trained_at = models.DateTimeField(default=timezone.now)
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    n_outcomes = models.PositiveIntegerField(default=0, help_text="Closed outcomes used.")
    n_positive = models.PositiveIntegerField(default=0, help_text="Of which converted.")
    holdout_auc = models.FloatField(null=True, blank=True)
    holdout_brier = models.FloatField(null=True, blank=True)
    cv_auc = models.FloatField(null=True, blank=True)
    regularization_c = models.FloatField(null=True, blank=True)
    features = models.JSONField(default=list, blank=True)
    interactions = models.JSONField(default=list, blank=True)
    n_predictions = models.PositiveIntegerField(default=0)
    # joblib bytes of scoring.predictive.learning.TrainedModel; written and read only by this
    # app's services (unpickling data from elsewhere would be unsafe).
    pipeline = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-trained_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=Q(version__isnull=False),
                name="predictive_model_unique_version",
            ),
            models.CheckConstraint(
                condition=Q(status="trained", version__isnull=False)
                | Q(status="too_little_data", version__isnull=True),
                name="predictive_model_version_iff_trained",
            ),
        ]
        indexes = [models.Index(fields=["status", "-trained_at"], name="predictive_latest")]

    def __str__(self) -> str:
        if self.version:
            return f"Predictive model v{self.version}"
        return f"Training attempt {self.trained_at:%Y-%m-%d %H:%M}: {self.get_status_display()}"

    @property
    def positive_rate(self) -> float | None:
        return self.n_positive / self.n_outcomes if self.n_outcomes else None


class LeadPrediction(models.Model):
    """A lead's conversion probability under a model version, with its top reasons."""

    lead = models.OneToOneField(
        Lead, primary_key=True, on_delete=models.CASCADE, related_name="prediction"
    )
    model = models.ForeignKey(PredictiveModel, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField()
    # {"baseline": p, "up": [[label, log_odds], …], "down": [[label, log_odds], …]}
    explanation = models.JSONField(default=dict)
    predicted_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.probability:.0%} for lead {self.lead_id}"

    @property
    def percent(self) -> int:
        return round(self.probability * 100)
