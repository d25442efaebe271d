"""What counts as a lead's known outcome: one rule for the predictive score's training labels
and the backtest's outcome metrics, so both judge a score against the same won and lost leads.

Pure: the facts are read in SQL (``scoring.selectors.outcome_annotations``), decided here.
"""

from dataclasses import dataclass

from leads.lifecycle import Lifecycle


@dataclass(frozen=True)
class StageGroups:
    won: frozenset[str]
    lost_or_disqualified: frozenset[str]
    worked_by_sales: frozenset[str]  # entering one of these means sales has the lead


def stage_groups_of(lifecycle: Lifecycle) -> StageGroups:
    """The stage keys each outcome rule needs, as the lifecycle in force answers them."""
    return StageGroups(
        won=lifecycle.won_keys,
        lost_or_disqualified=lifecycle.lost_or_disqualified_keys,
        worked_by_sales=lifecycle.worked_by_sales_keys,
    )


@dataclass(frozen=True)
class OutcomeFacts:
    """What decides a lead's closed outcome (read in SQL, decided here)."""

    won_opportunity: bool = False
    reached_won_stage: bool = False
    lost_opportunity: bool = False
    in_lost_or_disqualified_stage: bool = False
    rejected_at_handoff: bool = False
    open_opportunity: bool = False
    pending_handoff: bool = False


def closed_outcome(facts: OutcomeFacts) -> int | None:
    """1 converted, 0 not converted, None still open (not used for training).

    Converted: a won opportunity, or the lead ever entered a won stage (Customer).
    Not converted: none of that, and a lost opportunity, a lost / disqualified stage now, or a
    rejection at handoff — unless something is still in play (an open opportunity or a pending
    handoff), in which case the outcome is not known yet."""
    if facts.won_opportunity or facts.reached_won_stage:
        return 1
    if facts.open_opportunity or facts.pending_handoff:
        return None
    if facts.lost_opportunity or facts.in_lost_or_disqualified_stage or facts.rejected_at_handoff:
        return 0
    return None
