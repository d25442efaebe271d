"""Target accounts in a real browser: a RevOps admin pastes the agreed accounts (a bad line is
refused, nothing kept), publishes the list, everyone's list page shows it, and the scorecard
shows the pipeline from target accounts, which drills down to the deals. Screenshots of the
list page and of the scorecard's figures are saved as artifacts."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from leads.roles import REVOPS_ADMIN
from tests.browser.conftest import PASSWORD, blocking_violations, log_in
from tests.conftest import restore_default_definitions
from tests.factories import AccountFactory
from tests.metrics.factories import MetricLeadFactory, OpportunityFactory

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def deals():
    """Deals opened a minute ago (this quarter): Acme $12,000, Globex $8,000 (through its
    lead's account), Initech $5,000."""
    just_now = timezone.now() - timedelta(minutes=1)
    acme = AccountFactory(name="Acme", domain="acme.com")
    globex = AccountFactory(name="Globex", domain="globex.com")
    initech = AccountFactory(name="Initech", domain="initech.com")
    return [
        OpportunityFactory(name="Acme platform", account=acme, amount=12000, created_at=just_now),
        OpportunityFactory(
            name="Globex rollout",
            lead=MetricLeadFactory(account=globex, created_at=just_now),
            amount=8000,
            created_at=just_now,
        ),
        OpportunityFactory(name="Initech pilot", account=initech, amount=5000, created_at=just_now),
    ]


def test_an_admin_publishes_target_accounts_and_the_scorecard_counts_their_pipeline(
    page, live_server, deals, artifacts
):
    user = get_user_model().objects.create_user("ops.abm", "ops.abm@example.com", PASSWORD)
    user.groups.add(Group.objects.get(name=REVOPS_ADMIN))
    log_in(page, live_server, "ops.abm")

    page.goto(f"{live_server.url}/definitions/target-accounts/")
    expect(page.locator("[data-empty]")).to_contain_text("No target accounts yet")
    page.click("text=Change the list")
    expect(page.locator("h1")).to_have_text("Edit the target accounts")

    # One unknown domain refuses the whole paste: nothing is kept.
    page.fill("#id_lines", "acme.com, 1, Ana runs the play\nglobex.com, 2\nnope.example")
    page.click("text=Add to the draft")
    expect(page.locator("#target-errors")).to_contain_text(
        "Line 3: no account has the domain 'nope.example'."
    )
    expect(page.locator("[data-empty]")).to_contain_text("No accounts yet")

    page.fill("#id_lines", "acme.com, 1, Ana runs the play\nglobex.com, 2")
    page.click("text=Add to the draft")
    expect(page.locator(".messages")).to_contain_text("2 added, 0 updated")
    page.fill("#id_note", "Agreed at the ABM kick-off")
    page.click("text=Publish the list")
    page.wait_for_url(f"{live_server.url}/definitions/target-accounts/")
    expect(page.locator("[data-list-version]")).to_contain_text("In force: v1")
    table = page.locator("#target-accounts")
    expect(table.locator('tr[data-account="acme.com"]')).to_contain_text("Tier 1")
    expect(table.locator('tr[data-account="globex.com"]')).to_contain_text("Tier 2")
    expect(table.locator('tr[data-account="initech.com"]')).to_have_count(0)
    page.screenshot(path=str(artifacts / "target-accounts.png"), full_page=True)

    # The scorecard: Acme's and Globex's deals, not Initech's.
    page.goto(f"{live_server.url}/dashboards/scorecard/")
    card = page.locator("#target-accounts")
    pipeline = card.locator('tr[data-figure="target_pipeline"]')
    expect(pipeline).to_contain_text("$20,000")
    expect(pipeline).to_contain_text("80.0 %")  # of $25,000
    expect(card).to_contain_text("list v1")
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "scorecard-target-accounts.png"), full_page=True)

    pipeline.locator("a").click()
    expect(page.locator("h1")).to_contain_text("on target accounts")
    expect(page.locator("main")).to_contain_text("Acme platform")
    expect(page.locator("main")).to_contain_text("Globex rollout")
    expect(page.locator("main")).not_to_contain_text("Initech pilot")


@pytest.fixture
def audited_page(browser):
    """A page whose Content-Security-Policy lets the test add axe's script (as in
    test_accessibility.py; real visitors keep the policy)."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-US", bypass_csp=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def test_the_target_account_pages_have_no_serious_accessibility_violation(
    audited_page, live_server, deals
):
    from leads.target_accounts import services

    user = get_user_model().objects.create_user("ops.a11y", "ops.a11y@example.com", PASSWORD)
    user.groups.add(Group.objects.get(name=REVOPS_ADMIN))
    draft = services.target_list_draft(actor=user)
    services.target_accounts_import(draft=draft, text="acme.com, 1, Ana\nglobex.com")
    services.target_list_publish(draft=draft, actor=user)
    log_in(audited_page, live_server, "ops.a11y")
    for path in (
        "/definitions/target-accounts/",
        "/definitions/target-accounts/edit/",
        "/dashboards/scorecard/",
    ):
        audited_page.goto(f"{live_server.url}{path}")
        found = blocking_violations(audited_page)
        assert not found, f"{path}: " + "\n".join(found)
