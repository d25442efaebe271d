"""KPI maths: plain functions over plain values, no ORM.

The SQL in ``metrics.queries`` counts and sums; everything that turns those counts into the
numbers people read (rates, percentiles, funnels, velocity, period arithmetic) lives here, so
both teams' numbers follow one definition that can be tested without a database. The exact
definitions are written out for people in ``docs/kpis.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")

Number = int | float | Decimal


# --- Periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A half-open interval of instants ``[start, end)``, both time-zone aware.

    Built from whole days in the display time zone, so a lead created at 23:30 New York time on
    the last day belongs to that day however far UTC has moved on.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("A period needs time-zone aware instants.")
        if self.end <= self.start:
            raise ValueError("A period must end after it starts.")

    @classmethod
    def from_dates(cls, first_day: date, last_day: date, time_zone: str | ZoneInfo) -> Period:
        """From ``first_day`` 00:00 to the midnight after ``last_day``, local to ``time_zone``."""
        if last_day < first_day:
            raise ValueError("The last day of a period cannot come before its first day.")
        zone = ZoneInfo(time_zone) if isinstance(time_zone, str) else time_zone
        return cls(
            start=datetime.combine(first_day, time.min, tzinfo=zone),
            end=datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=zone),
        )

    @property
    def first_day(self) -> date:
        """The local day the period starts on (in the time zone it was built in)."""
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last local day the period covers (its end is the midnight after it)."""
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def previous(self) -> Period:
        """The period of equal length just before this one.

        A period of whole local days moves back by the same number of calendar days, so a week
        across a daylight-saving change (167 or 169 hours) is compared with a whole week too.
        Any other period moves back by its exact duration.
        """
        if _is_local_midnight(self.start) and _is_local_midnight(self.end):
            zone = self.start.tzinfo
            return Period(
                start=datetime.combine(
                    self.first_day - timedelta(days=self.days), time.min, tzinfo=zone
                ),
                end=self.start,
            )
        # Exact elapsed time: Python subtracts datetimes sharing a tzinfo by wall clock.
        elapsed = self.end.astimezone(UTC) - self.start.astimezone(UTC)
        return Period(
            start=(self.start.astimezone(UTC) - elapsed).astimezone(self.start.tzinfo),
            end=self.start,
        )


def _is_local_midnight(instant: datetime) -> bool:
    return instant.timetz().replace(tzinfo=None) == time.min


# --- Filters ---------------------------------------------------------------------------------


# A filter value meaning "the rows that have none": no source, no campaign, no tier (an
# opportunity without a lead), no owner, an owner on no team. In URLs: ``?source=none``.
NONE = "none"
WITHOUT_DIMENSIONS = ("source", "campaign", "tier", "owner", "team")


@dataclass(frozen=True)
class KpiFilters:
    """Optional narrowing of every KPI. Values within one field are alternatives (OR); fields
    combine (AND). Empty means "all".

    Source, channel group, campaign and tier describe the lead. The owner is whoever is
    responsible for the rows a KPI counts: the handoff's assignee, the opportunity's owner, the
    lead's owner for lead cohorts. A team is the sales reps whose manager is
    ``team_manager_id``.

    ``without`` names the dimensions whose *missing* value is one of the alternatives: with
    ``without=("source",)`` the rows without a source are counted (alone, or beside
    ``source_ids``). This is what a "No source" / "No owner" / "No team" row of a table stands
    for, so its drill-down lists exactly the rows it counts.
    """

    source_ids: tuple[int, ...] = ()
    channel_groups: tuple[str, ...] = ()
    campaign_ids: tuple[int, ...] = ()
    tiers: tuple[str, ...] = ()
    owner_ids: tuple[int, ...] = ()
    team_manager_id: int | None = None
    without: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept any iterable from a form or a URL but keep the value hashable and canonical,
        # so equal filters compare (and cache) equal.
        for name in (
            "source_ids",
            "channel_groups",
            "campaign_ids",
            "tiers",
            "owner_ids",
            "without",
        ):
            object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))
        unknown = set(self.without) - set(WITHOUT_DIMENSIONS)
        if unknown:
            raise ValueError(f"No 'without' filter for {sorted(unknown)}.")

    def lacks(self, dimension: str) -> bool:
        """Whether the rows without a value of ``dimension`` are selected."""
        return dimension in self.without

    @property
    def narrows_by_owner(self) -> bool:
        return (
            bool(self.owner_ids)
            or self.team_manager_id is not None
            or self.lacks("owner")
            or self.lacks("team")
        )

    @property
    def splits_campaign_cost(self) -> bool:
        """Campaign cost is known per campaign only: it cannot be shared out to a tier or an
        owner, so cost-based KPIs are not computed under those filters."""
        return bool(self.tiers) or self.lacks("tier") or self.narrows_by_owner


NO_FILTERS = KpiFilters()


# --- Rates, money and percentiles ------------------------------------------------------------


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator ÷ denominator``; None when there is nothing to divide by (no data is not 0%)."""
    if not denominator:
        return None
    return numerator / denominator


def money(value: Number | None) -> Decimal | None:
    """An amount rounded to cents (half up, as people round money); None stays None."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def money_per(amount: Number | None, count: int) -> Decimal | None:
    """An amount shared over ``count`` things (e.g. revenue per lead), in cents; None when there
    is nothing to share it over."""
    if not count:
        return None
    return money(Decimal(str(amount or 0)) / count)


def percentile(values: Sequence[Number], fraction: float) -> float | None:
    """The ``fraction`` percentile (0 ≤ fraction ≤ 1) with linear interpolation between the two
    closest ranks: the sorted values' position ``(n − 1) × fraction``, interpolated.

    This is PostgreSQL's ``percentile_cont`` (and numpy's default), so the SQLite fallback and
    PostgreSQL agree. The median of 1, 2, 3, 4 is 2.5; their p90 is 3.7. None for no values.
    """
    if not 0 <= fraction <= 1:
        raise ValueError("A percentile fraction lies between 0 and 1.")
    ordered = sorted(float(value) for value in values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = math.ceil(position)
    weight = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * weight


def median(values: Sequence[Number]) -> float | None:
    return percentile(values, 0.5)


# --- Change vs the previous period -----------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A KPI now and in the previous equal period.

    ``absolute`` is current − previous (for a rate: the difference in points, as a fraction);
    ``relative`` is that difference over the previous value. Either is None when it cannot be
    computed: a side has no data, or (relative) the previous value is zero.
    """

    current: Number | None
    previous: Number | None
    absolute: Number | None
    relative: float | None


def change(current: Number | None, previous: Number | None) -> Change:
    if current is None or previous is None:
        return Change(current, previous, None, None)
    absolute = current - previous
    relative = None if previous == 0 else float(absolute) / float(previous)
    return Change(current, previous, absolute, relative)


# --- Pipeline velocity -----------------------------------------------------------------------


def pipeline_velocity(
    *,
    open_opportunities: int,
    win_rate: float | None,
    average_deal_size: Number | None,
    average_cycle_days: float | None,
) -> float | None:
    """Expected revenue per day: (open opportunities × win rate × average deal size) ÷ average
    sales cycle in days. None when an input has no data or the cycle is not positive."""
    if win_rate is None or average_deal_size is None or average_cycle_days is None:
        return None
    if average_cycle_days <= 0:
        return None
    return open_opportunities * win_rate * float(average_deal_size) / average_cycle_days


# --- Cohort funnel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    """One stage of a cohort funnel.

    ``reached``: leads of the cohort whose furthest stage is this one or later (a lead that
    skipped this stage passed it). ``rate_from_previous``: reached here ÷ reached at the stage
    before; ``dropped``: leads that reached the stage before but not this one. Both are None
    for the first stage.
    """

    stage: str
    reached: int
    share_of_cohort: float | None
    rate_from_previous: float | None
    dropped: int | None
    drop_rate: float | None


@dataclass(frozen=True)
class CohortFunnel:
    cohort: int
    steps: tuple[FunnelStep, ...] = field(default_factory=tuple)

    def step(self, stage: str) -> FunnelStep:
        for step in self.steps:
            if step.stage == stage:
                return step
        raise KeyError(f"No funnel stage {stage!r}; stages: {[s.stage for s in self.steps]}")

    def reached(self, stage: str) -> int:
        return self.step(stage).reached

    def rate_between(self, from_stage: str, to_stage: str) -> float | None:
        """Of the leads that reached ``from_stage``, the share that went on to ``to_stage``."""
        return rate(self.reached(to_stage), self.reached(from_stage))


def cohort_funnel(stage_keys: Sequence[str], furthest_counts: Mapping[str, int]) -> CohortFunnel:
    """A funnel from how many leads of a cohort got *at most* to each stage.

    ``stage_keys`` are the funnel's stages in order; ``furthest_counts`` maps a stage key to the
    number of leads whose furthest stage ever reached is that stage. Every lead of the cohort
    reached the first stage (it exists), so a lead counted under an unknown key is an error.
    """
    unknown = set(furthest_counts) - set(stage_keys)
    if unknown:
        raise ValueError(f"Counts for stages outside the funnel: {sorted(unknown)}")
    cohort = sum(furthest_counts.values())
    steps = []
    reached_before: int | None = None
    # Reached at a stage = got there or further: a running sum from the bottom of the funnel.
    still_counted = cohort
    for key in stage_keys:
        reached = still_counted
        still_counted -= furthest_counts.get(key, 0)
        if reached_before is None:
            dropped = drop_rate = rate_from_previous = None
        else:
            dropped = reached_before - reached
            rate_from_previous = rate(reached, reached_before)
            drop_rate = rate(dropped, reached_before)
        steps.append(
            FunnelStep(
                stage=key,
                reached=reached,
                share_of_cohort=rate(reached, cohort),
                rate_from_previous=rate_from_previous,
                dropped=dropped,
                drop_rate=drop_rate,
            )
        )
        reached_before = reached
    return CohortFunnel(cohort=cohort, steps=tuple(steps))
