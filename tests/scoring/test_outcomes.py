"""A lead's known outcome: the per-lead SQL (predictive score) and the per-range reads
(backtest) give the same facts, and the one rule decides them."""

from datetime import UTC, datetime

import pytest

from leads.models import Lead, StageTransition
from scoring.outcomes import OutcomeFacts, closed_outcome
from scoring.selectors import outcome_annotations, outcome_facts_in_range, stage_groups
from tests.factories import LeadFactory
from tests.metrics.factories import HandoffFactory, OpportunityFactory, lost, rejected, won

pytestmark = pytest.mark.django_db
AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def lead_in(stage: str) -> Lead:
    lead = LeadFactory()
    Lead.objects.filter(pk=lead.pk).update(stage=stage)
    return lead


def test_both_readers_give_the_same_facts_and_the_rule_decides_them():
    leads = {
        "won deal": lead_in("customer"),
        "lost deal, handoff pending": lead_in("mql"),
        "rejected": lead_in("nurture"),
        "was a customer": lead_in("nurture"),
        "disqualified": lead_in("disqualified"),
        "lost, still open deal": lead_in("opportunity"),
        "nothing": lead_in("lead"),
    }
    won(lead=leads["won deal"], closed_at=AT)
    lost(lead=leads["lost deal, handoff pending"], closed_at=AT)
    HandoffFactory(lead=leads["lost deal, handoff pending"], assigned_at=AT)
    rejected(lead=leads["rejected"], at=AT, assigned_at=AT)
    StageTransition.objects.create(
        lead=leads["was a customer"], from_stage="opportunity", to_stage="customer",
        transitioned_at=AT, actor_type="system",
    )  # fmt: skip
    lost(lead=leads["lost, still open deal"], closed_at=AT)
    OpportunityFactory(lead=leads["lost, still open deal"])
    groups = stage_groups()
    ids = [lead.pk for lead in leads.values()]

    per_lead = {
        row["pk"]: OutcomeFacts(
            **{name: bool(row[name]) for name in OutcomeFacts.__dataclass_fields__}
        )
        for row in Lead.objects.filter(pk__in=ids)
        .annotate(**outcome_annotations(groups))
        .values("pk", *OutcomeFacts.__dataclass_fields__)
    }
    stages = dict(Lead.objects.filter(pk__in=ids).values_list("pk", "stage"))
    per_range = outcome_facts_in_range(
        lo=min(ids), hi=max(ids), stages_by_lead=stages, groups=groups
    )

    assert per_range == per_lead
    outcomes = {name: closed_outcome(per_range[lead.pk]) for name, lead in leads.items()}
    assert outcomes == {
        "won deal": 1,
        "lost deal, handoff pending": None,  # still in play
        "rejected": 0,
        "was a customer": 1,
        "disqualified": 0,
        "lost, still open deal": None,
        "nothing": None,
    }
