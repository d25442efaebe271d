"""A backtest: what a draft ICP or scoring model would have done, beside the definitions in force.

A backtest only ever writes its own rows: live scores, stages and handoffs stay as they are.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from leads.models import IcpVersion, Lead
from scoring.models import ScoringModel


class Backtest(models.Model):
    """One simulation run, walked over the leads in id order with a watermark (resumable)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # What is simulated: a draft ICP, a draft scoring model or both; the other definition is
    # the one in force when the backtest started.
    draft_icp = models.ForeignKey(
        IcpVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="backtests"
    )
    draft_model = models.ForeignKey(
        ScoringModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="backtests"
    )
    current_icp = models.ForeignKey(
        IcpVersion, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    current_model = models.ForeignKey(
        ScoringModel, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Both sides' definitions as simulated, frozen at the start: editing the draft afterwards
    # does not change what this backtest measured (the page says when the draft moved on).
    current_spec = models.JSONField()
    draft_spec = models.JSONField()
    draft_fingerprint = models.CharField(max_length=64)
    mql_threshold = models.FloatField(null=True, blank=True)
    as_of_day = models.IntegerField(help_text="UTC day number the scores are computed for.")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    first_lead_id = models.BigIntegerField(default=0)
    last_lead_id = models.BigIntegerField(default=-1)
    next_lead_id = models.BigIntegerField(default=0, help_text="Watermark: leads below are done.")
    processed = models.PositiveIntegerField(default=0)
    total_leads = models.PositiveIntegerField(default=0)
    # Running counts over every lead, advanced with the watermark in one transaction.
    tallies = models.JSONField(default=dict)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(draft_icp__isnull=False)
                | Q(draft_model__isnull=False)
                | ~Q(status="running"),
                name="backtest_simulates_a_draft",
            ),
        ]
        indexes = [
            models.Index(
                fields=["updated_at"], condition=Q(status="running"), name="backtest_running"
            ),
        ]

    def __str__(self) -> str:
        return f"Backtest #{self.pk} of {self.subject}"

    @property
    def subject(self) -> str:
        """What the draft column shows, e.g. "ICP v3 (draft) + scoring model v1 in force"."""
        icp = self.draft_spec.get("icp", {}).get("version")
        model = self.draft_spec.get("model", {}).get("version")
        parts = [
            f"ICP v{icp}" + (" (draft)" if self.draft_icp_id or self._drafted("icp") else ""),
            f"scoring model v{model}"
            + (" (draft)" if self.draft_model_id or self._drafted("model") else ""),
        ]
        return " + ".join(parts)

    def _drafted(self, key: str) -> bool:
        return self.draft_spec.get(key) != self.current_spec.get(key)

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.RUNNING


class BacktestLead(models.Model):
    """A lead worth showing: its tier or MQL eligibility differs between the two columns, or its
    outcome is known (what the outcome metrics are computed from)."""

    class Outcome(models.TextChoices):
        WON = "won", "Won"
        LOST = "lost", "Lost / disqualified / rejected"
        UNKNOWN = "", "Unknown"

    backtest = models.ForeignKey(Backtest, on_delete=models.CASCADE, related_name="leads")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    current_total = models.FloatField()
    draft_total = models.FloatField()
    current_tier = models.CharField(max_length=1)
    draft_tier = models.CharField(max_length=1)
    current_eligible = models.BooleanField()
    draft_eligible = models.BooleanField()
    # Peak total before sales took over, and whether it reached the MQL threshold.
    current_peak = models.FloatField()
    draft_peak = models.FloatField()
    current_reached = models.BooleanField()
    draft_reached = models.BooleanField()
    changed = models.BooleanField(help_text="Tier or MQL eligibility differs today.")
    # In a stage that moves on score today (an earlier marketing stage or nurture).
    movable = models.BooleanField(default=False)
    outcome = models.CharField(max_length=4, choices=Outcome.choices, blank=True)

    class Meta:
        ordering = ["backtest", "lead"]
        constraints = [
            models.UniqueConstraint(fields=["backtest", "lead"], name="backtest_lead_unique"),
        ]
        indexes = [
            models.Index(
                fields=["backtest", "lead"], condition=Q(changed=True), name="backtest_changed"
            ),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id} in backtest {self.backtest_id}"
