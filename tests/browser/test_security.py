"""In a real browser, under the Content-Security-Policy every page is served with: charts still
draw, nothing the policy blocks is attempted, and markup in names never runs."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.factories import SourceFactory
from tests.metrics.factories import MetricLeadFactory, accepted, rejected

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def watched(page):
    """The page, with every dialog (an alert() would mean script ran) and every policy
    violation the browser reports collected."""
    seen = {"dialogs": [], "violations": []}
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda message: (
            seen["violations"].append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    return page, seen


def test_charts_draw_under_the_policy_and_hostile_names_stay_text(watched, live_server):
    page, seen = watched
    recent = timezone.now() - timedelta(days=2)
    hostile = SourceFactory(name=f"Ads {HOSTILE}")
    lead = MetricLeadFactory(source=hostile, first_name=HOSTILE, created_at=recent)
    accepted(at=recent, assigned_at=recent, lead=lead)
    rejected(at=recent, assigned_at=recent, lead=MetricLeadFactory(source=hostile))
    get_user_model().objects.create_superuser("sec.admin", "s@example.com", PASSWORD)
    log_in(page, live_server, "sec.admin")

    page.goto(f"{live_server.url}{reverse('metrics:handoffs')}")
    chart = page.wait_for_selector('[data-chart="chart-acceptance"][data-chart-ready="1"]')
    labels = chart.inner_text()
    page.goto(f"{live_server.url}{reverse('leads:detail', args=[lead.pk])}")
    heading = page.locator("h1").inner_text()
    page.goto(f"{live_server.url}{reverse('audit:history', args=['icp'])}")

    assert "<script>alert(2)</script>" in labels  # shown as text on the axis
    assert HOSTILE in heading
    assert page.locator("img[src=x]").count() == 0
    assert seen["dialogs"] == []
    assert seen["violations"] == []


def test_admin_import_and_api_docs_pages_need_nothing_the_policy_blocks(watched, live_server):
    page, seen = watched
    get_user_model().objects.create_superuser("sec.ops", "o@example.com", PASSWORD)
    log_in(page, live_server, "sec.ops")

    page.goto(f"{live_server.url}/admin/leads/icpversion/1/change/")
    page.goto(f"{live_server.url}{reverse('audit:index')}")
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")  # Swagger UI started from its separate script

    assert seen["violations"] == []
