"""What sales does with handed-off leads: touches, decisions, breaches and who hears of them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leads.choices import ActivityAction, ActorType, NotificationKind, TouchChannel
from leads.models.facts import Account, AppendOnlyModel, ContentAsset, Handoff, Lead


class ObjectionTag(models.Model):
    """A buyer objection heard on a call (price, timing, competitor…): a list ops admins manage."""

    key = models.SlugField(max_length=30, unique=True)
    label = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "label"]

    def __str__(self) -> str:
        return self.label


class LeadActivity(AppendOnlyModel):
    """Append-only history of the handoff workflow: who did what to a lead, when, and how.

    Touches carry the objections heard and the content assets shared, so the weekly meeting can
    see which questions come up and which of marketing's assets sales actually uses.
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities")
    handoff = models.ForeignKey(
        Handoff, null=True, blank=True, on_delete=models.CASCADE, related_name="activities"
    )
    action = models.CharField(max_length=20, choices=ActivityAction.choices)
    channel = models.CharField(max_length=10, choices=TouchChannel.choices, blank=True)
    note = models.TextField(blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    objections = models.ManyToManyField(ObjectionTag, blank=True, related_name="activities")
    content_assets = models.ManyToManyField(
        ContentAsset, blank=True, related_name="shared_in_activities"
    )

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name_plural = "lead activities"
        indexes = [
            models.Index(fields=["lead", "occurred_at"], name="activity_lead_at"),
            models.Index(fields=["handoff", "occurred_at"], name="activity_handoff_at"),
            models.Index(fields=["action", "occurred_at"], name="activity_action_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    """An in-app notice (also e-mailed once). Unique per recipient, handoff and kind, so a sweep
    that runs twice cannot notify anybody twice."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    handoff = models.ForeignKey(
        Handoff, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    message = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "handoff", "kind"], name="leads_notification_once"
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at", "created_at"], name="notification_inbox"),
            models.Index(
                fields=["created_at"],
                condition=Q(emailed_at__isnull=True),
                name="notification_unsent",
            ),
        ]

    def __str__(self) -> str:
        return self.message


def _trigger_kept(to, **options) -> models.ForeignKey:
    """A reference a touch-link row keeps (set by the triggers that keep the row): no
    constraint, no index of its own, no reverse accessor."""
    return models.ForeignKey(
        to,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        **options,
    )


class _TouchLink(models.Model):
    """A link row of a touch (an asset shared, an objection heard) with the touch's lead and
    instant beside it, so a reader counts or matches them by lead or by time through one narrow
    indexed table instead of joining every link to its touch.

    Kept by triggers on the link table and the touches (migration 0017), in the writer's own
    transaction whoever the writer is (``activity.objections.set``, the demo's COPY, a delete
    cascading from a lead, an asset or a tag): a link added adds its row, a link removed
    removes it, a touch whose lead, actor or instant changes carries its rows along. No
    foreign key constraint and no ORM cascade: the link rows' deletes reach them."""

    link_id = models.BigIntegerField(primary_key=True)  # the link row's id
    activity = _trigger_kept(LeadActivity)
    lead = _trigger_kept(Lead)
    occurred_at = models.DateTimeField()

    class Meta:
        abstract = True


class ContentShare(_TouchLink):
    """An asset sales shared on a touch (a ``LeadActivity.content_assets`` link), with the
    touch's lead, actor and instant: the content page counts the period's shares and asks
    whether a lead was ever shared an asset here."""

    content_asset = _trigger_kept(ContentAsset)
    actor = _trigger_kept(settings.AUTH_USER_MODEL, null=True)

    class Meta:
        indexes = [
            # Whether (and when) a lead was shared an asset, which: index-only.
            models.Index(
                fields=["lead", "occurred_at", "content_asset"], name="content_share_lead"
            ),
            # The period's shares.
            models.Index(fields=["occurred_at"], name="content_share_at"),
        ]

    def __str__(self) -> str:
        return f"Asset #{self.content_asset_id} shared with lead #{self.lead_id}"


class HeardObjection(_TouchLink):
    """An objection heard on a touch (a ``LeadActivity.objections`` link), with the touch's
    lead, the lead's account and the instant: the meeting's content slide matches deals to
    objections by lead here."""

    objection = _trigger_kept(ObjectionTag)
    # The lead's account (kept when the lead's account changes, 0019): the slide finds the
    # industries of the deals that heard an objection without reading the lead table.
    account = _trigger_kept(Account, null=True)

    class Meta:
        indexes = [
            models.Index(fields=["lead", "objection", "occurred_at"], name="heard_objection_lead"),
        ]

    def __str__(self) -> str:
        return f"Objection #{self.objection_id} heard from lead #{self.lead_id}"
