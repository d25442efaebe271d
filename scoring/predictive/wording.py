"""The predictive score's reasons in words a rep reads: "raises the chance a lot", and what the
reason alone would do to an average lead ("12 % → 25 %"), instead of log-odds. Pure: no ORM."""

import math
from dataclasses import dataclass

# How far a reason moves the log-odds before it counts as "a lot" or only "slightly": ±1 roughly
# doubles or halves the odds (×2.7), ±0.3 moves them by about a third.
A_LOT = 1.0
SLIGHTLY = 0.3


@dataclass(frozen=True)
class ChanceEffect:
    text: str  # "raises the chance a lot"
    average_before: int  # an average lead's chance, %
    average_after: int  # the same lead with only this reason added, %
    log_odds: float

    @property
    def raises(self) -> bool:
        return self.log_odds > 0


def _percent(probability: float) -> int:
    return round(100 * probability)


def chance_effect(log_odds: float, baseline: float) -> ChanceEffect:
    """``log_odds``: a reason's contribution; ``baseline``: an average lead's probability."""
    direction = "raises" if log_odds > 0 else "lowers"
    size = abs(log_odds)
    degree = " a lot" if size >= A_LOT else "" if size >= SLIGHTLY else " slightly"
    baseline = min(max(baseline, 1e-6), 1 - 1e-6)
    after = 1 / (1 + math.exp(-(math.log(baseline / (1 - baseline)) + log_odds)))
    return ChanceEffect(
        text=f"{direction} the chance{degree}",
        average_before=_percent(baseline),
        average_after=_percent(after),
        log_odds=log_odds,
    )
