"""How a burst of handoffs would spread over the reps: the round robin's pick rule, replayed
on plain values so a publish can be previewed without locking or writing a rep. Pure: no ORM.

It mirrors ``leads.services.pipeline.RepRotation.pick`` (the rep assigned longest ago first,
in the lead's territory and segment or taking any, below capacity; a picked rep goes to the
back of the line); a test publishes for real and holds the two to the same result.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RepSlot:
    """An eligible rep as the rotation sees it, in line order (assigned longest ago first)."""

    rep_id: int
    name: str
    region: str  # "" = any territory
    tiers: tuple[str, ...]  # () = any tier
    capacity: int
    open_handoffs: int


@dataclass(frozen=True)
class RepShare:
    rep_id: int
    name: str
    new_handoffs: int
    open_before: int
    capacity: int

    @property
    def open_after(self) -> int:
        return self.open_before + self.new_handoffs

    @property
    def at_capacity(self) -> bool:
        return self.open_after >= self.capacity


@dataclass(frozen=True)
class Spread:
    shares: tuple[RepShare, ...]  # every eligible rep, most new handoffs first
    unassigned: int  # no rep in territory, segment and below capacity: the fallback queue


def spread_handoffs(line: Sequence[RepSlot], leads: Iterable[tuple[str, str]]) -> Spread:
    """Replay the round robin over ``leads`` — (account region, fit tier) in the order they
    would be handed over (lead id) — starting from ``line``."""
    queue = list(line)
    load = {rep.rep_id: rep.open_handoffs for rep in line}
    new = dict.fromkeys(load, 0)
    unassigned = 0
    for region, tier in leads:
        for position, rep in enumerate(queue):
            if rep.region not in ("", region):
                continue
            if rep.tiers and tier not in rep.tiers:
                continue
            if load[rep.rep_id] >= rep.capacity:
                continue
            load[rep.rep_id] += 1
            new[rep.rep_id] += 1
            queue.append(queue.pop(position))
            break
        else:
            unassigned += 1
    shares = tuple(
        sorted(
            (
                RepShare(rep.rep_id, rep.name, new[rep.rep_id], rep.open_handoffs, rep.capacity)
                for rep in line
            ),
            key=lambda share: (-share.new_handoffs, share.name),
        )
    )
    return Spread(shares=shares, unassigned=unassigned)
