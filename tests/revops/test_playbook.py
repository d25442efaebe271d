"""The playbook page: every role reads it, it follows the definitions in force, it is printable,
and it is linked from the top bar and the definitions page."""

import pytest
from django.urls import reverse

from leads.models import LifecycleVersion
from leads.roles import ROLES
from leads.services import definition_create_draft, definition_publish
from scoring.models import ScoringModel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/playbook/"


def _read(client, role=None):
    client.force_login(UserFactory(username=f"reader-{role or 'none'}", role=role))
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_whole_playbook(client, role):
    body = _read(client, role)

    for heading in (
        "Ideal Customer Profile",
        "Lifecycle stages",
        "Response times (handoff SLAs)",
        "Rejection reasons",
        "Scoring weights",
    ):
        assert heading in body
    assert "Account industry is Software, Financial services, Healthcare or E-commerce" in body
    assert "Score threshold: total score reaches 65" in body
    assert "2 business hours" in body
    assert "Not ICP fit" in body
    assert "Demo request" in body


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_buyer_language_and_display_names_replace_raw_keys(client):
    body = _read(client)

    assert "“Engaged”" in body
    assert "E-mail click" in body
    for key in (">mql<", "email_click", ">sal<", "meeting_booked", "funding_round"):
        assert key not in body


def test_the_lifecycle_is_drawn_as_a_diagram_of_owned_stages(client):
    body = _read(client)

    assert '<ol class="lifecycle-diagram"' in body
    assert '<li class="stage team-marketing">' in body
    assert '<li class="stage team-sales">' in body
    assert "Handoff to sales · rejected → Nurture" in body


def test_publishing_a_lifecycle_version_changes_the_page(client):
    editor = UserFactory(username="rita", first_name="Rita", last_name="Ops")
    draft = definition_create_draft(
        model=LifecycleVersion, actor=editor, copy_from=LifecycleVersion.objects.get(number=1)
    )
    draft.stages.filter(key="mql").update(trigger_score=72, buyer_label="Hand-raiser")
    definition_publish(version=draft, actor=editor)

    body = _read(client)

    assert 'Lifecycle stages <span class="version">v2</span>' in body
    assert "Score threshold: total score reaches 72" in body
    assert "reaches 65" not in body.split('id="lifecycle"')[1].split("What changed")[0]
    assert "MQL: buyer label changed from “Engaged” to “Hand-raiser”" in body
    assert "published by Rita Ops" in body


def test_publishing_a_scoring_model_changes_the_weights_and_says_so(client):
    draft = definition_create_draft(
        model=ScoringModel, actor=None, copy_from=ScoringModel.objects.get(number=1)
    )
    draft.weights.filter(kind="demo_request").update(points=40)
    definition_publish(version=draft, actor=None)

    body = _read(client)

    assert "+40 points each" in body
    assert "Demo request: points changed from “+30 points each” to “+40 points each”" in body


def test_the_page_is_printable(client):
    body = _read(client)

    assert "css/playbook.css" in body
    assert 'class="playbook-toc no-print"' in body


def test_linked_from_the_top_bar_and_the_definitions_page(client):
    client.force_login(UserFactory(username="vera", role="Viewer"))

    home = client.get(reverse("home")).content.decode()
    definitions = client.get(reverse("audit:index")).content.decode()

    assert f'<a href="{URL}">Playbook</a>' in home
    assert f'href="{URL}">playbook</a>' in definitions


def test_query_count_is_pinned(client, django_assert_num_queries):
    client.force_login(UserFactory(username="counted"))
    client.get(URL)  # warm the session and content types

    # session + user, then per definition: the version in force and the one before it, their
    # rows and publisher; the SLA calendars' hours and holidays; the rejection reasons.
    with django_assert_num_queries(19):
        assert client.get(URL).status_code == 200
