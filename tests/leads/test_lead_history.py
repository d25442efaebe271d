"""The lead page's History: every stage change and handoff action, who did it and when."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from leads.models import LeadActivity, ObjectionTag, StageTransition
from leads.selectors import lead_history
from leads.views.leads import HISTORY_PAGE_SIZE
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def lead():
    return LeadFactory()


def test_history_merges_stage_changes_and_handoff_actions_newest_first(admin_client, lead):
    rep = UserFactory(username="sam.rep")
    manager = UserFactory(username="maya.manager")
    StageTransition.objects.create(
        lead=lead, from_stage="", to_stage="mql", actor_type="scoring", transitioned_at=START
    )
    touch = LeadActivity.objects.create(
        lead=lead,
        action="touched",
        channel="call",
        note="Left a voicemail",
        actor_type="user",
        actor=rep,
        occurred_at=START + timedelta(hours=1),
    )
    touch.objections.add(ObjectionTag.objects.order_by("pk").first())
    StageTransition.objects.create(
        lead=lead,
        from_stage="mql",
        to_stage="nurture",
        actor_type="user",
        actor=manager,
        reason="Moved by hand: no project this year",
        transitioned_at=START + timedelta(hours=2),
    )

    response = admin_client.get(reverse("leads:detail", args=[lead.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    history = body[body.index('id="history"') :]
    manual = history.index("maya.manager")
    call = history.index("sam.rep")
    scored = history.index("Scoring")
    assert manual < call < scored  # newest first
    assert "Moved by hand: no project this year" in history
    assert "Follow-up logged (Call)" in history
    assert "Left a voicemail" in history
    assert ObjectionTag.objects.order_by("pk").first().label in history


def test_history_pages_through_long_histories(admin_client, lead):
    StageTransition.objects.bulk_create(
        StageTransition(
            lead=lead,
            from_stage="mql" if n % 2 else "nurture",
            to_stage="nurture" if n % 2 else "mql",
            actor_type="system",
            reason=f"move {n:03d}",
            transitioned_at=START + timedelta(minutes=n),
        )
        for n in range(HISTORY_PAGE_SIZE + 3)
    )
    url = reverse("leads:detail", args=[lead.pk])

    first = admin_client.get(url).content.decode()
    second = admin_client.get(url, {"page": 2}).content.decode()

    assert f"move {HISTORY_PAGE_SIZE + 2:03d}" in first and "move 000" not in first
    assert "move 000" in second and f"move {HISTORY_PAGE_SIZE + 2:03d}" not in second
    assert lead_history(lead.pk).count() == HISTORY_PAGE_SIZE + 3


def test_lead_page_queries_do_not_grow_with_history(
    admin_client, lead, django_assert_max_num_queries
):
    rep = UserFactory()
    tag = ObjectionTag.objects.order_by("pk").first()
    for n in range(20):
        activity = LeadActivity.objects.create(
            lead=lead, action="touched", channel="email", actor_type="user", actor=rep
        )
        activity.objections.add(tag)
        StageTransition.objects.create(
            lead=lead,
            from_stage="mql" if n % 2 else "nurture",
            to_stage="nurture" if n % 2 else "mql",
            actor_type="user",
            actor=rep,
        )
    url = reverse("leads:detail", args=[lead.pk])
    admin_client.get(url)  # warm the session and content-type caches

    with django_assert_max_num_queries(40):
        response = admin_client.get(url)
    assert response.status_code == 200
