"""Reads of definitions and facts. Definitions are always read through here, so scoring, the
SLA clock and the KPIs agree on which version was in force at a given instant."""

from datetime import datetime
from typing import TypeVar

from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone

from leads.choices import DefinitionStatus
from leads.models import (
    DefinitionVersion,
    EngagementEvent,
    Handoff,
    IcpVersion,
    Lead,
    LifecycleStage,
    LifecycleVersion,
    Opportunity,
    SlaPolicy,
    SlaVersion,
)

V = TypeVar("V", bound=DefinitionVersion)


def version_in_force(model: type[V], *, at: datetime | None = None) -> V | None:
    """The published version with the latest ``effective_from`` at or before ``at`` (now)."""
    at = at or timezone.now()
    return (
        model.objects.filter(status=DefinitionStatus.PUBLISHED, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )


def icp_in_force(*, at: datetime | None = None) -> IcpVersion | None:
    return version_in_force(IcpVersion, at=at)


def lifecycle_in_force(*, at: datetime | None = None) -> LifecycleVersion | None:
    return version_in_force(LifecycleVersion, at=at)


def sla_in_force(*, at: datetime | None = None) -> SlaVersion | None:
    return version_in_force(SlaVersion, at=at)


def stages_in_force(*, at: datetime | None = None) -> list[LifecycleStage]:
    version = lifecycle_in_force(at=at)
    if version is None:
        return []
    return list(version.stages.order_by("order"))


def stage_names_in_force(*, at: datetime | None = None) -> dict[str, str]:
    return {stage.key: stage.name for stage in stages_in_force(at=at)}


def latest_published_effective_from(model: type[DefinitionVersion]) -> datetime | None:
    return model.objects.filter(status=DefinitionStatus.PUBLISHED).aggregate(
        latest=Max("effective_from")
    )["latest"]


def sla_policy_for(*, stage_key: str, tier: str, at: datetime | None = None) -> SlaPolicy | None:
    """The policy for a stage and fit tier; a tier-specific policy beats the any-tier one."""
    version = sla_in_force(at=at)
    if version is None:
        return None
    candidates = version.policies.filter(stage_key=stage_key, tier__in=[tier, ""]).select_related(
        "calendar"
    )
    return min(candidates, key=lambda policy: policy.tier == "", default=None)


def definitions_overview(models: list[type[DefinitionVersion]]) -> list[dict]:
    """For the home page: each definition kind, its version in force and how many drafts wait."""
    rows = []
    for model in models:
        counts = model.objects.aggregate(
            drafts=Count("pk", filter=Q(status=DefinitionStatus.DRAFT))
        )
        meta = model._meta
        rows.append(
            {
                "label": meta.verbose_name,
                "in_force": version_in_force(model),
                "drafts": counts["drafts"],
                "admin_url": reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
            }
        )
    return rows


def pipeline_counts() -> dict[str, int]:
    """Headline counts for the home page, one query per table."""
    lead_counts = Lead.objects.aggregate(leads=Count("pk"))
    return {
        **lead_counts,
        "events": EngagementEvent.objects.count(),
        "open_handoffs": Handoff.objects.filter(outcome="pending").count(),
        "open_opportunities": Opportunity.objects.filter(status="open").count(),
    }


def lead_list(*, stage: str = "", tier: str = "", source_id: str = "", query: str = ""):
    """Leads for the list page, newest first, filtered; the caller paginates."""
    leads = Lead.objects.select_related("account", "source", "owner", "score_state").order_by(
        "-created_at", "-pk"
    )
    if stage:
        leads = leads.filter(stage=stage)
    if tier:
        leads = leads.filter(tier=tier)
    if source_id.isdigit():
        leads = leads.filter(source_id=int(source_id))
    if query:
        leads = leads.filter(
            Q(email__icontains=query)
            | Q(last_name__icontains=query)
            | Q(first_name__icontains=query)
            | Q(account__name__icontains=query)
        )
    return leads


def lead_detail(lead_id: int):
    return (
        Lead.objects.select_related("account", "source", "campaign", "owner", "score_state")
        .prefetch_related("transitions__actor", "handoffs__assignee", "handoffs__reject_reason")
        .get(pk=lead_id)
    )


def lead_recent_events(lead_id: int, *, limit: int = 50):
    return list(
        EngagementEvent.objects.filter(lead_id=lead_id)
        .select_related("content_asset")
        .order_by("-occurred_at")[:limit]
    )
