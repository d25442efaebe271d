"""What retention keeps of the engagement events it drops (``scoring.retention``).

A month's raw events go only after their effect is folded here, in the transaction that drops
them: everything a re-read of events computes from them is kept, exactly, and nothing else.
Scoring counts events per lead, kind and UTC day (a daily cap, then decay by whole days), so
``FoldedEventDay`` keeps those counts; the content KPIs compare a content-linked event's instant
with a deal's, so ``FoldedContentEvent`` keeps those few events whole. The readers of raw events
(``scoring.bulk.reread_sums``, ``scoring.selectors.lead_event_days``, the backtest's counts and
``metrics.queries.content``) add these rows in.
"""

from django.db import models

from leads.choices import EventKind

from .facts import ContentAsset, Lead


class FoldedEventDay(models.Model):
    """How many events of a kind a lead had on a UTC day, of events retention dropped."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    day = models.IntegerField(help_text="UTC day number: days since 1970-01-01.")
    events = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # Also the index the re-reads take a range of leads through.
            models.UniqueConstraint(fields=["lead", "kind", "day"], name="folded_event_day_key"),
        ]

    def __str__(self) -> str:
        return f"{self.events} × {self.kind} on day {self.day} (lead #{self.lead_id})"


class FoldedContentEvent(models.Model):
    """A content-linked event retention dropped, kept whole (they are rare)."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    content_asset = models.ForeignKey(ContentAsset, on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["lead", "occurred_at"], name="folded_content_lead_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M} (lead #{self.lead_id})"
