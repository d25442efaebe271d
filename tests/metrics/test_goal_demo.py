"""The demo data set's goals and past meetings (``seed_demo`` runs them after the facts)."""

from datetime import UTC, date, datetime

import pytest

from leads.demo.generator import DEMO_USERNAMES
from leads.demo.hooks import demo_reset, demo_seeded
from leads.demo.loader import demo_data_reset, demo_data_seed
from metrics import goal_selectors, goals
from metrics.meeting import meeting_action_items
from metrics.models import GoalSet, Meeting

pytestmark = pytest.mark.django_db(transaction=False)

AS_OF = datetime(2026, 3, 4, tzinfo=UTC)  # a Wednesday, two thirds into Q1 2026


def goal_lines(summaries: list[str]) -> list[str]:
    """The goals' line of the seed's summary (other apps add their own)."""
    return [line for line in summaries if line.startswith("Demo goals")]


def test_demo_goals_show_every_colour_and_past_meetings_carry_their_actions(monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: AS_OF)
    demo_data_seed(seed=42, leads=400, events_per_lead=1, as_of=AS_OF)
    [summary] = goal_lines(demo_seeded(as_of=AS_OF))
    assert "Q4 2025" in summary and "Q1 2026" in summary and "3 past weekly meetings" in summary

    q1, q4 = goals.quarter_of(date(2026, 1, 1)), goals.quarter_of(date(2025, 10, 1))
    for period in (q1, q4):
        assert goal_selectors.goal_set_in_force(period) is not None
    # This quarter's goals include pipeline from the demo's target accounts, read non-zero.
    [target] = [
        row
        for group in goal_selectors.scorecard(q1)["groups"]
        for row in group["rows"]
        if row["metric"] == "target_pipeline"
    ]
    assert target["actual"] > 0 and target["side"] == "shared"
    colours = set()
    for period in (q1, q4):
        card = goal_selectors.scorecard(period)
        colours |= {row["status"]["colour"] for g in card["groups"] for row in g["rows"]}
    assert {"green", "red"} <= colours

    held = list(Meeting.objects.order_by("held_on").values_list("held_on", flat=True))
    assert held == [date(2026, 2, 9), date(2026, 2, 16), date(2026, 2, 23)]
    latest = Meeting.objects.get(held_on=date(2026, 2, 23))
    items = list(meeting_action_items(latest))
    carried = [item for item in items if item.meeting_id != latest.pk]
    # Two earlier actions still open, and one done on the meeting's day (shown ticked).
    assert sorted(item.done_at is None for item in carried) == [False, True, True]

    # Seeding again leaves the goals alone; a reset removes the meetings first, so the demo
    # users they point at can go.
    assert "none added" in goal_lines(demo_seeded(as_of=AS_OF))[0]
    demo_reset(usernames=DEMO_USERNAMES)
    demo_data_reset()
    assert not Meeting.objects.exists()
    assert GoalSet.objects.count() == 2
