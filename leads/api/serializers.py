"""Serializers of the facts. Writes are validated by the model itself (its field validators,
``clean()`` and constraints, through ``full_clean``), so the API refuses exactly what the admin
refuses, with the same messages, as field errors."""

from __future__ import annotations

from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leads import services
from leads.api.events import MAX_BATCH, MAX_ID
from leads.choices import EventKind, TouchChannel
from leads.models import (
    Account,
    Campaign,
    ContentAsset,
    EngagementEvent,
    Handoff,
    Lead,
    ObjectionTag,
    Opportunity,
    RejectionReason,
    Source,
)
from revops.api_errors import validation_error
from revops.api_fields import InstantField, InstantModelSerializer


class IdField(serializers.PrimaryKeyRelatedField):
    """A related row's id, checked to fit a bigint before the database is asked about it."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not (
            (isinstance(data, int) and 1 <= data <= MAX_ID)
            or (isinstance(data, str) and data.isdigit() and 1 <= int(data) <= MAX_ID)
        ):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class ModelCleanSerializer(InstantModelSerializer):
    """Create and update through ``full_clean()``: the model's own rules decide, and its
    normalization (lower-cased e-mail, bare domain…) is what gets saved. An update writes only
    the fields it was given, so it never overwrites a stage move or score made meanwhile."""

    serializer_related_field = IdField

    class Meta:
        validators = []  # the model's constraints are checked by full_clean, with its messages

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance if self.instance is not None else self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise validation_error(_on_unique_fields(exc, self.Meta.model)) from exc
        self._cleaned = instance
        return attrs

    def create(self, validated_data):
        with _conflicts_as_errors():
            return self.save_new(self._cleaned)

    def update(self, instance, validated_data):
        with _conflicts_as_errors():
            return self.save_changes(self._cleaned, list(validated_data))

    def save_new(self, instance):
        """Write a validated new row; facts override this to call their service."""
        with transaction.atomic():
            instance.save(force_insert=True)
        return instance

    def save_changes(self, instance, fields: list[str]):
        """Write the given fields of a validated row; facts override this to call their
        service."""
        auto_now = [
            field.name
            for field in instance._meta.concrete_fields
            if getattr(field, "auto_now", False)
        ]
        with transaction.atomic():
            instance.save(update_fields=[*fields, *auto_now])
        return instance

    @property
    def actor(self):
        request = self.context.get("request")
        return request.user if request is not None else None


@contextmanager
def _conflicts_as_errors():
    """A unique value taken by a concurrent request between our check and our write."""
    try:
        yield
    except IntegrityError as exc:
        raise serializers.ValidationError(
            "Conflicts with a row saved at the same time (a unique value is now taken); "
            "nothing was written. Read it back and retry.",
            code="conflict",
        ) from exc


def _on_unique_fields(error: DjangoValidationError, model) -> DjangoValidationError:
    """Django reports a conditional unique constraint (e-mail unique when given) as a
    non-field error; put it on its field, where a client looks for it."""
    general = error.error_dict.get(NON_FIELD_ERRORS) if hasattr(error, "error_dict") else None
    if not general:
        return error
    fields_by_message = {
        constraint.get_violation_error_message(): constraint.fields[0]
        for constraint in model._meta.constraints
        if isinstance(constraint, models.UniqueConstraint) and len(constraint.fields) == 1
    }
    moved: dict[str, list] = {}
    for item in general:
        for message in item.messages:
            moved.setdefault(fields_by_message.get(message, NON_FIELD_ERRORS), []).append(
                DjangoValidationError(message, code=item.code or "unique")
            )
    rest = {key: value for key, value in error.error_dict.items() if key != NON_FIELD_ERRORS}
    for key, value in moved.items():
        rest.setdefault(key, []).extend(value)
    return DjangoValidationError(rest)


def _tags_field(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=80), required=False, help_text=help_text
    )


class AccountSerializer(ModelCleanSerializer):
    technologies = _tags_field('Technologies used, e.g. ["salesforce"]; stored lower-case.')
    signals = _tags_field('Behavioural signals, e.g. ["funding_round"]; stored lower-case.')

    def save_new(self, instance):
        return services.account_create(account=instance)

    def save_changes(self, instance, fields):
        return services.account_update(account=instance, fields=fields)

    class Meta(ModelCleanSerializer.Meta):
        model = Account
        fields = [
            "id",
            "name",
            "domain",
            "industry",
            "employees",
            "annual_revenue",
            "country",
            "region",
            "technologies",
            "signals",
            "external_id",
            "created_at",
        ]


class SourceSerializer(ModelCleanSerializer):
    class Meta(ModelCleanSerializer.Meta):
        model = Source
        fields = ["id", "name", "channel_group", "origin"]


class CampaignSerializer(ModelCleanSerializer):
    class Meta(ModelCleanSerializer.Meta):
        model = Campaign
        fields = [
            "id",
            "name",
            "source",
            "cost",
            "currency",
            "starts_on",
            "ends_on",
            "external_id",
        ]


class LeadScoreSerializer(serializers.Serializer):
    fit_points = serializers.IntegerField()
    tier = serializers.CharField()
    engagement = serializers.FloatField()
    total = serializers.FloatField()
    grade = serializers.CharField()
    scored_at = InstantField(allow_null=True)


class PredictionReasonSerializer(serializers.Serializer):
    feature = serializers.CharField()
    log_odds = serializers.FloatField(help_text="How far it moves the log-odds of converting.")


class LeadPredictionSerializer(serializers.Serializer):
    """The predictive score, shown beside the rule score (never replacing it)."""

    probability = serializers.FloatField(help_text="Predicted chance of converting, 0–1.")
    model_version = serializers.IntegerField(source="model.version")
    predicted_at = InstantField()
    up = serializers.SerializerMethodField(help_text="Features pushing the probability up.")
    down = serializers.SerializerMethodField(help_text="Features pushing it down.")

    @staticmethod
    def _reasons(prediction, direction: str) -> list[dict]:
        pairs = (prediction.explanation or {}).get(direction, [])
        return [{"feature": label, "log_odds": value} for label, value in pairs]

    @extend_schema_field(PredictionReasonSerializer(many=True))
    def get_up(self, prediction) -> list[dict]:
        return self._reasons(prediction, "up")

    @extend_schema_field(PredictionReasonSerializer(many=True))
    def get_down(self, prediction) -> list[dict]:
        return self._reasons(prediction, "down")


class LeadSerializer(ModelCleanSerializer):
    """A lead. Its stage, tier and nurture flag are read-only: they change through the pipeline
    (scoring, handoffs), which writes their history."""

    score = serializers.SerializerMethodField()
    predicted_conversion = serializers.SerializerMethodField()
    owner = IdField(queryset=get_user_model().objects.all(), allow_null=True, required=False)

    class Meta(ModelCleanSerializer.Meta):
        model = Lead
        fields = [
            "id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "title",
            "seniority",
            "country",
            "account",
            "source",
            "campaign",
            "owner",
            "stage",
            "stage_entered_at",
            "tier",
            "in_marketing_nurture",
            "external_id",
            "created_at",
            "updated_at",
            "score",
            "predicted_conversion",
        ]
        read_only_fields = [
            "stage",
            "stage_entered_at",
            "tier",
            "in_marketing_nurture",
            "updated_at",
        ]

    def save_new(self, instance):
        return services.lead_create(
            lead=instance, actor=self.actor, reason="Created through the API"
        )

    def save_changes(self, instance, fields):
        return services.lead_update(lead=instance, fields=fields, actor=self.actor)

    @extend_schema_field(LeadScoreSerializer(allow_null=True))
    def get_score(self, lead: Lead):
        try:
            state = lead.score_state
        except ObjectDoesNotExist:
            return None
        return LeadScoreSerializer(state).data

    @extend_schema_field(LeadPredictionSerializer(allow_null=True))
    def get_predicted_conversion(self, lead: Lead):
        try:
            prediction = lead.prediction
        except ObjectDoesNotExist:
            return None
        return LeadPredictionSerializer(prediction).data


class OpportunitySerializer(ModelCleanSerializer):
    """Opening, winning or losing a deal moves its lead to the matching stage, with history."""

    owner = IdField(queryset=get_user_model().objects.all(), allow_null=True, required=False)

    def save_new(self, instance):
        services.opportunity_save(opportunity=instance, actor=self.actor)
        return instance

    def save_changes(self, instance, fields):
        services.opportunity_save(opportunity=instance, actor=self.actor, update_fields=fields)
        return instance

    class Meta(ModelCleanSerializer.Meta):
        model = Opportunity
        fields = [
            "id",
            "name",
            "lead",
            "account",
            "owner",
            "amount",
            "currency",
            "stage",
            "status",
            "created_at",
            "closed_at",
            "loss_reason",
            "external_id",
        ]


class EngagementEventSerializer(InstantModelSerializer):
    """An engagement event as stored (read only: events are written in bulk, see below)."""

    class Meta:
        model = EngagementEvent
        fields = [
            "id",
            "lead",
            "kind",
            "occurred_at",
            "properties",
            "content_asset",
            "source_system",
            "external_id",
            "received_at",
        ]
        read_only_fields = fields


class EngagementEventInSerializer(serializers.Serializer):
    """One event of a bulk request. Documentation of the shape only: the batch is validated by
    ``leads.api.events`` in one pass (a serializer per item costs more than the insert)."""

    lead = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The lead's id. Or give lead_external_id or "
        "lead_email instead (exactly one of the three).",
    )
    lead_external_id = serializers.CharField(required=False, max_length=100)
    lead_email = serializers.EmailField(required=False)
    kind = serializers.ChoiceField(choices=EventKind.choices)
    occurred_at = InstantField(
        help_text="ISO 8601, e.g. 2026-03-02T15:00:00Z (no offset = UTC); not in the future."
    )
    source_system = serializers.CharField(max_length=40, help_text="e.g. hubspot, web")
    external_id = serializers.CharField(
        max_length=100, help_text="The event's id in the source system: the idempotency key."
    )
    properties = serializers.DictField(required=False, help_text="Any JSON object.")
    content_asset = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class EventBatchSerializer(serializers.Serializer):
    """The body of ``POST /api/v1/events/``, for the schema only: a JSON list of events, or
    ``{"events": [...]}``, 1 to 1,000 of them (``EventBatchScheme`` writes it out)."""


class EventBatchScheme(OpenApiSerializerExtension):
    """``oneOf`` a list of ``EngagementEventInRequest`` or an object holding one: generated from
    ``EngagementEventInSerializer``, so the component the body refers to always exists."""

    target_class = EventBatchSerializer

    def map_serializer(self, auto_schema, direction):
        item = auto_schema.resolve_serializer(EngagementEventInSerializer, direction).ref
        events = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_BATCH}
        envelope = {
            "type": "object",
            "properties": {"events": events},
            "required": ["events"],
            "additionalProperties": False,
        }
        return {"oneOf": [events, envelope]}


class EventBatchItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    source_system = serializers.CharField()
    external_id = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(required=False, help_text="Item of a bulk request.")
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    errors = ErrorSerializer(many=True)


class EventBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicate_count = serializers.IntegerField()
    invalid_count = serializers.IntegerField()
    duplicates = EventBatchItemSerializer(
        many=True, help_text="Events already received before (or twice in this batch)."
    )
    errors = ErrorSerializer(many=True, help_text="Invalid events skipped (skip_invalid=true).")


# --- Handoffs ---------------------------------------------------------------------------------


class HandoffSerializer(InstantModelSerializer):
    reject_reason = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)

    class Meta:
        model = Handoff
        fields = [
            "id",
            "lead",
            "stage",
            "assignee",
            "sla_policy",
            "outcome",
            "assigned_at",
            "response_due_at",
            "accept_due_at",
            "first_response_at",
            "response_business_seconds",
            "accepted_at",
            "rejected_at",
            "reject_reason",
            "reject_note",
            "response_breached_at",
            "accept_breached_at",
            "revision",
        ]
        read_only_fields = fields


class HandoffActionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    occurred_at = InstantField(
        required=False, help_text="When it happened (default now); not before the handoff."
    )
    revision = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="The handoff's revision you acted on: refused (400, code stale) if it changed.",
    )


class HandoffRespondSerializer(HandoffActionSerializer):
    channel = serializers.ChoiceField(choices=TouchChannel.choices)
    objections = serializers.SlugRelatedField(
        slug_field="key", queryset=ObjectionTag.objects.all(), many=True, required=False
    )
    content_assets = IdField(queryset=ContentAsset.objects.all(), many=True, required=False)
    meeting_booked = serializers.BooleanField(required=False, default=False)


class HandoffAcceptSerializer(HandoffActionSerializer):
    pass


class HandoffRejectSerializer(HandoffActionSerializer):
    reason = serializers.SlugRelatedField(
        slug_field="key",
        queryset=RejectionReason.objects.all(),
        help_text="A rejection reason key, e.g. no_budget.",
    )


class HandoffReassignSerializer(HandoffActionSerializer):
    to_user = IdField(queryset=get_user_model().objects.all())
