"""Content utilization KPIs: how sales uses marketing's assets (docs/kpis.md, "Content")."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import (
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
)

from leads.models import (
    ContentAsset,
    EngagementEvent,
    Handoff,
    Lead,
    LeadActivity,
    Opportunity,
)
from metrics import kpis
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries.common import (
    _handoffs,
    _in,
    _lead_q,
    _opportunities,
    _owner_q,
)

# --- Content utilization ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContentUtilization:
    """How sales uses marketing's content.

    Of the leads handed off in the period, those sales shared at least one asset with; of the
    opportunities created in the period, those whose lead sales shared an asset with, and those
    whose lead engaged with an asset before the opportunity was created.
    """

    handed_off_leads: int
    handed_off_leads_with_share: int
    handed_off_share_rate: float | None
    opportunities: int
    opportunities_with_share: int
    opportunity_share_rate: float | None
    opportunities_with_prior_engagement: int
    prior_engagement_rate: float | None


def _shared_with(lead_ref: OuterRef) -> Exists:
    # From the (small) table of shared assets to the activity, not from every activity of the
    # lead: breach and touch history makes the latter large.
    shares = LeadActivity.content_assets.through.objects.filter(leadactivity__lead=lead_ref)
    return Exists(shares)


def handed_off_leads(period: Period, filters: KpiFilters = NO_FILTERS) -> QuerySet[Lead]:
    """Drill-down: leads with a handoff assigned in the period (to the filtered owners)."""
    handoffs = Handoff.objects.filter(
        _in("assigned_at", period), _owner_q(filters, "assignee"), lead=OuterRef("pk")
    )
    return (
        Lead.objects.filter(_lead_q(filters), Exists(handoffs))
        .annotate(asset_shared=_shared_with(OuterRef("pk")))
        .select_related("source", "owner")
        .order_by("-created_at", "-pk")
    )


def created_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> QuerySet[Opportunity]:
    """Drill-down: opportunities created in the period, annotated with ``asset_shared`` and
    ``asset_engaged_before`` (their lead engaged with an asset before the opportunity)."""
    engaged_before = EngagementEvent.objects.filter(
        lead=OuterRef("lead_id"),
        content_asset__isnull=False,
        occurred_at__lt=OuterRef("created_at"),
    )
    return (
        _opportunities(filters)
        .filter(_in("created_at", period))
        .annotate(
            asset_shared=_shared_with(OuterRef("lead_id")),
            asset_engaged_before=Exists(engaged_before),
        )
        .select_related("lead__source", "owner")
        .order_by("-created_at", "-pk")
    )


def content_utilization(period: Period, filters: KpiFilters = NO_FILTERS) -> ContentUtilization:
    # Counted from the handoffs of the period (the same leads as ``handed_off_leads``), with
    # the leads sales shared content with as one set: no per-lead subquery over every lead.
    leads_with_shares = LeadActivity.content_assets.through.objects.values("leadactivity__lead_id")
    leads = (
        _handoffs(filters)
        .filter(_in("assigned_at", period))
        .order_by()
        .aggregate(
            total=Count("lead_id", distinct=True),
            shared=Count("lead_id", distinct=True, filter=Q(lead_id__in=leads_with_shares)),
        )
    )
    opportunities = (
        created_opportunities(period, filters)
        .order_by()
        .aggregate(
            total=Count("pk"),
            shared=Count("pk", filter=Q(asset_shared=True)),
            engaged=Count("pk", filter=Q(asset_engaged_before=True)),
        )
    )
    return ContentUtilization(
        handed_off_leads=leads["total"],
        handed_off_leads_with_share=leads["shared"],
        handed_off_share_rate=kpis.rate(leads["shared"], leads["total"]),
        opportunities=opportunities["total"],
        opportunities_with_share=opportunities["shared"],
        opportunity_share_rate=kpis.rate(opportunities["shared"], opportunities["total"]),
        opportunities_with_prior_engagement=opportunities["engaged"],
        prior_engagement_rate=kpis.rate(opportunities["engaged"], opportunities["total"]),
    )


@dataclass(frozen=True)
class AssetUse:
    asset_id: int
    title: str
    asset_type: str
    funnel_stage: str
    shares: int  # sales activities in the period that shared it
    leads: int  # distinct leads it was shared with


@dataclass(frozen=True)
class AssetUsage:
    """Per funnel stage (tofu, mofu, bofu), the assets sales shared most in the period, most
    first; and the assets sales never shared in the period."""

    most_used: dict[str, tuple[AssetUse, ...]]
    unused: tuple[AssetUse, ...]


def _share_q(period: Period, filters: KpiFilters, activity: str = "") -> Q:
    return (
        _in(f"{activity}occurred_at", period)
        & _lead_q(filters, f"{activity}lead__")
        & _owner_q(filters, f"{activity}actor")
    )


def asset_shares(
    period: Period, filters: KpiFilters = NO_FILTERS, *, asset_id: int | None = None
) -> QuerySet[LeadActivity]:
    """Drill-down: sales activities in the period that shared an asset (or this asset)."""
    activities = LeadActivity.objects.filter(_share_q(period, filters))
    if asset_id is None:
        activities = activities.filter(content_assets__isnull=False).distinct()
    else:
        activities = activities.filter(content_assets=asset_id)
    return activities.select_related("lead", "actor").order_by("-occurred_at", "-pk")


def asset_usage(period: Period, filters: KpiFilters = NO_FILTERS, *, top: int = 5) -> AssetUsage:
    shared = _share_q(period, filters, "shared_in_activities__")
    rows = (
        ContentAsset.objects.order_by()
        .values("pk", "title", "asset_type", "funnel_stage")
        .annotate(
            shares=Count("shared_in_activities", filter=shared),
            leads=Count("shared_in_activities__lead", filter=shared, distinct=True),
        )
    )
    # One row per asset (a library of tens or hundreds): ranking them is presentation.
    assets = sorted(
        (
            AssetUse(
                row["pk"],
                row["title"],
                row["asset_type"],
                row["funnel_stage"],
                row["shares"],
                row["leads"],
            )
            for row in rows
        ),
        key=lambda asset: (-asset.shares, -asset.leads, asset.title.lower(), asset.asset_id),
    )
    most_used: dict[str, list[AssetUse]] = defaultdict(list)
    for asset in assets:
        if asset.shares and len(most_used[asset.funnel_stage]) < top:
            most_used[asset.funnel_stage].append(asset)
    return AssetUsage(
        most_used={stage: tuple(used) for stage, used in most_used.items()},
        unused=tuple(asset for asset in assets if not asset.shares),
    )
