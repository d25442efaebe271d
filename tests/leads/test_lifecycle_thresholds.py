"""The Lifecycle answers the KPIs and the backtest read: the handoff threshold and the funnel
stages sales owns. Pure: no database."""

from leads.defaults import DEFAULT_STAGES
from leads.lifecycle import Lifecycle, Stage


def _default() -> Lifecycle:
    return Lifecycle(
        stages=tuple(
            Stage(
                key=key,
                name=name,
                label=label,
                team=team,
                kind=kind,
                order=order,
                trigger_type=trigger,
                trigger_score=score,
                trigger_event_kind=event,
                opens_handoff=opens,
                on_reject_key=on_reject,
            )
            for order, (key, name, label, team, kind, trigger, score, event, opens, on_reject) in (
                enumerate(DEFAULT_STAGES)
            )
        )
    )


def test_handoff_threshold_is_the_lowest_score_trigger_that_hands_to_sales():
    lifecycle = _default()
    assert lifecycle.handoff_threshold == 65
    # A higher score stage that hands over too does not lower it; one that does not hand over
    # (a marketing "hot lead" step) does not count at all.
    hot = Stage("hot", "Hot", kind="open", order=9, trigger_type="score", trigger_score=40)
    assert Lifecycle(stages=(*lifecycle.stages, hot)).handoff_threshold == 65


def test_no_handoff_threshold_without_a_score_stage_that_hands_over():
    lead = Stage("lead", "Lead", order=0)
    assert Lifecycle(stages=(lead,)).handoff_threshold is None


def test_sales_funnel_keys_are_the_funnel_stages_sales_owns_in_order():
    assert _default().sales_funnel_keys == ["sal", "sql", "opportunity", "customer"]
