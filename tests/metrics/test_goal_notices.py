"""Goal alerts and the Monday digest: who gets which e-mail, once."""

from datetime import UTC, date, datetime

import pytest
from django.core import mail
from django.utils import timezone

from leads.roles import MARKETING, REVOPS_ADMIN, SALES_REP, VIEWER
from metrics import goal_services, goals
from metrics.goal_notices import goal_alerts_send, scorecard_digest_send
from metrics.models import Goal, GoalNotice
from tests.factories import SourceFactory, UserFactory
from tests.metrics.factories import NEW_YORK, MetricLeadFactory, accepted, rejected

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 2, 16, 9, tzinfo=NEW_YORK)  # half way through Q1 2026
Q1 = goals.quarter_of(date(2026, 1, 1))


def ny(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=NEW_YORK)


@pytest.fixture
def people():
    return {
        role: UserFactory(username=f"u-{index}", email=f"{index}@example.com", role=role)
        for index, role in enumerate((MARKETING, SALES_REP, REVOPS_ADMIN, VIEWER))
    }


@pytest.fixture
def q1(monkeypatch, people):
    """Ads: 2 of 10 handoffs accepted (20 %, under its 25 % floor); all sources: 12 of 20
    (60 %, on track); MQLs: none yet (off track)."""
    monkeypatch.setattr(timezone, "now", lambda: MONDAY)
    ads, webinar = SourceFactory(name="Ads"), SourceFactory(name="Webinar")
    for source, yes in ((ads, 2), (webinar, 10)):
        for index in range(10):
            decide = accepted if index < yes else rejected
            lead = MetricLeadFactory(source=source, created_at=ny(1, 5))
            decide(at=ny(1, 20), assigned_at=ny(1, 19), lead=lead)
    draft = goal_services.goal_set_create_draft(period=Q1, actor=None)
    goal_services.goal_set_replace_goals(
        draft=draft,
        goals=[
            Goal(metric="acceptance_rate", target=50),
            Goal(metric="acceptance_rate", target=40, floor=25, scope="source", source=ads),
            Goal(metric="mqls", target=100),
            Goal(metric="response_time", target=4),  # no data: grey, never alerted
        ],
    )
    return goal_services.goal_set_publish(
        draft=draft, actor=None, effective_from=datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_a_red_goal_is_alerted_once_to_whose_commitment_it_is(q1, people):
    assert goal_alerts_send() == 2
    notices = {notice.kind: notice for notice in GoalNotice.objects.all()}
    assert set(notices) == {"floor", "red"}
    floor = notices["floor"]
    assert floor.subject == "[RevOps] Lead acceptance rate: below floor"
    assert "Lead acceptance rate (Ads) — 20.0 %, n = 10 decided handoffs" in floor.body
    assert "20.0 % is below the floor 25.0 %." in floor.body
    # Both are marketing's commitments: marketing and RevOps admins hear, not sales or viewers.
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == ["0@example.com", "0@example.com", "2@example.com", "2@example.com"]

    assert goal_alerts_send() == 0  # nothing new: no second e-mail
    assert len(mail.outbox) == 4


def test_the_monday_digest_goes_to_each_team_once_a_week(q1, people, monkeypatch):
    assert scorecard_digest_send() == 2
    assert scorecard_digest_send() == 0
    subjects = {message.subject for message in mail.outbox}
    assert subjects == {"[RevOps] Scorecard, week of 16 February 2026"}
    body = mail.outbox[0].body
    assert "Q1 2026, day 46 of 90." in body
    assert "✕ Below floor: Lead acceptance rate (Ads)" in body
    assert "✓ On track: Lead acceptance rate — 60.0 %" in body
    assert {address for message in mail.outbox for address in message.to} == {
        "0@example.com",
        "1@example.com",
        "2@example.com",
    }
    tuesday = datetime(2026, 2, 17, 9, tzinfo=NEW_YORK)
    monkeypatch.setattr(timezone, "now", lambda: tuesday)
    assert scorecard_digest_send() == 0
