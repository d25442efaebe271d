"""The stage history an imported fact implies. Pure: no ORM.

Funnels, cycle lengths and conversion by source read ``StageTransition`` rows, so an imported
lead must carry the history a lead moving through the app would have:

* every lead starts with ``"" → lead`` at its creation;
* a lead imported at an open or won stage passed every funnel stage before it
  (``lead → mql → sal → sql``); a lost lead passed every open stage, then lost;
* a lead imported at nurture or disqualified went there from the furthest funnel stage it has
  a date for (``lead → mql → nurture`` for an MQL date), else straight from ``lead``;
* each step happens at the date the file gives for it, else at the step before's time.

Opportunities move their lead the same way: open ⇒ Opportunity at the opportunity's creation,
won ⇒ Customer at its close, lost ⇒ Closed lost at its close.

The lifecycle's shape (funnel, positions, won / lost / opportunity stages) is the shared
``leads.lifecycle.Lifecycle`` value; these functions only add the paths an import implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leads.lifecycle import LOST, OPEN, WON, Lifecycle


class HistoryProblem(ValueError):
    """The dates given for a row contradict each other; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def creation_path(lifecycle: Lifecycle, stage: str, dated: set[str] | frozenset = frozenset()):
    """Stage keys a new lead at ``stage`` went through, starting with the first funnel stage.
    ``dated`` are the stages the file gives dates for (a nurture lead with an MQL date was an
    MQL first)."""
    funnel = lifecycle.funnel
    target = lifecycle.by_key.get(stage)
    if target is None:
        raise HistoryProblem("stage", f"unknown stage {stage!r}")
    furthest_dated = max((funnel.index(key) for key in dated if key in funnel), default=0)
    if target.kind in (OPEN, WON):
        position = funnel.index(stage)
        if furthest_dated > position:
            beyond = funnel[furthest_dated]
            name = lifecycle.by_key[beyond].name
            raise HistoryProblem(
                f"{beyond}_at",
                f"has a {name} date, but its stage {target.name} comes before {name}",
            )
        return funnel[: position + 1]
    if target.kind == LOST:
        return [*lifecycle.open_keys, stage]
    # nurture / disqualified: left the funnel from the furthest stage it has a date for.
    return [*funnel[: furthest_dated + 1], stage]


def move_path(lifecycle: Lifecycle, current: str, target: str) -> list[str]:
    """Stage keys from ``current`` (excluded) to ``target`` for a lead that exists already:
    forward through the funnel stage by stage; anything else (an exit, a move back, a return
    from nurture) is one direct move. Empty when the lead is there already."""
    if current == target:
        return []
    funnel = lifecycle.funnel
    here, there = lifecycle.position(current), lifecycle.position(target)
    if current in funnel and target in funnel and here < there:
        return funnel[here + 1 : there + 1]
    if current in funnel and lifecycle.by_key.get(target) and target == lifecycle.lost_key:
        open_keys = lifecycle.open_keys
        if here is not None and here < len(open_keys) - 1:
            return [*open_keys[here + 1 :], target]
    return [target]


def timed_steps(
    keys: list[str],
    *,
    start: datetime,
    dates: dict[str, datetime],
    names: dict[str, str],
    start_label: str = "creation",
    undated_at: datetime | None = None,
) -> list[tuple[str, datetime]]:
    """Each key with its time: its date from the file, else the previous step's time (or,
    given ``undated_at``, that time, but never after the next dated step). Dates must not go
    back in time along the path."""
    upcoming: list[datetime | None] = []
    later = None
    for key in reversed(keys):
        upcoming.append(later)
        later = dates.get(key, later)
    upcoming.reverse()
    steps, previous, previous_label = [], start, start_label
    for key, next_dated in zip(keys, upcoming, strict=True):
        at = dates.get(key)
        if at is None:
            at = previous
            if undated_at is not None:
                at = max(previous, min(undated_at, next_dated or undated_at))
        elif at < previous:
            raise HistoryProblem(
                f"{key}_at",
                f"{names.get(key, key)} date {at:%Y-%m-%d %H:%M} is before the "
                f"{previous_label} ({previous:%Y-%m-%d %H:%M})",
            )
        else:
            previous_label = f"{names.get(key, key)} date"
        steps.append((key, at))
        previous = at
    return steps


@dataclass(frozen=True)
class DealMilestones:
    """What a lead's imported opportunities say about it: when it first had one, whether one
    was won (and when first), and whether all are lost (and when the last closed)."""

    opened_at: datetime
    won_at: datetime | None
    lost_at: datetime | None  # set only when every opportunity of the lead is lost


def deal_milestones(deals: list[tuple[datetime, str, datetime | None]]) -> DealMilestones:
    """From ``(created_at, status, closed_at)`` of a lead's opportunities."""
    opened_at = min(created for created, _, _ in deals)
    won = [closed for _, status, closed in deals if status == WON and closed is not None]
    lost = [closed for _, status, closed in deals if status == LOST and closed is not None]
    all_lost = bool(lost) and len(lost) == len(deals)
    return DealMilestones(
        opened_at=opened_at,
        won_at=min(won) if won else None,
        lost_at=max(lost) if all_lost else None,
    )


def deal_moves(
    lifecycle: Lifecycle, *, current: str, entered_at: datetime, deal: DealMilestones
) -> list[tuple[str, datetime]]:
    """The moves a lead makes because of its opportunities: to Opportunity (through the funnel
    stages before it) at the first opportunity's creation, then to Customer at the first win or
    to Closed lost when every opportunity is lost. Never back: a customer stays a customer.
    No move happens before the lead entered its current stage."""
    opportunity, won, lost = lifecycle.opportunity_key, lifecycle.won_key, lifecycle.lost_key
    if opportunity is None:
        return []
    here = lifecycle.position(current)
    moves: list[tuple[str, datetime]] = []
    stage, at = current, entered_at
    if here is None or here < lifecycle.position(opportunity):
        at = max(deal.opened_at, at)
        moves += [(key, at) for key in move_path(lifecycle, stage, opportunity)]
        stage = opportunity
    if stage == opportunity:
        if deal.won_at is not None and won:
            moves.append((won, max(deal.won_at, at)))
        elif deal.lost_at is not None and lost:
            moves.append((lost, max(deal.lost_at, at)))
    elif stage == lost and deal.won_at is not None and won:
        moves.append((won, max(deal.won_at, at)))  # a later win beats an earlier loss
    return moves
