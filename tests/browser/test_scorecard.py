"""The alignment scorecard in a real browser: a RevOps admin sets this quarter's goals (a
draft, then published); the scorecard page, the top of the overview and the meeting's first
slide show them with their status; the monthly review opens and freezes; a viewer sees the same
card and cannot edit. Screenshots of the scorecard, the slide and the monthly review are saved as
artifacts."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from leads.roles import REVOPS_ADMIN, VIEWER
from metrics import goal_selectors, goal_services, goals
from metrics.models import Goal
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.factories import SourceFactory
from tests.metrics.factories import MetricLeadFactory, accepted, rejected

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# The goals' rates do not depend on how much of the quarter has gone by, so the colours below
# hold on any day the suite runs.
GREEN_ROW = 'tr[data-goal="acceptance_rate"][data-status="green"]'
AMBER_ROW = 'tr[data-goal="acceptance_rate"][data-status="amber"]'
RED_ROW = 'tr[data-goal="acceptance_rate"][data-status="red"]'


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def decided_this_quarter():
    """Handoffs decided a minute ago (inside this quarter): Webinars 9 of 10 accepted, Ads
    2 of 10. Together 11 of 20: 55 %."""
    just_now = timezone.now() - timedelta(minutes=1)
    sources = {"Webinars": SourceFactory(name="Webinars"), "Ads": SourceFactory(name="Ads")}
    for name, accepted_count in (("Webinars", 9), ("Ads", 2)):
        for index in range(10):
            decide = accepted if index < accepted_count else rejected
            lead = MetricLeadFactory(source=sources[name], created_at=just_now)
            decide(at=just_now, assigned_at=just_now, lead=lead)
    return sources


def user_in(role: str, username: str):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)
    user.groups.add(Group.objects.get(name=role))
    return user


def fill_goal(page, index: int, *, metric: str, target: str, source: str = "", floor: str = ""):
    prefix = f"#id_goals-{index}"
    page.select_option(f"{prefix}-metric", label=metric)
    if source:
        page.select_option(f"{prefix}-scope", label="Source")
        page.select_option(f"{prefix}-source", label=source)
    page.fill(f"{prefix}-target", target)
    if floor:
        page.fill(f"{prefix}-floor", floor)


def test_an_admin_sets_the_quarters_goals_and_every_page_shows_the_card(
    page, live_server, decided_this_quarter, artifacts
):
    user_in(REVOPS_ADMIN, "ops.goals")
    log_in(page, live_server, "ops.goals")
    quarter = goals.quarter_of(goal_selectors.local_today())

    # From the (empty) scorecard to the editor.
    page.goto(f"{live_server.url}/dashboards/scorecard/")
    expect(page.locator("[data-scorecard-empty]")).to_contain_text(quarter.label)
    page.click("text=Edit goals")
    expect(page.locator("h1")).to_have_text(f"Goals for {quarter.label}")

    # Two goals, one of them inconsistent: refused with the reason, nothing saved.
    fill_goal(page, 0, metric="Lead acceptance rate", target="50")
    fill_goal(page, 1, metric="Lead acceptance rate", target="40", source="Ads", floor="45")
    page.click("text=Save draft")
    expect(page.locator("#id_goals-1-floor-error")).to_contain_text(
        "The floor must not be above the target"
    )
    page.fill("#id_goals-1-floor", "25")
    page.click("text=Save draft")
    expect(page.locator(".messages")).to_contain_text("nobody sees it until it is published")

    # The draft comes back with two empty rows: a third goal, then publish.
    fill_goal(page, 2, metric="Lead acceptance rate", target="95", source="Webinars")
    page.fill("#id_note", "Agreed at the quarterly planning")
    page.click("text=Save and publish")
    page.wait_for_url(f"**/dashboards/scorecard/?period={quarter.key}")
    card = page.locator("#scorecard")
    expect(card.locator(GREEN_ROW)).to_contain_text("On track")  # 55 % ≥ 50 %
    expect(card.locator(RED_ROW)).to_contain_text("Below floor")  # Ads: 20 % < 25 %
    expect(card.locator(AMBER_ROW)).to_contain_text("At risk")  # Webinars: 90 % < 95 %
    expect(card.locator(GREEN_ROW)).to_contain_text("n = 20 decided handoffs")
    page.screenshot(path=str(artifacts / "scorecard.png"), full_page=True)

    # The top of the overview: the same card.
    page.click("text=Dashboards")
    overview_card = page.locator("#scorecard.overview-card")
    expect(overview_card).to_contain_text(quarter.label)
    expect(overview_card.locator(RED_ROW)).to_contain_text("Below floor")

    # The meeting opens on it (this week's meeting is opened by the admin's first visit).
    page.goto(f"{live_server.url}/meeting/")
    slide = page.locator("#slide-scorecard")
    expect(slide).to_be_visible()
    expect(page.locator("[data-deck-position]")).to_have_text("1 / 9")
    expect(slide).to_contain_text(f"Are we on track? {quarter.label}")
    expect(slide.locator(GREEN_ROW)).to_contain_text("On track")
    expect(slide.locator(AMBER_ROW)).to_contain_text("At risk")
    expect(slide.locator(RED_ROW)).to_contain_text("Below floor")
    page.screenshot(path=str(artifacts / "meeting-scorecard.png"))
    # A slide never scrolls.
    overflow = page.eval_on_selector("#slide-scorecard", "el => el.scrollHeight - el.clientHeight")
    assert overflow <= 1

    # The monthly review (of the month just ended) opens and freezes.
    page.goto(f"{live_server.url}/meeting/monthly/")
    last_month = goals.month_of(goal_selectors.local_today()).previous()
    expect(page.locator("h1")).to_have_text(f"Monthly review: {last_month.label}")
    expect(page.locator("#monthly-trend tbody tr")).to_have_count(6)
    page.click("text=Freeze figures")
    expect(page.locator(".monthly-status")).to_contain_text("Frozen at")
    expect(page.locator(".monthly-status")).to_contain_text("ops.goals")
    page.screenshot(path=str(artifacts / "monthly-review.png"), full_page=True)


def test_a_viewer_sees_the_same_card_and_cannot_edit(
    page, live_server, decided_this_quarter, artifacts
):
    quarter = goals.quarter_of(goal_selectors.local_today())
    draft = goal_services.goal_set_create_draft(period=quarter, actor=None)
    goal_services.goal_set_replace_goals(
        draft=draft,
        goals=[
            Goal(metric="acceptance_rate", target=50),
            Goal(metric="acceptance_rate", target=40, floor=25, scope="source",
                 source=decided_this_quarter["Ads"]),
        ],
    )  # fmt: skip
    goal_services.goal_set_publish(draft=draft, actor=None)
    # Past weeks for the trends (Webinars only: 12 of 18 accepted keeps the total above 50 %).
    weeks_of_handoffs(decided_this_quarter["Webinars"])
    user_in(VIEWER, "exec.viewer")
    log_in(page, live_server, "exec.viewer")

    page.goto(f"{live_server.url}/dashboards/scorecard/")
    card = page.locator("#scorecard")
    expect(card.locator(GREEN_ROW)).to_contain_text("On track")
    expect(card.locator(RED_ROW)).to_contain_text("Below floor")
    expect(page.get_by_text("Edit goals")).to_have_count(0)
    expect(card.locator("input, select, button")).to_have_count(0)

    response = page.goto(f"{live_server.url}/dashboards/scorecard/goals/?period={quarter.key}")
    assert response.status == 403

    page.goto(f"{live_server.url}/dashboards/")
    expect(page.locator("#scorecard.overview-card").locator(RED_ROW)).to_be_visible()
    expect(page.locator("#kpi-acceptance [data-trend] svg.sparkline")).to_be_visible()

    # From the scorecard to the trends: every headline week by week, the young lead cohorts
    # marked maturing (leads took 30 days to reach opportunity half a year ago).
    page.goto(f"{live_server.url}/dashboards/scorecard/")
    page.get_by_role("link", name="Trends", exact=True).click()
    expect(page.locator("h1")).to_have_text("Trends: the headline KPIs week by week")
    expect(page.locator(".trend-card")).to_have_count(9)
    acceptance = page.locator("#trend-acceptance")
    expect(acceptance.locator(".main-svg").first).to_be_visible()  # drawn by Plotly
    # The sample beside the rate: 3 decided handoffs in each of the last weeks.
    expect(acceptance.locator("tbody tr").nth(1).locator("td")).to_have_text(["3"] * 4)
    expect(page.locator("#trend-lead_to_opportunity .badge").first).to_have_text("maturing")
    page.screenshot(path=str(artifacts / "trends.png"), full_page=True)


def weeks_of_handoffs(source):
    """Six past weeks of decided handoffs (two accepted, one rejected a week, on leads created
    that week), and three leads of half a year ago that reached opportunity in 30 days."""
    from tests.metrics.factories import history

    now = timezone.now()
    for weeks_ago in range(1, 7):
        when = now - timedelta(days=7 * weeks_ago)
        for decide in (accepted, accepted, rejected):
            decide(
                at=when, assigned_at=when, lead=MetricLeadFactory(source=source, created_at=when)
            )
    for _ in range(3):
        lead = MetricLeadFactory(source=source, created_at=now - timedelta(days=200))
        history(lead, ("lead", lead.created_at), ("opportunity", now - timedelta(days=170)))
