"""Factories for the KPI tests: the facts a KPI reads, with the times spelled out by the test."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import factory

from leads.choices import ActivityAction, ActorType, HandoffOutcome, OpportunityStatus
from leads.models import (
    ContentAsset,
    Handoff,
    LeadActivity,
    Opportunity,
    RejectionReason,
    SalesRep,
    StageTransition,
)
from metrics.kpis import Period
from tests.factories import LeadFactory, UserFactory

# Inside March in New York time too (1 March 00:00 UTC would still be February there).
EARLY_MARCH = datetime(2026, 3, 2, 12, tzinfo=UTC)


class MetricLeadFactory(LeadFactory):
    """A lead without an account (the KPIs never read it), created on 2 March unless told."""

    account = None
    created_at = EARLY_MARCH


class HandoffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Handoff

    lead = factory.SubFactory(MetricLeadFactory)
    stage = "mql"
    assignee = factory.SubFactory(UserFactory)
    assigned_at = EARLY_MARCH


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    name = factory.Sequence(lambda n: f"Deal {n}")
    lead = factory.SubFactory(MetricLeadFactory)
    amount = 1000
    status = OpportunityStatus.OPEN
    created_at = EARLY_MARCH


class ContentAssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContentAsset

    title = factory.Sequence(lambda n: f"Asset {n}")
    asset_type = "case_study"
    funnel_stage = "tofu"


def sales_rep(username: str, *, manager=None) -> SalesRep:
    return SalesRep.objects.create(user=UserFactory(username=username), manager=manager)


def reason(key: str) -> RejectionReason:
    """One of the default rejection reasons (the v1 data migration creates them)."""
    return RejectionReason.objects.get(key=key)


def accepted(*, at: datetime, **kwargs) -> Handoff:
    return HandoffFactory(outcome=HandoffOutcome.ACCEPTED, accepted_at=at, **kwargs)


def rejected(*, at: datetime, reason_key: str = "not_icp_fit", note: str = "", **kwargs) -> Handoff:
    return HandoffFactory(
        outcome=HandoffOutcome.REJECTED,
        rejected_at=at,
        reject_reason=reason(reason_key),
        reject_note=note,
        **kwargs,
    )


def won(*, closed_at: datetime, **kwargs) -> Opportunity:
    return OpportunityFactory(status=OpportunityStatus.WON, closed_at=closed_at, **kwargs)


def lost(*, closed_at: datetime, **kwargs) -> Opportunity:
    return OpportunityFactory(status=OpportunityStatus.LOST, closed_at=closed_at, **kwargs)


def history(lead, *moves: tuple[str, datetime]) -> None:
    """Record a lead's stage history: each move is (stage entered, when), from no stage on.
    The lead's current stage becomes the last one entered."""
    before = ""
    for stage, at in moves:
        StageTransition.objects.create(
            lead=lead, from_stage=before, to_stage=stage, transitioned_at=at, actor_type="system"
        )
        before = stage
    lead.stage = before
    lead.save(update_fields=["stage"])


def shared(lead, *assets, at: datetime, actor=None, handoff=None) -> LeadActivity:
    """A sales touch on ``lead`` that shared ``assets``."""
    activity = LeadActivity.objects.create(
        lead=lead,
        handoff=handoff,
        action=ActivityAction.TOUCHED,
        occurred_at=at,
        actor=actor,
        actor_type=ActorType.USER,
    )
    activity.content_assets.set(assets)
    return activity


NEW_YORK = ZoneInfo("America/New_York")
# The period most tests read: March 2026 in New York time, i.e. 1 March 05:00 UTC (EST) to
# 1 April 04:00 UTC (EDT, from 8 March).
MARCH = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31), NEW_YORK)


def utc(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def new_york(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)
