"""The weekly alignment meeting (its agreed actions, the figures frozen when it was held) and
the shared goals both teams agreed per month or quarter.

The KPIs themselves are computed from the pipeline's facts (``metrics.queries``); what lives
here is what only the meeting knows: which actions both teams agreed on, who owns them, and the
numbers they were looking at when they did.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from leads.choices import ChannelGroup
from leads.models.definitions import DefinitionVersion, VersionedRow
from metrics import goals

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


# --- Shared goals ----------------------------------------------------------------------------


class GoalSet(DefinitionVersion):
    """The goals both teams agreed for one month or quarter: a version, like the ICP's.

    Drafted, then published (who, when, effective from); a published set never changes, a change
    is a new draft for the same period that supersedes it when published, so what was agreed
    at any time stays readable. Audited with the other definitions (``leads.audit``).
    """

    period_kind = models.CharField(max_length=7, choices=goals.PERIOD_KINDS)
    first_day = models.DateField(help_text="The first day of the month or quarter.")
    last_day = models.DateField(help_text="Its last day.")

    label = "goals"
    children_relation = "goals"

    class Meta(DefinitionVersion.Meta):
        verbose_name = "goal set"
        constraints = [
            *DefinitionVersion.Meta.constraints,
            models.CheckConstraint(
                condition=Q(first_day__lte=F("last_day")),
                name="metrics_goalset_days_in_order",
                violation_error_message="A period ends on or after its first day.",
            ),
        ]
        indexes = [
            # "The goals in force for this period": published sets of one period, newest first.
            models.Index(
                fields=["first_day", "last_day", "status", "effective_from"],
                name="goalset_period_in_force",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period.label} goals v{self.number} ({self.get_status_display().lower()})"

    @property
    def period(self) -> goals.GoalPeriod:
        return goals.GoalPeriod(self.first_day, self.last_day, self.period_kind)

    def clean(self) -> None:
        super().clean()
        if self.first_day is None or not self.period_kind:
            return
        try:
            expected = goals.period_of(self.period_kind, self.first_day)
        except ValueError as invalid:
            raise ValidationError({"period_kind": str(invalid)}) from invalid
        if self.last_day is None:
            self.last_day = expected.last_day
        if (self.first_day, self.last_day) != (expected.first_day, expected.last_day):
            raise ValidationError(
                {
                    "first_day": f"A {self.period_kind} runs from {expected.first_day:%Y-%m-%d} "
                    f"to {expected.last_day:%Y-%m-%d}: goals are set per calendar "
                    f"{self.period_kind}."
                }
            )

    def validate_for_publish(self) -> None:
        rows = list(self.goals.all())
        if not rows:
            raise ValidationError("A goal set needs at least one goal to be published.")
        seen: set[tuple] = set()
        for goal in rows:
            key = (goal.metric, goal.scope_key)
            if key in seen:
                raise ValidationError(
                    f"Two goals for {goal.get_metric_display()} ({goal.scope_label}): keep one."
                )
            seen.add(key)


class Goal(VersionedRow):
    """One agreed target: a metric, for a scope (the whole revenue team, a channel group, a
    source, a sales team or a rep), with its direction and optional thresholds.

    Values are in the metric's unit as people write them: a rate in % (30 = 30 %), a response
    time in business hours, money in dollars. ``side`` says whose commitment it is: marketing's
    (MQL volume and quality) and sales' (response, decisions and feedback) are the two halves of
    the SLA, shown side by side; the rest are the revenue team's together.
    """

    class Scope(models.TextChoices):
        ALL = "all", "Whole revenue team"
        CHANNEL_GROUP = "channel_group", "Source group"
        SOURCE = "source", "Source"
        TEAM = "team", "Sales team"
        REP = "rep", "Sales rep"

    class Direction(models.TextChoices):
        HIGHER = "higher", "Higher is better"
        LOWER = "lower", "Lower is better"

    version = models.ForeignKey(GoalSet, on_delete=models.CASCADE, related_name="goals")
    order = models.PositiveSmallIntegerField(default=0)
    metric = models.CharField(max_length=24, choices=goals.METRIC_CHOICES)
    side = models.CharField(
        max_length=10,
        choices=goals.SIDES,
        blank=True,
        help_text="Whose commitment it is; blank: the metric's usual owner.",
    )
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ALL)
    channel_group = models.CharField(max_length=20, choices=ChannelGroup.choices, blank=True)
    source = models.ForeignKey(
        "leads.Source", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    team_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="For a sales team: its manager (the team is the reps reporting to them).",
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target = models.DecimalField(max_digits=16, decimal_places=2)
    direction = models.CharField(
        max_length=6,
        choices=Direction.choices,
        blank=True,
        help_text="Blank: the metric's own (lower is better for response time).",
    )
    amber_at = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Projected value at which it turns amber (default: the target).",
    )
    red_at = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Projected value at which it turns red (default: 10 % worse than the target).",
    )
    floor = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Red whenever the value to date is worse than this (e.g. an acceptance rate "
        "floor per source); a ceiling when lower is better.",
    )

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(target__gte=0), name="metrics_goal_target"),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} ({self.scope_label}): {self.target}"

    @property
    def spec(self) -> goals.MetricSpec:
        return goals.METRICS_BY_KEY[self.metric]

    @property
    def higher_is_better(self) -> bool:
        if self.direction:
            return self.direction == self.Direction.HIGHER
        return self.spec.higher_is_better

    @property
    def owner_side(self) -> str:
        return self.side or self.spec.side

    @property
    def scope_key(self) -> tuple:
        return (self.scope, self.channel_group, self.source_id, self.team_manager_id, self.rep_id)

    @property
    def scope_label(self) -> str:
        if self.scope == self.Scope.CHANNEL_GROUP:
            return f"{ChannelGroup(self.channel_group).label} (source group)"
        if self.scope == self.Scope.SOURCE and self.source_id:
            return self.source.name
        if self.scope == self.Scope.TEAM and self.team_manager_id:
            name = self.team_manager.get_full_name() or self.team_manager.get_username()
            return f"{name}'s team"
        if self.scope == self.Scope.REP and self.rep_id:
            return self.rep.get_full_name() or self.rep.get_username()
        return self.Scope.ALL.label

    def _scale(self, value) -> float | None:
        """A value as the KPI reads express it: a rate as a fraction, the rest as written."""
        if value is None:
            return None
        return float(value) / 100 if self.spec.unit == "percent" else float(value)

    def terms(self) -> goals.GoalTerms:
        return goals.GoalTerms(
            metric=self.metric,
            target=self._scale(self.target),
            higher_is_better=self.higher_is_better,
            amber_at=self._scale(self.amber_at),
            red_at=self._scale(self.red_at),
            floor=self._scale(self.floor),
        )

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        needs = {
            self.Scope.CHANNEL_GROUP: ("channel_group", "Pick the source group."),
            self.Scope.SOURCE: ("source", "Pick the source."),
            self.Scope.TEAM: ("team_manager", "Pick the team's manager."),
            self.Scope.REP: ("rep", "Pick the rep."),
        }
        for scope, (field, message) in needs.items():
            has_value = bool(getattr(self, field if field == "channel_group" else f"{field}_id"))
            if self.scope == scope and not has_value:
                errors[field] = message
            elif self.scope != scope and has_value:
                errors[field] = f"Only a goal for one {scope.label.lower()} names one."
        if self.metric in goals.METRICS_BY_KEY and self.target is not None:
            errors.update(goals.terms_problems(self.terms()))
        if errors:
            raise ValidationError(errors)


# --- The monthly review ----------------------------------------------------------------------


class MonthlyReview(models.Model):
    """One monthly review: funnel trends, conversion by source and campaign, the campaigns that
    create pipeline. Frozen like the weekly meeting (``MonthlyReviewSnapshot``)."""

    month = models.DateField(
        unique=True,
        help_text="The first day of the month reviewed.",
        error_messages={"unique": "That month already has its review."},
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"Monthly review, {self.month:%B %Y}"

    def clean(self) -> None:
        super().clean()
        if self.month is not None and self.month.day != 1:
            raise ValidationError({"month": "A monthly review is named by its month's first day."})


class MonthlyReviewSnapshot(models.Model):
    """A monthly review's figures as frozen, append-only like ``MeetingSnapshot``."""

    review = models.ForeignKey(MonthlyReview, on_delete=models.CASCADE, related_name="snapshots")
    frozen_at = models.DateTimeField(default=timezone.now)
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    figures_version = models.PositiveSmallIntegerField(default=FIGURES_VERSION)
    figures = models.JSONField(help_text="Every figure and table the review shows, as plain JSON.")

    class Meta:
        ordering = ["-frozen_at", "-id"]
        indexes = [models.Index(fields=["review", "frozen_at"], name="monthly_snapshot_frozen")]

    def __str__(self) -> str:
        return f"{self.review} frozen at {self.frozen_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Review snapshots are never changed: freeze again instead.")
        return super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.figures, dict) or not self.figures:
            raise ValidationError({"figures": "A snapshot holds the review's figures."})


class GoalNotice(models.Model):
    """An e-mail sent about the goals: an alert (a goal turned red, or fell past its floor) or
    the Monday digest of the scorecard. ``key`` makes each one happen once (``red:<goal>``,
    ``floor:<goal>``, ``digest:<team>:<monday>``): the task that sends them can run twice."""

    class Kind(models.TextChoices):
        RED = "red", "Goal off track"
        FLOOR = "floor", "Past its floor"
        DIGEST = "digest", "Monday digest"

    key = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=6, choices=Kind.choices)
    goal = models.ForeignKey(
        Goal, null=True, blank=True, on_delete=models.CASCADE, related_name="notices"
    )
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveIntegerField(default=0)
    subject = models.CharField(max_length=200)
    body = models.TextField()

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return self.subject


# --- Content requests ------------------------------------------------------------------------


class ContentRequest(models.Model):
    """An asset sales asked marketing for, filed from a handoff: what it is about, for which
    stage and objection. Marketing (or a RevOps admin) works it and closes it: done with the
    asset that answers it, or declined with a reason sales can read.

    Who filed it and when, who closed it and when, stay on the row; every write is also in the
    audit trail (``metrics.content_requests``).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        DECLINED = "declined", "Declined"

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)
    CLOSED_STATUSES = (Status.DONE, Status.DECLINED)

    handoff = models.ForeignKey(
        "leads.Handoff", on_delete=models.CASCADE, related_name="content_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="content_requests",
    )
    title = models.CharField(max_length=200, help_text="The asset wanted, in a few words.")
    # The handoff's stage when the request was filed (a lifecycle stage key, e.g. "sql").
    stage = models.SlugField(max_length=30)
    objection = models.ForeignKey(
        "leads.ObjectionTag",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="content_requests",
        help_text="The objection the asset should answer, if any.",
    )
    note = models.TextField(blank=True, help_text="What the buyer asked, what would help.")
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.OPEN)
    fulfilled_by = models.ForeignKey(
        "leads.ContentAsset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="content_requests",
    )
    close_note = models.TextField(blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(title=""),
                name="metrics_content_request_has_title",
                violation_error_message="Say what content is wanted.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status__in=["open", "in_progress"], closed_at__isnull=True)
                    | Q(status__in=["done", "declined"], closed_at__isnull=False)
                ),
                name="metrics_content_request_closed_has_date",
                violation_error_message="A closed request has its close date, an open one none.",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=False) | Q(closed_by__isnull=True),
                name="metrics_content_request_closed_by_needs_date",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(closed_at__gte=F("created_at")),
                name="metrics_content_request_closed_after_filed",
            ),
            models.CheckConstraint(
                condition=Q(status="done", fulfilled_by__isnull=False)
                | (~Q(status="done") & Q(fulfilled_by__isnull=True)),
                name="metrics_content_request_done_has_asset",
                violation_error_message="A done request names the asset that answers it.",
            ),
            # A double submission (or a second rep asking the same on one handoff) is refused
            # while the first is still open.
            models.UniqueConstraint(
                "handoff",
                Lower("title"),
                condition=Q(status__in=["open", "in_progress"]),
                name="metrics_content_request_once_open",
                violation_error_message="This handoff already has an open request for that.",
            ),
        ]
        indexes = [
            # Marketing's list: by status, newest first; the slide's open requests.
            models.Index(fields=["status", "created_at"], name="content_request_status"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def clean(self) -> None:
        super().clean()
        self.title = " ".join((self.title or "").split())
        self.note = (self.note or "").strip()
        self.close_note = (self.close_note or "").strip()
        errors = {}
        if not self.title:
            errors["title"] = "Say what content is wanted."
        if self.status == self.Status.DONE and self.fulfilled_by_id is None:
            errors["fulfilled_by"] = "Pick the asset that answers the request."
        if self.status != self.Status.DONE and self.fulfilled_by_id is not None:
            errors["fulfilled_by"] = "Only a done request names the asset that answers it."
        if self.status == self.Status.DECLINED and not self.close_note:
            errors["close_note"] = "Say why it is declined: sales reads it."
        if errors:
            raise ValidationError(errors)


# The daily rollups' models live in their own module; importing them registers them here.
from metrics.rollup_models import (  # noqa: E402, F401
    CohortDay,
    HandoffDay,
    OpenDealDirty,
    OpenDealGroup,
    OpenDealRow,
    OpportunityDay,
    RollupDirty,
    RollupState,
)
