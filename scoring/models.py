"""The scoring model (a versioned definition, like the ICP) and each lead's scoring state."""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from leads.choices import EventKind, FitTier
from leads.models import IcpVersion, Lead
from leads.models.definitions import MAX_SCORE, DefinitionVersion, VersionedRow

MAX_WEIGHT = 100


class ScoringModel(DefinitionVersion):
    """How engagement is scored: weights per event kind, decay, caps, penalties and bands."""

    half_life_days = models.FloatField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Days after which an event counts half (1–3650).",
    )
    engagement_floor = models.FloatField(
        default=0,
        validators=[MinValueValidator(-MAX_SCORE), MaxValueValidator(0)],
        help_text="Engagement never goes below this (0 or negative).",
    )
    engagement_cap = models.FloatField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SCORE)],
        help_text="Engagement never goes above this.",
    )
    personal_email_penalty = models.FloatField(
        default=-10,
        validators=[MinValueValidator(-MAX_WEIGHT), MaxValueValidator(0)],
        help_text="Points for a personal mailbox (gmail.com, outlook.com…).",
    )
    competitor_domains = models.JSONField(
        default=list, blank=True, help_text='E-mail domains of competitors, e.g. ["rival.com"].'
    )
    competitor_penalty = models.FloatField(
        default=-50, validators=[MinValueValidator(-MAX_SCORE), MaxValueValidator(0)]
    )
    band_1_min = models.FloatField(default=60, help_text="Engagement for band 1 (hottest).")
    band_2_min = models.FloatField(default=30)
    band_3_min = models.FloatField(default=10)

    label = "scoring model"
    children_relation = "weights"

    class Meta(DefinitionVersion.Meta):
        verbose_name = "scoring model"

    def clean(self) -> None:
        super().clean()
        errors = {}
        floor, cap = self.engagement_floor, self.engagement_cap
        if floor is not None and cap is not None and floor >= cap:
            errors["engagement_cap"] = "The cap must be above the floor."
        if not (self.band_1_min > self.band_2_min > self.band_3_min):
            errors["band_2_min"] = "Bands must descend: band 1 > band 2 > band 3."
        domains = self.competitor_domains
        if not isinstance(domains, list) or not all(
            isinstance(d, str) and d.strip() for d in domains
        ):
            errors["competitor_domains"] = 'Must be a list of domains, e.g. ["rival.com"].'
        else:
            self.competitor_domains = sorted({d.strip().lower() for d in domains})
        if errors:
            raise ValidationError(errors)

    def validate_for_publish(self) -> None:
        from leads.selectors import icp_in_force, lifecycle_at

        if not self.weights.filter(points__gt=0).exists():
            raise ValidationError("A scoring model needs at least one event kind worth points.")
        icp = icp_in_force()
        max_fit = 0
        if icp is not None:
            max_fit = sum(
                c.points for c in icp.criteria.all() if c.points > 0 and not c.is_exclusion
            )
        top = max_fit + self.engagement_cap
        for stage in lifecycle_at().stages:
            if stage.trigger_score is not None and stage.trigger_score > top:
                raise ValidationError(
                    f"{stage.name} needs a score of {stage.trigger_score}, outside the score "
                    f"range 0–{top:g} (fit up to {max_fit} + engagement up to "
                    f"{self.engagement_cap:g}): no lead could ever reach it."
                )


class EventWeight(VersionedRow):
    version = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="weights")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    points = models.FloatField(
        validators=[MinValueValidator(-MAX_WEIGHT), MaxValueValidator(MAX_WEIGHT)],
        help_text=f"Points per event, −{MAX_WEIGHT} to {MAX_WEIGHT}; negative for bad signals.",
    )
    daily_cap = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="At most this many events of the kind count on one day.",
    )

    class Meta:
        ordering = ["version", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["version", "kind"], name="scoring_weight_unique_kind"),
            models.CheckConstraint(
                condition=Q(points__gte=-MAX_WEIGHT) & Q(points__lte=MAX_WEIGHT),
                name="scoring_weight_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.points:g}"

    def clean(self) -> None:
        super().clean()
        if self.kind and self.kind not in EventKind.values:
            raise ValidationError(
                {"kind": f"Unknown event kind {self.kind!r}; known: {', '.join(EventKind.values)}."}
            )


def _unindexed_version_key(model) -> models.ForeignKey:
    # No database constraint either: a publish changes this column on every state row, and
    # PostgreSQL checks a changed foreign key row by row at commit (a query and a key-share lock
    # on the version's row per lead: ~9 µs a row, 9 s of a million-lead publish, and the locks
    # of two workers on the same version row turn into multixacts). Only the scoring code writes
    # it, always with a version it has just read as published, and published versions are never
    # deleted (PROTECT still refuses it through the ORM).
    return models.ForeignKey(
        model,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )


def sum_field_name(kind: str) -> str:
    return f"sum_{kind}"


class LeadScoreState(models.Model):
    """A lead's current score (fit, tier, engagement, total, grade), and what the engine keeps
    so most recomputes need not re-read events. A narrow table of its own, rewritten on every
    rescore, so the wide and heavily indexed lead table is not.

    ``sum_<kind>`` = Σ_days min(count, cap) · 2^((day − epoch_day) / half-life), under the caps
    and half-life of ``sums_model``; a weight change re-weights these sums, a half-life or cap
    change re-reads events. ``pending_seq`` > ``scored_seq`` means new events await a rescore.
    """

    lead = models.OneToOneField(
        Lead, primary_key=True, on_delete=models.CASCADE, related_name="score_state"
    )
    # Not indexed: every rescore changes them, and an indexed column would rule out in-place
    # (HOT) updates; rows are always found by lead id ranges.
    icp_version = _unindexed_version_key(IcpVersion)
    scoring_model = _unindexed_version_key(ScoringModel)
    sums_model = _unindexed_version_key(ScoringModel)
    # Database defaults too: the bulk path creates missing rows with a plain INSERT … SELECT.
    fit_points = models.IntegerField(default=0, db_default=0)
    fit_excluded = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Matches a poor-fit exclusion of the ICP: never an MQL.",
    )
    tier = models.CharField(
        max_length=1, choices=FitTier.choices, default=FitTier.D, db_default=FitTier.D
    )
    engagement = models.FloatField(default=0, db_default=0)
    total = models.FloatField(default=0, db_default=0)
    grade = models.CharField(
        max_length=2, blank=True, db_default="", help_text="Tier + engagement band, e.g. A1."
    )
    # The lead's e-mail domain (for the personal-mailbox and competitor penalties), copied here
    # whenever the lead is refitted: a weight change then rescores from this row alone, with no
    # read of the wide lead table.
    email_domain = models.CharField(max_length=254, blank=True, default="", db_default="")
    # Which ICP criteria the lead matched (a bit each: engine.match_bits) and a key of what they
    # test (``engine.conditions_key``), written by every refit: a new ICP version that tests the
    # same things, with other points or thresholds, refits from this row alone
    # (``scoring.bulk.refit_from_matches``). Null: fitted without a mask; refitted from facts.
    fit_matches = models.BigIntegerField(null=True, blank=True)
    fit_conditions = models.BigIntegerField(null=True, blank=True)
    epoch_day = models.IntegerField(default=0)
    as_of_day = models.IntegerField(default=0)
    pending_seq = models.BigIntegerField(default=0)
    scored_seq = models.BigIntegerField(default=0)
    scored_at = models.DateTimeField(null=True, blank=True)
    # When a rescore of the dirty lead was last sent to the broker; the sweep sends it again only
    # when that is long ago (its message was lost), never while it merely waits in the queue.
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["lead"],
                condition=Q(pending_seq__gt=models.F("scored_seq")),
                name="scorestate_dirty",
            ),
        ]

    def __str__(self) -> str:
        return f"Score state of lead {self.lead_id}"

    @property
    def is_dirty(self) -> bool:
        return self.pending_seq > self.scored_seq


for _kind in EventKind.values:
    LeadScoreState.add_to_class(sum_field_name(_kind), models.FloatField(default=0, db_default=0))


class RescoreJob(models.Model):
    """A rescore of every lead (after a publish, or the daily decay), split into chunks that
    workers run in parallel. Each chunk keeps a watermark, so a crashed worker resumes."""

    class Reason(models.TextChoices):
        ICP_PUBLISHED = "icp_published", "ICP published"
        MODEL_PUBLISHED = "model_published", "Scoring model published"
        DECAY = "decay", "Daily decay"
        MANUAL = "manual", "Manual"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    reason = models.CharField(max_length=20, choices=Reason.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    note = models.CharField(max_length=200, blank=True)
    total_leads = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} rescore #{self.pk}"


class RescoreChunk(models.Model):
    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="chunks")
    first_lead_id = models.BigIntegerField()
    last_lead_id = models.BigIntegerField()
    next_lead_id = models.BigIntegerField(help_text="Watermark: leads below it are done.")
    processed = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "first_lead_id"]
        indexes = [
            models.Index(
                fields=["updated_at"],
                condition=Q(finished_at__isnull=True),
                name="chunk_unfinished",
            )
        ]

    def __str__(self) -> str:
        return f"leads {self.first_lead_id}–{self.last_lead_id} of job {self.job_id}"


class AccountFitBuild(models.Model):
    """An ICP version whose account fits are in ``AccountFit``, every account's (written in the
    transaction that wrote them): a publish's buckets join those instead of looking each lead's
    account up."""

    icp_version = models.OneToOneField(
        IcpVersion,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    accounts = models.PositiveIntegerField(default=0)
    # The accounts' write counter when built (``scoring.bulk.FIT_EPOCH``): any account written
    # since makes these fits stale, and the next bucket builds them again.
    epoch = models.BigIntegerField(default=0)
    built_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Account fits of ICP version {self.icp_version_id}"


class AccountFit(models.Model):
    """One account's part of the fit under an ICP version: the points and exclusion of the
    criteria on account attributes, and the account's country (the lead's effective country
    when set). Computed once per ICP version for every account, in one statement
    (``scoring.bulk.account_fits_build``): a refit of a million leads then reads a narrow table
    that stays in memory instead of probing the wide account table once per lead (~60% of an
    ICP publish's refit). A snapshot: accounts changed after it mark their leads for the
    incremental rescore, which reads the account itself."""

    pk = models.CompositePrimaryKey("icp_version", "account")
    # No database constraints: rows are written and dropped in bulk by the scoring code only,
    # and an account's deletion must not look here (its leads no longer point at it).
    icp_version = models.ForeignKey(
        IcpVersion,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    account = models.ForeignKey(
        "leads.Account",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    points = models.IntegerField()
    excluded = models.BooleanField()
    # The account criteria matched, as bits of the lead's match mask (LeadScoreState.fit_matches).
    matches = models.BigIntegerField(default=0, db_default=0)
    country = models.CharField(max_length=2, blank=True)

    def __str__(self) -> str:
        return f"Fit of account {self.account_id} under ICP version {self.icp_version_id}"


# The predictive score's tables live in their own module but belong to this app.
from scoring.predictive.models import LeadPrediction, PredictiveModel  # noqa: E402, F401
