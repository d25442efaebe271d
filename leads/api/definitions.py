"""The shared definitions over the API: ICP versions, lifecycle versions, SLA versions (and, in
``scoring.api``, scoring models), each with its rows.

Everyone authenticated reads them. Writing follows the admin: a new draft (``POST``, the
model's ``add`` permission) optionally copied from a version; a draft's fields and, at once, its
whole set of rows (``PATCH``, ``change``); publishing (``POST …/{id}/publish``, ``change``) through
``definition_publish``, which checks the whole version. A published version never changes.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from leads.api.common import ReadAnyWriteWithModelPermission, UtcMixin
from leads.api.serializers import IdField
from leads.api.views import ERRORS, ID_PATTERN
from leads.models import (
    IcpCriterion,
    IcpVersion,
    LifecycleStage,
    LifecycleVersion,
    SlaPolicy,
    SlaVersion,
)
from leads.selectors import version_in_force
from leads.services import definition_create_draft, definition_publish
from revops.api_errors import validation_error
from revops.api_fields import InstantField, InstantModelSerializer

VERSION_FIELDS = [
    "id",
    "number",
    "status",
    "in_force",
    "effective_from",
    "note",
    "created_at",
    "created_by",
    "published_at",
    "published_by",
]
VERSION_READ_ONLY = [f for f in VERSION_FIELDS if f not in ("note",)]


class DefinitionSerializer(InstantModelSerializer):
    """A version with its rows. On update (drafts only): its own fields, and, when the rows are
    given, the draft's whole set of rows replaced by them, each validated by the model."""

    rows_field = ""  # e.g. "criteria": the version's related name of its rows

    in_force = serializers.SerializerMethodField()

    def get_in_force(self, version) -> bool:
        return self.context.get("in_force_id") == version.pk

    def update(self, instance, validated_data):
        rows = validated_data.pop(self.rows_field, None)
        with transaction.atomic():
            version = type(instance).objects.select_for_update().get(pk=instance.pk)
            version.ensure_editable()
            for name, value in validated_data.items():
                setattr(version, name, value)
            try:
                version.full_clean()
            except DjangoValidationError as exc:
                raise validation_error(exc) from exc
            if validated_data:
                version.save(update_fields=list(validated_data))
            if rows is not None:
                self._replace_rows(version, rows)
        return type(instance).objects.get(pk=instance.pk)

    def _replace_rows(self, version, rows: list[dict]) -> None:
        relation = getattr(version, self.rows_field)
        relation.all().delete()
        row_model = relation.model
        errors: list[dict] = []
        for values in rows:
            row = row_model(version=version, **values)
            try:
                # Unique checks run against the rows saved before it: duplicates in the list
                # are reported on the later row.
                row.full_clean()
            except DjangoValidationError as exc:
                errors.append(validation_error(exc).detail)
                continue
            row.save()
            errors.append({})
        if any(errors):
            raise serializers.ValidationError({self.rows_field: errors})


def _rows(serializer_class):
    return serializer_class(many=True, required=False)


class IcpCriterionSerializer(serializers.ModelSerializer):
    values = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )

    class Meta:
        model = IcpCriterion
        fields = ["id", "name", "attribute", "values", "min_value", "max_value", "points"]
        fields += ["is_exclusion"]


class IcpVersionSerializer(DefinitionSerializer):
    rows_field = "criteria"
    criteria = _rows(IcpCriterionSerializer)

    class Meta:
        model = IcpVersion
        fields = [*VERSION_FIELDS, "tier_a_min_points", "tier_b_min_points", "tier_c_min_points"]
        fields += ["criteria"]
        read_only_fields = VERSION_READ_ONLY


class LifecycleStageSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifecycleStage
        fields = [
            "id",
            "key",
            "name",
            "buyer_label",
            "order",
            "team",
            "kind",
            "trigger_type",
            "trigger_score",
            "trigger_event_kind",
            "opens_handoff",
            "on_reject_key",
        ]


class LifecycleVersionSerializer(DefinitionSerializer):
    rows_field = "stages"
    stages = _rows(LifecycleStageSerializer)

    class Meta:
        model = LifecycleVersion
        fields = [*VERSION_FIELDS, "stages"]
        read_only_fields = VERSION_READ_ONLY


class SlaPolicySerializer(serializers.ModelSerializer):
    serializer_related_field = IdField

    class Meta:
        model = SlaPolicy
        fields = [
            "id",
            "name",
            "stage_key",
            "tier",
            "respond_within_hours",
            "accept_within_hours",
            "calendar",
            "escalate_to",
            "escalate_to_manager",
            "reassign_on_breach",
        ]


class SlaVersionSerializer(DefinitionSerializer):
    rows_field = "policies"
    policies = _rows(SlaPolicySerializer)

    class Meta:
        model = SlaVersion
        fields = [*VERSION_FIELDS, "policies"]
        read_only_fields = VERSION_READ_ONLY


class DraftCreateSerializer(serializers.Serializer):
    copy_from = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Id of the version to copy (its fields and rows); empty: a blank draft.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class PublishSerializer(serializers.Serializer):
    effective_from = InstantField(
        required=False,
        help_text="When it takes force (default now); after the latest published version.",
    )


class DefinitionViewSet(
    UtcMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Base of the definition endpoints; a subclass names the queryset and serializer."""

    permission_classes = [ReadAnyWriteWithModelPermission]
    write_permissions = {"create": "add", "publish": "change"}
    cursor_ordering = "-number"
    lookup_value_regex = ID_PATTERN
    filterset_fields = ["status"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_serializer_context(self):
        context = super().get_serializer_context()
        in_force = version_in_force(self.get_queryset().model)
        context["in_force_id"] = in_force.pk if in_force else None
        return context

    def create(self, request):
        data = DraftCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = self.get_queryset().model
        copy_from = None
        if data.validated_data.get("copy_from") is not None:
            copy_from = model.objects.filter(pk=data.validated_data["copy_from"]).first()
            if copy_from is None:
                raise serializers.ValidationError(
                    {"copy_from": [f"No {model._meta.verbose_name} with this id."]}
                )
        draft = definition_create_draft(
            model=model, actor=request.user, copy_from=copy_from, note=data.validated_data["note"]
        )
        draft = self.get_queryset().get(pk=draft.pk)
        return Response(self.get_serializer(draft).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        version = self.get_object()
        data = PublishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        definition_publish(
            version=version,
            actor=request.user,
            effective_from=data.validated_data.get("effective_from"),
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)


def definition_schema(serializer_class, label: str):
    """The OpenAPI description shared by every definition endpoint."""
    return extend_schema_view(
        list=extend_schema(summary=f"{label} versions, newest first"),
        retrieve=extend_schema(summary=f"One {label} version with its rows"),
        create=extend_schema(
            summary=f"Create a {label} draft (copy of a version, or blank)",
            request=DraftCreateSerializer,
            responses={201: serializer_class, 400: ERRORS, 403: ERRORS},
        ),
        update=extend_schema(
            summary=f"Edit a {label} draft (rows given replace all its rows)",
            responses={200: serializer_class, 400: ERRORS, 403: ERRORS},
        ),
        partial_update=extend_schema(
            summary=f"Edit a {label} draft (rows given replace all its rows)",
            responses={200: serializer_class, 400: ERRORS, 403: ERRORS},
        ),
        publish=extend_schema(
            summary=f"Publish a {label} draft",
            request=PublishSerializer,
            responses={200: serializer_class, 400: ERRORS, 403: ERRORS},
        ),
    )


@definition_schema(IcpVersionSerializer, "ICP")
class IcpVersionViewSet(DefinitionViewSet):
    queryset = IcpVersion.objects.prefetch_related("criteria")
    serializer_class = IcpVersionSerializer


@definition_schema(LifecycleVersionSerializer, "Lifecycle")
class LifecycleVersionViewSet(DefinitionViewSet):
    queryset = LifecycleVersion.objects.prefetch_related("stages")
    serializer_class = LifecycleVersionSerializer


@definition_schema(SlaVersionSerializer, "SLA")
class SlaVersionViewSet(DefinitionViewSet):
    queryset = SlaVersion.objects.prefetch_related("policies")
    serializer_class = SlaVersionSerializer
