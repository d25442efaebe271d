"""Leads over the API: a filtered, searched, cursor-paginated list; create and update validated
by the model (its clean() and constraints), answered as field errors."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from leads.models import Lead
from scoring.predictive.models import LeadPrediction, PredictiveModel
from tests.api.conftest import errors_of, fields_of, grant, token_client
from tests.factories import AccountFactory, CampaignFactory, LeadFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/leads/"
MARCH = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
def editor(db):
    user = grant(UserFactory(username="crm.sync"), "leads.add_lead", "leads.change_lead")
    return token_client(user)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_lead_has_its_fields_and_score(reader_api):
    lead = LeadFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    response = reader_api.get(f"{URL}{lead.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["stage"] == "lead"
    assert body["tier"] == "D"
    assert body["account"] == lead.account_id
    assert body["created_at"].endswith("Z")
    assert body["score"] is None  # not scored yet
    assert body["predicted_conversion"] is None  # no model has predicted it yet
    assert set(body) >= {"first_name", "source", "campaign", "owner", "in_marketing_nurture"}


def test_a_lead_shows_its_predicted_conversion_and_why(reader_api):
    lead = LeadFactory()
    model = PredictiveModel.objects.create(
        version=3, status=PredictiveModel.Status.TRAINED, trigger=PredictiveModel.Trigger.MANUAL
    )
    LeadPrediction.objects.create(
        lead=lead,
        model=model,
        probability=0.34,
        explanation={
            "baseline": 0.2,
            "up": [["Source: Referral", 0.8], ["Visits: 12", 0.3]],
            "down": [["E-mail: personal mailbox", -0.5]],
        },
    )

    body = reader_api.get(f"{URL}{lead.pk}/").json()["predicted_conversion"]

    assert body["probability"] == 0.34
    assert body["model_version"] == 3
    assert body["up"] == [
        {"feature": "Source: Referral", "log_odds": 0.8},
        {"feature": "Visits: 12", "log_odds": 0.3},
    ]
    assert body["down"] == [{"feature": "E-mail: personal mailbox", "log_odds": -0.5}]


def test_the_list_is_newest_first_and_paginated_by_cursor(reader_api):
    leads = LeadFactory.create_batch(5)
    first = reader_api.get(URL, {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [leads[4].pk, leads[3].pk]
    assert first["previous"] is None
    second = reader_api.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [leads[2].pk, leads[1].pk]


def test_the_page_size_is_bounded(reader_api):
    response = reader_api.get(URL, {"page_size": 501})
    assert response.status_code == 400
    assert fields_of(response) == {"page_size"}
    assert reader_api.get(URL, {"cursor": "garbage"}).status_code == 400


def test_the_list_filters_by_stage_tier_source_campaign_owner_and_dates(reader_api):
    rep = UserFactory()
    source = SourceFactory()
    campaign = CampaignFactory(source=source)
    mql = LeadFactory(stage="mql", tier="A", source=source, campaign=campaign, owner=rep)
    old = LeadFactory(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    other = LeadFactory(created_at=MARCH)
    assert ids(reader_api.get(URL, {"stage": "mql"})) == [mql.pk]
    assert ids(reader_api.get(URL, {"tier": ["A", "B"]})) == [mql.pk]
    assert ids(reader_api.get(URL, {"source": source.pk})) == [mql.pk]
    assert ids(reader_api.get(URL, {"campaign": campaign.pk})) == [mql.pk]
    assert ids(reader_api.get(URL, {"owner": rep.pk})) == [mql.pk]
    window = {"created_after": "2026-03-01T00:00:00Z", "created_before": "2026-03-03"}
    assert ids(reader_api.get(URL, window)) == [other.pk]
    assert ids(reader_api.get(URL, {"created_before": "2025-06-01T00:00:00Z"})) == [old.pk]


def test_the_list_searches_names_emails_and_accounts(reader_api):
    by_name = LeadFactory(last_name="Hopper")
    by_account = LeadFactory(account=AccountFactory(name="Hopperstad AS"))
    LeadFactory(last_name="Turing")
    assert set(ids(reader_api.get(URL, {"search": "hopper"}))) == {by_name.pk, by_account.pk}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"tier": "Z"}, "tier"),
        ({"stage": "nowhere"}, "stage"),
        ({"source": "abc"}, "source"),
        ({"source": "999999"}, "source"),
        ({"created_after": "2026-02-30"}, "created_after"),
        ({"created_before": "tomorrow"}, "created_before"),
    ],
)
def test_a_bad_filter_is_400_naming_it(reader_api, params, field):
    response = reader_api.get(URL, params)
    assert response.status_code == 400
    assert fields_of(response) == {field}


def test_the_list_reads_a_page_in_a_fixed_number_of_queries(reader_api, django_assert_num_queries):
    LeadFactory.create_batch(30)
    # Token + user, its last_used (first use; then at most once a minute), the reader's
    # permissions (own, groups'), then the page (score state joined): no query per lead.
    with django_assert_num_queries(5):
        assert len(ids(reader_api.get(URL))) == 30


def test_a_lead_is_created_normalized(editor):
    source = SourceFactory()
    response = editor.post(
        URL,
        {
            "first_name": "Grace",
            "email": " Grace@Example.COM ",
            "country": "us",
            "source": source.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(pk=response.json()["id"])
    assert (lead.email, lead.country, lead.stage) == ("grace@example.com", "US", "lead")
    assert response.json()["email"] == "grace@example.com"


def test_a_duplicate_email_is_a_field_error_with_the_models_message(editor):
    LeadFactory(email="grace@example.com")
    response = editor.post(URL, {"email": "GRACE@example.com"}, format="json")
    assert response.status_code == 400
    [entry] = errors_of(response)
    assert entry["field"] == "email"
    assert entry["message"] == "A lead with this e-mail address already exists."
    assert Lead.objects.count() == 1


@pytest.mark.parametrize(
    "body, field, code",
    [
        ({"email": "not-an-email"}, "email", "invalid"),
        ({"seniority": "overlord"}, "seniority", "invalid_choice"),
        ({"first_name": 42 * "x" * 2}, "first_name", "max_length"),
        ({"source": "one"}, "source", "incorrect_type"),
        ({"source": 999999}, "source", "does_not_exist"),
        ({"created_at": "2026-02-30T10:00:00Z"}, "created_at", "invalid"),
        ({"first_name": ["a", "list"]}, "first_name", "invalid"),
    ],
)
def test_bad_input_is_a_precise_field_error(editor, body, field, code):
    response = editor.post(URL, body, format="json")
    assert response.status_code == 400
    [entry] = errors_of(response)
    assert (entry["field"], entry["code"]) == (field, code)
    assert Lead.objects.count() == 0


def test_an_update_writes_only_what_it_was_given(editor):
    lead = LeadFactory(first_name="Ada", stage="lead")
    # Meanwhile the pipeline moves the lead: the API's update must not undo it.
    Lead.objects.filter(pk=lead.pk).update(stage="mql", tier="A")
    response = editor.patch(
        f"{URL}{lead.pk}/", {"title": "CTO", "stage": "customer"}, format="json"
    )
    assert response.status_code == 200, response.content
    lead.refresh_from_db()
    assert (lead.title, lead.first_name, lead.stage, lead.tier) == ("CTO", "Ada", "mql", "A")
    assert response.json()["stage"] == "mql"  # read-only: moved by the pipeline only


def test_an_update_is_validated_like_a_create(editor):
    LeadFactory(email="taken@example.com")
    lead = LeadFactory()
    response = editor.patch(f"{URL}{lead.pk}/", {"email": "taken@example.com"}, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {"email"}


def test_writing_leads_needs_the_model_permissions(reader_api):
    lead = LeadFactory()
    created = reader_api.post(URL, {"email": "x@example.com"}, format="json")
    assert created.status_code == 403
    assert "leads.add_lead" in errors_of(created)[0]["message"]
    updated = reader_api.patch(f"{URL}{lead.pk}/", {"title": "CTO"}, format="json")
    assert updated.status_code == 403
    assert "leads.change_lead" in errors_of(updated)[0]["message"]


def test_an_unknown_lead_is_a_json_404(reader_api):
    response = reader_api.get(f"{URL}999999/")
    assert response.status_code == 404
    assert errors_of(response)[0]["code"] == "not_found"


def test_deleting_is_not_offered(editor):
    lead = LeadFactory()
    response = editor.delete(f"{URL}{lead.pk}/")
    assert response.status_code in (403, 405)
    assert Lead.objects.filter(pk=lead.pk).exists()
    assert connection.vendor in ("sqlite", "postgresql")
