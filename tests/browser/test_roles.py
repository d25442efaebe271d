"""Every demo role walks its main pages in a real browser (issue 19, acceptance 1): at 1440 × 900
and on a phone (390 × 844), the meeting page also on a projector (1920 × 1080). Pages the role
must not reach are refused. The rep works the queue between calls on the phone: the queue, the
handoff page, the lead page and the accept / reject actions never scroll sideways.

Screenshots go to var/test-artifacts/role-<role>-<page>-<width>.png; docs/screens.md links them.
One logged-in browser context per role and viewport (the phone reuses the desktop's session).
axe-core checks the rep's queue, handoff and lead pages (desktop and phone) and the manager's team
queue on the way; the other pages' checks are in test_accessibility.py."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import EngagementEvent, Handoff, IcpVersion, Lead, SalesRep
from leads.roles import MARKETING, REVOPS_ADMIN, SALES_MANAGER, SALES_REP, VIEWER
from leads.services import definition_create_draft, handoff_open, lead_move_to_stage
from metrics.tasks import open_this_weeks_meeting
from scoring.services import lead_rescore
from tests.browser.conftest import PASSWORD, blocking_violations, log_in
from tests.conftest import restore_default_definitions
from tests.factories import AccountFactory, CampaignFactory, LeadFactory, SourceFactory

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
PROJECTOR = {"width": 1920, "height": 1080}


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


def person(username: str, role: str, first_name: str):
    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", PASSWORD, first_name=first_name, last_name="Walker"
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def hand_off(lead: Lead, at) -> Handoff:
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", reason="browser test", at=at)
        return handoff_open(lead=lead, stage_key="mql", at=at)


@pytest.fixture
def team():
    """A manager with two reps; the first holds two pending handoffs of leads with long names
    (one late, one fresh) that engaged, so every page has something to show at its widest."""
    manager = person("manager.walk", SALES_MANAGER, "Morgan")
    rep = person("rep.walk", SALES_REP, "Robin")
    SalesRep.objects.create(user=rep, manager=manager, capacity=10)
    source = SourceFactory(name="Partner referral programme")
    campaign = CampaignFactory(source=source, name="Q3 partner webinar: pipeline acceleration")
    account = AccountFactory(name="Consolidated Intercontinental Holdings International")
    now = timezone.now()
    handoffs = []
    for first, age in (("Grace", timedelta(days=6)), ("Alan", timedelta(minutes=5))):
        lead = LeadFactory(
            first_name=first,
            last_name="Vanderbilt-Montgomery",
            email=f"{first.lower()}.vanderbilt-montgomery@consolidated-intercontinental.example",
            title="Vice President, Revenue Operations and Business Systems",
            account=account,
            source=source,
            campaign=campaign,
        )
        handoffs.append(hand_off(lead, now - age))
        # Engaged after the handoff (before, the score alone would have handed it off).
        for kind in ("demo_request", "webinar_attended", "email_click"):
            EngagementEvent.objects.create(lead=lead, kind=kind, occurred_at=now - age)
        lead_rescore(lead_id=lead.pk, at=now)
    second = person("rep.second", SALES_REP, "Sam")
    SalesRep.objects.create(user=second, manager=manager, capacity=10)
    for username, role, name in (
        ("marketing.walk", MARKETING, "Mira"),
        ("revops.walk", REVOPS_ADMIN, "Remy"),
        ("viewer.walk", VIEWER, "Vic"),
    ):
        person(username, role, name)
    open_this_weeks_meeting.apply().get()  # as beat does
    return handoffs


class Walk:
    """One role's browser contexts: desktop first (logged in there), then the phone and the
    projector on the same session."""

    def __init__(self, browser, live_server, artifacts, role: str, username: str):
        self.browser, self.artifacts, self.role = browser, artifacts, role
        self.url = live_server.url
        self.contexts = []
        self.desktop = self._page(DESKTOP)
        log_in(self.desktop, live_server, username)
        self.session = self.desktop.context.storage_state()

    def _page(self, viewport, **options):
        # bypass_csp: lets the test add axe-core's script tag (see accessible()).
        context = self.browser.new_context(
            viewport=viewport, locale="en-US", bypass_csp=True, **options
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context.new_page()

    def phone(self):
        # One pixel per CSS pixel: the layout is the phone's, the screenshots stay small.
        return self._page(PHONE, storage_state=self.session, is_mobile=True, has_touch=True)

    def projector(self):
        return self._page(PROJECTOR, storage_state=self.session)

    def visit(self, page, name: str, path: str, ready: str | None = None):
        """Open ``path`` and take its screenshot (once ``ready``, a text, shows, for a page that
        draws itself after loading)."""
        response = page.goto(f"{self.url}{path}")
        assert response.ok, f"{self.role} could not open {path}: {response.status}"
        if ready:
            expect(page.get_by_text(ready).first).to_be_visible()
        self.shoot(page, name)
        return response

    def accessible(self, page) -> None:
        """No serious or critical axe-core violation on the page as shown."""
        page.wait_for_load_state("networkidle")  # scripts settled
        found = blocking_violations(page)
        assert not found, f"{page.url} at {page.viewport_size['width']} px:\n" + "\n".join(found)

    def shoot(self, page, name: str) -> None:
        width = page.viewport_size["width"]
        page.screenshot(path=str(self.artifacts / f"role-{self.role}-{name}-{width}.png"),
                        full_page=True)  # fmt: skip

    def refused(self, page, *paths: str) -> None:
        for path in paths:
            response = page.goto(f"{self.url}{path}")
            assert response.status == 403, f"{self.role} reached {path}: {response.status}"

    def refused_post(self, page, path: str) -> None:
        """A form post the role's pages never offer, sent anyway with a valid CSRF token."""
        if not page.locator("input[name=csrfmiddlewaretoken]").count():
            page.goto(f"{self.url}/")  # the log-out form carries one
        token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
        response = page.request.post(
            f"{self.url}{path}", form={"csrfmiddlewaretoken": token, "revision": "0"}
        )
        assert response.status == 403, f"{self.role} could post to {path}: {response.status}"

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def walk(browser, live_server, artifacts):
    walks = []

    def start(role: str, username: str) -> Walk:
        walks.append(Walk(browser, live_server, artifacts, role, username))
        return walks[-1]

    yield start
    for one in walks:
        one.close()


def assert_no_horizontal_overflow(page) -> None:
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"{page.url} is {width} px wide at {viewport} px"


def test_a_rep_walks_the_queue_handoffs_and_leads_on_a_desktop_and_a_phone(walk, team):
    late, fresh = team
    rep = walk("rep", "rep.walk")
    desk = rep.desktop
    rep.visit(desk, "queue", "/leads/queue/")
    expect(desk.locator("table.queue tbody tr")).to_have_count(2)
    rep.accessible(desk)
    rep.visit(desk, "handoff", f"/leads/handoffs/{late.pk}/")
    expect(desk.locator("#accept button[type=submit]")).to_be_visible()
    expect(desk.locator("li", has_text="Demo request:")).to_be_visible()  # not demo_request
    rep.accessible(desk)
    rep.visit(desk, "lead", f"/leads/{late.lead_id}/")
    expect(desk.locator("td", has_text="Demo request").first).to_be_visible()
    rep.accessible(desk)
    rep.visit(desk, "playbook", "/playbook/")
    rep.visit(desk, "notifications", "/leads/notifications/")
    rep.refused(desk, "/admin/", "/leads/imports/", "/admin/leads/icpversion/")

    phone = rep.phone()
    rep.visit(phone, "queue", "/leads/queue/")
    cards = phone.locator("table.queue tbody tr")
    expect(cards).to_have_count(2)
    assert_no_horizontal_overflow(phone)
    # The SLA clocks come right under the lead's name, before source and hand-over time.
    first = cards.first
    clock_top = first.locator("td.sla-cell").first.bounding_box()["y"]
    assert clock_top < first.locator("td[data-label=Source]").bounding_box()["y"]
    expect(first.locator(".countdown").first).to_contain_text("overdue")
    rep.accessible(phone)

    rep.visit(phone, "lead", f"/leads/{late.lead_id}/")
    assert_no_horizontal_overflow(phone)
    rep.accessible(phone)
    phone.goto(f"{rep.url}/leads/queue/")
    first.locator("td.lead-cell a").click()
    expect(phone.locator("h1")).to_contain_text("Grace")
    assert_no_horizontal_overflow(phone)
    rep.shoot(phone, "handoff")
    phone.click("#accept button[type=submit]")
    expect(phone.locator(".messages")).to_contain_text("Lead accepted")
    assert_no_horizontal_overflow(phone)
    rep.shoot(phone, "handoff-accepted")

    phone.goto(f"{rep.url}/leads/handoffs/{fresh.pk}/")
    phone.select_option("#reject select[name=reason]", label="No budget")
    phone.click("#reject button[type=submit]")
    expect(phone.locator(".messages")).to_contain_text("Lead rejected")
    assert_no_horizontal_overflow(phone)
    rep.shoot(phone, "handoff-rejected")
    assert {h.outcome for h in Handoff.objects.filter(pk__in=[late.pk, fresh.pk])} == {
        "accepted",
        "rejected",
    }


def test_a_manager_opens_on_the_team_load_and_reassigns_by_load(walk, team):
    late, _ = team
    manager = walk("manager", "manager.walk")
    desk = manager.desktop
    manager.visit(desk, "queue", "/leads/queue/")
    expect(desk.locator("body")).to_contain_text("Robin Walker")
    manager.accessible(desk)
    manager.visit(desk, "handoff", f"/leads/handoffs/{late.pk}/")
    # The reassign list shows each rep's load.
    expect(desk.locator("#reassign select option", has_text="Sam Walker")).to_contain_text(
        "0 open / 10"
    )
    manager.visit(desk, "handoffs-dashboard", "/dashboards/handoffs/")
    manager.visit(desk, "meeting", "/meeting/")
    manager.visit(desk, "meeting-history", "/meeting/history/")
    manager.refused(desk, "/admin/", "/leads/imports/")

    phone = manager.phone()
    for name, path in (("queue", "/leads/queue/"), ("handoff", f"/leads/handoffs/{late.pk}/")):
        manager.visit(phone, name, path)
        assert_no_horizontal_overflow(phone)


def test_marketing_walks_dashboards_outcomes_and_imports(walk, team):
    late, _ = team
    marketing = walk("marketing", "marketing.walk")
    desk = marketing.desktop
    pages = [
        ("dashboards", "/dashboards/"),
        ("funnel", "/dashboards/funnel/"),
        ("handoff-outcomes", "/leads/handoffs/"),
        ("leads", "/leads/"),
        ("imports", "/leads/imports/"),
        ("playbook", "/playbook/"),
    ]
    for name, path in pages:
        marketing.visit(desk, name, path)
        if name == "handoff-outcomes":
            expect(desk.locator("body")).to_contain_text("Partner referral programme")
    marketing.visit(desk, "admin", "/admin/")
    marketing.refused(desk, "/admin/leads/icpversion/add/", "/admin/auth/user/")
    desk.goto(f"{marketing.url}/leads/handoffs/{late.pk}/")
    expect(desk.locator("#accept")).to_have_count(0)  # reads the handoff, works none
    marketing.refused_post(desk, f"/leads/handoffs/{late.pk}/accept")
    marketing.refused_post(desk, "/scoring/predictive/retrain/")

    phone = marketing.phone()
    for name, path in pages[:3]:
        marketing.visit(phone, name, path)
    # The home page's headline counts and definitions, on the phone too: the definitions
    # table scrolls inside its box, words whole (an "Open" link was cut letter by letter).
    marketing.visit(phone, "home", "/")
    expect(phone.locator("body")).to_contain_text("leads")
    assert_no_horizontal_overflow(phone)
    open_link = phone.locator("main table").get_by_role("link", name="Open").first
    assert open_link.bounding_box()["height"] < 30, "the link wraps"


def test_a_revops_admin_walks_definitions_backtests_and_the_icp_admin(walk, team):
    late, _ = team
    draft = definition_create_draft(
        model=IcpVersion,
        actor=get_user_model().objects.get(username="revops.walk"),
        copy_from=IcpVersion.objects.get(number=1),
        note="Tighter size band",
    )
    admin = walk("revops-admin", "revops.walk")
    desk = admin.desktop
    pages = [
        ("icp-draft", f"/admin/leads/icpversion/{draft.pk}/change/"),
        ("backtests", "/scoring/backtests/"),
        ("insights", "/scoring/insights/"),
        ("predictive", "/scoring/predictive/"),
        ("definitions", "/definitions/"),
        ("icp-history", "/definitions/icp/history/"),
    ]
    admin.visit(desk, *pages[0])
    # The ICP's values read as words to edit, not as a JSON list.
    industries = desk.locator("textarea[name$=-values]", has_text="financial services")
    expect(industries).to_have_value("software, financial services, healthcare, e-commerce")
    for name, path in pages[1:]:
        admin.visit(desk, name, path)
    admin.visit(desk, "api-docs", "/api/v1/docs/", ready="RevOps dashboard API")
    admin.refused_post(desk, f"/leads/handoffs/{late.pk}/accept")

    phone = admin.phone()
    for name, path in pages[1:3]:
        admin.visit(phone, name, path)


def test_a_viewer_reads_dashboards_playbook_and_the_meeting_on_a_projector(walk, team):
    late, _ = team
    viewer = walk("viewer", "viewer.walk")
    desk = viewer.desktop
    pages = [
        ("home", "/"),
        ("pipeline", "/dashboards/pipeline/"),
        ("playbook", "/playbook/"),
        ("definitions", "/definitions/"),
        ("meeting", "/meeting/"),
    ]
    for name, path in pages:
        viewer.visit(desk, name, path)
    viewer.refused(desk, "/leads/", "/leads/queue/", f"/leads/{late.lead_id}/", "/admin/")

    projector = viewer.projector()
    viewer.visit(projector, "meeting", "/meeting/")
    assert_no_horizontal_overflow(projector)
    expect(projector.locator("[data-deck-position]")).to_be_visible()

    phone = viewer.phone()
    for name, path in pages[:3]:
        viewer.visit(phone, name, path)
