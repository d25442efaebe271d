"""A deal moves its lead: opening one makes the lead an Opportunity, winning it a Customer,
losing it Closed lost, each with a stage-history row naming who and why (the API's side is in
tests/api/test_facts.py)."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from leads import services
from leads.models import Lead, StageTransition
from tests.factories import LeadFactory
from tests.metrics.factories import OpportunityFactory

pytestmark = pytest.mark.django_db
MARCH_1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
MARCH_20 = datetime(2026, 3, 20, 10, tzinfo=UTC)


def lead_at(stage: str) -> Lead:
    lead = LeadFactory(stage_entered_at=datetime(2026, 2, 1, tzinfo=UTC))
    Lead.objects.filter(pk=lead.pk).update(stage=stage)
    lead.refresh_from_db()
    return lead


def history(lead: Lead) -> list[tuple[str, str]]:
    return list(
        StageTransition.objects.filter(lead=lead)
        .order_by("transitioned_at", "pk")
        .values_list("from_stage", "to_stage")
    )


def test_saving_the_same_outcome_again_writes_no_second_row():
    lead = lead_at("opportunity")
    deal = OpportunityFactory(lead=lead, status="won", created_at=MARCH_1, closed_at=MARCH_20)

    assert services.lead_follow_opportunity(opportunity=deal) is not None
    assert services.lead_follow_opportunity(opportunity=deal) is None
    assert history(lead) == [("opportunity", "customer")]


@pytest.mark.parametrize("stage", ["customer", "closed_lost"])
def test_an_open_deal_never_moves_a_lead_backwards(stage):
    lead = lead_at(stage)
    deal = OpportunityFactory(lead=lead, status="open", created_at=MARCH_1)

    assert services.lead_follow_opportunity(opportunity=deal) is None
    lead.refresh_from_db()
    assert lead.stage == stage
    assert history(lead) == []


def test_a_deal_without_a_lead_moves_nothing():
    deal = OpportunityFactory(lead=None, status="won", created_at=MARCH_1, closed_at=MARCH_20)

    assert services.lead_follow_opportunity(opportunity=deal) is None
    assert StageTransition.objects.count() == 0


def test_losing_a_deal_in_the_admin_closes_the_lead(admin_client, admin_user):
    lead = lead_at("opportunity")
    deal = OpportunityFactory(lead=lead, status="open", created_at=MARCH_1)
    url = reverse("admin:leads_opportunity_change", args=[deal.pk])
    form = {
        "name": deal.name,
        "lead": lead.pk,
        "account": "",
        "owner": "",
        "amount": "1000",
        "currency": deal.currency,
        "stage": deal.stage,
        "status": "lost",
        "created_at_0": "2026-03-01",
        "created_at_1": "10:00:00",
        "closed_at_0": "2026-03-20",
        "closed_at_1": "10:00:00",
        "loss_reason": "Budget",
        "external_id": "",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    deal.refresh_from_db()
    assert deal.status == "lost"
    lead.refresh_from_db()
    assert lead.stage == "closed_lost"
    transition = StageTransition.objects.get(lead=lead)
    assert (transition.actor, transition.reason) == (admin_user, f"Opportunity {deal.name!r} lost")
