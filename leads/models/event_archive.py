"""What retention keeps of the engagement events it drops (``scoring.retention``).

A month's raw events go only after their effect is folded here, in the transaction that drops
them: everything a re-read of events computes from them is kept, exactly, and nothing else.
Scoring counts events per lead, kind and UTC day (a daily cap, then decay by whole days), so
``FoldedEventDay`` keeps those counts; the content KPIs compare a content-linked event's instant
with a deal's, and read them from ``ContentEvent`` (every content-linked event, kept by trigger),
whose rows outlive the dropped partitions: those few events are kept whole. The readers of raw
events (``scoring.bulk.reread_sums``, ``scoring.selectors.lead_event_days``, the backtest's
counts) add the folded day counts in.
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


class ContentEvent(models.Model):
    """A content-linked engagement event, narrow and indexed by lead: what the content KPIs read
    (an asset engaged with before a deal, the meeting's content slide) instead of probing every
    month partition of the event table for a lead's few linked events.

    Kept by triggers on the event table (migration 0016: statement-level with transition tables
    on PostgreSQL, row-level on SQLite) in the writer's own transaction, whoever the writer is
    (ORM, COPY, admin, raw SQL): an insert of a linked event adds its row, a delete removes it,
    an update follows the event (lead, asset, instant, kind; unlinking removes it), a TRUNCATE
    empties the table. Retention drops a month's partition, or deletes from the default one,
    which fires none of them: the rows of retired events stay, so retention keeps content-linked
    events whole here (they are rare). ``event_id`` is the event's id (negative for an event
    folded before this table existed, whose id was not kept)."""

    event_id = models.BigIntegerField(primary_key=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+", db_index=False)
    content_asset = models.ForeignKey(
        ContentAsset, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=30, choices=EventKind.choices)

    class Meta:
        indexes = [
            # A lead's linked events by time, with the asset: the readers' index-only scan.
            models.Index(
                fields=["lead", "occurred_at", "content_asset"], name="content_event_lead"
            ),
            # Deleting an asset cascades through it.
            models.Index(fields=["content_asset"], name="content_event_asset"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M} (lead #{self.lead_id})"
