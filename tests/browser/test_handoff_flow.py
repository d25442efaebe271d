"""The handoff workflow in a real browser: a rep works the queue, marketing sees the outcome."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import Handoff, Lead, LeadActivity, RejectionReason, SalesRep
from leads.roles import MARKETING, SALES_REP
from leads.services import handoff_open, handoff_reject, lead_move_to_stage
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

# Transactional, so the live server's connection sees the data; serialized rollback restores
# the migrations' rows after each test's flush, like the other transactional tests expect.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    # On SQLite the serialized copy is not always restored (an in-memory database shared with
    # the live server thread); make sure the default definitions are there.
    restore_default_definitions()


def hand_off(lead: Lead) -> Handoff:
    at = timezone.now()
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", reason="browser test", at=at)
        return handoff_open(lead=lead, stage_key="mql", at=at)


@pytest.fixture
def rep_user():
    user = get_user_model().objects.create_user(
        "rep.browser", "rep.browser@example.com", PASSWORD, first_name="Robin", last_name="Rep"
    )
    user.groups.add(Group.objects.get(name=SALES_REP))
    SalesRep.objects.create(user=user)
    return user


def test_rep_works_the_queue(page, live_server, rep_user, artifacts):
    source = SourceFactory(name="Webinars")
    accept_me = hand_off(LeadFactory(first_name="Grace", last_name="Hopper", source=source))
    reject_me = hand_off(LeadFactory(first_name="Alan", last_name="Turing", source=source))
    assert accept_me.assignee == rep_user == reject_me.assignee

    log_in(page, live_server, "rep.browser")
    page.click("text=My leads")
    queue = page.locator("table.queue tbody tr")
    expect(queue).to_have_count(2)
    expect(page.locator("table.queue")).to_contain_text("Grace Hopper")
    expect(page.locator(".countdown").first).to_have_text(re.compile(r"(left|overdue)"))

    # Log a first response on Alan's lead, then reject it with a reason.
    page.click("text=Alan Turing")
    page.select_option("#touch select[name=channel]", "call")
    page.fill("#touch textarea[name=note]", "Called, no budget this year")
    page.locator("#touch").get_by_label("Price").check()
    page.click("#touch button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Logged.")
    expect(page.locator("table.history")).to_contain_text("First response (Call)")
    page.select_option("#reject select[name=reason]", label="No budget")
    page.click("#reject button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Lead rejected")
    expect(page.locator("h1")).to_contain_text("Rejected")

    # Rejecting "Other" without a note is refused on the page, and nothing changes.
    page.goto(f"{live_server.url}/leads/handoffs/{accept_me.pk}/")
    page.select_option("#reject select[name=reason]", label="Other (explain in a note)")
    page.click("#reject button[type=submit]")
    expect(page.locator("#reject")).to_contain_text("needs a note")
    accept_me.refresh_from_db()
    assert accept_me.outcome == "pending"

    # Accept Grace's lead: it moves to SAL.
    page.goto(f"{live_server.url}/leads/handoffs/{accept_me.pk}/")
    page.click("#accept button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Lead accepted")
    page.screenshot(path=str(artifacts / "handoff-accepted.png"), full_page=True)

    page.click("text=My leads")
    expect(page.locator(".empty")).to_contain_text("Nothing waiting")

    reject_me.refresh_from_db()
    accept_me.refresh_from_db()
    assert reject_me.outcome == "rejected" and reject_me.reject_reason.key == "no_budget"
    assert reject_me.first_response_at is not None
    response = LeadActivity.objects.get(handoff=reject_me, action="responded")
    assert response.note == "Called, no budget this year"
    assert [tag.key for tag in response.objections.all()] == ["price"]
    assert accept_me.outcome == "accepted"
    assert Lead.objects.get(pk=accept_me.lead_id).stage == "sal"
    assert Lead.objects.get(pk=reject_me.lead_id).stage == "nurture"


def test_marketing_sees_the_rejection_reason(page, live_server, rep_user, artifacts):
    webinars = SourceFactory(name="Webinars")
    ads = SourceFactory(name="LinkedIn ads")
    campaign = CampaignFactory(name="Spring webinar", source=webinars)
    rejected = hand_off(LeadFactory(first_name="Ada", last_name="Byron", source=webinars,
                                    campaign=campaign))  # fmt: skip
    hand_off(LeadFactory(first_name="Other", last_name="Lead", source=ads))
    handoff_reject(
        handoff=rejected,
        actor=rep_user,
        reason=RejectionReason.objects.get(key="other"),
        note="Wants an on-premise version",
    )
    marketer = get_user_model().objects.create_user("marketing.browser", "m@example.com", PASSWORD)
    marketer.groups.add(Group.objects.get(name=MARKETING))

    log_in(page, live_server, "marketing.browser")
    page.click("text=Handoffs")
    page.select_option("select[name=source]", label="Webinars")
    page.click("form.filters button[type=submit]")
    rows = page.locator("table.outcomes tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ada Byron")
    expect(rows.first.locator(".reject-reason")).to_contain_text("Other (explain in a note)")
    expect(rows.first.locator(".reject-reason")).to_contain_text("Wants an on-premise version")
    page.screenshot(path=str(artifacts / "handoff-outcomes.png"), full_page=True)
