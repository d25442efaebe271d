"""The queue on a phone (issue 19 item 3): a rep between calls opens the queue and a handoff at
390 × 844, reads the SLA clocks first and accepts or rejects, with no sideways scrolling."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import Handoff, Lead, SalesRep
from leads.roles import SALES_REP
from leads.services import handoff_open, lead_move_to_stage
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.factories import AccountFactory, CampaignFactory, LeadFactory, SourceFactory

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def hand_off(lead: Lead, at) -> Handoff:
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", reason="browser test", at=at)
        return handoff_open(lead=lead, stage_key="mql", at=at)


@pytest.fixture
def rep_queue():
    user = get_user_model().objects.create_user(
        "rep.phone", "rep.phone@example.com", PASSWORD, first_name="Robin", last_name="Rep"
    )
    user.groups.add(Group.objects.get(name=SALES_REP))
    SalesRep.objects.create(user=user)
    source = SourceFactory(name="Partner referral programme")
    campaign = CampaignFactory(source=source, name="Q3 partner webinar: pipeline acceleration")
    account = AccountFactory(name="Consolidated Intercontinental Holdings International")
    now = timezone.now()
    return [
        hand_off(
            LeadFactory(
                first_name=first,
                last_name="Vanderbilt-Montgomery",
                email=f"{first.lower()}.vanderbilt-montgomery@consolidated-intercontinental.example",
                title="Vice President, Revenue Operations and Business Systems",
                account=account,
                source=source,
                campaign=campaign,
            ),
            now - age,
        )
        for first, age in (("Grace", timedelta(days=6)), ("Alan", timedelta(minutes=5)))
    ]


def assert_no_horizontal_overflow(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide at {PHONE['width']} px"


def test_a_rep_works_the_queue_on_a_phone(phone, live_server, rep_queue, artifacts):
    late, fresh = rep_queue
    log_in(phone, live_server, "rep.phone")

    phone.goto(f"{live_server.url}/leads/queue/")
    cards = phone.locator("table.queue tbody tr")
    expect(cards).to_have_count(2)
    assert_no_horizontal_overflow(phone)
    # The SLA clocks come right under the lead's name, before source and hand-over time.
    first = cards.first
    clock_top = first.locator("td.sla-cell").first.bounding_box()["y"]
    source_top = first.locator("td[data-label=Source]").bounding_box()["y"]
    assert clock_top < source_top
    expect(first.locator(".countdown").first).to_contain_text("overdue")
    phone.screenshot(path=str(artifacts / "phone-queue.png"), full_page=True)

    first.locator("td.lead-cell a").click()
    expect(phone.locator("h1")).to_contain_text("Grace")
    assert_no_horizontal_overflow(phone)
    phone.screenshot(path=str(artifacts / "phone-handoff.png"), full_page=True)
    phone.click("#accept button[type=submit]")
    expect(phone.locator(".messages")).to_contain_text("Lead accepted")
    assert_no_horizontal_overflow(phone)

    phone.goto(f"{live_server.url}/leads/handoffs/{fresh.pk}/")
    phone.select_option("#reject select[name=reason]", label="No budget")
    phone.click("#reject button[type=submit]")
    expect(phone.locator(".messages")).to_contain_text("Lead rejected")
    assert_no_horizontal_overflow(phone)
    phone.screenshot(path=str(artifacts / "phone-handoff-rejected.png"), full_page=True)
    assert {h.outcome for h in Handoff.objects.filter(pk__in=[late.pk, fresh.pk])} == {
        "accepted",
        "rejected",
    }
