"""Definitions ops admins edit and publish: the ICP, the lifecycle stages and the handoff SLAs.

Each kind is a *version* (draft → published, effective from an instant) that owns its rows.
A published version never changes; a change is a new draft that supersedes it when published,
so the rules in force at any past instant stay readable (see ``leads.selectors``).
"""

import itertools
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from leads.choices import (
    RANGE_ATTRIBUTES,
    CriterionAttribute,
    DefinitionStatus,
    EventKind,
    FitTier,
    StageKind,
    Team,
    TriggerType,
)

MAX_CRITERION_POINTS = 100
MAX_SCORE = 1000


class DefinitionVersion(models.Model):
    number = models.PositiveIntegerField(editable=False)
    status = models.CharField(
        max_length=12,
        choices=DefinitionStatus.choices,
        default=DefinitionStatus.DRAFT,
        editable=False,
    )
    effective_from = models.DateTimeField(null=True, blank=True, editable=False)
    note = models.TextField(blank=True, help_text="What changed and why (shown to both teams).")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    label = "definition"
    # The related name of the rows this version owns (copied into a new draft).
    children_relation = ""

    class Meta:
        abstract = True
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], name="%(app_label)s_%(class)s_unique_number"
            ),
            # Two published versions with the same start would both be "in force".
            models.UniqueConstraint(
                fields=["effective_from"],
                condition=Q(status="published"),
                name="%(app_label)s_%(class)s_one_in_force_per_instant",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(effective_from__isnull=False),
                name="%(app_label)s_%(class)s_published_has_effective_from",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} v{self.number} ({self.get_status_display().lower()})"

    @property
    def is_published(self) -> bool:
        return self.status == DefinitionStatus.PUBLISHED

    def ensure_editable(self) -> None:
        if self.is_published:
            raise ValidationError(
                f"{self.label.capitalize()} v{self.number} is published and cannot be edited; "
                "create a new draft from it and publish that instead."
            )

    def validate_for_publish(self) -> None:
        """Whole-version checks; raise ValidationError with every problem found."""


class VersionedRow(models.Model):
    """A row owned by a definition version (``version`` FK): frozen once that is published."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self._ensure_version_editable()
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._ensure_version_editable()
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self._ensure_version_editable()

    def _ensure_version_editable(self) -> None:
        if getattr(self, "version_id", None) is not None:
            self.version.ensure_editable()


# --- Ideal Customer Profile --------------------------------------------------------------------


class IcpVersion(DefinitionVersion):
    """The Ideal Customer Profile: weighted criteria, poor-fit exclusions and fit tiers."""

    tier_a_min_points = models.IntegerField(default=60, help_text="Fit points for tier A.")
    tier_b_min_points = models.IntegerField(default=35, help_text="Fit points for tier B.")
    tier_c_min_points = models.IntegerField(default=15, help_text="Fit points for tier C.")

    label = "ICP"
    children_relation = "criteria"

    class Meta(DefinitionVersion.Meta):
        verbose_name = "ICP version"
        constraints = [
            *DefinitionVersion.Meta.constraints,
            models.CheckConstraint(
                condition=Q(tier_a_min_points__gt=models.F("tier_b_min_points"))
                & Q(tier_b_min_points__gt=models.F("tier_c_min_points")),
                name="leads_icpversion_tiers_descend",
            ),
        ]

    def clean(self) -> None:
        super().clean()
        if not (self.tier_a_min_points > self.tier_b_min_points > self.tier_c_min_points):
            raise ValidationError(
                {
                    "tier_b_min_points": "Tier thresholds must descend: "
                    "tier A > tier B > tier C fit points."
                }
            )

    def tier_for(self, fit_points: int, *, excluded: bool) -> str:
        if excluded:
            return FitTier.D
        if fit_points >= self.tier_a_min_points:
            return FitTier.A
        if fit_points >= self.tier_b_min_points:
            return FitTier.B
        if fit_points >= self.tier_c_min_points:
            return FitTier.C
        return FitTier.D

    def validate_for_publish(self) -> None:
        criteria = list(self.criteria.all())
        if not any(c.points > 0 and not c.is_exclusion for c in criteria):
            raise ValidationError("An ICP needs at least one criterion that awards points.")
        max_points = sum(c.points for c in criteria if c.points > 0 and not c.is_exclusion)
        if self.tier_a_min_points > max_points:
            raise ValidationError(
                f"Tier A needs {self.tier_a_min_points} fit points but the criteria can award "
                f"at most {max_points}: no lead could ever be tier A."
            )


class IcpCriterion(VersionedRow):
    """One ICP criterion: an attribute matched against values or a range, worth some points.

    An exclusion criterion marks a poor fit: a matching lead is tier D and never an MQL,
    whatever its points or engagement.
    """

    version = models.ForeignKey(IcpVersion, on_delete=models.CASCADE, related_name="criteria")
    name = models.CharField(max_length=120)
    attribute = models.CharField(max_length=20, choices=CriterionAttribute.choices)
    values = models.JSONField(
        default=list,
        blank=True,
        help_text="Values to match, for list attributes (industries, countries, technologies, "
        "signals, seniorities, title keywords). Case-insensitive.",
    )
    min_value = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    max_value = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    points = models.IntegerField(
        default=0,
        validators=[
            MinValueValidator(-MAX_CRITERION_POINTS),
            MaxValueValidator(MAX_CRITERION_POINTS),
        ],
    )
    is_exclusion = models.BooleanField(
        default=False, help_text="Poor fit: a match makes the lead tier D and never an MQL."
    )

    class Meta:
        ordering = ["is_exclusion", "-points", "name"]
        verbose_name = "ICP criterion"
        verbose_name_plural = "ICP criteria"
        constraints = [
            models.UniqueConstraint(
                fields=["version", "name"], name="leads_icpcriterion_unique_name"
            ),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(min_value__lte=models.F("max_value")),
                name="leads_icpcriterion_min_le_max",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_range(self) -> bool:
        return self.attribute in RANGE_ATTRIBUTES

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.is_range:
            if self.values:
                errors["values"] = (
                    f"{self.get_attribute_display()} is a range: use min/max, not values."
                )
            if self.min_value is None and self.max_value is None:
                errors["min_value"] = (
                    f"{self.get_attribute_display()} needs a minimum, a maximum or both."
                )
            if (
                self.min_value is not None
                and self.max_value is not None
                and self.min_value > self.max_value
            ):
                errors["max_value"] = (
                    f"The minimum ({self.min_value}) is greater than "
                    f"the maximum ({self.max_value})."
                )
            for field in ("min_value", "max_value"):
                value = getattr(self, field)
                if value is not None and value < 0:
                    errors[field] = "Must not be negative."
        else:
            if self.min_value is not None or self.max_value is not None:
                errors["min_value"] = (
                    f"{self.get_attribute_display()} matches values: leave min/max empty."
                )
            if not isinstance(self.values, list) or not all(
                isinstance(v, str) and v.strip() for v in self.values
            ):
                errors["values"] = "Values must be a list of non-empty texts."
            elif not self.values:
                errors["values"] = f"{self.get_attribute_display()} needs at least one value."
            else:
                self.values = sorted({v.strip().lower() for v in self.values})
        if self.is_exclusion and self.points:
            errors["points"] = "An exclusion awards no points: set points to 0."
        if not self.is_exclusion and self.points == 0:
            errors["points"] = "A criterion must award (or subtract) points, or be an exclusion."
        if errors:
            raise ValidationError(errors)


# --- Lifecycle stages --------------------------------------------------------------------------


class LifecycleVersion(DefinitionVersion):
    """The ordered lifecycle stages and their triggers, as one publishable set."""

    label = "lifecycle"
    children_relation = "stages"

    class Meta(DefinitionVersion.Meta):
        verbose_name = "lifecycle version"

    def validate_for_publish(self) -> None:
        validate_stage_set(list(self.stages.all()))


class LifecycleStage(VersionedRow):
    version = models.ForeignKey(LifecycleVersion, on_delete=models.CASCADE, related_name="stages")
    key = models.SlugField(max_length=30, help_text="Stable identifier, e.g. mql. Never reuse.")
    name = models.CharField(max_length=60)
    buyer_label = models.CharField(
        max_length=60, blank=True, help_text="Buyer-language label, e.g. Curious / Engaged."
    )
    order = models.PositiveSmallIntegerField()
    team = models.CharField(max_length=10, choices=Team.choices)
    kind = models.CharField(max_length=12, choices=StageKind.choices, default=StageKind.OPEN)
    trigger_type = models.CharField(
        max_length=10, choices=TriggerType.choices, default=TriggerType.MANUAL
    )
    trigger_score = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_SCORE)],
        help_text="For a score trigger: the total score at or above which a lead enters.",
    )
    trigger_event_kind = models.CharField(
        max_length=30,
        choices=EventKind.choices,
        blank=True,
        help_text="For an event trigger: the engagement event that moves a lead here.",
    )
    opens_handoff = models.BooleanField(
        default=False, help_text="Entering this stage hands the lead to sales (opens a handoff)."
    )
    on_reject_key = models.SlugField(
        max_length=30,
        blank=True,
        help_text="Where a lead rejected from this stage goes: the key of a nurture or "
        "disqualified stage.",
    )
    requalify_cooldown_days = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(365)],
        help_text="After a rejection at this stage's handoff, engagement counts as new (and may "
        "re-qualify the lead on score) only from this many days after the rejection.",
    )

    class Meta:
        ordering = ["version", "order"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="leads_stage_unique_key"),
            models.UniqueConstraint(fields=["version", "order"], name="leads_stage_unique_order"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors = validate_stage_trigger(self)
        if errors:
            raise ValidationError(errors)


def validate_stage_trigger(stage: LifecycleStage) -> dict[str, str]:
    errors: dict[str, str] = {}
    if stage.trigger_type == TriggerType.SCORE_THRESHOLD:
        if stage.trigger_score is None:
            errors["trigger_score"] = "A score trigger needs the threshold score."
        if stage.trigger_event_kind:
            errors["trigger_event_kind"] = "A score trigger takes no event kind."
    elif stage.trigger_type == TriggerType.EVENT:
        if not stage.trigger_event_kind:
            errors["trigger_event_kind"] = "An event trigger needs the event kind."
        elif stage.trigger_event_kind not in EventKind.values:
            errors["trigger_event_kind"] = (
                f"Unknown event kind {stage.trigger_event_kind!r}; "
                f"known kinds: {', '.join(EventKind.values)}."
            )
        if stage.trigger_score is not None:
            errors["trigger_score"] = "An event trigger takes no score threshold."
    else:
        if stage.trigger_score is not None or stage.trigger_event_kind:
            errors["trigger_type"] = "A manual stage takes no score threshold or event kind."
    if stage.kind != StageKind.OPEN and stage.opens_handoff:
        errors["opens_handoff"] = "Only an open stage can hand a lead to sales."
    return errors


def validate_stage_set(stages: list) -> None:
    """Checks across the stages of one version (also used by the admin's inline formset)."""
    problems: list[str] = []
    if not stages:
        raise ValidationError("A lifecycle needs at least one stage.")
    by_key = {}
    for stage in stages:
        if stage.key in by_key:
            problems.append(f"Two stages use the key {stage.key!r}.")
        by_key[stage.key] = stage
    orders = [s.order for s in stages]
    if len(set(orders)) != len(orders):
        problems.append("Two stages share the same order: each stage needs its own position.")
    open_stages = sorted((s for s in stages if s.kind == StageKind.OPEN), key=lambda s: s.order)
    if not open_stages:
        problems.append("A lifecycle needs at least one open stage for new leads.")
    thresholds = [
        (s.order, s.trigger_score, s.name)
        for s in open_stages
        if s.trigger_type == TriggerType.SCORE_THRESHOLD and s.trigger_score is not None
    ]
    for (_, low, low_name), (_, high, high_name) in itertools.pairwise(thresholds):
        if high <= low:
            problems.append(
                f"Score thresholds must rise with stage order: {high_name} ({high}) comes after "
                f"{low_name} ({low}) but does not need a higher score."
            )
    for stage in stages:
        if stage.on_reject_key:
            target = by_key.get(stage.on_reject_key)
            if target is None:
                problems.append(
                    f"{stage.name}: rejected leads go to {stage.on_reject_key!r}, which is not a "
                    "stage of this lifecycle."
                )
            elif target.kind not in (StageKind.NURTURE, StageKind.DISQUALIFIED):
                problems.append(
                    f"{stage.name}: rejected leads must go to a nurture or disqualified stage, "
                    f"not to {target.name}."
                )
        elif stage.opens_handoff:
            problems.append(f"{stage.name} hands leads to sales, so it needs an on-reject target.")
    if problems:
        raise ValidationError(problems)


# --- Handoff SLAs ------------------------------------------------------------------------------


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"Unknown time zone {value!r} (use an IANA name such as Europe/Paris)."
        ) from exc


class BusinessCalendar(models.Model):
    """Working hours and holidays in a time zone: the clock SLA due times run on."""

    name = models.CharField(max_length=80, unique=True)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.time_zone})"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class WorkingHours(models.Model):
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["calendar", "weekday", "opens_at"]
        verbose_name_plural = "working hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(opens_at__lt=models.F("closes_at")),
                name="leads_workinghours_opens_before_closes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        super().clean()
        if self.opens_at and self.closes_at and self.opens_at >= self.closes_at:
            raise ValidationError({"closes_at": "Closing time must be after opening time."})


class Holiday(models.Model):
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=80)

    class Meta:
        ordering = ["calendar", "date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="leads_holiday_unique_date"),
        ]

    def __str__(self) -> str:
        # str(date) is already YYYY-MM-DD, and also works before a string input is cleaned.
        return f"{self.date} {self.name}"


class SlaVersion(DefinitionVersion):
    """The handoff SLA policies, as one publishable set."""

    label = "SLA"
    children_relation = "policies"

    class Meta(DefinitionVersion.Meta):
        verbose_name = "SLA version"

    def validate_for_publish(self) -> None:
        policies = list(self.policies.select_related("calendar"))
        if not policies:
            raise ValidationError("An SLA version needs at least one policy.")
        for policy in policies:
            if not policy.calendar.working_hours.exists():
                raise ValidationError(
                    f"Policy {policy.name!r} uses calendar {policy.calendar.name!r}, "
                    "which has no working hours: its clock would never run."
                )


class SlaPolicy(VersionedRow):
    """How fast sales must respond to, and accept or reject, leads entering a stage."""

    version = models.ForeignKey(SlaVersion, on_delete=models.CASCADE, related_name="policies")
    name = models.CharField(max_length=80)
    stage_key = models.SlugField(max_length=30, help_text="The stage whose handoffs this governs.")
    tier = models.CharField(
        max_length=1,
        choices=FitTier.choices,
        blank=True,
        help_text="Segment: only leads of this fit tier. Empty = any tier (the fallback).",
    )
    respond_within_hours = models.DecimalField(
        max_digits=6, decimal_places=2, validators=[MinValueValidator(Decimal("0.25"))]
    )
    accept_within_hours = models.DecimalField(
        max_digits=6, decimal_places=2, validators=[MinValueValidator(Decimal("0.25"))]
    )
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="+")
    escalate_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who hears about a breach besides the assignee (e.g. the head of sales).",
    )
    escalate_to_manager = models.BooleanField(
        default=False,
        verbose_name="escalate to the rep's manager",
        help_text="A breach is also told to the assigned rep's sales manager (their team's).",
    )
    reassign_on_breach = models.BooleanField(default=False)

    class Meta:
        ordering = ["version", "stage_key", "tier"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(
                fields=["version", "stage_key", "tier"], name="leads_slapolicy_unique_segment"
            ),
            models.CheckConstraint(
                condition=Q(accept_within_hours__gte=models.F("respond_within_hours")),
                name="leads_slapolicy_accept_after_respond",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors = {}
        if (
            self.respond_within_hours is not None
            and self.accept_within_hours is not None
            and self.accept_within_hours < self.respond_within_hours
        ):
            errors["accept_within_hours"] = (
                "Accept/reject time cannot be shorter than the response time "
                f"({self.respond_within_hours} business hours)."
            )
        known_keys = set(LifecycleStage.objects.values_list("key", flat=True))
        if self.stage_key and known_keys and self.stage_key not in known_keys:
            errors["stage_key"] = (
                f"No lifecycle stage has the key {self.stage_key!r}; known: "
                f"{', '.join(sorted(known_keys))}."
            )
        if errors:
            raise ValidationError(errors)
