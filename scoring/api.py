"""Scoring models over the API: read by everyone, drafted, edited and published by those with
the model's permissions, exactly like the other definitions (``leads.api.definitions``)."""

from rest_framework import serializers

from leads.api.definitions import (
    VERSION_FIELDS,
    VERSION_READ_ONLY,
    DefinitionSerializer,
    DefinitionViewSet,
    definition_schema,
)
from scoring.models import EventWeight, ScoringModel


class EventWeightSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventWeight
        fields = ["id", "kind", "points", "daily_cap"]


class ScoringModelSerializer(DefinitionSerializer):
    rows_field = "weights"
    weights = EventWeightSerializer(many=True, required=False)
    competitor_domains = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False
    )

    class Meta:
        model = ScoringModel
        fields = [
            *VERSION_FIELDS,
            "half_life_days",
            "engagement_floor",
            "engagement_cap",
            "personal_email_penalty",
            "competitor_domains",
            "competitor_penalty",
            "band_1_min",
            "band_2_min",
            "band_3_min",
            "weights",
        ]
        read_only_fields = VERSION_READ_ONLY


@definition_schema(ScoringModelSerializer, "Scoring model")
class ScoringModelViewSet(DefinitionViewSet):
    queryset = ScoringModel.objects.prefetch_related("weights")
    serializer_class = ScoringModelSerializer
