"""The lead list and the lead page ("why is this lead an MQL?")."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

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
    assert page_one.context["page"].total == 60
    assert "60 leads match" in page_one.content.decode()
    found = admin_client.get(url, {"q": "needle"})
    assert [lead.last_name for lead in found.context["page"].object_list] == ["Needle"]
    after = page_one.context["page"].next_cursor
    # session, user, sources, stages (2), page, count, unread-notification badge
    with django_assert_num_queries(8):
        second = admin_client.get(url, {"tier": "A", "after": after})
    assert len(second.context["page"].object_list) == 10
    assert not second.context["page"].has_next
    assert f"tier=A&amp;before={second.context['page'].previous_cursor}" in second.content.decode()


def test_lead_list_pages_by_cursor_through_equal_timestamps_both_ways(admin_client):
    """Keyset pages: every lead exactly once going older, and the same pages coming back, even
    when many leads share one created_at (the id breaks the tie)."""
    moment = timezone.now()
    leads = LeadFactory.create_batch(120, created_at=moment)
    LeadFactory.create_batch(15, created_at=moment - timedelta(days=1))
    url = reverse("leads:list")
    pages, cursor = [], ""
    while True:
        page = admin_client.get(url, {"after": cursor} if cursor else {}).context["page"]
        pages.append([lead.pk for lead in page.object_list])
        if not page.has_next:
            break
        cursor = page.next_cursor
    seen = [pk for chunk in pages for pk in chunk]
    assert len(seen) == len(set(seen)) == 135
    assert seen[:120] == sorted((lead.pk for lead in leads), reverse=True)
    assert [len(chunk) for chunk in pages] == [50, 50, 35]
    back = admin_client.get(url, {"before": page.previous_cursor}).context["page"]
    assert [lead.pk for lead in back.object_list] == pages[1]
    first = admin_client.get(url, {"before": back.previous_cursor}).context["page"]
    assert [lead.pk for lead in first.object_list] == pages[0]
    assert first.is_first and not first.has_previous


def test_lead_list_counts_up_to_a_cap(admin_client, monkeypatch):
    monkeypatch.setattr("revops.pagination.COUNT_CAP", 5)
    LeadFactory.create_batch(7)
    body = admin_client.get(reverse("leads:list")).content.decode()
    assert "more than 5 leads match" in body


def test_an_edited_page_link_shows_the_newest_leads_with_a_notice(admin_client):
    newest = LeadFactory()
    for cursor in ("garbage", "MjAyNi0wMy0wMXwx", "%%%"):
        response = admin_client.get(reverse("leads:list"), {"after": cursor})
        assert response.status_code == 200
        assert "That page link is not valid" in response.content.decode()
        assert [lead.pk for lead in response.context["page"].object_list] == [newest.pk]


def test_lead_list_empty_state(admin_client):
    response = admin_client.get(reverse("leads:list"), {"q": "nobody"})
    assert "No lead matches these filters" in response.content.decode()


def test_filters_with_sql_metacharacters_change_nothing(admin_client, db):
    LeadFactory()
    response = admin_client.get(
        reverse("leads:list"), {"q": "'; DROP TABLE leads_lead; --", "source": "1 OR 1=1"}
    )
    assert response.status_code == 200
    assert admin_client.get(reverse("leads:list")).context["page"].total == 1


def test_lead_pages_need_a_login(client, db):
    response = client.get(reverse("leads:list"))
    assert response.status_code == 302
