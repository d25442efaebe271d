"""Accounts, sources, campaigns and opportunities: a contract test each (list, read, create,
update), validation by the model, write permissions."""

from datetime import UTC, datetime

import pytest

from leads.models import Account, Campaign, Lead, Opportunity, Source, StageTransition
from tests.api.conftest import errors_of, fields_of
from tests.factories import AccountFactory, CampaignFactory, LeadFactory, SourceFactory
from tests.metrics.factories import OpportunityFactory

pytestmark = pytest.mark.django_db


def test_accounts_contract(ops_api, reader_api):
    account = AccountFactory(name="Initech", technologies=["salesforce"])
    listed = reader_api.get("/api/v1/accounts/", {"search": "initech"})
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert row["id"] == account.pk
    assert row["technologies"] == ["salesforce"]

    created = ops_api.post(
        "/api/v1/accounts/",
        {
            "name": "Globex",
            "domain": "https://WWW.Globex.com/about",
            "country": "de",
            "region": "EMEA",
            "technologies": ["HubSpot", " Segment "],
            "annual_revenue": "1250000.50",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["domain"], body["country"]) == ("globex.com", "DE")
    assert body["technologies"] == ["hubspot", "segment"]
    assert body["annual_revenue"] == "1250000.50"

    updated = ops_api.patch(f"/api/v1/accounts/{body['id']}/", {"employees": 250}, format="json")
    assert updated.status_code == 200
    assert Account.objects.get(pk=body["id"]).employees == 250


def test_opening_then_winning_a_deal_over_the_api_moves_the_lead_with_history(ops_api, ops):
    lead = LeadFactory(stage_entered_at=datetime(2026, 2, 1, tzinfo=UTC))
    Lead.objects.filter(pk=lead.pk).update(stage="sql")

    created = ops_api.post(
        "/api/v1/opportunities/",
        {
            "name": "Initech",
            "lead": lead.pk,
            "amount": "9000",
            "created_at": "2026-03-01T10:00:00Z",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    lead.refresh_from_db()
    assert lead.stage == "opportunity"

    won = ops_api.patch(
        f"/api/v1/opportunities/{created.json()['id']}/",
        {"status": "won", "closed_at": "2026-03-20T10:00:00Z"},
        format="json",
    )
    assert won.status_code == 200, won.content
    lead.refresh_from_db()
    assert lead.stage == "customer"
    assert lead.stage_entered_at == datetime(2026, 3, 20, 10, tzinfo=UTC)
    moves = StageTransition.objects.filter(lead=lead).order_by("transitioned_at", "pk")
    assert [(m.from_stage, m.to_stage) for m in moves] == [
        ("sql", "opportunity"),
        ("opportunity", "customer"),
    ]
    last = StageTransition.objects.filter(lead=lead).latest("transitioned_at")
    assert last.reason == "Opportunity 'Initech' won"
    assert last.actor == ops


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "A", "country": "Germany"}, "country"),
        ({"name": "A", "region": "MARS"}, "region"),
        ({"name": "A", "employees": -5}, "employees"),
        ({"name": "A", "annual_revenue": "lots"}, "annual_revenue"),
        ({"name": "A", "technologies": "hubspot"}, "technologies"),
        ({"name": "A", "domain": "initech.com"}, "domain"),  # taken
        ({"name": "A", "domain": "exa[mple.com"}, "domain"),  # no host in it (was a 500)
        ({"domain": "new.example"}, "name"),  # required
    ],
)
def test_accounts_refuse_bad_input_naming_the_field(ops_api, body, field):
    AccountFactory(domain="initech.com")
    response = ops_api.post("/api/v1/accounts/", body, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {field}
    assert Account.objects.count() == 1


def test_sources_contract(ops_api, reader_api):
    SourceFactory(name="Webinar", channel_group="events")
    assert (
        reader_api.get("/api/v1/sources/", {"channel_group": "events"}).json()["results"][0]["name"]
        == "Webinar"
    )
    created = ops_api.post(
        "/api/v1/sources/", {"name": "G2", "channel_group": "referral"}, format="json"
    )
    assert created.status_code == 201
    assert created.json() == {
        "id": created.json()["id"],
        "name": "G2",
        "channel_group": "referral",
        "origin": "marketing",
    }
    duplicate = ops_api.post(
        "/api/v1/sources/", {"name": "G2", "channel_group": "referral"}, format="json"
    )
    assert duplicate.status_code == 400
    assert fields_of(duplicate) == {"name"}
    unknown = ops_api.post("/api/v1/sources/", {"name": "X", "channel_group": "tv"}, format="json")
    assert unknown.status_code == 400
    assert errors_of(unknown)[0]["code"] == "invalid_choice"
    assert Source.objects.filter(name="G2").count() == 1


def test_campaigns_contract(ops_api, reader_api):
    source = SourceFactory()
    campaign = CampaignFactory(source=source)
    assert [
        row["id"]
        for row in reader_api.get("/api/v1/campaigns/", {"source": source.pk}).json()["results"]
    ] == [campaign.pk]
    created = ops_api.post(
        "/api/v1/campaigns/",
        {"name": "Spring", "source": source.pk, "starts_on": "2026-03-01", "cost": "5000"},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["cost"] == "5000.00"
    backwards = ops_api.patch(
        f"/api/v1/campaigns/{created.json()['id']}/", {"ends_on": "2026-02-01"}, format="json"
    )
    assert backwards.status_code == 400
    assert errors_of(backwards) == [
        {
            "field": "ends_on",
            "code": "invalid",
            "message": "The campaign cannot end before it starts.",
        }
    ]
    impossible = ops_api.patch(
        f"/api/v1/campaigns/{created.json()['id']}/", {"ends_on": "2026-02-30"}, format="json"
    )
    assert impossible.status_code == 400
    assert fields_of(impossible) == {"ends_on"}
    assert Campaign.objects.get(pk=created.json()["id"]).ends_on is None


def test_opportunities_contract(ops_api, reader_api):
    lead = LeadFactory()
    OpportunityFactory(lead=lead, status="open")
    listed = reader_api.get("/api/v1/opportunities/", {"status": "open", "lead": lead.pk})
    assert len(listed.json()["results"]) == 1
    created = ops_api.post(
        "/api/v1/opportunities/",
        {
            "name": "Initech renewal",
            "lead": lead.pk,
            "amount": "12000",
            "status": "won",
            "created_at": "2026-03-01T10:00:00Z",
            "closed_at": "2026-03-20T10:00:00Z",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["stage"] == "closed_won"  # the model's clean() follows the status
    opportunity = Opportunity.objects.get(pk=created.json()["id"])
    assert opportunity.closed_at == datetime(2026, 3, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "won"}, "closed_at"),
        ({"closed_at": "2026-03-20T10:00:00Z"}, "closed_at"),
        ({"amount": "-1"}, "amount"),
        ({"status": "maybe"}, "status"),
        (
            {"status": "lost", "created_at": "2026-03-20T10:00:00Z", "closed_at": "2026-03-01"},
            "closed_at",
        ),
    ],
)
def test_opportunities_refuse_inconsistent_input(ops_api, body, field):
    response = ops_api.post("/api/v1/opportunities/", {"name": "Deal", **body}, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {field}
    assert Opportunity.objects.count() == 0


@pytest.mark.parametrize("url", ["accounts", "sources", "campaigns", "opportunities"])
def test_writing_facts_needs_the_model_permission(reader_api, url):
    response = reader_api.post(f"/api/v1/{url}/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert errors_of(response)[0]["code"] == "permission_denied"
