"""Weekly trends of the headline KPIs: which weeks are shown, which are still maturing, and when
a week-over-week change is outside normal variation (the only change the page colours).

Pure: plain values in, frozen dataclasses out, no ORM; the weekly figures come from one grouped
query per KPI (``metrics.queries.trends``). The rules, as the README writes them down:

- **Weeks.** 13 whole weeks (Monday to Sunday, display time zone), the last one the latest week
  that ended before the period's end (or today); one more week before them is read so that the
  first shown week has a change too.
- **Maturing.** A weekly lead cohort is *maturing* while the time since the week ended is less
  than the typical time to convert (the median days from a lead's creation to its reaching the
  opportunity stage, over the leads created in the months before that did). Its rate is still
  rising as leads convert: it is drawn hollow and labelled, and its change is never coloured.
- **Unusual change.** A rate with its sample sizes (accepted ÷ decided…) is compared with the
  week before by a two-proportion z-test: coloured when |z| > 1.96 (95 %). Any other figure
  (a median, an amount) is compared with the weekly changes before it: coloured when the last
  change is more than 2 standard deviations (population) from their mean, and only with at
  least ``MIN_CHANGES`` earlier changes to judge from; when they never varied (zero standard
  deviation) any different change is unusual.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

WEEKS = 13  # weeks shown
WEEKS_READ = WEEKS + 1  # one more, so that the first shown week has a change
HISTORY_CHANGES = 12  # earlier weekly changes the last one is judged against
MIN_CHANGES = 4  # fewer than this: too few weeks to tell normal from unusual
SD_LIMIT = 2.0
Z_LIMIT = 1.96


@dataclass(frozen=True)
class WeekPoint:
    """One week of a KPI: the Monday it starts on, its value (None: nothing to measure that
    week), how many rows it is measured over, and whether the cohort is still maturing."""

    week: date
    value: float | None
    sample: int | None = None
    maturing: bool = False


@dataclass(frozen=True)
class Verdict:
    """Whether the last week's change is outside normal variation, and why (shown in words)."""

    unusual: bool
    reason: str


@dataclass(frozen=True)
class Trend:
    """A headline KPI over the weeks shown, oldest first, with its last change judged."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    is_rate: bool
    points: tuple[WeekPoint, ...]
    change: float | None  # last week − the week before
    verdict: Verdict
    typical_days: float | None = None  # the time to convert its maturity is judged by

    @property
    def last(self) -> WeekPoint | None:
        return self.points[-1] if self.points else None

    @property
    def colour(self) -> str:
        """ "positive" / "negative" for an unusual change (by the KPI's good direction), else
        "muted": ordinary week-to-week noise is not coloured."""
        if not self.verdict.unusual or not self.change:
            return "muted"
        return "positive" if (self.change > 0) == self.higher_is_better else "negative"


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weeks_to_read(as_of: date, count: int = WEEKS_READ) -> list[date]:
    """The Mondays of the ``count`` whole weeks that ended on or before ``as_of`` (the first day
    not counted: the day after the period, or today), oldest first."""
    last = monday(as_of) - timedelta(days=7)
    return [last - timedelta(days=7 * back) for back in range(count - 1, -1, -1)]


def is_maturing(week: date, *, today: date, typical_days: float | None) -> bool:
    """A week's cohort is maturing while fewer days than the typical time to convert have
    passed since the week ended (its youngest leads have not had a typical lead's time)."""
    if typical_days is None:
        return False
    days_since_end = (today - (week + timedelta(days=7))).days
    return days_since_end < typical_days


def two_proportion_z(
    rate_before: float, sample_before: int, rate_now: float, sample_now: int
) -> float | None:
    """The pooled two-proportion z statistic of ``rate_now`` against ``rate_before`` (None
    without a sample on either side; 0 when both are all-or-nothing alike)."""
    if sample_before <= 0 or sample_now <= 0:
        return None
    pooled = (rate_before * sample_before + rate_now * sample_now) / (sample_before + sample_now)
    spread = pooled * (1 - pooled) * (1 / sample_before + 1 / sample_now)
    if spread <= 0:
        return 0.0
    return (rate_now - rate_before) / math.sqrt(spread)


def _changes(points: Sequence[WeekPoint]) -> list[float]:
    """Week-over-week changes between consecutive weeks that both have a settled value."""
    return [
        after.value - before.value
        for before, after in itertools.pairwise(points)
        if before.value is not None
        and after.value is not None
        and not (before.maturing or after.maturing)
    ]


def judge_change(points: Sequence[WeekPoint], *, is_rate: bool) -> Verdict:
    """Whether the last week's change (against the week before) is outside normal variation:
    the module's rule. Maturing weeks and missing values are never judged."""
    if len(points) < 2 or points[-1].value is None or points[-2].value is None:
        return Verdict(False, "no week before to compare with")
    before, now = points[-2], points[-1]
    if before.maturing or now.maturing:
        return Verdict(False, "maturing: still converting, not a drop")
    if is_rate and before.sample and now.sample:
        z = two_proportion_z(before.value, before.sample, now.value, now.sample)
        if z is not None:
            unusual = abs(z) > Z_LIMIT
            word = "outside" if unusual else "within"
            return Verdict(unusual, f"{word} normal variation (z = {z:+.2f}, limit ±{Z_LIMIT})")
    earlier = _changes(points[:-1])[-HISTORY_CHANGES:]
    if len(earlier) < MIN_CHANGES:
        return Verdict(False, f"too few weeks to judge (fewer than {MIN_CHANGES} changes)")
    change = now.value - before.value
    mean = statistics.fmean(earlier)
    spread = statistics.pstdev(earlier)
    if spread == 0:
        unusual = change != mean
        word = "outside" if unusual else "within"
        return Verdict(unusual, f"{word} normal variation (earlier weeks never varied)")
    deviations = abs(change - mean) / spread
    unusual = deviations > SD_LIMIT
    word = "outside" if unusual else "within"
    return Verdict(
        unusual, f"{word} normal variation ({deviations:.1f} SD of earlier changes, limit 2)"
    )


def trend(
    *,
    key: str,
    label: str,
    unit: str,
    higher_is_better: bool,
    is_rate: bool,
    points: Sequence[WeekPoint],
    shown: int = WEEKS,
    typical_days: float | None = None,
) -> Trend:
    """The trend of one KPI from its weekly points (the extra week read first included): the
    last ``shown`` weeks, and the last change judged against all of them."""
    points = tuple(points)
    now, before = (points[-1], points[-2]) if len(points) >= 2 else (None, None)
    change = (
        now.value - before.value
        if now is not None and now.value is not None and before.value is not None
        else None
    )
    return Trend(
        key=key,
        label=label,
        unit=unit,
        higher_is_better=higher_is_better,
        is_rate=is_rate,
        points=points[-shown:],
        change=change,
        verdict=judge_change(points, is_rate=is_rate),
        typical_days=typical_days,
    )
