"""Content requests in a real browser: a rep asks marketing for content from a handoff's page,
marketing finds it on its list (from the content dashboard) and closes it, and the pipeline
review's content slide shows the open deals, what helped similar won deals and what is still
asked for, on a 1920 × 1080 projector without scrolling.

Screenshots: var/test-artifacts/content-requests.png (marketing's list) and
meeting-content-slide.png (the slide)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from leads.choices import ActivityAction, ActorType
from leads.models import LeadActivity, ObjectionTag, SalesRep
from leads.roles import MARKETING, SALES_REP
from metrics.models import ContentRequest
from metrics.tasks import open_this_weeks_meeting
from tests.browser.conftest import PASSWORD, blocking_violations, log_in
from tests.conftest import restore_default_definitions
from tests.factories import AccountFactory, LeadFactory
from tests.metrics.factories import (
    ContentAssetFactory,
    HandoffFactory,
    OpportunityFactory,
    accepted,
    shared,
    won,
)

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PROJECTOR = {"width": 1920, "height": 1080}


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


def person(username: str, role: str, first_name: str):
    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", PASSWORD, first_name=first_name, last_name="Content"
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def heard(lead, key: str, at) -> None:
    activity = LeadActivity.objects.create(
        lead=lead, action=ActivityAction.TOUCHED, occurred_at=at, actor_type=ActorType.USER
    )
    activity.objections.set([ObjectionTag.objects.get(key=key)])


@pytest.fixture
def deals():
    """Healthcare: a pending SQL handoff for the rep and two open proposals that heard "price";
    two won healthcare deals that heard it too and used a case study as opportunities (one
    also the ROI calculator at SQL); the asset marketing will answer with."""
    rep = person("rep.content", SALES_REP, "Robin")
    SalesRep.objects.create(user=rep, capacity=10)
    person("marketing.content", MARKETING, "Mira")
    now = timezone.now()
    account = AccountFactory(name="St. Mary's Hospital", industry="healthcare")
    lead = LeadFactory(first_name="Grace", last_name="Hopper", account=account)
    heard(lead, "price", now - timedelta(days=1))
    handoff = HandoffFactory(
        lead=lead, stage="sql", assignee=rep, assigned_at=now - timedelta(days=2)
    )
    for name in ("Mercy Clinic", "County Health"):
        open_lead = LeadFactory(account=AccountFactory(name=name, industry="healthcare"))
        heard(open_lead, "price", now - timedelta(days=3))
        OpportunityFactory(lead=open_lead, stage="proposal", amount=48000,
                           created_at=now - timedelta(days=5))  # fmt: skip
    case_study = ContentAssetFactory(title="Case study: how a 400-bed hospital cut costs 18 %")
    roi = ContentAssetFactory(title="Hospital ROI calculator")
    for index in range(2):
        won_lead = LeadFactory(account=AccountFactory(industry="healthcare"))
        first = accepted(lead=won_lead, stage="sql", assigned_at=now - timedelta(days=90),
                         at=now - timedelta(days=89))  # fmt: skip
        heard(won_lead, "price", now - timedelta(days=88))
        if index == 0:
            shared(won_lead, roi, at=now - timedelta(days=87), handoff=first)
        shared(won_lead, case_study, at=now - timedelta(days=50))
        won(lead=won_lead, created_at=now - timedelta(days=60), closed_at=now - timedelta(days=30))
    # Four more groups of open deals, each with wins alike that used three assets: the slide
    # at its fullest (six groups, three assets each) still fits the screen.
    for number, (stage, key) in enumerate(
        [("negotiation", "competitor"), ("demo", "integration"), ("discovery", "timing"),
         ("proposal", "security")]
    ):  # fmt: skip
        industry = f"industry {number}"
        open_lead = LeadFactory(account=AccountFactory(industry=industry))
        heard(open_lead, key, now - timedelta(days=3))
        OpportunityFactory(lead=open_lead, stage=stage, amount=12000 + number,
                           created_at=now - timedelta(days=4))  # fmt: skip
        won_lead = LeadFactory(account=AccountFactory(industry=industry))
        heard(won_lead, key, now - timedelta(days=70))
        title = f"{key.title()} playbook, part %d: a long title that has to be cut on the slide"
        assets = [ContentAssetFactory(title=title % part) for part in (1, 2, 3)]
        shared(won_lead, *assets, at=now - timedelta(days=50))
        won(lead=won_lead, created_at=now - timedelta(days=60), closed_at=now - timedelta(days=30))
    answer = ContentAssetFactory(title="Security and compliance whitepaper", funnel_stage="bofu")
    open_this_weeks_meeting.apply().get()  # as beat does
    return {"handoff": handoff, "answer": answer}


def ask(page, title: str, objection: str, note: str) -> None:
    form = page.locator("#content-request")
    form.get_by_label("Content you need").fill(title)
    form.get_by_label("Objection it should answer").select_option(label=objection)
    form.get_by_label("Note").fill(note)
    form.get_by_role("button", name="Send the request").click()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the slide's matching is PostgreSQL SQL"
)
def test_a_request_goes_from_the_handoff_to_marketing_and_onto_the_meeting_slide(
    browser, live_server, deals, artifacts
):
    handoff = deals["handoff"]
    rep_context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    rep_context.set_default_timeout(10_000)
    rep = rep_context.new_page()
    log_in(rep, live_server, "rep.content")
    rep.goto(f"{live_server.url}/leads/handoffs/{handoff.pk}/")
    ask(rep, "Price comparison for hospital buyers", "Price", "The CFO wants it before Friday.")
    expect(
        rep.get_by_text("Content requested: “Price comparison for hospital buyers”")
    ).to_be_visible()
    panel = rep.locator("#content-requests")
    expect(panel).to_contain_text("Price comparison for hospital buyers")
    expect(panel).to_contain_text("Open")
    ask(rep, "Security questionnaire answers", "Security / compliance", "IT reviews next week.")
    expect(panel).to_contain_text("Security questionnaire answers")
    # An empty title is refused and says why.
    rep.goto(f"{live_server.url}/leads/handoffs/{handoff.pk}/")
    rep.locator("#content-request").get_by_label("Content you need").fill("   ")
    rep.locator("#content-request").get_by_role("button", name="Send the request").click()
    expect(rep.get_by_text("Say what content is wanted.")).to_be_visible()
    assert ContentRequest.objects.count() == 2
    # The rep cannot open marketing's list.
    assert rep.goto(f"{live_server.url}/dashboards/content/requests/").status == 403
    rep_context.close()

    # bypass_csp: lets the test add axe-core's script tag.
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-US", bypass_csp=True
    )
    context.set_default_timeout(10_000)
    marketing = context.new_page()
    log_in(marketing, live_server, "marketing.content")
    marketing.goto(f"{live_server.url}/dashboards/content/")
    expect(marketing.get_by_role("heading", name="Content", exact=True)).to_be_visible()
    marketing.screenshot(path=str(artifacts / "content-dashboard.png"), full_page=True)
    marketing.get_by_role("link", name="content requests").click()
    expect(marketing.get_by_role("heading", name="Content requests")).to_be_visible()
    rows = marketing.locator("table.content-requests tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Price comparison for hospital buyers")
    expect(rows.first).to_contain_text("Grace Hopper · healthcare")
    marketing.screenshot(path=str(artifacts / "content-requests.png"), full_page=True)
    found = blocking_violations(marketing)
    assert not found, "\n".join(found)

    security = marketing.locator("tr", has_text="Security questionnaire answers")
    security.locator("select[name=status]").select_option("done")
    security.locator("select[name=fulfilled_by]").select_option(label=deals["answer"].title)
    security.get_by_role("button", name="Save").click()
    expect(marketing.get_by_text("“Security questionnaire answers” is now done.")).to_be_visible()
    expect(rows).to_have_count(1)
    marketing.get_by_role("link", name="Done").click()
    expect(rows.first).to_contain_text(deals["answer"].title)
    closed = ContentRequest.objects.get(title="Security questionnaire answers")
    assert (closed.status, closed.fulfilled_by, closed.closed_by.username) == (
        "done",
        deals["answer"],
        "marketing.content",
    )
    context.close()

    context = browser.new_context(viewport=PROJECTOR, locale="en-US")
    context.set_default_timeout(10_000)
    screen = context.new_page()
    log_in(screen, live_server, "marketing.content")
    screen.goto(f"{live_server.url}/meeting/#slide-content")
    slide = screen.locator("#slide-content")
    expect(slide).to_be_visible()
    expect(slide).to_contain_text("Proposal · Price")
    expect(slide).to_contain_text("Case study: how a 400-bed hospita")
    expect(slide).to_contain_text("Hospital ROI calculator")
    expect(slide).to_contain_text("Price comparison for hospital buyers")
    expect(slide).not_to_contain_text("Security questionnaire answers")  # done: not asked any more
    overflow = screen.eval_on_selector("#slide-content", "el => el.scrollHeight - el.clientHeight")
    assert overflow <= 1, f"the content slide scrolls by {overflow} px"
    # Six groups, nothing cut off: the table ends inside its column, above the note.
    expect(slide.locator("table.content-groups tbody tr")).to_have_count(6)
    table_bottom = slide.locator("table.content-groups").bounding_box()
    note_top = slide.locator("p.note").last.bounding_box()["y"]
    assert table_bottom["y"] + table_bottom["height"] <= note_top
    screen.screenshot(path=str(artifacts / "meeting-content-slide.png"))
    # Frozen with the meeting: the slide reopens from the snapshot.
    screen.get_by_role("button", name="Freeze figures").click()
    expect(screen.locator(".badge-frozen")).to_be_visible()
    screen.goto(f"{live_server.url}/meeting/#slide-content")
    expect(screen.locator("#slide-content")).to_contain_text("Price comparison for hospital buyers")
    context.close()
