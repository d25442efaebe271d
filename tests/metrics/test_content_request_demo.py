"""The demo data set's content requests (``seed_demo`` adds them after the facts)."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from leads.demo.generator import DEMO_USERNAMES
from leads.demo.hooks import demo_reset, demo_seeded
from leads.demo.loader import demo_data_reset, demo_data_seed
from metrics.meeting import content_section
from metrics.models import ContentRequest

pytestmark = pytest.mark.django_db(transaction=False)

AS_OF = datetime(2026, 3, 4, tzinfo=UTC)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the slide's matching is PostgreSQL SQL"
)
def test_the_demo_has_open_done_and_declined_content_requests_and_the_slide_shows_them(
    monkeypatch,
):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: AS_OF)
    demo_data_seed(seed=42, leads=400, events_per_lead=1, as_of=AS_OF)
    summaries = demo_seeded(as_of=AS_OF)
    assert any("5 content requests" in line for line in summaries)

    statuses = sorted(ContentRequest.objects.values_list("status", flat=True))
    assert statuses == ["declined", "done", "in_progress", "open", "open"]
    done = ContentRequest.objects.get(status="done")
    assert done.fulfilled_by is not None and done.closed_by.username == "marketing.riley"
    assert all(r.requested_by == r.handoff.assignee for r in ContentRequest.objects.all())
    section = content_section(AS_OF)
    assert section["requests"]["open"] == 3
    assert section["groups"], "the demo has open deals to match content to"

    # Seeding again adds none; a reset removes them with the facts.
    assert any("0 content requests" in line for line in demo_seeded(as_of=AS_OF))
    assert ContentRequest.objects.count() == 5
    demo_reset(usernames=DEMO_USERNAMES)
    demo_data_reset()
    assert not ContentRequest.objects.exists()
