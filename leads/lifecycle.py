"""The lifecycle in force at an instant, as one immutable value. Pure: no ORM.

Every rule that depends on the shape of the lifecycle lives here, once: the funnel order and
positions, which stages a score may move a lead out of and into, what an engagement event
triggers, where a rejected lead goes and when it may re-qualify, and what an open, won or lost
deal implies for its lead. ``leads.selectors.lifecycle_at`` builds the value from the version in
force (through ``version_in_force``); scoring, imports, the KPIs, the meeting page and the
backtest read these answers instead of deriving them from stage rows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

# Stage kinds, teams and trigger types (the values of leads.choices, repeated so this module
# stays importable without Django).
OPEN, WON, LOST, NURTURE, DISQUALIFIED = "open", "won", "lost", "nurture", "disqualified"
MARKETING, SALES = "marketing", "sales"
SCORE, EVENT, MANUAL = "score", "event", "manual"


@dataclass(frozen=True)
class Stage:
    key: str
    name: str
    label: str = ""  # the buyer-language label, e.g. "Engaged"
    kind: str = OPEN
    team: str = MARKETING
    order: int = 0
    trigger_type: str = MANUAL
    trigger_score: int | None = None
    trigger_event_kind: str = ""
    opens_handoff: bool = False
    on_reject_key: str = ""
    requalify_cooldown_days: int = 0

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.label})" if self.label else self.name

    @property
    def is_score_triggered(self) -> bool:
        return self.kind == OPEN and self.trigger_type == SCORE and self.trigger_score is not None


@dataclass(frozen=True)
class Rejection:
    """A lead's latest rejection at a handoff: the stage it was rejected from and when."""

    stage_key: str
    rejected_at: datetime


@dataclass(frozen=True)
class Requalification:
    """Whether a rejected lead may move on score again, and in words when it will."""

    blocked: bool
    counts_from: datetime | None  # qualifying engagement must occur at or after this instant
    explanation: str


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle stages in force, in order, and the rules that follow from them."""

    stages: tuple[Stage, ...]
    version_id: int | None = None
    version_number: int | None = None

    # --- Shape -----------------------------------------------------------------------------

    @cached_property
    def by_key(self) -> dict[str, Stage]:
        return {stage.key: stage for stage in self.stages}

    @cached_property
    def keys(self) -> list[str]:
        return [stage.key for stage in self.stages]

    @cached_property
    def names(self) -> dict[str, str]:
        return {stage.key: stage.name for stage in self.stages}

    @cached_property
    def open_keys(self) -> list[str]:
        return [s.key for s in self.stages if s.kind == OPEN]

    @cached_property
    def funnel(self) -> list[str]:
        """Open stages then the (first) won stage: the way to revenue."""
        return self.open_keys + [s.key for s in self.stages if s.kind == WON][:1]

    @cached_property
    def first(self) -> str:
        return self.funnel[0] if self.funnel else "lead"

    def _first_of_kind(self, kind: str) -> str | None:
        return next((s.key for s in self.stages if s.kind == kind), None)

    @cached_property
    def won_key(self) -> str | None:
        return self._first_of_kind(WON)

    @cached_property
    def lost_key(self) -> str | None:
        return self._first_of_kind(LOST)

    @cached_property
    def nurture_key(self) -> str | None:
        return self._first_of_kind(NURTURE)

    @cached_property
    def won_keys(self) -> frozenset[str]:
        return frozenset(s.key for s in self.stages if s.kind == WON)

    @cached_property
    def lost_or_disqualified_keys(self) -> frozenset[str]:
        return frozenset(s.key for s in self.stages if s.kind in (LOST, DISQUALIFIED))

    @cached_property
    def closed_keys(self) -> frozenset[str]:
        """Stages a lead's journey ends in: won or lost."""
        return frozenset(s.key for s in self.stages if s.kind in (WON, LOST))

    @cached_property
    def sales_open_keys(self) -> list[str]:
        return [s.key for s in self.stages if s.kind == OPEN and s.team == SALES]

    @cached_property
    def sales_funnel_keys(self) -> list[str]:
        """Funnel stages sales owns: a lead entering one moves the pipeline forward."""
        return [key for key in self.funnel if self.by_key[key].team == SALES]

    @cached_property
    def worked_by_sales_keys(self) -> frozenset[str]:
        """Entering one of these means sales has (or had) the lead."""
        sales = {s.key for s in self.stages if s.team == SALES}
        return frozenset(sales | self.won_keys | self.lost_or_disqualified_keys)

    @cached_property
    def opportunity_key(self) -> str | None:
        """The last open stage (where a deal is being decided)."""
        keys = self.open_keys
        if "opportunity" in keys:
            return "opportunity"
        return keys[-1] if keys else None

    @cached_property
    def handoff_keys(self) -> list[str]:
        return [s.key for s in self.stages if s.opens_handoff]

    def position(self, key: str) -> int | None:
        """Funnel position (0 = first stage); lost counts as just past the last open stage;
        nurture and disqualified are off the funnel (None)."""
        funnel = self.funnel
        if key in funnel:
            return funnel.index(key)
        stage = self.by_key.get(key)
        if stage is not None and stage.kind == LOST:
            return len(self.open_keys)
        return None

    def recyclable(self, key: str) -> bool:
        """A lead in ``key`` may be given another chance (back to nurture): a disqualified stage,
        when the lifecycle has a nurture stage to recycle into."""
        stage = self.by_key.get(key)
        return stage is not None and stage.kind == DISQUALIFIED and self.nurture_key is not None

    def order_of(self, key: str, default: int = -1) -> int:
        stage = self.by_key.get(key)
        return stage.order if stage is not None else default

    def in_nurture(self, key: str, current: bool) -> bool:
        """The marketing-nurture flag after entering ``key``: a sales stage clears it (a lead in
        a sales conversation leaves automated sequences), a nurture stage sets it, others keep
        it."""
        stage = self.by_key.get(key)
        if stage is None:
            return current
        if stage.team == SALES:
            return False
        if stage.kind == NURTURE:
            return True
        return current

    # --- Scores ----------------------------------------------------------------------------

    @cached_property
    def score_stages(self) -> list[Stage]:
        """Open stages a score threshold leads into, in order."""
        return [s for s in self.stages if s.is_score_triggered]

    @cached_property
    def min_score_threshold(self) -> int | None:
        return min((s.trigger_score for s in self.score_stages), default=None)

    @cached_property
    def handoff_threshold(self) -> int | None:
        """The score at which a lead is handed to sales: the lowest trigger of a score stage
        that opens a handoff (the MQL threshold)."""
        return min((s.trigger_score for s in self.score_stages if s.opens_handoff), default=None)

    @cached_property
    def score_movable_keys(self) -> list[str]:
        """Stages a score may move a lead out of: open marketing stages and nurture. Leads with
        sales, disqualified, won or lost never move on score (nor fall back)."""
        return [
            s.key
            for s in self.stages
            if (s.team == MARKETING and s.kind == OPEN) or s.kind == NURTURE
        ]

    def score_target(self, current_key: str, total: float, *, excluded: bool) -> Stage | None:
        """The furthest score-triggered stage a lead at ``current_key`` with ``total`` reaches,
        if it may move there: never a poor fit, only out of a score-movable stage, only forward
        (from nurture any score stage counts)."""
        if excluded:
            return None
        current = self.by_key.get(current_key)
        if current is None or current.key not in self.score_movable_keys:
            return None
        reached = [
            stage
            for stage in self.score_stages
            if total >= stage.trigger_score
            and (current.kind == NURTURE or stage.order > current.order)
            and stage.key != current.key
        ]
        return max(reached, key=lambda stage: stage.order, default=None)

    # --- Events ----------------------------------------------------------------------------

    @cached_property
    def event_triggers(self) -> dict[str, list[tuple[str, Stage]]]:
        """Event kind → [(stage the lead must be in, the next open stage it moves to)]. Only the
        next open stage: skipping a stage with an open handoff would leave it behind."""
        triggered: dict[str, list[tuple[str, Stage]]] = {}
        open_stages = [s for s in self.stages if s.kind == OPEN]
        for before, stage in itertools.pairwise(open_stages):
            if stage.trigger_type == EVENT and stage.trigger_event_kind:
                triggered.setdefault(stage.trigger_event_kind, []).append((before.key, stage))
        return triggered

    # --- Handoffs --------------------------------------------------------------------------

    def accept_target(self, stage_key: str) -> str | None:
        """Where a lead accepted at ``stage_key``'s handoff goes: the next open stage (e.g.
        MQL → SAL); None when ``stage_key`` is not an open stage or the last one."""
        keys = self.open_keys
        if stage_key not in keys:
            return None
        position = keys.index(stage_key)
        return keys[position + 1] if position + 1 < len(keys) else None

    # --- Rejection -------------------------------------------------------------------------

    def reject_target(self, stage_key: str) -> str | None:
        """Where a lead rejected at ``stage_key``'s handoff goes (its on-reject stage, else the
        nurture stage)."""
        stage = self.by_key.get(stage_key)
        if stage is not None and stage.on_reject_key in self.by_key:
            return stage.on_reject_key
        return self.nurture_key

    def requalify_counts_from(self, rejection: Rejection) -> datetime:
        """Engagement at or after this instant is new enough to re-qualify a rejected lead: the
        rejection plus the cool-down of the stage it was rejected from."""
        stage = self.by_key.get(rejection.stage_key)
        days = stage.requalify_cooldown_days if stage is not None else 0
        return rejection.rejected_at + timedelta(days=days)

    def requalification(
        self, rejection: Rejection | None, last_qualifying_at: datetime | None
    ) -> Requalification:
        """The re-qualification rule: a lead rejected at a handoff moves on score again only after
        a *qualifying* engagement event (a kind worth points in the scoring model in force) that
        occurred at or after the rejection plus the stage's cool-down, and while its total still
        reaches the threshold. Engagement sales already judged never brings it back."""
        if rejection is None:
            return Requalification(False, None, "")
        counts_from = self.requalify_counts_from(rejection)
        name = self.names.get(rejection.stage_key, rejection.stage_key)
        if last_qualifying_at is not None and last_qualifying_at >= counts_from:
            return Requalification(
                False,
                counts_from,
                f"Rejected as {name} on {rejection.rejected_at:%Y-%m-%d}; new engagement on "
                f"{last_qualifying_at:%Y-%m-%d} lets its score qualify it again.",
            )
        when = (
            "after the rejection"
            if counts_from == rejection.rejected_at
            else f"from {counts_from:%Y-%m-%d} (the cool-down after the rejection)"
        )
        return Requalification(
            True,
            counts_from,
            f"Rejected as {name} on {rejection.rejected_at:%Y-%m-%d}: re-qualifies when it "
            f"engages again {when} and its score still reaches the threshold.",
        )

    # --- Deals -----------------------------------------------------------------------------

    def deal_target(self, status: str, current_key: str) -> str | None:
        """Where a deal moves its lead: an open deal to the last open sales stage (never
        backwards, never out of won or lost), a won deal to the won stage, a lost one to the lost
        stage. None when the lead stays."""
        if status == OPEN:
            target = self.sales_open_keys[-1] if self.sales_open_keys else None
            if target is None or current_key in self.closed_keys:
                return None
            if self.order_of(current_key) >= self.order_of(target):
                return None
        else:
            target = self._first_of_kind(status)
        if target is None or target == current_key:
            return None
        return target
