"""The pipeline review's content slide: open deals by stage and objection heard, the content
that helped similar won deals at that stage, and the content sales asked for (content
requests); frozen with the meeting."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from leads.choices import ActivityAction, ActorType, OpportunityStatus
from leads.models import EngagementEvent, LeadActivity, ObjectionTag, Opportunity
from leads.roles import MARKETING, SALES_MANAGER
from metrics import content_requests, services
from metrics.meeting import content_section
from metrics.models import Meeting
from tests.factories import AccountFactory, UserFactory
from tests.metrics.factories import (
    NEW_YORK,
    ContentAssetFactory,
    HandoffFactory,
    MetricLeadFactory,
    OpportunityFactory,
    accepted,
    shared,
    won,
)

pytestmark = [
    pytest.mark.django_db,
    # The matching is one PostgreSQL statement; on SQLite the slide says so (test_meeting).
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="open_deal_content is PostgreSQL SQL"
    ),
]

NOW = datetime(2026, 3, 16, 10, 0, tzinfo=NEW_YORK)


def ny(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=NEW_YORK)


def tag(key: str) -> ObjectionTag:
    return ObjectionTag.objects.get(key=key)


def heard(lead, *keys: str, at: datetime | None = None) -> None:
    """A touch on ``lead`` where the buyer raised these objections."""
    at = at or ny(2, 1)
    activity = LeadActivity.objects.create(
        lead=lead, action=ActivityAction.TOUCHED, occurred_at=at, actor_type=ActorType.USER
    )
    activity.objections.set([tag(key) for key in keys])


def lead_in(industry: str):
    return MetricLeadFactory(account=AccountFactory(industry=industry))


def won_deal(industry: str, *objections: str):
    """A won deal whose lead was handed off at SQL on 5 January, heard ``objections`` on
    7 January, became an opportunity on 20 January and was won on 20 February."""
    lead = lead_in(industry)
    handoff = accepted(lead=lead, stage="sql", assigned_at=ny(1, 5), at=ny(1, 6))
    if objections:
        heard(lead, *objections, at=ny(1, 7))
    deal = won(lead=lead, created_at=ny(1, 20), closed_at=ny(2, 20))
    return deal, handoff


@pytest.fixture
def world():
    """Open: two proposals in healthcare that heard "price", one pending SQL handoff in
    healthcare that heard "price", one demo in software with no objection. Won: two healthcare
    deals that heard price (one used the ROI calculator during its SQL handoff and the case
    study as an opportunity; the other the case study as an opportunity), and deals that are
    not similar (software; healthcare that heard timing; lost)."""
    for _ in range(2):
        lead = lead_in("healthcare")
        heard(lead, "price")
        OpportunityFactory(lead=lead, stage="proposal", amount=5000, created_at=ny(3, 1))
    pending_lead = lead_in("healthcare")
    heard(pending_lead, "price")
    pending = HandoffFactory(lead=pending_lead, stage="sql", assigned_at=ny(3, 12))
    OpportunityFactory(lead=lead_in("software"), stage="demo", amount=700, created_at=ny(3, 2))

    roi = ContentAssetFactory(title="Hospital ROI calculator")
    case_study = ContentAssetFactory(title="Case study: St. Mary's")
    pricing = ContentAssetFactory(title="Pricing explained")
    security = ContentAssetFactory(title="Security whitepaper")
    elsewhere = ContentAssetFactory(title="Software case study")

    first, first_handoff = won_deal("healthcare", "price")
    shared(first.lead, roi, at=ny(1, 10), handoff=first_handoff)  # at SQL, before the deal
    EngagementEvent.objects.create(
        lead=first.lead, kind="content_download", occurred_at=ny(2, 1), content_asset=case_study
    )
    second, _ = won_deal("healthcare", "price")
    shared(second.lead, case_study, pricing, at=ny(2, 2))
    shared(second.lead, security, at=ny(2, 25))  # after it was won: not part of the win
    software, _ = won_deal("software", "price")
    shared(software.lead, elsewhere, at=ny(2, 1))
    timing, _ = won_deal("healthcare", "timing")
    shared(timing.lead, elsewhere, at=ny(2, 1))
    lost_lead = lead_in("healthcare")
    heard(lost_lead, "price")
    lost = OpportunityFactory(
        lead=lost_lead, status=OpportunityStatus.LOST, created_at=ny(1, 20), closed_at=ny(2, 20)
    )
    shared(lost.lead, elsewhere, at=ny(2, 1))
    return {
        "pending": pending,
        "roi": roi,
        "case_study": case_study,
        "pricing": pricing,
        "security": security,
    }


def group(section, kind, stage, objection):
    (found,) = [
        row
        for row in section["groups"]
        if (row["kind"], row["stage"], (row["objection"] or {}).get("key"))
        == (kind, stage, objection)
    ]
    return found


def assets(row):
    return [(asset["title"], asset["won_deals"]) for asset in row["assets"]]


def test_open_deals_are_grouped_by_stage_and_objection_heard_those_with_one_first(world):
    section = content_section(NOW)

    keys = [
        (row["kind"], row["stage"], (row["objection"] or {}).get("key"))
        for row in section["groups"]
    ]
    assert keys == [
        ("opportunity", "proposal", "price"),
        ("handoff", "sql", "price"),
        ("opportunity", "demo", None),
    ]
    proposals = group(section, "opportunity", "proposal", "price")
    assert (proposals["deals"], proposals["amount"], proposals["stage_name"]) == (
        2,
        "10000.00",
        "Proposal",
    )
    assert proposals["objection"] == {"key": "price", "label": "Price"}
    assert section["open_opportunities"] == {"count": 3, "amount": "10700.00"}
    assert section["open_handoffs"] == 1
    assert section["more_groups"] == 0


def test_each_group_shows_what_similar_won_deals_used_at_that_stage(world):
    section = content_section(NOW)

    proposals = group(section, "opportunity", "proposal", "price")
    # Both similar wins used the case study as opportunities; the ROI calculator was used
    # before the deal (at SQL), the security paper after it was won.
    assert proposals["similar_won"] == 2
    assert assets(proposals) == [("Case study: St. Mary's", 2), ("Pricing explained", 1)]
    sql = group(section, "handoff", "sql", "price")
    assert sql["similar_won"] == 2
    assert assets(sql) == [("Hospital ROI calculator", 1)]
    # No objection heard: any won deal of the industry, here software's.
    demo = group(section, "opportunity", "demo", None)
    assert (demo["similar_won"], assets(demo)) == (1, [("Software case study", 1)])


def test_a_won_deal_of_another_industry_or_objection_is_not_similar(world):
    section = content_section(NOW)

    titles = {
        asset["title"]
        for row in section["groups"]
        if row["objection"] is not None
        for asset in row["assets"]
    }
    assert "Software case study" not in titles  # software, healthcare-timing and lost deals


def test_each_objection_group_matches_only_won_deals_that_heard_its_own_objection(world):
    # An open healthcare deal that heard "timing" shows a timing group beside the price one:
    # each is matched to the won deals that heard its objection, not to those that heard any
    # objection shown.
    lead = lead_in("healthcare")
    heard(lead, "timing")
    OpportunityFactory(lead=lead, stage="proposal", amount=900, created_at=ny(3, 3))

    section = content_section(NOW)

    price = group(section, "opportunity", "proposal", "price")
    timing = group(section, "opportunity", "proposal", "timing")
    assert price["similar_won"] == 2
    assert "Software case study" not in dict(assets(price))
    assert (timing["similar_won"], assets(timing)) == (1, [("Software case study", 1)])


def test_an_objection_heard_after_now_does_not_make_a_won_deal_similar(world):
    # The healthcare deal that heard timing heard price too, but only after ``now``.
    timing_deal = Opportunity.objects.get(lead__activities__objections__key="timing")
    heard(timing_deal.lead, "price", at=NOW + timedelta(days=1))

    price = group(content_section(NOW), "opportunity", "proposal", "price")

    assert price["similar_won"] == 2


def test_groups_are_cut_to_the_top_and_the_rest_counted(world):
    section = content_section(NOW, top=2)

    assert len(section["groups"]) == 2
    assert section["more_groups"] == 1


def test_with_only_objection_groups_shown_each_matches_the_same_won_deals(world):
    # Cut to the two groups that heard an objection, the slide looks up the industries of only
    # the won deals that heard one: each group's similar deals and assets are as when every
    # group is shown.
    every_group = content_section(NOW)["groups"]

    objection_groups = content_section(NOW, top=2)["groups"]

    assert [row["objection"] for row in objection_groups] == [
        {"key": "price", "label": "Price"}
    ] * 2
    assert objection_groups == every_group[:2]
    assert objection_groups[0]["similar_won"] == 2


def test_an_accepted_handoff_is_open_while_its_lead_is_worked_in_a_sales_stage(world):
    worked = accepted(lead=lead_in("retail"), stage="mql", assigned_at=ny(3, 1), at=ny(3, 2))
    worked.lead.stage = "sal"
    worked.lead.save(update_fields=["stage"])
    back_in_nurture = accepted(
        lead=lead_in("retail"), stage="mql", assigned_at=ny(3, 1), at=ny(3, 2)
    )
    back_in_nurture.lead.stage = "nurture"
    back_in_nurture.lead.save(update_fields=["stage"])

    section = content_section(NOW)

    assert section["open_handoffs"] == 2  # the pending one and the one in SAL
    assert group(section, "handoff", "mql", None)["deals"] == 1


def test_a_decided_or_converted_handoff_is_not_open(world):
    pending = world["pending"]
    pending.outcome, pending.rejected_at = "rejected", ny(3, 13)
    pending.reject_reason_id = 1
    pending.save()
    converted = accepted(lead=lead_in("healthcare"), stage="sql", assigned_at=ny(3, 1), at=ny(3, 2))
    converted.lead.stage = "sql"
    converted.lead.save(update_fields=["stage"])
    OpportunityFactory(lead=converted.lead, stage="discovery", created_at=ny(3, 3))

    section = content_section(NOW)

    assert section["open_handoffs"] == 0
    assert not [row for row in section["groups"] if row["kind"] == "handoff"]


def test_open_content_requests_are_counted_per_group_and_listed_oldest_first(world):
    rep = UserFactory(username="sam", first_name="Sam", role=SALES_MANAGER)
    marketer = UserFactory(role=MARKETING)
    pending = world["pending"]
    older = content_requests.content_request_file(
        handoff=pending,
        requested_by=rep,
        title="Price comparison for hospitals",
        objection=tag("price"),
        now=ny(3, 13, 9),
    )
    content_requests.content_request_file(
        handoff=pending, requested_by=rep, title="Implementation timeline", now=ny(3, 14)
    )
    done = content_requests.content_request_file(
        handoff=pending, requested_by=rep, title="Done already", now=ny(3, 12, 13)
    )
    content_requests.content_request_update(
        request=done, actor=marketer, status="done", fulfilled_by=world["roi"]
    )
    content_requests.content_request_file(
        handoff=pending, requested_by=rep, title="After the meeting", now=NOW + timedelta(hours=1)
    )

    section = content_section(NOW)

    assert group(section, "handoff", "sql", "price")["open_requests"] == 1
    assert section["requests"]["open"] == 2
    oldest = section["requests"]["oldest"]
    assert [row["title"] for row in oldest] == [
        "Price comparison for hospitals",
        "Implementation timeline",
    ]
    assert oldest[0]["objection_label"] == "Price"
    assert oldest[0]["requested_by_name"] == "Sam"
    assert oldest[0]["days"] == 3
    assert oldest[0]["handoff_id"] == older.handoff_id


def test_nothing_open_gives_an_empty_section(db):
    section = content_section(NOW)

    assert section["groups"] == []
    assert section["requests"] == {"open": 0, "oldest": []}
    assert section["open_opportunities"] == {"count": 0, "amount": "0.00"}


def test_the_section_is_a_fixed_number_of_queries(world, django_assert_num_queries):
    # The matching statement also counts the open handoffs; one query asks whether the open
    # deals kept per lead answer (metrics.open_deals).
    with django_assert_num_queries(7):
        content_section(NOW)


def test_the_slide_is_frozen_with_the_meeting_and_shown_from_the_snapshot(
    client, world, monkeypatch
):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    user = UserFactory(role=SALES_MANAGER)
    meeting = Meeting.objects.create(held_on=NOW.date(), created_by=user)
    snapshot = services.meeting_freeze(meeting=meeting, user=user, now=NOW)
    frozen = snapshot.figures["content"]
    assert [row["stage"] for row in frozen["groups"]] == ["proposal", "sql", "demo"]

    # A deal opened after the freeze changes the live figures, not the frozen slide.
    late = lead_in("healthcare")
    heard(late, "price")
    OpportunityFactory(lead=late, stage="proposal", created_at=ny(3, 14))
    client.force_login(user)
    page = client.get(reverse("meeting:detail", kwargs={"held_on": meeting.held_on}))
    html = page.content.decode()
    assert 'id="slide-content"' in html
    assert page.context["figures"]["content"]["groups"][0]["deals"] == 2
    assert "Case study: St. Mary&#x27;s" in html
    live = client.get(reverse("meeting:detail", kwargs={"held_on": meeting.held_on}) + "?live=1")
    assert live.context["figures"]["content"]["groups"][0]["deals"] == 3


def test_the_slide_says_so_when_nothing_is_open(client, db, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    user = UserFactory(role=SALES_MANAGER)
    meeting = Meeting.objects.create(held_on=NOW.date(), created_by=user)
    client.force_login(user)
    html = client.get(
        reverse("meeting:detail", kwargs={"held_on": meeting.held_on})
    ).content.decode()
    assert "No open opportunity or handoff being worked" in html
    assert "No content request is open" in html


def test_a_snapshot_frozen_before_the_slide_existed_still_opens(client, db, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    user = UserFactory(role=SALES_MANAGER)
    meeting = Meeting.objects.create(held_on=NOW.date(), created_by=user)
    snapshot = services.meeting_freeze(meeting=meeting, user=user, now=NOW)
    figures = dict(snapshot.figures)
    figures.pop("content")
    type(snapshot).objects.filter(pk=snapshot.pk).update(figures=figures)
    client.force_login(user)
    page = client.get(reverse("meeting:detail", kwargs={"held_on": meeting.held_on}))
    assert page.status_code == 200
    assert "frozen before this slide existed" in page.content.decode()
