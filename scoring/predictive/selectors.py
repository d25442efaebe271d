"""Reads for the predictive score: lead records cut off in SQL, outcomes, models, predictions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from django.db.models import (
    Count,
    DateTimeField,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from leads.models import Handoff, Lead, Opportunity, StageTransition
from scoring.outcomes import OutcomeFacts, StageGroups, closed_outcome
from scoring.predictive.features import LeadRecord
from scoring.predictive.models import LeadPrediction, PredictiveModel
from scoring.selectors import outcome_annotations, stage_groups

CHUNK = 5000


def _first(queryset: QuerySet, field: str) -> Subquery:
    return Subquery(
        queryset.filter(lead_id=OuterRef("pk"))
        .order_by()
        .values("lead_id")
        .annotate(first=Min(field))
        .values("first"),
        output_field=DateTimeField(),
    )


def cutoff_expression(groups: StageGroups, now: datetime):
    """The instant sales started working the lead: its first handoff, first opportunity or first
    move into a sales-owned or closed stage, whichever came first — or ``now`` if none has.
    Coalesce to ``now`` before taking the least: SQLite's MIN(a, b) is NULL if any is NULL."""
    now_value = Value(now, output_field=DateTimeField())
    return Least(
        Coalesce(_first(Handoff.objects, "assigned_at"), now_value),
        Coalesce(_first(Opportunity.objects, "created_at"), now_value),
        Coalesce(
            _first(
                StageTransition.objects.filter(to_stage__in=groups.worked_by_sales),
                "transitioned_at",
            ),
            now_value,
        ),
        now_value,
    )


LEAD_FIELDS = (
    "id", "created_at", "email", "seniority", "country", "campaign_id", "source__name",
    "source__channel_group", "source__origin", "account__industry", "account__employees",
    "account__annual_revenue", "account__region", "account__country", "account__technologies",
    "account__signals",
)  # fmt: skip


def _records(leads: QuerySet, groups: StageGroups, now: datetime) -> list[tuple[LeadRecord, dict]]:
    """Records of these leads (with their outcome facts), two queries: attributes and cutoff,
    then engagement before the cutoff grouped by lead and kind."""
    annotated = leads.annotate(cutoff=cutoff_expression(groups, now), **outcome_annotations(groups))
    rows = list(annotated.values(*LEAD_FIELDS, "cutoff", *OutcomeFacts.__dataclass_fields__))
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    last_event: dict[int, datetime] = {}
    engagement = (
        Lead.objects.filter(pk__in=ids)
        .alias(cutoff=cutoff_expression(groups, now))
        .filter(events__occurred_at__lt=F("cutoff"))
        .values("pk", "events__kind")
        .annotate(n=Count("events__id"), last=Max("events__occurred_at"))
        .order_by()
    )
    for item in engagement:
        counts[item["pk"]][item["events__kind"]] = item["n"]
        previous = last_event.get(item["pk"])
        if previous is None or item["last"] > previous:
            last_event[item["pk"]] = item["last"]
    result = []
    for row in rows:
        revenue = row["account__annual_revenue"]
        record = LeadRecord(
            lead_id=row["id"],
            created_at=row["created_at"],
            cutoff=row["cutoff"],
            email=row["email"],
            seniority=row["seniority"],
            country=row["account__country"] or row["country"],
            source=row["source__name"],
            channel_group=row["source__channel_group"],
            source_origin=row["source__origin"],
            from_campaign=row["campaign_id"] is not None,
            industry=row["account__industry"],
            employees=row["account__employees"],
            annual_revenue=None if revenue is None else float(revenue),
            region=row["account__region"],
            technologies=tuple(row["account__technologies"] or ()),
            signals=tuple(row["account__signals"] or ()),
            event_counts=counts.get(row["id"], {}),
            last_event_at=last_event.get(row["id"]),
        )
        facts = {name: bool(row[name]) for name in OutcomeFacts.__dataclass_fields__}
        result.append((record, facts))
    return result


def closed_outcome_records(*, now: datetime | None = None) -> list[tuple[LeadRecord, int]]:
    """Every lead whose outcome is known, with it (1 converted, 0 not); see
    :func:`scoring.outcomes.closed_outcome` for the rule."""
    now = now or timezone.now()
    groups = stage_groups()
    annotations = outcome_annotations(groups)
    candidates = Lead.objects.alias(**annotations).filter(
        Q(won_opportunity=True)
        | Q(reached_won_stage=True)
        | Q(lost_opportunity=True)
        | Q(stage__in=groups.lost_or_disqualified)
        | Q(rejected_at_handoff=True)
    )
    ids = list(candidates.order_by("pk").values_list("pk", flat=True))
    labelled = []
    for start in range(0, len(ids), CHUNK):
        chunk = Lead.objects.filter(pk__in=ids[start : start + CHUNK])
        for record, facts in _records(chunk, groups, now):
            outcome = closed_outcome(OutcomeFacts(**facts))
            if outcome is not None:
                labelled.append((record, outcome))
    return labelled


def lead_record_chunks(
    *, now: datetime | None = None, after_id: int = 0, limit: int | None = None
) -> Iterator[list[LeadRecord]]:
    """The records of leads with ids above ``after_id`` (every lead by default), in chunks of
    consecutive ids, at most ``limit`` leads in all (for writing predictions)."""
    now = now or timezone.now()
    groups = stage_groups()
    last_id = after_id
    left = limit
    while left is None or left > 0:
        size = CHUNK if left is None else min(CHUNK, left)
        chunk_ids = list(
            Lead.objects.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:size]
        )
        if not chunk_ids:
            return
        leads = Lead.objects.filter(pk__gte=chunk_ids[0], pk__lte=chunk_ids[-1])
        yield [record for record, _ in _records(leads, groups, now)]
        last_id = chunk_ids[-1]
        if left is not None:
            left -= len(chunk_ids)


def lead_record(lead_id: int, *, now: datetime | None = None) -> LeadRecord:
    records = _records(Lead.objects.filter(pk=lead_id), stage_groups(), now or timezone.now())
    if not records:
        raise Lead.DoesNotExist(lead_id)
    return records[0][0]


# --- Models and predictions ------------------------------------------------------------------


def model_in_use() -> PredictiveModel | None:
    """The latest trained model: its predictions are the ones shown."""
    return (
        PredictiveModel.objects.filter(status=PredictiveModel.Status.TRAINED)
        .defer("pipeline")
        .order_by("-version")
        .first()
    )


def newest_predicted_lead_id() -> int:
    """Leads above this id arrived after the last predictions were written."""
    return LeadPrediction.objects.aggregate(top=Max("lead_id"))["top"] or 0


def leads_exist_after(lead_id: int) -> bool:
    return Lead.objects.filter(pk__gt=lead_id).exists()


def latest_attempt() -> PredictiveModel | None:
    return PredictiveModel.objects.defer("pipeline").order_by("-trained_at", "-id").first()


def model_history():
    """Every training attempt, newest first (the caller paginates)."""
    return (
        PredictiveModel.objects.defer("pipeline")
        .select_related("trained_by")
        .order_by("-trained_at", "-id")
    )


def lead_prediction_context(lead_id: int) -> dict:
    """What the lead page shows beside the rule score: the lead's prediction (with its model),
    and the latest training attempt (to say plainly when there was too little data)."""
    prediction = (
        LeadPrediction.objects.select_related("model")
        .defer("model__pipeline")
        .filter(lead_id=lead_id)
        .first()
    )
    return {"prediction": prediction, "attempt": latest_attempt()}
