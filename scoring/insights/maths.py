"""ICP insights' maths: win rates, Wilson intervals, lift, and the rules that turn evidence into
suggestions. Pure: no ORM, tested without a database.

* **Win rate** of a segment = won / closed deals (won + lost opportunities) in it.
* **Wilson 95 % interval** — the score interval for a binomial proportion; unlike p ± 1.96·SE it
  stays inside 0–1 and behaves with small samples and rates near 0 or 1.
* **Lift** = segment win rate / overall win rate (1.0 = no better than average).
* **Suggestions** (segments with at least the minimum number of closed deals only):
  - *lower*: the ICP gives the segment many points (≥ ``HEAVY_POINTS``) but even the upper
    bound of its win rate is below the overall rate;
  - *raise*: the lower bound of its win rate is above the overall rate but the ICP gives it few
    points (< ``LOW_POINTS``, or none).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scoring.engine import Criterion

Z_95 = 1.959963984540054
HEAVY_POINTS = 10
LOW_POINTS = 5
SUGGESTED_POINTS = 10


@dataclass(frozen=True, slots=True)
class Band:
    """A numeric band of an attribute (employees, revenue), bounds inclusive, None = open."""

    label: str
    low: float | None
    high: float | None

    def inside(self, low: float | None, high: float | None) -> bool:
        """The whole band lies within [low, high] (None = unbounded)."""
        if low is not None and (self.low is None or self.low < low):
            return False
        return high is None or (self.high is not None and self.high <= high)


EMPLOYEE_BANDS = (
    Band("1–10", None, 10),
    Band("11–199", 11, 199),
    Band("200–999", 200, 999),
    Band("1,000–5,000", 1000, 5000),
    Band("5,001+", 5001, None),
)
REVENUE_BANDS = (
    Band("under $1M", None, 999_999.99),
    Band("$1M–$20M", 1_000_000, 19_999_999.99),
    Band("$20M–$100M", 20_000_000, 99_999_999.99),
    Band("$100M–$1B", 100_000_000, 1_000_000_000),
    Band("over $1B", 1_000_000_000.01, None),
)


def wilson_interval(won: int, closed: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of won / closed; None without deals."""
    if closed < 0 or won < 0 or won > closed:
        raise ValueError(f"won ({won}) must be between 0 and closed ({closed})")
    if closed == 0:
        return None
    p = won / closed
    z2 = z * z
    denominator = 1 + z2 / closed
    centre = (p + z2 / (2 * closed)) / denominator
    half = z * math.sqrt(p * (1 - p) / closed + z2 / (4 * closed * closed)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def lift(rate: float | None, overall: float | None) -> float | None:
    if rate is None or not overall:
        return None
    return rate / overall


def lift_direction(interval: tuple[float, float] | None, overall: float | None) -> str:
    """ "higher" or "lower" when the segment's 95 % interval lies wholly above or below the
    overall rate (a lift whose interval excludes 1×), "" when it overlaps it: a 0.97× or a
    1.02× lift inside the noise is not evidence either way and is not coloured."""
    if interval is None or overall is None:
        return ""
    low, high = interval
    if low > overall:
        return "higher"
    if high < overall:
        return "lower"
    return ""


@dataclass(frozen=True, slots=True)
class Segment:
    """One value of one attribute, with its closed deals and what the ICP gives it."""

    attribute: str
    key: str  # the value criteria match (lower-cased), or a band label
    label: str
    closed: int
    won: int
    # Positive points the ICP gives the segment; None when the ICP cannot use the attribute.
    points: int | None = None
    criteria: tuple[str, ...] = ()
    excluded: bool = False

    @property
    def rate(self) -> float | None:
        return self.won / self.closed if self.closed else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.won, self.closed)


@dataclass(frozen=True, slots=True)
class Suggestion:
    kind: str  # "lower" or "raise"
    segment: Segment
    overall_rate: float
    reason: str

    @property
    def key(self) -> str:
        """What a form posts back to pick this suggestion."""
        return f"{self.kind}:{self.segment.attribute}:{self.segment.key}"


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def suggestions(
    segments: Sequence[Segment],
    *,
    overall_rate: float | None,
    min_closed: int,
    heavy_points: int = HEAVY_POINTS,
    low_points: int = LOW_POINTS,
) -> list[Suggestion]:
    """Segments whose ICP weight disagrees with their win rate, strongest evidence first."""
    if overall_rate is None:
        return []
    found = []
    for segment in segments:
        if segment.closed < min_closed or segment.points is None or not segment.key:
            continue
        low, high = segment.interval
        if segment.points >= heavy_points and high < overall_rate:
            found.append(
                Suggestion(
                    "lower",
                    segment,
                    overall_rate,
                    f"worth {segment.points} fit points, but wins {_pct(segment.rate)} "
                    f"(at most {_pct(high)}) against {_pct(overall_rate)} overall",
                )
            )
        elif low > overall_rate and segment.points < low_points and not segment.excluded:
            found.append(
                Suggestion(
                    "raise",
                    segment,
                    overall_rate,
                    f"wins {_pct(segment.rate)} (at least {_pct(low)}) against "
                    f"{_pct(overall_rate)} overall, but is worth only {segment.points} fit points",
                )
            )
    # Strongest evidence first: the distance between the interval and the overall rate.
    return sorted(found, key=lambda s: -_evidence(s))


def _evidence(suggestion: Suggestion) -> float:
    low, high = suggestion.segment.interval
    if suggestion.kind == "lower":
        return suggestion.overall_rate - high
    return low - suggestion.overall_rate


def lowered_points(points: int) -> int:
    """A heavily weighted criterion's points after a "lower" suggestion: halved (0 = drop it)."""
    return points // 2


BANDS = {"employees": EMPLOYEE_BANDS, "annual_revenue": REVENUE_BANDS}


def criterion_covers(criterion: Criterion, attribute: str, key: str) -> bool:
    """Whether the criterion applies to every deal of the segment ``attribute = key``."""
    if criterion.attribute != attribute or not key:
        return False
    if attribute in BANDS:
        band = next((b for b in BANDS[attribute] if b.label == key), None)
        return band is not None and band.inside(criterion.min_value, criterion.max_value)
    return key.lower() in criterion.values


def icp_weight(
    criteria: Sequence[Criterion], attribute: str, key: str
) -> tuple[int, tuple[str, ...], bool]:
    """(positive points, names of those criteria, excluded) the ICP gives a segment."""
    points, names, excluded = 0, [], False
    for criterion in criteria:
        if not criterion_covers(criterion, attribute, key):
            continue
        if criterion.is_exclusion:
            excluded = True
        elif criterion.points > 0:
            points += criterion.points
            names.append(criterion.name)
    return points, tuple(names), excluded
