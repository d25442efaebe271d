"""The weekly alignment meeting: its agreed actions and the figures frozen when it was held.

The KPIs themselves are computed from the pipeline's facts (``metrics.queries``); what lives
here is what only the meeting knows: which actions both teams agreed on, who owns them, and the
numbers they were looking at when they did.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

# Bumped whenever the shape of ``MeetingSnapshot.figures`` changes, so a template can tell an
# old snapshot from a new one instead of guessing from missing keys.
FIGURES_VERSION = 1


class Meeting(models.Model):
    """One weekly pipeline review. One meeting per day at most; the page finds the week's."""

    held_on = models.DateField(
        unique=True,
        help_text="The day of the meeting (display time zone); it reviews the 7 days before.",
        error_messages={"unique": "There is already a meeting on this day."},
    )
    title = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-held_on"]
        permissions = [
            ("run_meeting", "Can freeze a meeting's figures and add or complete action items"),
            ("long_session", "Can stay signed in for days (the meeting-room screen)"),
        ]

    def __str__(self) -> str:
        return self.title or f"Pipeline review {self.held_on:%Y-%m-%d}"

    def clean(self) -> None:
        super().clean()
        self.title = (self.title or "").strip()


class ActionItem(models.Model):
    """An action agreed in a meeting, with an owner and a due date.

    It is shown in the meeting that agreed it and carried to every later meeting until it is
    done: a meeting lists its own items plus the earlier items not yet done when it was held.
    """

    meeting = models.ForeignKey(Meeting, on_delete=models.PROTECT, related_name="action_items")
    text = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="meeting_actions"
    )
    due_on = models.DateField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(text=""),
                name="metrics_action_item_has_text",
                violation_error_message="Say what the action is.",
            ),
            models.CheckConstraint(
                condition=Q(done_at__isnull=False) | Q(done_by__isnull=True),
                name="metrics_action_item_done_by_needs_done_at",
                violation_error_message="Only a done action has someone who did it.",
            ),
            models.CheckConstraint(
                condition=Q(done_at__isnull=True) | Q(done_at__gte=F("created_at")),
                name="metrics_action_item_done_after_created",
                violation_error_message="An action cannot be done before it was agreed.",
            ),
        ]
        indexes = [
            # The carry-over read: earlier items still open (or done since) for a meeting.
            models.Index(fields=["done_at", "meeting"], name="action_item_done_meeting"),
        ]

    def __str__(self) -> str:
        return self.text

    @property
    def is_done(self) -> bool:
        return self.done_at is not None

    def clean(self) -> None:
        super().clean()
        self.text = " ".join((self.text or "").split())
        errors = {}
        if not self.text:
            errors["text"] = "Say what the action is."
        if self.meeting_id is not None and self.due_on is not None:
            held_on = self.meeting.held_on
            if self.due_on < held_on:
                errors["due_on"] = (
                    f"The due date {self.due_on:%Y-%m-%d} is before the meeting that agrees "
                    f"the action ({held_on:%Y-%m-%d}): pick {held_on:%Y-%m-%d} or later."
                )
        if errors:
            raise ValidationError(errors)


class MeetingSnapshot(models.Model):
    """The figures of a meeting frozen when it was held, so it can be reopened as discussed.

    Append-only: freezing again adds a newer snapshot, which the page shows from then on; the
    earlier ones stay, recording who froze what and when.
    """

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="snapshots")
    frozen_at = models.DateTimeField(default=timezone.now)
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    figures_version = models.PositiveSmallIntegerField(default=FIGURES_VERSION)
    figures = models.JSONField(
        help_text="Every figure and table the meeting page shows, as plain JSON."
    )

    class Meta:
        ordering = ["-frozen_at", "-id"]
        get_latest_by = ["frozen_at", "id"]
        indexes = [
            models.Index(fields=["meeting", "frozen_at"], name="snapshot_meeting_frozen"),
        ]

    def __str__(self) -> str:
        return f"{self.meeting} frozen at {self.frozen_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Meeting snapshots are never changed: freeze again instead.")
        return super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.figures, dict) or not self.figures:
            raise ValidationError({"figures": "A snapshot holds the meeting's figures."})


class KpiSnapshot(models.Model):
    """One dashboard page's figures for one period and set of filters, as last computed.

    Kept at most a minute old by a beat task while people look at it (``metrics.snapshots``),
    so a page over a million leads is read, not recomputed, on every request.
    """

    key = models.CharField(max_length=64, unique=True)
    params = models.JSONField(help_text="Page, period and filters: enough to recompute it.")
    payload = models.BinaryField()
    computed_at = models.DateTimeField()
    requested_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["requested_at", "computed_at"], name="snapshot_hot")]

    def __str__(self) -> str:
        params = self.params or {}
        return f"{params.get('page')} {params.get('first_day')}–{params.get('last_day')}"
