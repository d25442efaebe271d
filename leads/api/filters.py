"""Query-string filters of the list endpoints (django-filter): a bad value is a 400 naming the
parameter, never an ignored filter. Instants (``created_*``, ``occurred_*``, ``assigned_*``,
``closed_*``) are read by ``revops.datetimes``: an offset PostgreSQL cannot store is a 400 too."""

from __future__ import annotations

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from drf_spectacular.utils import extend_schema_field

from leads.api.events import MAX_ID
from leads.choices import (
    ChannelGroup,
    EventKind,
    FitTier,
    HandoffOutcome,
    OpportunityStage,
    OpportunityStatus,
    Region,
)
from leads.models import (
    Account,
    Campaign,
    EngagementEvent,
    Handoff,
    Lead,
    LifecycleStage,
    Opportunity,
    Source,
)
from revops.api_fields import InstantFilter


class StageKeysField(forms.MultipleChoiceField):
    """Stage keys any lifecycle version has used (a key outlives its version), checked against
    the database when a request is validated, not when the schema is generated."""

    def valid_value(self, value) -> bool:
        if not hasattr(self, "_known"):
            self._known = set(LifecycleStage.objects.values_list("key", flat=True).distinct())
        return value in self._known


@extend_schema_field({"type": "string", "example": "mql"})
class StageFilter(filters.MultipleChoiceFilter):
    field_class = StageKeysField


class IdFilter(filters.NumberFilter):
    """A row id: a whole number that fits the database's bigint."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdsField(forms.ModelMultipleChoiceField):
    """Row ids, each checked to fit a bigint before the database is asked about it."""

    def _check_values(self, value):
        for item in value:
            text = str(item)
            if not (text.isdigit() and 1 <= int(text) <= MAX_ID):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": item},
                )
        return super()._check_values(value)


class IdsFilter(filters.ModelMultipleChoiceFilter):
    field_class = IdsField


def _users():
    return get_user_model().objects.all()


class LeadFilter(filters.FilterSet):
    stage = StageFilter(label="Lifecycle stage keys, e.g. mql (repeat for several)")
    tier = filters.MultipleChoiceFilter(choices=FitTier.choices)
    source = IdsFilter(queryset=Source.objects.all())
    campaign = IdsFilter(queryset=Campaign.objects.all())
    owner = IdsFilter(queryset=_users())
    account = IdFilter(field_name="account_id")
    created_after = InstantFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after (ISO 8601)"
    )
    created_before = InstantFilter(
        field_name="created_at", lookup_expr="lt", label="Created before (ISO 8601)"
    )
    email = filters.CharFilter(method="filter_email")
    external_id = filters.CharFilter()
    search = filters.CharFilter(
        method="filter_search", label="Text in the e-mail, first or last name, or account name"
    )

    class Meta:
        model = Lead
        fields = []

    def filter_email(self, queryset, name, value):
        return queryset.filter(email=value.strip().lower())

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(email__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(account__name__icontains=value)
        )


class AccountFilter(filters.FilterSet):
    domain = filters.CharFilter()
    external_id = filters.CharFilter()
    industry = filters.CharFilter()
    region = filters.MultipleChoiceFilter(choices=Region.choices)
    search = filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Account
        fields = []


class SourceFilter(filters.FilterSet):
    channel_group = filters.MultipleChoiceFilter(choices=ChannelGroup.choices)

    class Meta:
        model = Source
        fields = []


class CampaignFilter(filters.FilterSet):
    source = IdsFilter(queryset=Source.objects.all())
    external_id = filters.CharFilter()

    class Meta:
        model = Campaign
        fields = []


class EventFilter(filters.FilterSet):
    lead = IdFilter(field_name="lead_id")
    kind = filters.MultipleChoiceFilter(choices=EventKind.choices)
    source_system = filters.CharFilter()
    external_id = filters.CharFilter()
    occurred_after = InstantFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = InstantFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = EngagementEvent
        fields = []


class OpportunityFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=OpportunityStatus.choices)
    stage = filters.MultipleChoiceFilter(choices=OpportunityStage.choices)
    owner = IdsFilter(queryset=_users())
    lead = IdFilter(field_name="lead_id")
    account = IdFilter(field_name="account_id")
    external_id = filters.CharFilter()
    created_after = InstantFilter(field_name="created_at", lookup_expr="gte")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")
    closed_after = InstantFilter(field_name="closed_at", lookup_expr="gte")
    closed_before = InstantFilter(field_name="closed_at", lookup_expr="lt")

    class Meta:
        model = Opportunity
        fields = []


class HandoffFilter(filters.FilterSet):
    outcome = filters.MultipleChoiceFilter(choices=HandoffOutcome.choices)
    assignee = IdsFilter(queryset=_users())
    unassigned = filters.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    lead = IdFilter(field_name="lead_id")
    stage = StageFilter(label="Lifecycle stage keys, e.g. mql (repeat for several)")
    assigned_after = InstantFilter(field_name="assigned_at", lookup_expr="gte")
    assigned_before = InstantFilter(field_name="assigned_at", lookup_expr="lt")

    class Meta:
        model = Handoff
        fields = []
