"""Sales reps and teams over the API: ``/api/v1/sales-reps/`` and ``/api/v1/teams/``.

Reading needs ``leads.view_salesrep`` (every role but the Viewer, ``leads.roles``); creating and
changing a rep needs ``add`` / ``change_salesrep``, and setting a team (a manager and their
reps) ``change_salesrep``: the RevOps admin. The views parse and render; the writes are
``leads.services.team``, whose model validation becomes 400 field errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from leads.api.common import ModelPermission, UtcMixin
from leads.api.serializers import IdField
from leads.api.views import ERRORS, ID_PATTERN
from leads.choices import FitTier
from leads.models import SalesRep
from leads.services.team import REP_FIELDS, sales_rep_create, sales_rep_update, team_set
from revops.api_errors import validation_error
from revops.api_fields import InstantModelSerializer


class TierField(serializers.ChoiceField):
    """A fit tier: the lead's ``tier`` choices, one ``FitTierEnum`` in the schema
    (``ENUM_NAME_OVERRIDES``)."""

    def __init__(self, **kwargs):
        super().__init__(choices=FitTier.choices, **kwargs)


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


class SalesRepSerializer(InstantModelSerializer):
    """A sales rep: the user (any user, active or not: an owner imported from another CRM is
    typically inactive), their territory, tiers, capacity, manager and time off."""

    serializer_related_field = IdField

    user = IdField(queryset=get_user_model().objects.all())
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.SerializerMethodField()
    user_is_active = serializers.BooleanField(source="user.is_active", read_only=True)
    tiers = serializers.ListField(child=TierField(), required=False)

    class Meta:
        model = SalesRep
        fields = ["id", "user", "username", "name", "user_is_active", *REP_FIELDS]
        fields += ["last_assigned_at"]
        read_only_fields = ["last_assigned_at"]
        validators = []  # the service validates through the model, with its messages

    def get_name(self, rep) -> str:
        return _name(rep.user)

    def validate_user(self, user):
        if self.instance is not None and user != self.instance.user:
            raise serializers.ValidationError("A rep's user cannot change; create another rep.")
        return user


@extend_schema_view(
    list=extend_schema(summary="Sales reps, newest first (?manager=, ?is_active=)"),
    create=extend_schema(
        summary="Make a user a sales rep", responses={201: SalesRepSerializer, 400: ERRORS}
    ),
    update=extend_schema(responses={200: SalesRepSerializer, 400: ERRORS}),
    partial_update=extend_schema(responses={200: SalesRepSerializer, 400: ERRORS}),
)
class SalesRepViewSet(
    UtcMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = SalesRep.objects.select_related("user", "manager")
    serializer_class = SalesRepSerializer
    permission_classes = [ModelPermission]
    lookup_value_regex = ID_PATTERN
    filterset_fields = ["manager", "is_active"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = sales_rep_create(actor=self.request.user, **data)
        except DjangoValidationError as exc:
            raise validation_error(exc) from exc

    def perform_update(self, serializer):
        data = {k: v for k, v in serializer.validated_data.items() if k != "user"}
        try:
            serializer.instance = sales_rep_update(
                actor=self.request.user, rep=serializer.instance, **data
            )
        except DjangoValidationError as exc:
            raise validation_error(exc) from exc


# --- Teams ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    manager: object
    members: list[SalesRep]


class TeamMemberSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    rep = serializers.IntegerField(source="pk")
    name = serializers.SerializerMethodField()
    is_active = serializers.BooleanField()

    def get_name(self, rep) -> str:
        return _name(rep.user)


class TeamSerializer(serializers.Serializer):
    """A team: a manager (a user id) and the reps on it (their user ids when written; read
    back with their rep id, name and whether they take handoffs)."""

    manager = IdField(queryset=get_user_model().objects.all())
    manager_name = serializers.SerializerMethodField()
    members = serializers.ListField(
        child=serializers.IntegerField(min_value=1), write_only=True, allow_empty=True
    )
    reps = TeamMemberSerializer(source="members", many=True, read_only=True)

    def get_manager_name(self, team) -> str:
        return _name(team.manager)


def _teams(manager_id: int | None = None) -> list[Team]:
    """Managers with their reps, by manager name (two queries)."""
    managers = get_user_model().objects.filter(team_members__isnull=False).distinct()
    if manager_id is not None:
        managers = managers.filter(pk=manager_id)
    members = SalesRep.objects.select_related("user").order_by("user__username")
    managers = managers.prefetch_related(Prefetch("team_members", queryset=members))
    teams = [Team(manager, list(manager.team_members.all())) for manager in managers]
    return sorted(teams, key=lambda team: _name(team.manager).lower())


@extend_schema_view(
    list=extend_schema(summary="Teams: each manager with their reps", responses=TeamSerializer),
    retrieve=extend_schema(summary="The team of a manager (by the manager's user id)"),
    create=extend_schema(
        summary="Form a team: a manager without one, and their reps",
        request=TeamSerializer,
        responses={201: TeamSerializer, 400: ERRORS},
    ),
    update=extend_schema(
        summary="Set a team's reps (those not listed leave it)",
        request=TeamSerializer,
        responses={200: TeamSerializer, 400: ERRORS},
    ),
)
class TeamViewSet(UtcMixin, viewsets.GenericViewSet):
    """A team is the reps whose manager is one user, addressed by that user's id. Writing one
    changes those reps' ``manager``: the ``change_salesrep`` permission."""

    queryset = SalesRep.objects.all()  # for the permission: the model behind a team
    serializer_class = TeamSerializer
    permission_classes = [ModelPermission]
    write_permissions = {"create": "change"}
    lookup_value_regex = ID_PATTERN
    pagination_class = None
    filter_backends = []

    def list(self, request):
        return Response(self.get_serializer(_teams(), many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self._team(int(pk))).data)

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        manager = serializer.validated_data["manager"]
        if SalesRep.objects.filter(manager=manager).exists():
            raise serializers.ValidationError(
                {"manager": [f"{_name(manager)} already has a team; PUT /teams/{manager.pk}/."]}
            )
        if not serializer.validated_data["members"]:  # a team is the reps a manager has
            raise serializers.ValidationError(
                {"members": ["A new team needs at least one rep."]}, code="empty"
            )
        self._set(manager, serializer.validated_data["members"])
        return Response(
            self.get_serializer(self._team(manager.pk)).data, status=status.HTTP_201_CREATED
        )

    def update(self, request, pk=None):
        team = self._team(int(pk))
        payload = request.data if isinstance(request.data, dict) else {}
        serializer = self.get_serializer(data={**payload, "manager": team.manager.pk})
        serializer.is_valid(raise_exception=True)
        self._set(team.manager, serializer.validated_data["members"])
        members = SalesRep.objects.filter(manager=team.manager)
        if not members.exists():
            return Response(
                {"manager": team.manager.pk, "manager_name": _name(team.manager), "reps": []}
            )
        return Response(self.get_serializer(self._team(team.manager.pk)).data)

    def _team(self, manager_id: int) -> Team:
        found = _teams(manager_id)
        if not found:
            raise Http404("No team: this user manages no sales rep.")
        return found[0]

    def _set(self, manager, member_ids: list[int]) -> None:
        try:
            team_set(actor=self.request.user, manager=manager, member_ids=member_ids)
        except DjangoValidationError as exc:
            raise validation_error(exc) from exc
