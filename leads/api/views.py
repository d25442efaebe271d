"""API endpoints of the facts and the handoff workflow: interfaces that parse input, call one
service or selector and render. Refusals of a service (Django's ValidationError,
PermissionDenied) become 400 / 403 in ``revops.api_errors``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from leads import services
from leads.api import events as event_batches
from leads.api import filters, serializers
from leads.api.common import ModelPermission, UtcMixin
from leads.models import Account, Campaign, EngagementEvent, Handoff, Lead, Opportunity, Source
from leads.roles import MANAGE_HANDOFFS, WORK_HANDOFFS
from revops.api_errors import ErrorList, PayloadTooLarge

# A row id in a URL: digits that fit a bigint (anything else is the API's 404).
ID_PATTERN = "[0-9]{1,18}"
ERRORS = OpenApiResponse(serializers.ErrorsSerializer, description="Invalid input or refused.")


class FactViewSet(
    UtcMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List (filtered, cursor-paginated), read, create and update; no delete through the API.
    Reading needs the model's ``view`` permission, writing its ``add`` / ``change``."""

    permission_classes = [ModelPermission]
    lookup_value_regex = ID_PATTERN


@extend_schema_view(
    list=extend_schema(summary="Leads, newest first, filtered and searched"),
    create=extend_schema(responses={201: serializers.LeadSerializer, 400: ERRORS}),
    update=extend_schema(responses={200: serializers.LeadSerializer, 400: ERRORS}),
    partial_update=extend_schema(responses={200: serializers.LeadSerializer, 400: ERRORS}),
)
class LeadViewSet(FactViewSet):
    queryset = Lead.objects.select_related("score_state", "prediction__model")
    serializer_class = serializers.LeadSerializer
    filterset_class = filters.LeadFilter


class AccountViewSet(FactViewSet):
    queryset = Account.objects.all()
    serializer_class = serializers.AccountSerializer
    filterset_class = filters.AccountFilter


class SourceViewSet(FactViewSet):
    queryset = Source.objects.all()
    serializer_class = serializers.SourceSerializer
    filterset_class = filters.SourceFilter


class CampaignViewSet(FactViewSet):
    queryset = Campaign.objects.all()
    serializer_class = serializers.CampaignSerializer
    filterset_class = filters.CampaignFilter


class OpportunityViewSet(FactViewSet):
    """Opening, winning or losing a deal moves its lead to the matching stage, with history."""

    queryset = Opportunity.objects.all()
    serializer_class = serializers.OpportunitySerializer
    filterset_class = filters.OpportunityFilter


# --- Engagement events --------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Engagement events, newest first"),
    create=extend_schema(
        summary="Record up to 1,000 events, idempotently",
        description=(
            'A JSON list of events, or {"events": [...]}. Idempotent on (source_system, '
            "external_id): an event received before (or twice in the batch) is not stored "
            "again and is listed under `duplicates`, so re-sending a batch after a timeout is "
            "safe. By default one invalid event refuses the whole batch (400, every problem "
            "listed with its `index`) and nothing is written; with `skip_invalid=true` the "
            "valid events are stored and the invalid ones reported under `errors`. More than "
            "1,000 events: 413. Answers 201 when something was stored, 200 when nothing new."
        ),
        parameters=[
            OpenApiParameter(
                "skip_invalid",
                OpenApiTypes.BOOL,
                description="Store the valid events and report the invalid ones.",
            )
        ],
        request=serializers.EventBatchSerializer,
        responses={
            201: serializers.EventBatchResultSerializer,
            200: serializers.EventBatchResultSerializer,
            400: ERRORS,
            413: ERRORS,
        },
    ),
)
class EngagementEventViewSet(
    UtcMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = EngagementEvent.objects.all()
    serializer_class = serializers.EngagementEventSerializer
    filterset_class = filters.EventFilter
    permission_classes = [ModelPermission]
    lookup_value_regex = ID_PATTERN

    def create(self, request):
        skip_invalid = _flag(request.query_params.get("skip_invalid"), "skip_invalid")
        try:
            items = event_batches.batch_items(request.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if not items:
            raise ValidationError("The batch is empty: send at least one event.")
        if len(items) > event_batches.MAX_BATCH:
            raise PayloadTooLarge(
                f"At most {event_batches.MAX_BATCH:,} events per request; this one has "
                f"{len(items):,}. Send them in batches of {event_batches.MAX_BATCH:,}."
            )
        batch = event_batches.parse_batch(items)
        if batch.errors and not skip_invalid:
            raise ErrorList(batch.errors)
        result = services.engagement_events_ingest(events=batch.events)
        duplicates = [
            {
                "index": batch.indexes[position],
                "source_system": batch.events[position].source_system,
                "external_id": batch.events[position].external_id,
            }
            for position in result.duplicates
        ]
        body = {
            "received": len(items),
            "created": len(result.stored),
            "duplicate_count": len(duplicates),
            "invalid_count": len(batch.invalid_indexes),
            "duplicates": duplicates,
            "errors": batch.errors,
        }
        status_code = status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK
        return Response(body, status=status_code)


def _flag(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError({name: [f"Use true or false, not {value!r}."]})


# --- Handoffs -----------------------------------------------------------------------------------


def _action_schema(request_serializer, summary: str):
    return extend_schema(
        summary=summary,
        request=request_serializer,
        responses={200: serializers.HandoffSerializer, 400: ERRORS, 403: ERRORS, 404: ERRORS},
    )


class HandoffViewSet(
    UtcMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Handoffs and the workflow's actions. Reading needs ``leads.view_handoff``; acting needs
    ``leads.work_handoffs`` (reassigning ``leads.manage_handoffs``) and then the services'
    rule: the assignee and their sales manager only; anyone else gets 403."""

    queryset = Handoff.objects.select_related("reject_reason")
    serializer_class = serializers.HandoffSerializer
    filterset_class = filters.HandoffFilter
    permission_classes = [ModelPermission]
    write_permissions = {
        "respond": WORK_HANDOFFS,
        "accept": WORK_HANDOFFS,
        "reject": WORK_HANDOFFS,
        "reassign": MANAGE_HANDOFFS,
    }
    lookup_value_regex = ID_PATTERN

    def _act(self, request, serializer_class, perform) -> Response:
        handoff = self.get_object()
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        perform(handoff, data.validated_data)
        handoff.refresh_from_db()
        return Response(serializers.HandoffSerializer(handoff).data)

    @_action_schema(serializers.HandoffRespondSerializer, "Log a response or follow-up")
    @action(detail=True, methods=["post"])
    def respond(self, request, pk=None):
        def perform(handoff, values):
            services.handoff_log_touch(
                handoff=handoff,
                actor=request.user,
                channel=values["channel"],
                note=values["note"],
                objections=values.get("objections", []),
                content_assets=values.get("content_assets", []),
                meeting_booked=values["meeting_booked"],
                revision=values.get("revision"),
                at=values.get("occurred_at"),
            )

        return self._act(request, serializers.HandoffRespondSerializer, perform)

    @_action_schema(serializers.HandoffAcceptSerializer, "Accept the lead")
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        def perform(handoff, values):
            services.handoff_accept(
                handoff=handoff,
                actor=request.user,
                note=values["note"],
                revision=values.get("revision"),
                at=values.get("occurred_at"),
            )

        return self._act(request, serializers.HandoffAcceptSerializer, perform)

    @_action_schema(serializers.HandoffRejectSerializer, "Reject the lead with a reason")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        def perform(handoff, values):
            services.handoff_reject(
                handoff=handoff,
                actor=request.user,
                reason=values["reason"],
                note=values["note"],
                revision=values.get("revision"),
                at=values.get("occurred_at"),
            )

        return self._act(request, serializers.HandoffRejectSerializer, perform)

    @_action_schema(serializers.HandoffReassignSerializer, "Reassign to another rep (managers)")
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        def perform(handoff, values):
            services.handoff_reassign(
                handoff=handoff,
                actor=request.user,
                to_user=values["to_user"],
                note=values["note"],
                revision=values.get("revision"),
                at=values.get("occurred_at"),
            )

        return self._act(request, serializers.HandoffReassignSerializer, perform)
