"""The sales queue, the handoff page and its forms, marketing's outcome view, exports."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads.models import Handoff, Lead, LeadActivity, RejectionReason, SalesRep, StageTransition
from leads.roles import MARKETING, SALES_MANAGER, SALES_REP
from leads.services import handoff_open, handoff_reject, lead_move_to_stage
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

# Tuesday 2026-03-10 14:00 in New York: inside the default calendar's working hours.
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
QUEUE_QUERIES = 10


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


def make_rep(username: str, manager=None) -> SalesRep:
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(Group.objects.get(name=SALES_REP))
    return SalesRep.objects.create(user=user, manager=manager, capacity=100)


def hand_off(lead: Lead, at: datetime) -> Handoff:
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", at=at)
        return handoff_open(lead=lead, stage_key="mql", at=at)


@pytest.fixture
def rep(db):
    return make_rep("rep.ana")


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep.user)
    return client


def test_queue_lists_my_pending_handoffs_most_urgent_first(rep_client, rep, frozen_now):
    late = hand_off(LeadFactory(first_name="Late"), NOW - timedelta(days=2))
    fresh = hand_off(LeadFactory(first_name="Fresh"), NOW - timedelta(minutes=5))
    answered = hand_off(LeadFactory(first_name="Answered"), NOW - timedelta(hours=1))
    Handoff.objects.filter(pk=answered.pk).update(first_response_at=NOW - timedelta(minutes=30))
    other = make_rep("rep.bo")
    theirs = hand_off(LeadFactory(first_name="Theirs"), NOW)
    Handoff.objects.filter(pk=theirs.pk).update(assignee=other.user)

    response = rep_client.get(reverse("leads:queue"))

    assert response.status_code == 200
    rows = [h.pk for h in response.context["page"].object_list]
    assert rows == [late.pk, fresh.pk, answered.pk]  # by next due time: respond, then accept
    body = response.content.decode()
    assert "overdue" in body and 'class="is-overdue"' in body
    assert "Theirs" not in body
    clock = response.context["clocks"][fresh.pk]["response"]
    assert clock.running and 0 < clock.seconds_left <= 4 * 3600


def test_queue_query_count_is_pinned(rep_client, rep, frozen_now):
    for n in range(60):
        hand_off(LeadFactory(), NOW - timedelta(minutes=n))
    with CaptureQueriesContext(connection) as queries:
        response = rep_client.get(reverse("leads:queue"))
    assert len(response.context["page"].object_list) == 50
    # session, user, permissions (2), count, page, SLA calendars (3), unread badge
    assert len(queries) == QUEUE_QUERIES, [q["sql"][:80] for q in queries]


def test_manager_sees_team_and_unassigned_queues(db, client, frozen_now):
    manager = get_user_model().objects.create_user("sam", "sam@example.com", "pw")
    manager.groups.add(Group.objects.get(name=SALES_MANAGER))
    mine = make_rep("rep.team", manager=manager)
    outsider = make_rep("rep.out")
    team_handoff = hand_off(LeadFactory(first_name="Team"), NOW)
    Handoff.objects.filter(pk=team_handoff.pk).update(assignee=mine.user)
    outside = hand_off(LeadFactory(first_name="Outside"), NOW)
    Handoff.objects.filter(pk=outside.pk).update(assignee=outsider.user)
    loose = hand_off(LeadFactory(first_name="Loose"), NOW)
    Handoff.objects.filter(pk=loose.pk).update(assignee=None)
    client.force_login(manager)

    team = client.get(reverse("leads:queue"), {"scope": "team"})
    unassigned = client.get(reverse("leads:queue"), {"scope": "unassigned"})

    assert [h.pk for h in team.context["page"].object_list] == [team_handoff.pk]
    assert [h.pk for h in unassigned.context["page"].object_list] == [loose.pk]


def make_manager(username: str = "sam"):
    manager = get_user_model().objects.create_user(username, f"{username}@example.com", "pw")
    manager.groups.add(Group.objects.get(name=SALES_MANAGER))
    return manager


@pytest.fixture
def team(db, frozen_now):
    """Sam's team: Ana (capacity 10) with two open handoffs, one of them overdue, one accepted
    and one rejected this week and one accepted last week; Bo with nothing; an outsider."""
    manager = make_manager()
    ana = make_rep("rep.ana", manager=manager)
    ana.user.first_name = "Ana"
    ana.user.save(update_fields=["first_name"])
    SalesRep.objects.filter(pk=ana.pk).update(capacity=10)
    make_rep("rep.bo", manager=manager)
    outsider = make_rep("rep.out")
    reason = RejectionReason.objects.filter(requires_note=False).first()
    handoffs = {}
    for name, at in [
        ("late", NOW - timedelta(days=2)),
        ("fresh", NOW - timedelta(minutes=5)),
        ("accepted", NOW - timedelta(hours=3)),
        ("rejected", NOW - timedelta(hours=3)),
        ("last_week", NOW - timedelta(days=9)),
        ("outside", NOW - timedelta(days=2)),
    ]:
        handoffs[name] = hand_off(LeadFactory(first_name=name), at)
    Handoff.objects.exclude(pk=handoffs["outside"].pk).update(assignee=ana.user)
    Handoff.objects.filter(pk=handoffs["outside"].pk).update(assignee=outsider.user)
    Handoff.objects.filter(pk=handoffs["accepted"].pk).update(
        outcome="accepted", accepted_at=NOW - timedelta(hours=1)
    )
    Handoff.objects.filter(pk=handoffs["last_week"].pk).update(
        outcome="accepted", accepted_at=NOW - timedelta(days=8)
    )
    handoff_reject(handoff=handoffs["rejected"], actor=ana.user, reason=reason, at=NOW)
    return manager


def test_a_manager_opens_the_queue_on_the_team_load(client, team):
    client.force_login(team)

    response = client.get(reverse("leads:queue"))

    assert response.context["scope"] == "team"
    loads = {rep.name: rep for rep in response.context["team"]}
    assert set(loads) == {"Ana", "rep.bo"}  # not the outsider
    ana = loads["Ana"]
    assert (ana.open, ana.overdue, ana.capacity) == (2, 1, 10)
    assert (ana.accepted_this_week, ana.rejected_this_week) == (1, 1)  # since Monday
    assert (loads["rep.bo"].open, loads["rep.bo"].overdue) == (0, 0)
    body = response.content.decode()
    assert "Team load" in body and "2 / 10" in body
    assert [h.lead.first_name for h in response.context["page"].object_list] == ["late", "fresh"]


def test_the_team_view_query_count_is_pinned(client, team):
    client.force_login(team)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("leads:queue"))
    assert response.status_code == 200
    # session, user, permissions (2), team load (one GROUP BY), count, page, SLA calendars
    # (3), unread badge
    assert len(queries) == QUEUE_QUERIES + 1, [q["sql"][:80] for q in queries]


def test_the_reassign_list_shows_each_reps_load(client, team):
    client.force_login(team)
    handoff = Handoff.objects.get(lead__first_name="fresh")

    response = client.get(reverse("leads:handoff", args=[handoff.pk]))

    choices = [label for _, label in response.context["reassign_form"].fields["to_user"].choices]
    assert "Ana — 2 open / 10" in choices
    assert "rep.bo — 0 open / 100" in choices
    assert "Ana — 2 open / 10" in response.content.decode()


def test_a_rep_cannot_see_the_team_queue(rep_client, rep, frozen_now):
    other = make_rep("rep.bo")
    theirs = hand_off(LeadFactory(first_name="Theirs"), NOW)
    Handoff.objects.filter(pk=theirs.pk).update(assignee=other.user)
    response = rep_client.get(reverse("leads:queue"), {"scope": "team"})
    assert response.context["scope"] == "mine"
    assert "Theirs" not in response.content.decode()


def test_reject_form_needs_a_reason_and_changes_nothing(rep_client, rep, frozen_now):
    handoff = hand_off(LeadFactory(), NOW - timedelta(hours=1))
    url = reverse("leads:handoff_reject", args=[handoff.pk])

    response = rep_client.post(url, {"revision": handoff.revision, "reason": ""})

    assert response.status_code == 400
    assert "Choose a reason, so marketing learns why." in response.content.decode()
    handoff.refresh_from_db()
    assert handoff.outcome == "pending" and handoff.revision == 0
    assert Lead.objects.get(pk=handoff.lead_id).stage == "mql"


def test_other_reason_needs_a_note(rep_client, rep, frozen_now):
    handoff = hand_off(LeadFactory(), NOW - timedelta(hours=1))
    other = RejectionReason.objects.get(key="other")
    response = rep_client.post(
        reverse("leads:handoff_reject", args=[handoff.pk]),
        {"revision": 0, "reason": other.pk, "note": "  "},
    )
    assert response.status_code == 400
    assert "needs a note" in response.content.decode()
    assert Handoff.objects.get(pk=handoff.pk).outcome == "pending"


def test_accept_then_double_submission_is_refused(rep_client, rep, frozen_now):
    handoff = hand_off(LeadFactory(), NOW - timedelta(hours=1))
    url = reverse("leads:handoff_accept", args=[handoff.pk])

    first = rep_client.post(url, {"revision": 0})
    transitions = StageTransition.objects.count()
    second = rep_client.post(url, {"revision": 0})

    assert first.status_code == 302
    assert second.status_code == 400
    assert "changed since the page was loaded" in second.content.decode()
    assert StageTransition.objects.count() == transitions
    assert LeadActivity.objects.filter(handoff=handoff, action="accepted").count() == 1
    assert Lead.objects.get(pk=handoff.lead_id).stage == "sal"


def test_acting_on_someone_elses_handoff_is_forbidden(rep_client, rep, frozen_now):
    other = make_rep("rep.bo")
    handoff = hand_off(LeadFactory(), NOW - timedelta(hours=1))
    Handoff.objects.filter(pk=handoff.pk).update(assignee=other.user)

    response = rep_client.post(reverse("leads:handoff_accept", args=[handoff.pk]), {"revision": 0})
    page = rep_client.get(reverse("leads:handoff", args=[handoff.pk]))

    assert response.status_code == 403
    assert Handoff.objects.get(pk=handoff.pk).outcome == "pending"
    assert 'id="accept"' not in page.content.decode()
    assert "only they or their sales manager can act on it" in page.content.decode()


def test_logging_a_response_from_the_page(rep_client, rep, frozen_now):
    handoff = hand_off(LeadFactory(), NOW - timedelta(hours=1))
    response = rep_client.post(
        reverse("leads:handoff_touch", args=[handoff.pk]),
        {"revision": 0, "channel": "email", "note": "Sent the case study"},
        follow=True,
    )
    assert response.status_code == 200
    handoff.refresh_from_db()
    assert handoff.first_response_at == NOW
    assert handoff.response_business_seconds == 3600
    assert "First response (E-mail)" in response.content.decode()


def test_unknown_handoff_is_404(rep_client):
    assert rep_client.get(reverse("leads:handoff", args=[424242])).status_code == 404


@pytest.fixture
def outcomes(rep, frozen_now):
    webinars = SourceFactory(name="Webinars")
    ads = SourceFactory(name="Ads")
    spring = CampaignFactory(name="Spring", source=webinars)
    rejected = hand_off(
        LeadFactory(first_name="Rex", source=webinars, campaign=spring), NOW - timedelta(hours=1)
    )
    handoff_reject(
        handoff=rejected,
        actor=rep.user,
        reason=RejectionReason.objects.get(key="no_budget"),
    )
    pending = hand_off(LeadFactory(first_name="Pat", source=ads), NOW - timedelta(days=3))
    return {"webinars": webinars, "ads": ads, "rejected": rejected, "pending": pending}


def test_marketing_sees_outcomes_with_reasons_filtered_by_source(client, outcomes):
    marketer = get_user_model().objects.create_user("mia", "mia@example.com", "pw")
    marketer.groups.add(Group.objects.get(name=MARKETING))
    client.force_login(marketer)

    response = client.get(reverse("leads:handoff_outcomes"), {"source": outcomes["webinars"].pk})

    body = response.content.decode()
    assert [h.pk for h in response.context["page"].object_list] == [outcomes["rejected"].pk]
    assert "No budget" in body and "Pat" not in body
    assert response.context["counts"]["rejected"] == 1


def test_breached_filter_finds_late_handoffs(admin_client, outcomes):
    response = admin_client.get(reverse("leads:handoff_outcomes"), {"status": "breached"})
    # Pat's handoff waited three days unanswered: past its response due time.
    assert [h.pk for h in response.context["page"].object_list] == [outcomes["pending"].pk]


def test_outcome_filters_reject_bad_dates(admin_client, outcomes):
    response = admin_client.get(
        reverse("leads:handoff_outcomes"),
        {"assigned_from": "2026-03-10", "assigned_until": "2026-03-01"},
    )
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()


def test_outcomes_export_csv(admin_client, outcomes):
    response = admin_client.get(
        reverse("leads:handoff_outcomes"), {"status": "rejected", "format": "csv"}
    )
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="handoff-outcomes_rejected.csv"' in response["Content-Disposition"]
    assert [row["handoff id"] for row in rows] == [str(outcomes["rejected"].pk)]
    assert rows[0]["reason"] == "No budget" and rows[0]["source"] == "Webinars"


def test_lead_export_carries_the_nurture_flag_and_defuses_formulas(admin_client, outcomes):
    LeadFactory(first_name="=HYPERLINK(1)")
    response = admin_client.get(reverse("leads:export"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(text))}
    pending_lead = Lead.objects.get(pk=outcomes["pending"].lead_id)
    assert rows[str(pending_lead.pk)]["in marketing nurture"] == "yes"
    assert any(row["first name"] == "'=HYPERLINK(1)" for row in rows.values())


def test_recycle_needs_the_permission(client, rep, frozen_now):
    lead = LeadFactory()
    lead_move_to_stage(lead=lead, to_stage="disqualified", at=NOW - timedelta(days=1))
    client.force_login(rep.user)
    refused = client.post(reverse("leads:recycle", args=[lead.pk]), {"note": "try again"})
    assert refused.status_code == 403
    assert Lead.objects.get(pk=lead.pk).stage == "disqualified"

    rep.user.user_permissions.add(Permission.objects.get(codename="recycle_lead"))
    client.force_login(get_user_model().objects.get(pk=rep.user.pk))
    response = client.post(reverse("leads:recycle", args=[lead.pk]), {"note": "try again"})
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).stage == "nurture"


def test_notifications_page_and_mark_read(client, rep, frozen_now):
    from leads.services import handoff_breach_sweep

    hand_off(LeadFactory(first_name="Slow"), NOW - timedelta(days=2))
    handoff_breach_sweep(now=NOW)
    client.force_login(rep.user)

    page = client.get(reverse("leads:notifications"))
    home = client.get(reverse("home"))
    client.post(reverse("leads:notifications"))

    assert "Response SLA breached" in page.content.decode()
    assert 'class="badge count"' in home.content.decode()
    assert rep.user.notifications.filter(read_at__isnull=True).count() == 0


def test_admin_manages_objections_and_reps(admin_client, rep):
    response = admin_client.post(
        reverse("admin:leads_objectiontag_add"),
        {"label": "Procurement", "key": "procurement", "is_active": "on", "order": 9},
    )
    assert response.status_code == 302
    bad = admin_client.post(
        reverse("admin:leads_salesrep_change", args=[rep.pk]),
        {"user": rep.user.pk, "region": "", "tiers": '["Z"]', "capacity": 10, "is_active": "on"},
    )
    assert bad.status_code == 200
    assert "A list of fit tiers" in bad.content.decode()
    assert SalesRep.objects.get(pk=rep.pk).tiers == []
    assert admin_client.get(reverse("admin:leads_leadactivity_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:leads_notification_changelist")).status_code == 200


def test_the_unread_badge_is_counted_once_per_page(rep_client, rep):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leads.models import Notification

    Notification.objects.create(recipient=rep.user, kind="reassigned", message="Yours now")

    with CaptureQueriesContext(connection) as queries:
        assert rep_client.get(reverse("leads:queue")).status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if '"leads_notification"' in q["sql"]]
    assert len(counts) == 1, counts
