"""Accessibility in a real browser (issue 19 item 9): axe-core finds no serious or critical
violation on the playbook, the dashboards, the queue, the lead and handoff pages and the meeting
page; the "?" definitions are read by keyboard and screen readers; every page carries the
favicon."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import SalesRep
from leads.roles import SALES_REP
from metrics.tasks import open_this_weeks_meeting
from tests.browser.conftest import PASSWORD, blocking_violations, log_in
from tests.conftest import restore_default_definitions
from tests.factories import SourceFactory
from tests.metrics.factories import HandoffFactory, MetricLeadFactory, accepted, rejected

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("ops.a11y", "a11y@example.com", PASSWORD)


def test_a_definition_shows_on_keyboard_focus_and_hides_on_escape(
    page, live_server, admin, artifacts
):
    log_in(page, live_server, "ops.a11y")
    page.goto(f"{live_server.url}/dashboards/")  # the headlines show even without data
    mark = page.locator(".define").first
    button = mark.locator("button.info")
    tooltip = mark.locator("[role=tooltip]")
    expect(tooltip).to_be_hidden()

    button.focus()  # as Tab lands on it

    expect(tooltip).to_be_visible()
    description = page.evaluate(
        "b => document.getElementById(b.getAttribute('aria-describedby')).textContent",
        button.element_handle(),
    )
    assert len(description) > 20  # the definition, read out after "Definition, button"
    expect(tooltip).to_have_text(description)
    page.screenshot(path=str(artifacts / "definition-on-focus.png"))
    page.keyboard.press("Escape")
    expect(tooltip).to_be_hidden()
    page.locator("h1").hover()
    button.hover()
    expect(tooltip).to_be_visible()


def test_pages_link_a_favicon_that_is_served(page, live_server, admin):
    log_in(page, live_server, "ops.a11y")
    href = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(f"{live_server.url}{href}")
    assert response.ok and "svg" in response.headers["content-type"]


# --- Automated check: axe-core (tests/browser/conftest.py: blocking_violations).


@pytest.fixture
def audited_page(browser):
    """A page whose Content-Security-Policy lets the test add axe's script tag (the site's own
    policy allows no inline script, and stays that way for real visitors)."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-US", bypass_csp=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def week_of_handoffs(admin):
    """A rep with pending and decided handoffs this week, so the pages show tables and charts."""
    rep = get_user_model().objects.create_user("rep.a11y", "rep.a11y@example.com", PASSWORD)
    rep.groups.add(Group.objects.get(name=SALES_REP))
    SalesRep.objects.create(user=rep, manager=admin)
    recent = timezone.now() - timedelta(days=2)
    webinars, ads = SourceFactory(name="Webinars"), SourceFactory(name="Ads")
    accepted(at=recent, assigned_at=recent, assignee=rep,
             lead=MetricLeadFactory(source=webinars, created_at=recent))  # fmt: skip
    rejected(at=recent, assigned_at=recent, assignee=rep, reason_key="no_budget",
             lead=MetricLeadFactory(source=ads, created_at=recent))  # fmt: skip
    for n in range(2):
        HandoffFactory(assigned_at=recent - timedelta(days=n), assignee=rep,
                       lead=MetricLeadFactory(source=ads, created_at=recent))  # fmt: skip
    return rep


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("ops.a11y", "/playbook/"),
        ("ops.a11y", "/dashboards/"),
        ("ops.a11y", "/dashboards/funnel/"),
        ("ops.a11y", "/leads/queue/"),
    ],
)
def test_no_serious_accessibility_violations(
    audited_page, live_server, week_of_handoffs, username, path
):
    log_in(audited_page, live_server, username)
    audited_page.goto(f"{live_server.url}{path}")
    audited_page.wait_for_load_state("networkidle")  # charts drawn, scripts settled

    found = blocking_violations(audited_page)
    assert not found, "\n".join(found)


def test_no_serious_accessibility_violations_on_any_meeting_slide_in_either_theme(
    audited_page, live_server, week_of_handoffs
):
    open_this_weeks_meeting.apply().get()  # as beat does
    log_in(audited_page, live_server, "ops.a11y")
    audited_page.goto(f"{live_server.url}/meeting/")
    audited_page.wait_for_load_state("networkidle")
    slides = int(audited_page.locator("[data-deck-position]").text_content().split("/")[1])
    found = []
    for theme in ("first", "second"):
        for slide in range(1, slides + 1):
            found += [f"{theme} theme, slide {slide}: {line}" for line in (
                blocking_violations(audited_page))]  # fmt: skip
            audited_page.keyboard.press("ArrowRight")
        audited_page.keyboard.press("Home")
        audited_page.keyboard.press("t")  # the other theme (light / dark)

    assert not found, "\n".join(found)


# The rep's queue, lead and handoff pages are checked on the way (tests/browser/test_roles.py).
@pytest.mark.parametrize("path", ["/playbook/"])
def test_no_serious_accessibility_violations_for_a_rep_on_a_phone(
    audited_page, live_server, week_of_handoffs, path
):
    audited_page.set_viewport_size({"width": 390, "height": 844})
    log_in(audited_page, live_server, "rep.a11y")
    audited_page.goto(f"{live_server.url}{path}")
    audited_page.wait_for_load_state("networkidle")

    found = blocking_violations(audited_page)
    assert not found, "\n".join(found)
