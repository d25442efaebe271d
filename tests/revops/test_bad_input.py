"""Input no field can hold is refused with a clear 400 before any view reads it."""

from urllib.parse import urlencode

import pytest

from leads.roles import REVOPS_ADMIN
from tests.factories import LeadFactory, UserFactory


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="ops.nul", role=REVOPS_ADMIN))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/leads/?q=%00",
        "/leads/?stage=%00",
        "/leads/?tier=A%00",
        "/leads/export.csv?q=%00",
        "/leads/handoffs/?source=%00",
        "/dashboards/?source=%00",
    ],
)
def test_a_nul_character_in_a_page_filter_is_a_clear_400(admin_client, url):
    LeadFactory()
    response = admin_client.get(url)
    assert response.status_code == 400
    assert b"NUL character" in response.content
    assert b"Open the page without its filters" in response.content


@pytest.mark.parametrize(
    "url", ["/api/v1/leads/?search=%00", "/api/v1/events/?kind=%00", "/api/v1/leads/?stage=mql%00"]
)
def test_a_nul_character_in_an_api_filter_is_a_400_in_the_api_error_format(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] is None and "NUL character" in error["message"]


def test_a_nul_character_in_a_posted_form_is_refused_and_nothing_changes(admin_client):
    lead = LeadFactory()
    response = admin_client.post(
        f"/leads/{lead.pk}/recycle",
        urlencode({"note": "hi\x00there"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    lead.refresh_from_db()
    assert lead.stage == "lead"


def test_ordinary_filters_still_work(admin_client):
    LeadFactory(first_name="Zelda")
    response = admin_client.get("/leads/?q=Zelda")
    assert response.status_code == 200
    assert b"Zelda" in response.content
