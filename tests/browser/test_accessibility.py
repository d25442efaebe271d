"""Accessibility in a real browser (issue 19 item 9): the "?" definitions are read by keyboard
and screen readers, and every page carries the favicon."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.conftest import restore_default_definitions

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def admin(django_user_model):
    from tests.browser.conftest import PASSWORD

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
