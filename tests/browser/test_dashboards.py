"""The dashboards and the meeting page in a real browser: filters, charts, drill-down, export,
keyboard navigation; screenshots of the overview and the meeting page as artifacts."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from metrics.models import Meeting
from metrics.tasks import open_this_weeks_meeting
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.factories import SourceFactory
from tests.metrics.factories import HandoffFactory, MetricLeadFactory, accepted, rejected

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def handed_off_this_week():
    """Webinars: 2 accepted, 1 rejected; Ads: 2 rejected (no budget), 1 pending."""
    recent = timezone.now() - timedelta(days=2)
    webinars, ads = SourceFactory(name="Webinars"), SourceFactory(name="Ads")
    for n in range(2):
        accepted(at=recent, assigned_at=recent, lead=MetricLeadFactory(
            source=webinars, first_name=f"Web{n}", created_at=recent))  # fmt: skip
    rejected(at=recent, assigned_at=recent, lead=MetricLeadFactory(
        source=webinars, first_name="Webreject", created_at=recent))  # fmt: skip
    for n in range(2):
        rejected(at=recent, assigned_at=recent, reason_key="no_budget", lead=MetricLeadFactory(
            source=ads, first_name=f"Adreject{n}", created_at=recent))  # fmt: skip
    HandoffFactory(assigned_at=recent, lead=MetricLeadFactory(source=ads, created_at=recent))
    return {"webinars": webinars, "ads": ads}


def chart_categories(page, name: str) -> list[str]:
    selector = f'[data-chart="chart-{name}"][data-chart-ready="1"]'
    page.wait_for_selector(selector)
    return page.eval_on_selector(
        selector,
        "el => Array.from(el.data[0].orientation === 'h' ? el.data[0].y : el.data[0].x)",
    )


def pick(page, field: str, option: str) -> None:
    """Pick an option of a searchable multi-select: type part of it, Enter takes the match."""
    search = page.get_by_label(field, exact=True)
    search.fill(option[:3])
    search.press("Enter")
    expect(page.locator(".chip", has_text=option)).to_be_visible()
    search.press("Escape")


def test_filters_are_searchable_with_chips_and_a_one_click_clear(
    page, live_server, handed_off_this_week, artifacts
):
    get_user_model().objects.create_user("marketing.filters", "f@example.com", PASSWORD)
    log_in(page, live_server, "marketing.filters")
    page.goto(f"{live_server.url}/dashboards/funnel/")

    # No Ctrl-click: the select is replaced by a search box over checkboxes.
    expect(page.locator("select[name=source]")).to_be_hidden()
    pick(page, "Source", "Webinars")
    search = page.get_by_label("Source", exact=True)
    search.click()  # opens the list again
    page.locator("#dashboard-filters .multi-options label", has_text="Ads").first.click()
    expect(page.locator(".chip")).to_have_count(2)
    page.screenshot(path=str(artifacts / "dashboard-filters.png"))
    search.press("Escape")  # closes the list
    expect(page.locator("#dashboard-filters .multi-options").first).to_be_hidden()
    page.click("#dashboard-filters button[type=submit]")

    # The totals row says what it adds up; the chips show the filter after the reload.
    expect(page.locator("tr.total th")).to_have_text("Total (filtered: Ads, Webinars)")
    expect(page.locator(".chip")).to_have_count(2)

    # One click clears the field; one × removes one value.
    page.get_by_role("button", name="Remove Ads").click()
    expect(page.locator(".chip")).to_have_count(1)
    page.get_by_role("button", name="Clear Source").click()
    expect(page.locator(".chip")).to_have_count(0)
    page.click("#dashboard-filters button[type=submit]")
    expect(page.locator("tr.total th")).to_have_text("All sources")


def test_overview_filters_charts_drill_down_and_export(page, live_server, handed_off_this_week,
                                                       artifacts):  # fmt: skip
    get_user_model().objects.create_user("marketing.dash", "m@example.com", PASSWORD)
    log_in(page, live_server, "marketing.dash")

    page.click("text=Dashboards")
    acceptance = page.locator("#kpi-acceptance .figure")
    expect(acceptance).to_have_text("40.0 %")  # 2 accepted of 5 decided
    page.screenshot(path=str(artifacts / "dashboard-overview.png"), full_page=True)

    page.click("nav.tabs >> text=Handoffs & SLA")
    assert sorted(chart_categories(page, "acceptance")) == ["Ads", "Webinars"]

    # Filter to one source: the URL carries it, and the chart redraws with that source only.
    pick(page, "Source", "Ads")
    page.click("#dashboard-filters button[type=submit]")
    page.wait_for_url(f"**source={handed_off_this_week['ads'].pk}**")
    assert chart_categories(page, "acceptance") == ["Ads"]
    expect(page.locator("section.grid .figure").first).to_have_text("0.0 %")

    # Drill down from the table to the handoffs behind "rejected".
    page.click("#acceptance-by-source tbody tr >> nth=0 >> td >> nth=1 >> a")
    rows = page.locator("#drill-rows tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#drill-rows")).to_contain_text("Adreject0")

    with page.expect_download() as download:
        page.click("text=Export CSV")
    text = download.value.path().read_text(encoding="utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["lead"].split()[0] for row in exported) == ["Adreject0", "Adreject1"]


def test_meeting_page_moves_with_the_keyboard(page, live_server, handed_off_this_week, artifacts):
    get_user_model().objects.create_user("viewer.room", "room@example.com", PASSWORD)
    # Opened as beat does (the screen itself only reads the meeting).
    opened = open_this_weeks_meeting.apply().get()
    assert Meeting.objects.filter(held_on=opened).exists()
    log_in(page, live_server, "viewer.room")

    page.goto(f"{live_server.url}/meeting/")
    position = page.locator("[data-deck-position]")
    expect(position).to_have_text("1 / 8")
    page.screenshot(path=str(artifacts / "meeting-agenda.png"))
    page.keyboard.press("ArrowRight")
    expect(position).to_have_text("2 / 8")
    expect(page.locator("#slide-new-leads")).to_be_visible()
    expect(page.locator("#slide-new-leads")).to_contain_text("Webinars")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    expect(position).to_have_text("2 / 8")
    page.keyboard.press("t")
    theme = page.evaluate("document.documentElement.getAttribute('data-theme')")
    assert theme in ("dark", "light")
    page.screenshot(path=str(artifacts / "meeting-new-leads.png"))
    # One section fills the 16:9 screen: nothing scrolls inside it.
    overflow = page.eval_on_selector("#slide-new-leads", "el => el.scrollHeight - el.clientHeight")
    assert overflow <= 1
