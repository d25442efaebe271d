"""The pipeline's facts: who the leads are, what they did, and how they moved."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leads.choices import (
    ActorType,
    AssetType,
    ChannelGroup,
    EventKind,
    FitTier,
    FunnelStage,
    HandoffOutcome,
    OpportunityStage,
    OpportunityStatus,
    Region,
    Seniority,
    SourceOrigin,
)


def normalize_domain(value: str) -> str:
    """'https://WWW.Example.com/about' → 'example.com'; '' when no host can be read from it
    (e.g. 'exa[mple.com', which URL parsing refuses as a broken IPv6 address)."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    try:
        host = urlsplit(value if "//" in value else f"//{value}").hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.").rstrip(".")


def normalize_tags(values) -> list:
    """Technologies or signals: lower-cased, stripped, de-duplicated, sorted."""
    if not isinstance(values, list):
        return values  # clean() reports the bad type
    return sorted({v.strip().lower() for v in values if isinstance(v, str) and v.strip()})


class Account(models.Model):
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=200, blank=True, help_text="Normalized: example.com")
    industry = models.CharField(max_length=80, blank=True, db_index=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(
        max_digits=16, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2 code.")
    region = models.CharField(max_length=5, choices=Region.choices, blank=True)
    technologies = models.JSONField(default=list, blank=True)
    signals = models.JSONField(default=list, blank=True)
    external_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=~Q(domain=""),
                name="leads_account_unique_domain",
                violation_error_message="An account with this domain already exists.",
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="leads_account_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Lists are matched case-insensitively by the ICP; storing them lower-cased lets the
        # bulk scoring path match them with one indexable jsonb operator.
        self.technologies = normalize_tags(self.technologies)
        self.signals = normalize_tags(self.signals)
        return super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        typed, self.domain = self.domain, normalize_domain(self.domain)
        if (typed or "").strip() and not self.domain:
            raise ValidationError({"domain": "Enter a domain such as example.com."})
        self.country = (self.country or "").upper()
        if self.country and not (len(self.country) == 2 and self.country.isalpha()):
            raise ValidationError({"country": "Use a two-letter ISO country code, e.g. US or DE."})
        for field in ("technologies", "signals"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError({field: "Must be a list of texts."})


class Source(models.Model):
    """Where leads come from (e.g. "Webinar", "LinkedIn ads"), grouped into channel groups."""

    name = models.CharField(max_length=80, unique=True)
    channel_group = models.CharField(max_length=20, choices=ChannelGroup.choices)
    origin = models.CharField(
        max_length=10, choices=SourceOrigin.choices, default=SourceOrigin.MARKETING
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    name = models.CharField(max_length=150)
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="campaigns")
    cost = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    external_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.UniqueConstraint(fields=["source", "name"], name="leads_campaign_unique_name"),
            models.CheckConstraint(
                condition=Q(starts_on__isnull=True)
                | Q(ends_on__isnull=True)
                | Q(starts_on__lte=models.F("ends_on")),
                name="leads_campaign_starts_before_ends",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.starts_on and self.ends_on and self.starts_on > self.ends_on:
            raise ValidationError({"ends_on": "The campaign cannot end before it starts."})


class ContentAsset(models.Model):
    title = models.CharField(max_length=200)
    asset_type = models.CharField(max_length=24, choices=AssetType.choices)
    funnel_stage = models.CharField(max_length=4, choices=FunnelStage.choices)
    url = models.URLField(blank=True)

    class Meta:
        ordering = ["funnel_stage", "title"]

    def __str__(self) -> str:
        return self.title


class Lead(models.Model):
    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80, blank=True)
    email = models.EmailField(blank=True, help_text="Stored lower-case; unique when present.")
    phone = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=150, blank=True)
    seniority = models.CharField(
        max_length=12, choices=Seniority.choices, default=Seniority.UNKNOWN
    )
    country = models.CharField(max_length=2, blank=True)
    # The account and source are checked once per statement, not by a foreign key's query per
    # row (migration 0017, as the events' lead).
    account = models.ForeignKey(
        Account,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        db_constraint=False,
    )
    # Source, campaign, owner and stage have no index of their own: the composite indexes
    # below lead with them (each index is written by every new lead: migration 0017).
    source = models.ForeignKey(
        Source,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        db_index=False,
        db_constraint=False,
    )
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        db_index=False,
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        db_index=False,
    )
    # The stage is the stable key of a lifecycle stage (e.g. "mql"): keys outlive versions.
    stage = models.SlugField(max_length=30, default="lead", db_index=False)
    stage_entered_at = models.DateTimeField(default=timezone.now)
    # Mirrored from the lead's score state (scoring app) when it changes: filters and SLA
    # segments need it here; the volatile scores stay in that narrow table.
    tier = models.CharField(max_length=1, choices=FitTier.choices, default=FitTier.D)
    in_marketing_nurture = models.BooleanField(
        default=True,
        help_text="Cleared once sales works the lead, so marketing automation suppresses it.",
    )
    external_id = models.CharField(max_length=100, blank=True, help_text="CRM id.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["email"],
                condition=~Q(email=""),
                name="leads_lead_unique_email",
                violation_error_message="A lead with this e-mail address already exists.",
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="leads_lead_unique_external_id",
                violation_error_message="A lead with this external id already exists.",
            ),
            models.CheckConstraint(
                condition=Q(email="") | Q(email__contains="@"), name="leads_lead_email_shape"
            ),
        ]
        permissions = [("recycle_lead", "Can recycle a disqualified lead back to nurture")]
        indexes = [
            models.Index(fields=["created_at"], name="lead_created"),
            # With the id and the account: the open-stage leads (stalled ones, the handoffs
            # sales still works, the meeting's content slide) read by an index-only scan, not
            # from a heap page per lead.
            models.Index(
                fields=["stage", "stage_entered_at", "id", "account"], name="lead_stage_entered"
            ),
            models.Index(fields=["source", "created_at"], name="lead_source_created"),
            models.Index(fields=["campaign", "created_at"], name="lead_campaign_created"),
            models.Index(fields=["owner", "stage"], name="lead_owner_stage"),
            # No index holds the tier (migration 0021): a publish rewrites tiers, and a write
            # that changes no indexed column stays on its page (HOT) with no index entries.
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"Lead {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def clean(self) -> None:
        super().clean()
        self.email = (self.email or "").strip().lower()
        self.country = (self.country or "").upper()


class EngagementEvent(models.Model):
    """Something a lead did. Idempotent: (source_system, external_id) is unique when given.

    The largest table (ten events a lead): every index costs each COPY and each API batch, so it
    keeps only those a read needs. ``(lead, occurred_at)`` serves the lead's own reads and the
    foreign key's cascade; ``occurred_at`` the time-ordered lists (a kind filter walks it too);
    content links are rare, so only linked rows are indexed.

    On PostgreSQL the table is partitioned by month of ``occurred_at`` (migration 0015,
    ``leads.partitions``): its primary key is ``(id, occurred_at)`` there, ``id`` alone here.
    A partitioned table cannot hold a unique index without the partition key, so the
    idempotency key lives in ``EventKey``, which triggers on this table keep in the writer's
    own transaction, whoever the writer is (ORM, COPY, admin, raw SQL)."""

    # The composite index below leads with lead_id: a second, single-column one is dead weight.
    # No foreign-key constraint on PostgreSQL: one check per statement instead of one query per
    # row, under an advisory lock that lead deletes take (migration 0017); SQLite keeps its own.
    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    content_asset = models.ForeignKey(
        ContentAsset,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
        db_constraint=False,  # checked per statement, as the lead (migration 0017)
    )
    source_system = models.CharField(max_length=40, blank=True, help_text="e.g. hubspot, web")
    external_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["lead", "occurred_at"], name="event_lead_occurred"),
            models.Index(fields=["occurred_at"], name="event_occurred"),
            models.Index(
                fields=["content_asset"],
                condition=Q(content_asset__isnull=False),
                name="event_content_asset",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"

    def validate_constraints(self, exclude=None) -> None:
        # What the unique constraint said before the key moved to EventKey (forms, the admin).
        super().validate_constraints(exclude=exclude)
        if not self.external_id:
            return
        key = {"source_system": self.source_system, "external_id": self.external_id}
        own = not self._state.adding and EngagementEvent.objects.filter(pk=self.pk, **key).exists()
        if not own and EventKey.objects.filter(**key).exists():
            raise ValidationError("This event (source system + external id) was already received.")


class EventKey(models.Model):
    """The (source system, external id) of every event received with one: the idempotency key
    of ``EngagementEvent``, unique here because the partitioned event table cannot hold a
    global unique index. Written only by triggers on the event table (migration 0015): an
    insert adds the keys (a second one is a unique violation, as the old constraint was), a
    delete or a changed key removes them, a TRUNCATE empties the table. Dropping a month's
    partition (retention, ``leads.partitions.events_retire``) fires no trigger: the keys of folded
    events stay, so an integration re-sending an old event still finds it received."""

    pk = models.CompositePrimaryKey("source_system", "external_id")
    source_system = models.CharField(max_length=40)
    external_id = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()

    class Meta:
        verbose_name = "received event key"

    def __str__(self) -> str:
        return f"{self.source_system}:{self.external_id}"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only history: never updated.")


class AppendOnlyModel(models.Model):
    """History rows: written once by the services, never updated (deleted only with what they
    describe)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only history: never updated.")
        return super().save(*args, **kwargs)


class StageTransition(AppendOnlyModel):
    """Append-only stage history: where a lead was, where it went, when, who and why."""

    # Served by the (lead, transitioned_at) index below; checked per statement (migration 0017).
    lead = models.ForeignKey(
        Lead,
        on_delete=models.CASCADE,
        related_name="transitions",
        db_index=False,
        db_constraint=False,
    )
    from_stage = models.SlugField(max_length=30, blank=True)
    to_stage = models.SlugField(max_length=30, db_index=False)  # transition_to_at leads with it
    transitioned_at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["transitioned_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(from_stage=models.F("to_stage")), name="leads_transition_moves"
            ),
        ]
        indexes = [
            models.Index(fields=["lead", "transitioned_at"], name="transition_lead_at"),
            models.Index(fields=["to_stage", "transitioned_at"], name="transition_to_at"),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage or '∅'} → {self.to_stage}"


class RejectionReason(models.Model):
    """Why sales rejected a lead: a list ops admins manage, visible to marketing."""

    key = models.SlugField(max_length=30, unique=True)
    label = models.CharField(max_length=80)
    requires_note = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "label"]

    def __str__(self) -> str:
        return self.label


class Handoff(models.Model):
    """A lead handed from marketing to sales, with the SLA clock's due times snapshotted."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="handoffs")
    stage = models.SlugField(max_length=30, help_text="The stage the lead entered (e.g. mql).")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="handoffs",
    )
    sla_policy = models.ForeignKey(
        "leads.SlaPolicy", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(default=timezone.now)
    response_due_at = models.DateTimeField(null=True, blank=True)
    accept_due_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.ForeignKey(
        RejectionReason, null=True, blank=True, on_delete=models.PROTECT, related_name="handoffs"
    )
    reject_note = models.TextField(blank=True)
    outcome = models.CharField(
        max_length=10, choices=HandoffOutcome.choices, default=HandoffOutcome.PENDING
    )
    # First response − assignment in business seconds of the policy's calendar, fixed when the
    # response is logged: response-time KPIs aggregate it in SQL instead of re-running the clock.
    response_business_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Set once by the breach sweep; a set time means "already reported, never again".
    response_breached_at = models.DateTimeField(null=True, blank=True)
    accept_breached_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every action: a form carries the revision it was drawn from, so a double
    # submission or a decision made on a stale page is refused instead of applied twice.
    revision = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["-assigned_at"]
        permissions = [
            ("manage_handoffs", "Can act on and reassign the handoffs of their sales team"),
            ("work_handoffs", "Can act on handoffs assigned to them"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(outcome="pending", accepted_at__isnull=True, rejected_at__isnull=True)
                    | Q(outcome="accepted", accepted_at__isnull=False, rejected_at__isnull=True)
                    | Q(
                        outcome="rejected",
                        rejected_at__isnull=False,
                        accepted_at__isnull=True,
                        reject_reason__isnull=False,
                    )
                ),
                name="leads_handoff_outcome_consistent",
            ),
            models.CheckConstraint(
                condition=Q(first_response_at__isnull=True)
                | Q(first_response_at__gte=models.F("assigned_at")),
                name="leads_handoff_response_after_assignment",
            ),
            models.CheckConstraint(
                condition=Q(response_due_at__isnull=True)
                | Q(response_due_at__gte=models.F("assigned_at")),
                name="leads_handoff_due_after_assignment",
            ),
        ]
        indexes = [
            models.Index(fields=["assignee", "outcome", "response_due_at"], name="handoff_queue"),
            models.Index(fields=["assigned_at"], name="handoff_assigned"),
            models.Index(fields=["outcome", "response_due_at"], name="handoff_outcome_due"),
            models.Index(fields=["lead", "assigned_at"], name="handoff_lead_assigned"),
            # The KPIs that date a handoff by a due time or its rejection read one day's range
            # of them (today's, beside the daily rollups) or a period's (the drill-downs).
            models.Index(fields=["response_due_at"], name="handoff_response_due"),
            models.Index(fields=["accept_due_at"], name="handoff_accept_due"),
            models.Index(
                fields=["rejected_at"],
                condition=Q(rejected_at__isnull=False),
                name="handoff_rejected",
            ),
            # The breach sweep reads only handoffs not yet reported: these stay small however
            # many handoffs pile up.
            models.Index(
                fields=["response_due_at"],
                condition=Q(
                    outcome="pending",
                    first_response_at__isnull=True,
                    response_breached_at__isnull=True,
                ),
                name="handoff_response_unbreached",
            ),
            models.Index(
                fields=["accept_due_at"],
                condition=Q(outcome="pending", accept_breached_at__isnull=True),
                name="handoff_accept_unbreached",
            ),
        ]

    def __str__(self) -> str:
        return f"Handoff of {self.lead} ({self.get_outcome_display()})"

    @property
    def is_pending(self) -> bool:
        return self.outcome == HandoffOutcome.PENDING

    @property
    def next_due_at(self):
        """The deadline sales is working against now: respond first, then accept or reject."""
        if not self.is_pending:
            return None
        return self.response_due_at if self.first_response_at is None else self.accept_due_at

    @property
    def was_breached(self) -> bool:
        """Late on either clock, whether the sweep has reported it yet or not."""
        # Unanswered / undecided handoffs are measured against now.
        now = timezone.now()
        responded_at = self.first_response_at or now
        responded_late = self.response_due_at is not None and (
            self.response_breached_at is not None or responded_at > self.response_due_at
        )
        decided_at = self.accepted_at or self.rejected_at or now
        decided_late = self.accept_due_at is not None and (
            self.accept_breached_at is not None or decided_at > self.accept_due_at
        )
        return responded_late or decided_late

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.outcome == HandoffOutcome.REJECTED and self.reject_reason_id is None:
            errors["reject_reason"] = "A rejection needs a reason, so marketing learns why."
        if (
            self.reject_reason_id is not None
            and self.reject_reason.requires_note
            and not self.reject_note.strip()
        ):
            errors["reject_note"] = f"The reason “{self.reject_reason}” needs a note."
        if self.first_response_at and self.first_response_at < self.assigned_at:
            errors["first_response_at"] = "The first response cannot come before assignment."
        if errors:
            raise ValidationError(errors)


class Opportunity(models.Model):
    name = models.CharField(max_length=200)
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="opportunities"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="opportunities"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="opportunities",
    )
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")
    stage = models.CharField(
        max_length=12, choices=OpportunityStage.choices, default=OpportunityStage.DISCOVERY
    )
    status = models.CharField(
        max_length=5, choices=OpportunityStatus.choices, default=OpportunityStatus.OPEN
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    loss_reason = models.CharField(max_length=120, blank=True)
    external_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "opportunities"
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True)
                | (~Q(status="open") & Q(closed_at__isnull=False)),
                name="leads_opportunity_closed_has_date",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(closed_at__gte=models.F("created_at")),
                name="leads_opportunity_closes_after_creation",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="leads_opportunity_amount"),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="leads_opportunity_unique_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "closed_at"], name="opportunity_status_closed"),
            models.Index(fields=["created_at"], name="opportunity_created"),
            models.Index(fields=["owner", "status"], name="opportunity_owner_status"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors = {}
        closed = self.status != OpportunityStatus.OPEN
        if closed and self.closed_at is None:
            errors["closed_at"] = "A won or lost opportunity needs its close date."
        if not closed and self.closed_at is not None:
            errors["closed_at"] = "An open opportunity has no close date."
        if self.closed_at and self.created_at and self.closed_at < self.created_at:
            errors["closed_at"] = "An opportunity cannot close before it was created."
        if self.status == OpportunityStatus.WON and self.stage != OpportunityStage.CLOSED_WON:
            self.stage = OpportunityStage.CLOSED_WON
        if self.status == OpportunityStatus.LOST and self.stage != OpportunityStage.CLOSED_LOST:
            self.stage = OpportunityStage.CLOSED_LOST
        if errors:
            raise ValidationError(errors)
