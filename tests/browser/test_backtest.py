"""A backtest in a real browser: an ops admin edits a draft scoring model in the admin,
simulates it, reads the draft beside the current definitions, and publishes it."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from scoring.backtest.models import Backtest
from scoring.models import ScoringModel
from scoring.selectors import scoring_model_in_force
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.scoring.backtest_world import build_world

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


def test_admin_edits_a_draft_backtests_it_and_publishes(page, live_server, artifacts):
    build_world()
    get_user_model().objects.create_superuser("ops.browser", "ops@example.com", PASSWORD)
    current = scoring_model_in_force()
    log_in(page, live_server, "ops.browser")

    # A new draft from the model in force, then double the weight of a demo request.
    page.goto(f"{live_server.url}/admin/scoring/scoringmodel/")
    page.check(f"input[name=_selected_action][value='{current.pk}']")
    page.select_option("select[name=action]", "new_draft_from")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("created from v1")
    draft = ScoringModel.objects.get(status="draft")
    page.goto(f"{live_server.url}/admin/scoring/scoringmodel/{draft.pk}/change/")
    demo_points = page.locator(
        "tr:has(select[name$='-kind'] option[selected][value='demo_request']) "
        "input[name$='-points']"
    )
    demo_points.fill("60")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    assert draft.weights.get(kind="demo_request").points == 60

    # Simulate from the draft's admin page.
    page.click("text=Simulate (backtest) this draft")
    expect(page.locator("#simulate select[name=model]")).to_have_value(str(draft.pk))
    page.click("#simulate button[type=submit]")
    comparison = page.locator("#comparison")
    expect(comparison).to_be_visible(timeout=30_000)
    expect(comparison.locator("thead")).to_contain_text("Current (ICP v1, model v1)")
    expect(comparison.locator("thead")).to_contain_text("Draft (ICP v1, model v2)")
    eligible = comparison.locator("tr[data-row=eligible]")
    expect(eligible.locator("td.current")).to_have_text("1")
    expect(eligible.locator("td.draft")).to_have_text("2")
    missed = comparison.locator("tr[data-row=missed_wins]")
    expect(missed.locator("td.current")).to_have_text("1")
    expect(missed.locator("td.draft")).to_have_text("0")
    page.wait_for_selector('[data-chart="chart-mql-weekly"][data-chart-ready="1"]')
    page.screenshot(path=str(artifacts / "backtest.png"), full_page=True)
    assert Backtest.objects.get().status == Backtest.Status.DONE

    # Publish with the normal publish, after a confirm step.
    page.click("text=Publish this draft (scoring model v2)")
    page.click("text=Yes, publish scoring model v2")
    expect(page.locator("ul.messages")).to_contain_text("scoring model v2 is published")
    assert scoring_model_in_force().pk == draft.pk
