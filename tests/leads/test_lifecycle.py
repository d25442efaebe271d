"""The Lifecycle value's rules, without a database."""

from datetime import UTC, datetime, timedelta

from leads.lifecycle import Lifecycle, Rejection, Stage

LIFECYCLE = Lifecycle(
    stages=(
        Stage("lead", "Lead", "Curious", order=1),
        Stage(
            "mql",
            "MQL",
            "Engaged",
            order=2,
            trigger_type="score",
            trigger_score=65,
            opens_handoff=True,
            on_reject_key="nurture",
            requalify_cooldown_days=7,
        ),
        Stage("sal", "SAL", "Interested", team="sales", order=3),
        Stage(
            "sql", "SQL", team="sales", order=4, trigger_type="event", trigger_event_kind="meeting"
        ),
        Stage("opportunity", "Opportunity", team="sales", order=5),
        Stage("customer", "Customer", kind="won", team="sales", order=6),
        Stage("nurture", "Nurture", kind="nurture", order=7),
        Stage("disqualified", "Disqualified", kind="disqualified", order=8),
        Stage("lost", "Closed lost", kind="lost", team="sales", order=9),
    )
)
REJECTED_AT = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def test_funnel_and_positions():
    assert LIFECYCLE.funnel == ["lead", "mql", "sal", "sql", "opportunity", "customer"]
    assert LIFECYCLE.position("lost") == 5  # just past the last open stage
    assert LIFECYCLE.position("nurture") is None


def test_a_score_moves_only_forward_out_of_marketing_stages_and_nurture():
    assert LIFECYCLE.score_target("lead", 70, excluded=False).key == "mql"
    assert LIFECYCLE.score_target("nurture", 70, excluded=False).key == "mql"
    assert LIFECYCLE.score_target("lead", 64.99, excluded=False) is None
    assert LIFECYCLE.score_target("lead", 90, excluded=True) is None  # a poor fit never
    assert LIFECYCLE.score_target("sal", 90, excluded=False) is None  # sales has it
    assert LIFECYCLE.score_target("mql", 90, excluded=False) is None  # there already
    assert LIFECYCLE.score_target("disqualified", 90, excluded=False) is None


def test_event_triggers_move_only_to_the_next_open_stage():
    [(before, stage)] = LIFECYCLE.event_triggers["meeting"]
    assert (before, stage.key) == ("sal", "sql")


def test_a_rejection_holds_the_lead_until_engagement_after_the_cool_down():
    rejection = Rejection("mql", REJECTED_AT)
    assert LIFECYCLE.requalify_counts_from(rejection) == REJECTED_AT + timedelta(days=7)
    assert LIFECYCLE.requalification(rejection, None).blocked
    during_cool_down = REJECTED_AT + timedelta(days=3)
    held = LIFECYCLE.requalification(rejection, during_cool_down)
    assert held.blocked
    assert "from 2026-03-17 (the cool-down after the rejection)" in held.explanation
    free = LIFECYCLE.requalification(rejection, REJECTED_AT + timedelta(days=8))
    assert not free.blocked
    assert not LIFECYCLE.requalification(None, None).blocked  # never rejected


def test_rejected_leads_go_to_the_stage_s_target_else_nurture():
    assert LIFECYCLE.reject_target("mql") == "nurture"
    assert LIFECYCLE.reject_target("sal") == "nurture"


def test_deals_move_leads_forward_and_close_them():
    assert LIFECYCLE.deal_target("open", "mql") == "opportunity"
    assert LIFECYCLE.deal_target("open", "opportunity") is None
    assert LIFECYCLE.deal_target("open", "customer") is None  # never back from won
    assert LIFECYCLE.deal_target("open", "lost") is None
    assert LIFECYCLE.deal_target("won", "opportunity") == "customer"
    assert LIFECYCLE.deal_target("lost", "sql") == "lost"


def test_only_disqualified_leads_are_recycled_and_only_with_a_nurture_stage():
    assert LIFECYCLE.recyclable("disqualified")
    assert not LIFECYCLE.recyclable("nurture")
    without_nurture = Lifecycle(tuple(s for s in LIFECYCLE.stages if s.key != "nurture"))
    assert not without_nurture.recyclable("disqualified")


def test_nurture_flag_follows_the_team_and_kind_entered():
    assert LIFECYCLE.in_nurture("nurture", False) is True
    assert LIFECYCLE.in_nurture("sal", True) is False
    assert LIFECYCLE.in_nurture("mql", True) is True
