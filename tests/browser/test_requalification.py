"""A rejection is respected, in a real browser: a rep rejects an MQL with a reason; rescores and
sweeps leave it in Nurture and out of every queue; new engagement after the rejection
re-qualifies it, as the lead page said it would."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import EngagementEvent, Handoff, Lead, SalesRep, StageTransition
from leads.roles import SALES_REP
from leads.services import engagement_events_record
from scoring import services, tasks
from tests.browser.conftest import PASSWORD, log_in
from tests.conftest import restore_default_definitions
from tests.factories import AccountFactory, LeadFactory

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def rep_user():
    user = get_user_model().objects.create_user(
        "rep.requalify", "rep.requalify@example.com", PASSWORD, first_name="Robin"
    )
    user.groups.add(Group.objects.get(name=SALES_REP))
    SalesRep.objects.create(user=user, region="NA")
    return user


def engage(lead: Lead, kind: str, tag: str, at=None) -> None:
    """Record an event as the API does, then run the rescore its message asks for, as a scoring
    worker would (here, whatever the suite left Celery's eager setting at)."""
    engagement_events_record(
        events=[
            EngagementEvent(
                lead=lead,
                kind=kind,
                occurred_at=at or timezone.now() - timedelta(minutes=1),
                source_system="browser-test",
                external_id=tag,
            )
        ]
    )
    tasks.rescore_leads([lead.pk])


def full_rescore_and_sweep() -> None:
    job = services.rescore_job_create(reason="manual")
    for chunk in job.chunks.all():
        services.rescore_chunk_run(chunk_id=chunk.pk)
    tasks.sweep_scoring()


def test_a_rejected_mql_stays_in_nurture_until_it_engages_again(
    page, live_server, rep_user, artifacts
):
    account = AccountFactory(
        industry="software", employees=800, annual_revenue=50_000_000, region="NA", country="US"
    )
    lead = LeadFactory(first_name="Hedy", last_name="Lamarr", account=account, seniority="director")
    engage(lead, "demo_request", "demo-1", at=timezone.now() - timedelta(hours=2))
    handoff = Handoff.objects.get(lead=lead, outcome="pending")
    assert handoff.assignee == rep_user

    log_in(page, live_server, "rep.requalify")
    page.goto(f"{live_server.url}/leads/handoffs/{handoff.pk}/")
    page.select_option("#reject select[name=reason]", label="Bad timing")
    page.click("#reject button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Lead rejected")
    assert Lead.objects.get(pk=lead.pk).stage == "nurture"

    # A full rescore (a publish, the daily decay) and the sweep: the old engagement that sales
    # judged does not bring it back.
    full_rescore_and_sweep()
    assert Lead.objects.get(pk=lead.pk).stage == "nurture"
    assert not Handoff.objects.filter(lead=lead, outcome="pending").exists()
    page.click("text=My leads")
    expect(page.locator(".empty")).to_contain_text("Nothing waiting")

    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    expect(page.locator("#requalification")).to_contain_text(
        "re-qualifies when it engages again after the rejection"
    )
    page.screenshot(path=str(artifacts / "lead-rejected-requalifies-when.png"), full_page=True)

    # New qualifying engagement after the rejection re-qualifies it, to the same queue.
    engage(lead, "pricing_page", "pricing-after", at=timezone.now())
    lead.refresh_from_db()
    assert lead.stage == "mql"
    move = StageTransition.objects.filter(lead=lead, to_stage="mql").latest("transitioned_at")
    assert "re-qualified" in move.reason
    assert Handoff.objects.filter(lead=lead, outcome="pending").count() == 1
    page.click("text=My leads")
    expect(page.locator("table.queue")).to_contain_text("Hedy Lamarr")
