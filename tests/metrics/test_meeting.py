"""The weekly pipeline review page: its figures per agenda section, its action items, freezing,
and the pages (with their refusals and login)."""

import json
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from leads.choices import ActivityAction, ActorType
from leads.models import LeadActivity, ObjectionTag, SlaPolicy
from leads.roles import SALES_MANAGER
from metrics import services
from metrics.meeting import (
    closed_section,
    feedback_section,
    follow_up_section,
    meeting_action_items,
    meeting_figures,
    new_leads_section,
    pipeline_section,
    review_periods,
)
from metrics.models import ActionItem, Meeting, MeetingSnapshot
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import (
    NEW_YORK,
    HandoffFactory,
    MetricLeadFactory,
    OpportunityFactory,
    accepted,
    history,
    lost,
    rejected,
    won,
)
from tests.metrics.vendor import ON_POSTGRESQL

pytestmark = pytest.mark.django_db

# The meeting: Monday 16 March 2026. It reviews Mon 9 – Sun 15 March against 2 – 8 March.
HELD_ON = date(2026, 3, 16)
THIS_WEEK, LAST_WEEK = review_periods(HELD_ON)
NOW = datetime(2026, 3, 16, 10, 0, tzinfo=NEW_YORK)  # 10:00 on the meeting's day
# The first view computes the figures and stores them as a snapshot; later views within the
# minute read the snapshot and only the live parts (meeting, action items, session, and the
# permission lookups of the top bar), and the period's goals (which period, its goals in force).
# 3 of them the state of the rollups it reads, once each for the whole request (none on SQLite,
# which also reads the cycles' medians and means apart and matches no content, so counts the
# open handoffs apart) and one whether the open deals kept per lead answer for the content slide.
# The snapshot is looked up twice on the first view (missing: the parts are computed side by
# side, ``revops.concurrent_reads``; then as it is computed) and stored with one INSERT … ON
# CONFLICT (``snapshots.pages_data``).
FIRST_VIEW_QUERIES = 63 if ON_POSTGRESQL else 62
PAGE_QUERIES = 12


def ny(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.fixture
def frozen_now(monkeypatch):
    """Pin "now" (services, views and KPIs all read ``django.utils.timezone.now``)."""

    def set_now(instant: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: instant)

    set_now(NOW)
    return set_now


@pytest.fixture
def user(db):
    return UserFactory(username="maria", first_name="Maria", last_name="Ops", role=SALES_MANAGER)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def meeting(user):
    return Meeting.objects.create(held_on=HELD_ON, title="Weekly review", created_by=user)


def detail_url(held_on: date = HELD_ON) -> str:
    return reverse("meeting:detail", kwargs={"held_on": held_on})


def add_url(held_on: date = HELD_ON) -> str:
    return reverse("meeting:add_action", kwargs={"held_on": held_on})


# --- Periods ---------------------------------------------------------------------------------


def test_a_meeting_reviews_the_seven_days_before_it_against_the_seven_before_those():
    assert (THIS_WEEK.first_day, THIS_WEEK.last_day) == (date(2026, 3, 9), date(2026, 3, 15))
    assert (LAST_WEEK.first_day, LAST_WEEK.last_day) == (date(2026, 3, 2), date(2026, 3, 8))
    assert THIS_WEEK.start == ny(3, 9, 0)


# --- (a) New leads ---------------------------------------------------------------------------


def test_new_leads_by_source_count_fit_mql_and_acceptance_this_week_vs_last():
    webinar, paid = SourceFactory(name="Webinar"), SourceFactory(name="Paid search")
    tier_a = MetricLeadFactory(source=webinar, tier="A", created_at=ny(3, 9, 9))
    tier_b = MetricLeadFactory(source=webinar, tier="B", created_at=ny(3, 10))
    MetricLeadFactory(source=webinar, tier="C", created_at=ny(3, 15, 23, 30))
    history(tier_a, ("lead", ny(3, 9, 9)), ("mql", ny(3, 11)))
    skipped_mql = MetricLeadFactory(source=paid, tier="D", created_at=ny(3, 12))
    history(skipped_mql, ("lead", ny(3, 12)), ("sql", ny(3, 13)))
    last_week = MetricLeadFactory(source=webinar, tier="A", created_at=ny(3, 3))
    MetricLeadFactory(source=webinar, tier="A", created_at=ny(3, 16, 0, 30))  # the meeting day
    # Handoffs assigned this week: one accepted, one rejected, one pending; last week: accepted.
    accepted(lead=tier_a, assigned_at=ny(3, 11), at=ny(3, 11, 15))
    rejected(lead=tier_b, assigned_at=ny(3, 11), at=ny(3, 12))
    HandoffFactory(lead=skipped_mql, assigned_at=ny(3, 13))
    accepted(lead=last_week, assigned_at=ny(3, 4), at=ny(3, 4, 15))

    section = new_leads_section(THIS_WEEK, LAST_WEEK)

    total = section["total"]
    assert total["this"] == {
        "leads": 4,
        "good_fit": 2,
        "good_fit_share": 0.5,
        "mql": 2,  # the one that skipped MQL for SQL passed it
        "mql_share": 0.5,
        "accepted": 1,
        "rejected": 1,
        "pending": 1,
        "acceptance_rate": 0.5,
    }
    assert (total["last"]["leads"], total["last"]["acceptance_rate"]) == (1, 1.0)
    assert total["change"]["leads"]["absolute"] == 3
    assert total["change"]["acceptance_rate"]["absolute"] == -0.5
    assert [row["source"]["name"] for row in section["by_source"]] == ["Webinar", "Paid search"]
    webinar_row, paid_row = section["by_source"]
    assert (webinar_row["this"]["leads"], webinar_row["this"]["good_fit_share"]) == (3, 2 / 3)
    assert (webinar_row["this"]["mql"], webinar_row["this"]["acceptance_rate"]) == (1, 0.5)
    assert (webinar_row["last"]["leads"], webinar_row["last"]["acceptance_rate"]) == (1, 1.0)
    assert (paid_row["this"]["pending"], paid_row["this"]["acceptance_rate"]) == (1, None)
    assert section["other_sources"] is None


def test_new_leads_beyond_the_top_sources_are_folded_into_one_row():
    for index in range(8):
        source = SourceFactory(name=f"Source {index}")
        for _ in range(8 - index):
            MetricLeadFactory(source=source, created_at=ny(3, 10))
    section = new_leads_section(THIS_WEEK, LAST_WEEK, top=6)
    assert [row["source"]["name"] for row in section["by_source"]][:2] == ["Source 0", "Source 1"]
    assert len(section["by_source"]) == 6
    assert section["other_sources"]["count"] == 2
    assert section["other_sources"]["this"]["leads"] == 2 + 1
    assert section["total"]["this"]["leads"] == sum(range(1, 9))


# --- (b) Follow-up on time -------------------------------------------------------------------


def test_follow_up_sla_this_week_vs_last_by_rep_and_breaches_still_open():
    ana = UserFactory(username="ana", first_name="Ana", last_name="Reyes")
    bo = UserFactory(username="bo", first_name="Bo", last_name="Lind")
    # Answered and decided on time.
    accepted(
        assignee=ana,
        assigned_at=ny(3, 10, 9),
        response_due_at=ny(3, 10, 12),
        first_response_at=ny(3, 10, 11),
        response_business_seconds=2 * 3600,
        accept_due_at=ny(3, 11, 12),
        at=ny(3, 11, 10),
    )
    # Never answered, never decided: missed twice and still late now.
    never = HandoffFactory(
        assignee=ana,
        assigned_at=ny(3, 12, 9),
        response_due_at=ny(3, 12, 12),
        accept_due_at=ny(3, 13, 12),
    )
    # Answered late, decided on time.
    accepted(
        assignee=bo,
        assigned_at=ny(3, 13, 9),
        response_due_at=ny(3, 13, 12),
        first_response_at=ny(3, 13, 15),
        accept_due_at=ny(3, 14, 12),
        at=ny(3, 14, 11),
    )
    # Last week: on time.
    accepted(
        assignee=bo,
        assigned_at=ny(3, 4, 9),
        response_due_at=ny(3, 4, 12),
        first_response_at=ny(3, 4, 10),
        accept_due_at=ny(3, 5, 12),
        at=ny(3, 5, 10),
    )
    # Answered, but undecided since February: still late, though due before both weeks.
    old = HandoffFactory(
        assignee=bo,
        assigned_at=ny(2, 18, 9),
        response_due_at=ny(2, 18, 12),
        first_response_at=ny(2, 18, 10),
        accept_due_at=ny(2, 20, 12),
    )

    section = follow_up_section(THIS_WEEK, LAST_WEEK, NOW)

    assert section["response"]["this"] == {"met": 1, "missed": 2, "open": 0, "rate": 1 / 3}
    assert section["response"]["last"]["rate"] == 1.0
    assert section["response"]["change"]["absolute"] == pytest.approx(-2 / 3)
    assert section["acceptance"]["this"] == {"met": 2, "missed": 1, "open": 0, "rate": 2 / 3}
    assert section["response_time"]["this"]["median_hours"] == 2.0
    assert section["response_time"]["this"]["unanswered"] == 1
    assert [(rep["rep_name"], rep["response"]["missed"]) for rep in section["by_rep"]] == [
        ("Ana Reyes", 1),  # two misses in all: listed first
        ("Bo Lind", 1),
    ]
    breaches = section["open_breaches"]
    assert (breaches["total"], breaches["response"], breaches["acceptance"]) == (2, 1, 1)
    assert [(b["handoff_id"], b["clock"]) for b in breaches["oldest"]] == [
        (old.pk, "acceptance"),
        (never.pk, "response"),
    ]
    assert breaches["oldest"][1]["late_hours"] == (4 * 24) - 2  # 12 Mar 12:00 → 16 Mar 10:00
    # Fewer shown than late: the counts are of every late handoff, not of those shown.
    cut = follow_up_section(THIS_WEEK, LAST_WEEK, NOW, top=1)["open_breaches"]
    assert (cut["total"], cut["response"], cut["acceptance"], len(cut["oldest"])) == (2, 1, 1, 1)


def test_breaches_still_open_say_how_late_in_business_hours_of_their_sla_calendar(
    signed_in, meeting, frozen_now
):
    # The default "All other MQLs" policy: New York, Mon–Fri 09:00–17:00. Due Thursday 12 Mar
    # 12:00; the meeting is Monday 16 Mar 10:00: Thu 5 h + Fri 8 h + Mon 1 h = 14 business
    # hours late, though 3 days 22 hours have passed on the calendar.
    policy = SlaPolicy.objects.get(version__number=1, tier="")
    HandoffFactory(
        assignee=UserFactory(username="cy", first_name="Cy", last_name="Park"),
        assigned_at=ny(3, 12, 8),
        response_due_at=ny(3, 12, 12),
        accept_due_at=ny(3, 13, 12),
        sla_policy=policy,
    )

    late = follow_up_section(THIS_WEEK, LAST_WEEK, NOW)["open_breaches"]["oldest"][0]
    body = signed_in.get(detail_url()).content.decode()

    assert late["late_business_seconds"] == 14 * 3600
    assert late["late_hours"] == 94
    assert "14 business hours overdue" in body
    assert "due 3 days 22 hours ago (calendar time)" in body
    assert "days late" not in body


# --- (c) Moved forward and stalled -----------------------------------------------------------


def test_forward_moves_count_leads_entering_a_sales_stage_from_an_earlier_one():
    climbing = MetricLeadFactory(first_name="Climbing", last_name="")
    history(
        climbing,
        ("lead", ny(3, 1)),
        ("mql", ny(3, 5)),
        ("sal", ny(3, 10)),
        ("sql", ny(3, 12)),
    )
    last_week = MetricLeadFactory()
    history(last_week, ("lead", ny(3, 1)), ("mql", ny(3, 3)), ("sal", ny(3, 4)))
    going_back = MetricLeadFactory()
    history(going_back, ("lead", ny(2, 1)), ("sql", ny(2, 2)), ("sal", ny(3, 11)))
    from_nurture = MetricLeadFactory(first_name="Recycled", last_name="")
    history(from_nurture, ("lead", ny(2, 1)), ("nurture", ny(2, 3)), ("sal", ny(3, 13)))
    OpportunityFactory(created_at=ny(3, 11), amount=1000)
    OpportunityFactory(created_at=ny(3, 12), amount=2500)
    OpportunityFactory(created_at=ny(3, 3), amount=700)

    section = pipeline_section(THIS_WEEK, LAST_WEEK, NOW, stall_days=14)

    forward = {
        stage["key"]: (stage["this"], stage["last"]) for stage in section["forward"]["stages"]
    }
    assert forward == {"sal": (2, 1), "sql": (1, 0), "opportunity": (0, 0), "customer": (0, 0)}
    assert (section["forward"]["this"], section["forward"]["last"]) == (3, 1)
    assert [(move["lead_name"], move["to_stage"]) for move in section["recent"]] == [
        ("Recycled", "SAL"),
        ("Climbing", "SQL"),
        ("Climbing", "SAL"),
    ]
    assert section["new_opportunities"] == {
        "this": {"count": 2, "amount": "3500.00"},
        "last": {"count": 1, "amount": "700.00"},
    }


def test_stalled_leads_sit_in_an_open_sales_stage_for_n_days_or_more():
    owner = UserFactory(username="kim", first_name="Kim", last_name="Ng")
    stuck_sal = MetricLeadFactory(
        first_name="Stuck", last_name="", stage="sal", stage_entered_at=ny(2, 20), owner=owner
    )
    OpportunityFactory(lead=stuck_sal, amount=5000)
    MetricLeadFactory(
        first_name="Deal", last_name="", stage="opportunity", stage_entered_at=ny(3, 1)
    )
    MetricLeadFactory(stage="sql", stage_entered_at=ny(3, 10))  # moved 6 days ago
    MetricLeadFactory(stage="mql", stage_entered_at=ny(1, 5))  # marketing's stage
    MetricLeadFactory(stage="customer", stage_entered_at=ny(1, 5))  # won: not open

    stalled = pipeline_section(THIS_WEEK, LAST_WEEK, NOW, stall_days=14)["stalled"]

    assert stalled["count"] == 2
    assert {row["key"]: row["count"] for row in stalled["by_stage"]} == {
        "sal": 1,
        "sql": 0,
        "opportunity": 1,
    }
    assert (stalled["open_opportunities"], stalled["open_amount"]) == (1, "5000.00")
    assert [(row["lead_name"], row["days"], row["owner_name"]) for row in stalled["oldest"]] == [
        ("Stuck", 23, "Kim Ng"),
        ("Deal", 14, "Unassigned"),  # 14 days and 22 hours
    ]
    assert stalled["oldest"][0]["open_amount"] == "5000.00"
    longer = pipeline_section(THIS_WEEK, LAST_WEEK, NOW, stall_days=20)["stalled"]
    assert (longer["days"], longer["count"]) == (20, 1)


# --- (d) Rejections and objections -----------------------------------------------------------


def touch(*objection_keys: str, at: datetime) -> LeadActivity:
    activity = LeadActivity.objects.create(
        lead=MetricLeadFactory(),
        action=ActivityAction.TOUCHED,
        occurred_at=at,
        actor_type=ActorType.USER,
    )
    activity.objections.set(ObjectionTag.objects.filter(key__in=objection_keys))
    return activity


def test_rejection_reasons_and_objections_heard_are_counted_most_frequent_first():
    rejected(at=ny(3, 10), assigned_at=ny(3, 9), reason_key="not_icp_fit")
    rejected(at=ny(3, 11), assigned_at=ny(3, 9), reason_key="not_icp_fit")
    rejected(at=ny(3, 12), assigned_at=ny(3, 9), reason_key="other")  # no note: incomplete
    rejected(at=ny(3, 4), assigned_at=ny(3, 3), reason_key="no_budget")
    touch("price", "timing", at=ny(3, 10))
    touch("price", at=ny(3, 14))
    touch("competitor", at=ny(3, 5))
    touch(at=ny(3, 11))  # a touch without objections

    section = feedback_section(THIS_WEEK, LAST_WEEK)

    assert (section["rejections"]["this"], section["rejections"]["last"]) == (3, 1)
    assert [(row["key"], row["this"], row["last"]) for row in section["rejections"]["reasons"]] == [
        ("not_icp_fit", 2, 0),
        ("other", 1, 0),
        ("no_budget", 0, 1),
    ]
    assert section["feedback_loop"]["this"] == {"rejected": 3, "complete": 2, "rate": 2 / 3}
    assert section["feedback_loop"]["last"]["rate"] == 1.0
    assert (section["objections"]["this"], section["objections"]["last"]) == (3, 1)
    assert [(row["label"], row["this"], row["last"]) for row in section["objections"]["tags"]] == [
        ("Price", 2, 0),
        ("Timing", 1, 0),
        ("Competitor", 0, 1),
    ]


# --- (e) Closed won / lost -------------------------------------------------------------------


def test_closed_won_and_lost_with_sources_loss_reasons_and_biggest_wins():
    webinar, paid = SourceFactory(name="Webinar"), SourceFactory(name="Paid search")

    def deal(source):
        return {"lead": MetricLeadFactory(source=source)}

    big = won(closed_at=ny(3, 10), amount=10000, name="Acme", **deal(webinar))
    small = won(closed_at=ny(3, 12), amount=2000, name="Initech", **deal(paid))
    lost(closed_at=ny(3, 11), loss_reason="Price", **deal(webinar))
    lost(closed_at=ny(3, 13), loss_reason=" Price ", **deal(paid))
    lost(closed_at=ny(3, 14), loss_reason="", **deal(paid))
    won(closed_at=ny(3, 4), amount=5000, **deal(webinar))
    OpportunityFactory(amount=99999)  # still open

    section = closed_section(THIS_WEEK, LAST_WEEK)

    this = section["this"]
    assert (this["won"], this["lost"], this["win_rate"]) == (2, 3, 0.4)
    assert (this["won_amount"], this["average_deal_size"]) == ("12000.00", "6000.00")
    assert (section["last"]["won"], section["last"]["won_amount"]) == (1, "5000.00")
    assert section["change"]["won_amount"]["absolute"] == 7000.0
    assert section["change"]["win_rate"]["absolute"] == pytest.approx(0.4 - 1.0)
    assert [
        (row["source"]["name"], row["won"], row["lost"], row["won_amount"])
        for row in section["by_source"]
    ] == [("Webinar", 1, 1, "10000.00"), ("Paid search", 1, 2, "2000.00")]
    assert section["loss_reasons"] == [
        {"reason": "Price", "count": 2},
        {"reason": "No reason given", "count": 1},
    ]
    assert [win["opportunity_id"] for win in section["biggest_wins"]] == [big.pk, small.pk]


# --- (f) Action items ------------------------------------------------------------------------


def test_action_items_are_carried_to_later_meetings_until_done(user):
    owner = UserFactory(username="lee")
    first = Meeting.objects.create(held_on=date(2026, 3, 2))
    second = Meeting.objects.create(held_on=date(2026, 3, 9))
    third = Meeting.objects.create(held_on=date(2026, 3, 16))
    fourth = Meeting.objects.create(held_on=date(2026, 3, 23))

    def add(meeting, text, due_on):
        return services.action_item_add(
            meeting=meeting, text=text, owner=owner, due_on=due_on, now=ny(3, meeting.held_on.day)
        )

    done_early = add(first, "Fix the webinar form", date(2026, 3, 6))
    still_open = add(first, "Rewrite the MQL threshold note", date(2026, 3, 9))
    done_in_meeting = add(first, "Send the case study to sales", date(2026, 3, 9))
    new_in_second = add(second, "Call back the stalled deals", date(2026, 3, 20))
    services.action_item_complete(item=done_early, user=user, now=ny(3, 5))
    services.action_item_complete(item=done_in_meeting, user=user, now=ny(3, 9, 11))

    def shown(meeting):
        return [item.text for item in meeting_action_items(meeting)]

    assert shown(first) == [
        "Fix the webinar form",
        "Rewrite the MQL threshold note",
        "Send the case study to sales",
    ]
    # Done before the second meeting: not carried. Done during it: shown there, ticked.
    assert shown(second) == [
        "Rewrite the MQL threshold note",
        "Send the case study to sales",
        "Call back the stalled deals",
    ]
    assert shown(third) == ["Rewrite the MQL threshold note", "Call back the stalled deals"]
    section = meeting_figures(THIS_WEEK, LAST_WEEK, NOW, meeting=second)["actions"]
    assert [(item["text"], item["status"], item["is_new"]) for item in section["items"]] == [
        ("Rewrite the MQL threshold note", "open", False),
        ("Send the case study to sales", "done", False),
        ("Call back the stalled deals", "open", True),
    ]
    assert (section["new"], section["carried"], section["open"], section["done"]) == (1, 2, 2, 1)

    services.action_item_complete(item=still_open, user=user, now=ny(3, 18))
    assert shown(fourth) == ["Call back the stalled deals"]
    # The meeting it was still open at keeps it (ticked now); later ones no longer carry it.
    assert shown(third) == ["Rewrite the MQL threshold note", "Call back the stalled deals"]
    assert new_in_second.meeting == second


def test_an_item_past_due_at_a_later_meeting_is_overdue_there(meeting):
    earlier = Meeting.objects.create(held_on=date(2026, 3, 9))
    services.action_item_add(
        meeting=earlier, text="Publish the SLA", owner=UserFactory(), due_on=date(2026, 3, 13)
    )
    items = meeting_figures(THIS_WEEK, LAST_WEEK, NOW, meeting=meeting)["actions"]["items"]
    assert [(item["text"], item["status"]) for item in items] == [("Publish the SLA", "overdue")]


def test_an_action_without_text_or_due_before_the_meeting_is_refused(meeting):
    owner = UserFactory()
    with pytest.raises(ValidationError) as blank:
        services.action_item_add(meeting=meeting, text="   ", owner=owner, due_on=HELD_ON)
    assert blank.value.message_dict == {"text": ["Say what the action is."]}
    with pytest.raises(ValidationError) as early:
        services.action_item_add(
            meeting=meeting, text="Too late", owner=owner, due_on=HELD_ON - timedelta(days=1)
        )
    assert "before the meeting" in early.value.message_dict["due_on"][0]
    assert not ActionItem.objects.exists()


def test_completing_an_action_twice_is_refused_and_keeps_the_first(meeting, user):
    item = services.action_item_add(
        meeting=meeting, text="Call Acme", owner=user, due_on=HELD_ON, now=NOW
    )
    services.action_item_complete(item=item, user=user, now=NOW + timedelta(hours=1))
    other = UserFactory(username="late.clicker")
    with pytest.raises(ValidationError, match=r"already marked done .* by Maria Ops"):
        services.action_item_complete(item=item, user=other, now=NOW + timedelta(hours=2))
    item.refresh_from_db()
    assert (item.done_at, item.done_by) == (NOW + timedelta(hours=1), user)


# --- The whole figures and freezing ----------------------------------------------------------


def test_figures_are_plain_json(meeting, frozen_now):
    SourceFactory(name="Webinar")
    won(closed_at=ny(3, 10), amount="1234.50")
    services.action_item_add(meeting=meeting, text="Call", owner=meeting.created_by, due_on=HELD_ON)
    figures = meeting_figures(THIS_WEEK, LAST_WEEK, NOW, meeting=meeting)
    assert json.loads(json.dumps(figures)) == figures
    assert figures["period"]["first_on"] == "2026-03-09"
    assert figures["closed"]["this"]["won_amount"] == "1234.50"
    assert set(figures) == {
        "version",
        "computed_at",
        "time_zone",
        "period",
        "previous_period",
        "stall_days",
        "new_leads",
        "follow_up",
        "pipeline",
        "feedback",
        "closed",
        "content",
        "actions",
    }


def test_stall_days_outside_a_year_are_refused():
    with pytest.raises(ValueError, match="1 to 365"):
        meeting_figures(THIS_WEEK, LAST_WEEK, NOW, stall_days=0)


def test_a_frozen_meeting_shows_its_snapshot_after_the_live_data_changed(
    signed_in, meeting, user, frozen_now
):
    webinar = SourceFactory(name="Webinar")
    MetricLeadFactory(source=webinar, created_at=ny(3, 10))
    response = signed_in.post(reverse("meeting:freeze", kwargs={"held_on": HELD_ON}))
    assert response.status_code == 302
    snapshot = MeetingSnapshot.objects.get(meeting=meeting)
    assert (snapshot.frozen_at, snapshot.frozen_by) == (NOW, user)
    assert snapshot.figures["new_leads"]["total"]["this"]["leads"] == 1

    for _ in range(4):  # leads imported after the meeting, back-dated into its week
        MetricLeadFactory(source=webinar, created_at=ny(3, 11))
    page = signed_in.get(detail_url())
    assert page.status_code == 200
    assert page.context["live"] is False
    assert page.context["figures"]["new_leads"]["total"]["this"]["leads"] == 1
    assert "Frozen at Mon 16 Mar 2026, 10:00 by Maria Ops" in page.content.decode()
    live = signed_in.get(detail_url() + "?live=1")
    assert live.context["figures"]["new_leads"]["total"]["this"]["leads"] == 5


def test_freezing_again_replaces_the_figures_shown_and_keeps_the_earlier_snapshot(
    signed_in, meeting, frozen_now
):
    services.meeting_freeze(meeting=meeting, user=None, now=NOW)
    MetricLeadFactory(created_at=ny(3, 10))
    frozen_now(NOW + timedelta(hours=1))
    signed_in.post(reverse("meeting:freeze", kwargs={"held_on": HELD_ON}), {"stall_days": "30"})
    first, latest = MeetingSnapshot.objects.filter(meeting=meeting).order_by("frozen_at")
    assert first.figures["new_leads"]["total"]["this"]["leads"] == 0
    assert latest.figures["new_leads"]["total"]["this"]["leads"] == 1
    assert latest.figures["stall_days"] == 30
    page = signed_in.get(detail_url())
    assert page.context["snapshot"] == latest
    assert "Frozen at Mon 16 Mar 2026, 11:00 by Maria Ops" in page.content.decode()
    with pytest.raises(TypeError):
        first.save()


# --- Pages -----------------------------------------------------------------------------------


def test_this_weeks_meeting_is_created_on_the_first_visit_and_found_after(
    signed_in, user, frozen_now
):
    frozen_now(ny(3, 18, 9))  # a Wednesday
    response = signed_in.get(reverse("meeting:current") + "?stall_days=20")
    assert response.status_code == 302
    assert response["Location"] == "/meeting/2026-03-18/?stall_days=20"
    meeting = Meeting.objects.get()
    assert (meeting.held_on, meeting.created_by) == (date(2026, 3, 18), user)
    frozen_now(ny(3, 20, 9))  # Friday, same week
    assert signed_in.get(reverse("meeting:current"))["Location"] == "/meeting/2026-03-18/"
    frozen_now(ny(3, 23, 9))  # the next Monday: a new meeting
    assert signed_in.get(reverse("meeting:current"))["Location"] == "/meeting/2026-03-23/"
    assert Meeting.objects.count() == 2


def test_money_on_the_slides_carries_its_currency(signed_in, meeting, frozen_now):
    source = SourceFactory(name="Google Ads")
    won(
        closed_at=ny(3, 10),
        amount=12500,
        name="Acme",
        lead=MetricLeadFactory(source=source),
    )
    won(closed_at=ny(3, 4), amount=20000, lead=MetricLeadFactory(source=source))

    html = signed_in.get(detail_url()).content.decode()

    assert '<td class="num strong">$12,500</td>' in html  # amount won by source
    assert "<strong>$12,500</strong>" in html  # the biggest wins
    assert "▼ -$7,500" in html  # the change from last week
    assert '<td title="Google Ads">Google Ads</td>' in html


def test_the_meeting_page_renders_every_section_as_a_slide(
    signed_in, meeting, frozen_now, django_assert_num_queries
):
    services.action_item_add(
        meeting=meeting, text="<script>alert(1)</script>", owner=meeting.created_by, due_on=HELD_ON
    )
    with django_assert_num_queries(FIRST_VIEW_QUERIES):
        first = signed_in.get(detail_url())
    with django_assert_num_queries(PAGE_QUERIES):
        response = signed_in.get(detail_url())
    assert first.status_code == 200
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["live"] is True
    assert html.count('<section class="slide') == 8
    slides = ("agenda", "new-leads", "follow-up", "pipeline", "feedback", "closed", "content")
    for slide in (*slides, "actions"):
        assert f'id="slide-{slide}"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "static/js/meeting.js" in html and "static/css/meeting.css" in html


def test_without_postgresql_the_content_slide_says_why_it_matches_nothing(
    signed_in, meeting, frozen_now, monkeypatch
):
    # The embedded demo runs on SQLite, where the matching statement cannot run: the meeting
    # must still open, with the slide's other figures and the reason.
    monkeypatch.setattr("metrics.meeting.connection", SimpleNamespace(vendor="sqlite"))
    response = signed_in.get(detail_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="slide-content"' in html
    assert "needs PostgreSQL" in html
    assert "content requests open" in html


def test_many_actions_are_split_over_several_slides(signed_in, meeting, frozen_now):
    for index in range(8):
        services.action_item_add(
            meeting=meeting, text=f"Action {index}", owner=meeting.created_by, due_on=HELD_ON
        )
    html = signed_in.get(detail_url()).content.decode()
    assert 'id="slide-actions"' in html and 'id="slide-actions-2"' in html


def test_stall_days_come_from_the_query_and_a_bad_value_says_so(signed_in, meeting, frozen_now):
    page = signed_in.get(detail_url() + "?stall_days=30")
    assert page.context["figures"]["pipeline"]["stalled"]["days"] == 30
    page = signed_in.get(detail_url() + "?stall_days=0")
    assert page.context["figures"]["pipeline"]["stalled"]["days"] == 14
    assert "Stalled after: at least 1 day." in page.content.decode()


def test_adding_an_action_from_the_page(signed_in, meeting, user, frozen_now):
    response = signed_in.post(
        add_url(),
        {"text": "  Share the ROI calculator  ", "owner": user.pk, "due_on": "2026-03-23"},
    )
    assert response.status_code == 302
    assert response["Location"] == detail_url() + "#slide-actions"
    item = ActionItem.objects.get()
    assert (item.text, item.owner, item.due_on, item.created_by) == (
        "Share the ROI calculator",
        user,
        date(2026, 3, 23),
        user,
    )


@pytest.mark.parametrize(
    ("posted", "error"),
    [
        ({"text": "   ", "due_on": "2026-03-23"}, "Say what the action is."),
        ({"text": "Call", "due_on": "2026-03-13"}, "is before the meeting that agrees the action"),
        ({"text": "Call", "due_on": "next week"}, "Enter the due date as YYYY-MM-DD."),
        ({"text": "Call", "due_on": "2026-03-23", "owner": ""}, "Every action needs an owner."),
    ],
)
def test_a_bad_action_is_refused_on_the_page_and_nothing_is_added(
    signed_in, meeting, user, frozen_now, posted, error
):
    response = signed_in.post(add_url(), {"owner": user.pk, **posted})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert response.context["start_slide"] == "slide-actions"
    assert not ActionItem.objects.exists()


def test_ticking_an_action_off_twice_says_so_and_changes_nothing(
    signed_in, meeting, user, frozen_now
):
    item = services.action_item_add(meeting=meeting, text="Call Acme", owner=user, due_on=HELD_ON)
    url = reverse("meeting:action_done", kwargs={"pk": item.pk})
    first = signed_in.post(url, {"meeting": "2026-03-16"})
    assert first["Location"] == detail_url() + "#slide-actions"
    frozen_now(NOW + timedelta(hours=3))
    second = signed_in.post(url, {"meeting": "2026-03-16"}, follow=True)
    assert "“Call Acme” was already marked done on 16 Mar 2026, 10:00 by Maria Ops." in (
        second.content.decode().replace("&ldquo;", "“").replace("&rdquo;", "”")
    )
    item.refresh_from_db()
    assert (item.done_at, item.done_by) == (NOW, user)


def test_unknown_meetings_and_actions_are_not_found(signed_in, meeting):
    assert signed_in.get(detail_url(date(2026, 3, 17))).status_code == 404
    assert signed_in.get("/meeting/2026-02-30/").status_code == 404
    assert signed_in.post(add_url(date(2026, 3, 17)), {"text": "x"}).status_code == 404
    assert signed_in.post(reverse("meeting:action_done", kwargs={"pk": 999})).status_code == 404
    assert not ActionItem.objects.exists()


def test_freezing_needs_a_post(signed_in, meeting):
    assert signed_in.get(reverse("meeting:freeze", kwargs={"held_on": HELD_ON})).status_code == 405
    assert not MeetingSnapshot.objects.exists()


def test_history_lists_meetings_latest_first_with_their_freeze_and_actions(
    signed_in, user, frozen_now
):
    for week in range(22):
        Meeting.objects.create(held_on=date(2025, 10, 6) + timedelta(weeks=week))
    latest = Meeting.objects.order_by("-held_on").first()
    services.action_item_add(meeting=latest, text="Call", owner=user, due_on=latest.held_on)
    services.meeting_freeze(meeting=latest, user=user, now=NOW)
    page = signed_in.get(reverse("meeting:history"))
    assert page.status_code == 200
    meetings = list(page.context["page"].object_list)
    assert len(meetings) == 20 and meetings[0] == latest
    assert (meetings[0].actions_agreed, meetings[0].actions_open, meetings[0].freezes) == (1, 1, 1)
    assert "Frozen 16 Mar, 10:00" in page.content.decode()
    second = signed_in.get(reverse("meeting:history") + "?page=2")
    assert len(second.context["page"].object_list) == 2


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/meeting/"),
        ("get", "/meeting/2026-03-16/"),
        ("get", "/meeting/history/"),
        ("post", "/meeting/2026-03-16/freeze"),
        ("post", "/meeting/2026-03-16/actions"),
        ("post", "/meeting/actions/1/done"),
    ],
)
def test_anonymous_visitors_are_sent_to_log_in(client, meeting, method, url):
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    assert Meeting.objects.count() == 1 and not MeetingSnapshot.objects.exists()
