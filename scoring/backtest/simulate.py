"""The backtest's maths: replay a lead's score over time, and judge a score against outcomes.

Pure functions, no ORM, tested on hand-computed fixtures. The score itself always comes from
``scoring.engine`` (fit, decayed sums, engagement, total); this module only decides *when* to ask
the engine and what to count.

Definitions, in words:

* **Replay** — a lead's total is evaluated on the day it was created, on each day it had events
  and today. Between those days engagement only decays, so a positive score threshold is first
  reached on one of them. Fit uses the lead's facts as they are today (accounts are not
  versioned).
* **MQL week** — the Monday-based week of the first evaluated day on which the total reached the
  MQL threshold (never for a poor fit: an exclusion is never an MQL).
* **Score judged against an outcome** — the peak total up to the day the lead was first handed
  to sales (inclusive), or up to today if it never was: what happens after the handoff (meetings
  booked by sales…) must not flatter the score. "Predicted positive" = that peak reached the
  MQL threshold without an exclusion.
* **Outcome** — won (a won opportunity) is positive; lost, disqualified or rejected at handoff
  is negative; anything else is unknown and left out.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scoring import engine

# Score bands for conversion rates: [0, 20), [20, 40), … [100, ∞).
SCORE_BAND_EDGES = (0, 20, 40, 60, 80, 100)
WEEKS_BACK = 52
# 1970-01-05 (day 4) was a Monday.
_FIRST_MONDAY = 4


@dataclass(frozen=True, slots=True)
class Replay:
    fit: engine.FitResult
    engagement_today: float
    total_today: float
    grade_today: str
    # Highest total on an evaluated day up to the cutoff (handoff day, or today).
    peak_total: float
    first_mql_day: int | None

    @property
    def tier(self) -> str:
        return self.fit.tier

    def is_mql_eligible(self, threshold: float | None) -> bool:
        """Eligible today: no exclusion and the total at or above the threshold."""
        return threshold is not None and not self.fit.excluded and self.total_today >= threshold

    def reached_threshold(self, threshold: float | None) -> bool:
        """Judged against its outcome: the peak before sales took over reached the threshold."""
        return threshold is not None and not self.fit.excluded and self.peak_total >= threshold


@dataclass(frozen=True, slots=True)
class EngagementSeries:
    """A lead's engagement on each evaluated day (ascending) and today, under one scoring model:
    what both columns share when only the ICP differs."""

    days: tuple[int, ...]
    engagement: tuple[float, ...]
    engagement_today: float
    spec: engine.ScoringSpec


def engagement_series(
    spec: engine.ScoringSpec,
    email: str,
    counts: Mapping[tuple[str, int], int],
    *,
    created_day: int,
    as_of_day: int,
) -> EngagementSeries:
    """The engagement of a lead from its (kind, day) → event count, up to ``as_of_day``."""
    adjustment = engine.email_adjustment(spec, email)
    counts = {key: n for key, n in counts.items() if key[1] <= as_of_day}
    by_day: dict[int, dict[tuple[str, int], int]] = {}
    for (kind, day), n in counts.items():
        by_day.setdefault(day, {})[kind, day] = n
    days = sorted({min(created_day, as_of_day), as_of_day, *by_day})

    # Sums kept relative to the day being evaluated (moved forward with the engine's decay
    # factor), so years of history never under- or overflow a float.
    sums: dict[str, float] = {}
    previous: int | None = None
    engagement = []
    for day in days:
        if previous is not None:
            shift = engine.decay_factor(spec, previous - day)
            sums = {kind: value * shift for kind, value in sums.items()}
        for kind, value in engine.decayed_sums(spec, by_day.get(day, {}), epoch_day=day).items():
            sums[kind] = sums.get(kind, 0.0) + value
        engagement.append(
            engine.engagement_from_sums(
                spec, sums, epoch_day=day, as_of_day=day, adjustment=adjustment
            )
        )
        previous = day

    # Today's score exactly as the engine scores it (same sums, same order of additions).
    today_sums = engine.decayed_sums(spec, counts, epoch_day=as_of_day)
    engagement_today = engine.engagement_from_sums(
        spec, today_sums, epoch_day=as_of_day, as_of_day=as_of_day, adjustment=adjustment
    )
    return EngagementSeries(tuple(days), tuple(engagement), engagement_today, spec)


def replay_with_fit(
    fit_result: engine.FitResult,
    series: EngagementSeries,
    *,
    as_of_day: int,
    mql_threshold: float | None,
    cutoff_day: int | None = None,
) -> Replay:
    """One column's replay: a fit result added to an engagement series."""
    cutoff = as_of_day if cutoff_day is None else min(cutoff_day, as_of_day)
    peak = 0.0
    first_mql_day = None
    can_cross = mql_threshold is not None and not fit_result.excluded
    for day, engagement in zip(series.days, series.engagement, strict=True):
        total = engine.total_score(fit_result.points, engagement)
        if day <= cutoff:
            peak = max(peak, total)
        if first_mql_day is None and can_cross and total >= mql_threshold:
            first_mql_day = day
    return Replay(
        fit=fit_result,
        engagement_today=series.engagement_today,
        total_today=engine.total_score(fit_result.points, series.engagement_today),
        grade_today=engine.grade(series.spec, fit_result.tier, series.engagement_today),
        peak_total=peak,
        first_mql_day=first_mql_day,
    )


def replay_lead(
    icp: engine.IcpSpec,
    spec: engine.ScoringSpec,
    lead: engine.LeadFacts,
    counts: Mapping[tuple[str, int], int],
    *,
    created_day: int,
    as_of_day: int,
    mql_threshold: float | None,
    cutoff_day: int | None = None,
) -> Replay:
    """Replay one lead's score from its (kind, day) → event count, up to ``as_of_day``."""
    series = engagement_series(
        spec, lead.email, counts, created_day=created_day, as_of_day=as_of_day
    )
    return replay_with_fit(
        engine.fit(icp, lead),
        series,
        as_of_day=as_of_day,
        mql_threshold=mql_threshold,
        cutoff_day=cutoff_day,
    )


# --- Weeks -----------------------------------------------------------------------------------


def week_start(day: int) -> int:
    """The day number of the Monday starting ``day``'s week."""
    return day - (day - _FIRST_MONDAY) % 7


def week_starts(as_of_day: int, weeks: int = WEEKS_BACK) -> list[int]:
    """The Mondays of the last ``weeks`` weeks, oldest first, this week last."""
    this_week = week_start(as_of_day)
    return [this_week - 7 * n for n in range(weeks - 1, -1, -1)]


def weekly_counts(first_days: Sequence[int | None], weeks: Sequence[int]) -> list[int]:
    """How many of ``first_days`` fall in each week of ``weeks`` (Mondays, ascending)."""
    index = {monday: position for position, monday in enumerate(weeks)}
    counts = [0] * len(weeks)
    for day in first_days:
        if day is None:
            continue
        position = index.get(week_start(day))
        if position is not None:
            counts[position] += 1
    return counts


# --- Judging a score against outcomes ---------------------------------------------------------


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve as the Mann–Whitney statistic: the probability that a random
    positive scores above a random negative, ties counting half. None without both classes."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        midrank = (start + end) / 2 + 1  # ranks are 1-based; ties share their mean rank
        for position in range(start, end + 1):
            ranks[order[position]] = midrank
        start = end + 1
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    u = positive_rank_sum - positives * (positives + 1) / 2
    return u / (positives * negatives)


@dataclass(frozen=True, slots=True)
class Classification:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float | None:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else None


def classify(predicted: Sequence[bool], labels: Sequence[bool]) -> Classification:
    if len(predicted) != len(labels):
        raise ValueError("predictions and labels differ in length")
    tp = fp = fn = tn = 0
    for flagged, won in zip(predicted, labels, strict=True):
        if flagged and won:
            tp += 1
        elif flagged:
            fp += 1
        elif won:
            fn += 1
        else:
            tn += 1
    return Classification(tp, fp, fn, tn)


@dataclass(frozen=True, slots=True)
class BandRate:
    label: str
    low: float
    high: float | None
    leads: int
    won: int

    @property
    def rate(self) -> float | None:
        return self.won / self.leads if self.leads else None


def band_label(low: float, high: float | None) -> str:
    return f"{low:g}+" if high is None else f"{low:g}–{high:g}"


def band_rates(
    scores: Sequence[float], labels: Sequence[bool], edges: Sequence[float] = SCORE_BAND_EDGES
) -> list[BandRate]:
    """Leads and wins per score band ``[edge_i, edge_i+1)``; the last band is open-ended and
    scores below the first edge count in the first band."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    leads = [0] * len(edges)
    won = [0] * len(edges)
    for score, label in zip(scores, labels, strict=True):
        position = 0
        for index, edge in enumerate(edges):
            if score >= edge:
                position = index
        leads[position] += 1
        won[position] += 1 if label else 0
    bands = []
    for index, low in enumerate(edges):
        high = edges[index + 1] if index + 1 < len(edges) else None
        bands.append(BandRate(band_label(low, high), low, high, leads[index], won[index]))
    return bands


@dataclass(frozen=True, slots=True)
class OutcomeMetrics:
    leads: int
    won: int
    bands: tuple[BandRate, ...]
    classification: Classification
    auc: float | None

    @property
    def missed_wins(self) -> int:
        """Won deals whose score never reached the threshold: the definition would miss them."""
        return self.classification.false_negatives


def outcome_metrics(
    scores: Sequence[float], predicted: Sequence[bool], labels: Sequence[bool]
) -> OutcomeMetrics:
    return OutcomeMetrics(
        leads=len(labels),
        won=sum(1 for label in labels if label),
        bands=tuple(band_rates(scores, labels)),
        classification=classify(predicted, labels),
        auc=roc_auc(scores, labels),
    )


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)
