"""Filter parameters carrying SQL metacharacters are plain text or invalid input: they match
literally or are refused, never widen a result, never fail with a 500, never run."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from leads.models import Lead
from tests.factories import AccountFactory, LeadFactory
from tests.metrics.factories import MetricLeadFactory, accepted, rejected, utc

METACHARACTERS = [
    "' OR 1=1 --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "%' --",
    "1;DROP TABLE leads_lead",
    "'; SELECT pg_sleep(2); --",
]
MARCH = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def leads(db):
    """Ordinary names, plus one lead whose name really contains %, _ and a backslash."""
    return [
        LeadFactory(first_name="Ada", last_name="Lovelace", account=AccountFactory(name="Acme")),
        LeadFactory(first_name="Grace", last_name="Hopper", account=AccountFactory(name="Navy")),
        LeadFactory(first_name="Sale", last_name="100%_off\\now", account=None),
    ]


def literally_matching(leads, text: str) -> set[int]:
    text = text.strip().lower()
    return {
        lead.pk
        for lead in leads
        if any(
            text in (value or "").lower()
            for value in (
                lead.email,
                lead.first_name,
                lead.last_name,
                lead.account.name if lead.account else "",
            )
        )
    }


@pytest.mark.parametrize("text", METACHARACTERS)
def test_lead_list_search_matches_literally(admin_client, leads, text):
    response = admin_client.get(reverse("leads:list"), {"q": text})

    assert response.status_code == 200
    shown = {lead.pk for lead in response.context["page"].object_list}
    assert shown == literally_matching(leads, text)
    assert Lead.objects.count() == 3


def test_the_wildcards_find_only_the_lead_that_contains_them(admin_client, leads):
    for text in ("%", "_", "\\"):
        response = admin_client.get(reverse("leads:list"), {"q": text})
        assert [lead.pk for lead in response.context["page"].object_list] == [leads[2].pk]


@pytest.mark.parametrize("text", METACHARACTERS)
@pytest.mark.parametrize("param", ["stage", "tier"])
def test_lead_list_exact_filters_match_nothing(admin_client, leads, param, text):
    response = admin_client.get(reverse("leads:list"), {param: text})

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == []


@pytest.mark.parametrize("text", METACHARACTERS)
def test_lead_list_source_that_is_not_an_id_is_ignored(admin_client, leads, text):
    unfiltered = admin_client.get(reverse("leads:list")).context["page"].total

    response = admin_client.get(reverse("leads:list"), {"source": text})

    assert response.status_code == 200
    assert response.context["page"].total == unfiltered == 3


@pytest.mark.parametrize("text", METACHARACTERS)
def test_lead_export_filters_match_literally(admin_client, leads, text):
    response = admin_client.get(reverse("leads:export"), {"q": text, "stage": ""})

    assert response.status_code == 200
    rows = b"".join(response.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert len(rows) - 1 == len(literally_matching(leads, text))


@pytest.fixture
def march(db):
    lead = MetricLeadFactory()
    accepted(at=utc(3, 3), lead=lead)
    rejected(at=utc(3, 4), lead=MetricLeadFactory())
    return lead


def headline_values(response) -> dict:
    return {tile.key: tile.change.current for tile in response.context["data"]}


@pytest.mark.parametrize("text", METACHARACTERS)
@pytest.mark.parametrize("param", ["source", "campaign", "owner", "tier", "channel", "team"])
def test_dashboard_filters_refuse_metacharacters_and_show_the_unfiltered_figures(
    admin_client, march, param, text
):
    unfiltered = headline_values(admin_client.get(reverse("metrics:overview"), MARCH))

    response = admin_client.get(reverse("metrics:overview"), {**MARCH, param: text})

    assert response.status_code == 200
    assert param in response.context["form"].errors
    assert headline_values(response) == unfiltered


@pytest.mark.parametrize("text", METACHARACTERS)
def test_drill_down_filters_never_fail(admin_client, march, text):
    response = admin_client.get(
        reverse("metrics:drill", args=["acceptance"]), {**MARCH, "source": text, "outcome": text}
    )
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert len(response.context["rows"]) <= 2


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.mark.parametrize("text", METACHARACTERS)
def test_api_search_matches_literally(api, leads, text):
    response = api.get("/api/v1/leads/", {"search": text})

    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == literally_matching(leads, text)


@pytest.mark.parametrize("text", METACHARACTERS)
@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/v1/leads/", "tier"),
        ("/api/v1/leads/", "stage"),
        ("/api/v1/leads/", "source"),
        ("/api/v1/leads/", "account"),
        ("/api/v1/leads/", "created_after"),
        ("/api/v1/opportunities/", "status"),
        ("/api/v1/events/", "kind"),
        ("/api/v1/accounts/", "region"),
    ],
)
def test_api_choice_and_id_filters_refuse_metacharacters(api, leads, url, param, text):
    response = api.get(url, {param: text})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == param


@pytest.mark.parametrize("text", METACHARACTERS)
@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/v1/leads/", "email"),
        ("/api/v1/leads/", "external_id"),
        ("/api/v1/accounts/", "search"),
        ("/api/v1/accounts/", "domain"),
        ("/api/v1/events/", "source_system"),
    ],
)
def test_api_text_filters_match_nothing_that_does_not_contain_them(api, leads, url, param, text):
    response = api.get(url, {param: text})

    assert response.status_code == 200
    assert response.json()["results"] == []
