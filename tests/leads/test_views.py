"""The lead list and the lead page ("why is this lead an MQL?")."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from leads.models import EngagementEvent
from scoring import services
from tests.factories import AccountFactory, LeadFactory, SourceFactory


@pytest.fixture
def scored_lead(db):
    account = AccountFactory(
        name="<b>Acme</b>", industry="software", employees=800, region="NA", country="US"
    )
    lead = LeadFactory(account=account, seniority="director", first_name="<script>x</script>")
    EngagementEvent.objects.create(
        lead=lead, kind="webinar_attended", occurred_at=datetime(2026, 11, 20, tzinfo=UTC)
    )
    services.lead_rescore(lead_id=lead.pk, at=datetime(2026, 11, 24, tzinfo=UTC))
    return lead


def test_lead_page_explains_the_score(admin_client, scored_lead):
    response = admin_client.get(reverse("leads:detail", args=[scored_lead.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Fit under ICP v1" in body
    assert "Target industry" in body and "+10" in body
    assert "Removed by decay" in body
    # The stage by its name and buyer label, not its key.
    assert '<span class="figure">Lead</span> (Curious) stage since' in body
    # Markup in names is shown, never executed.
    assert "<script>x</script>" not in body and "&lt;script&gt;" in body
    assert "<b>Acme</b>" not in body


def test_lead_page_names_event_kinds_and_stages_never_their_keys(admin_client, scored_lead):
    EngagementEvent.objects.create(
        lead=scored_lead, kind="demo_request", occurred_at=datetime(2026, 11, 21, tzinfo=UTC)
    )
    services.lead_rescore(lead_id=scored_lead.pk, at=datetime(2026, 11, 24, tzinfo=UTC))

    body = admin_client.get(reverse("leads:detail", args=[scored_lead.pk])).content.decode()

    # The score's engagement table and the timeline, both by the kind's display name.
    assert body.count("<td>Demo request</td>") == 2
    assert body.count("<td>Webinar attended</td>") == 2
    assert "demo_request" not in body and "webinar_attended" not in body


def test_lead_list_names_the_stage(admin_client, scored_lead):
    body = admin_client.get(reverse("leads:list")).content.decode()

    assert "<td>Lead</td>" in body and "<td>lead</td>" not in body


def test_unknown_lead_is_404(admin_client):
    assert admin_client.get(reverse("leads:detail", args=[999999])).status_code == 404


def test_lead_list_filters_and_paginates(admin_client, django_assert_num_queries):
    webinar = SourceFactory(name="Webinar")
    LeadFactory.create_batch(60, source=webinar, tier="A")
    LeadFactory(tier="C", last_name="Needle")
    url = reverse("leads:list")
    page_one = admin_client.get(url, {"tier": "A"})
    assert len(page_one.context["page"].object_list) == 50
    assert page_one.context["page"].paginator.count == 60
    assert "Page 1 of 2" in page_one.content.decode()
    found = admin_client.get(url, {"q": "needle"})
    assert [lead.last_name for lead in found.context["page"].object_list] == ["Needle"]
    # session, user, sources, stages (2), count, page, unread-notification badge
    with django_assert_num_queries(8):
        admin_client.get(url, {"source": str(webinar.pk), "page": "2"})


def test_lead_list_empty_state(admin_client):
    response = admin_client.get(reverse("leads:list"), {"q": "nobody"})
    assert "No lead matches these filters" in response.content.decode()


def test_filters_with_sql_metacharacters_change_nothing(admin_client, db):
    LeadFactory()
    response = admin_client.get(
        reverse("leads:list"), {"q": "'; DROP TABLE leads_lead; --", "source": "1 OR 1=1"}
    )
    assert response.status_code == 200
    assert admin_client.get(reverse("leads:list")).context["page"].paginator.count == 1


def test_lead_pages_need_a_login(client, db):
    response = client.get(reverse("leads:list"))
    assert response.status_code == 302
