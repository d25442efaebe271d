"""Goal maths: periods, pace, forecast and the red / amber / green rule. Plain values, no ORM.

Every shared goal is read the same way, on the scorecard page, at the top of the overview and on
the meeting's first slide:

* **actual to date**: the goal's KPI over the goal's period so far (``metrics.queries``);
* **pace**: where the run-rate lands by the period's end. A count or a sum (MQLs, bookings)
  accumulates, so its pace is ``actual × period days ÷ elapsed days``; a rate or a median
  (acceptance rate, response time) does not, so its pace is the value to date;
* **forecast** (won amounts only: total bookings, marketing-sourced revenue, revenue from target
  accounts): won so far, plus the open pipeline (of the same origin or accounts) weighted by the
  historical stage-to-won conversion of the leads created in the ``HISTORY_MONTHS`` months before
  the period, times the share of it that can still close (``days left ÷ average opportunity
  cycle``, at most 1);
* **status**, by ``judge``'s rule (first rule that applies):

  1. no value to judge (no data, or the period has not begun) → grey, "No data" / "Not started";
  2. a count or sum that already reached a higher-is-better target → green, "Met";
  3. a rate or median over fewer than ``MIN_SAMPLE`` items → grey, "Too little data";
  4. a count or sum before ``EARLY_SHARE`` of the period has elapsed → grey, "Too early";
  5. the value to date is past the goal's floor (a ceiling when lower is better) → red,
     "Below floor" / "Above ceiling";
  6. the projection (the forecast where there is one, else the pace) is at or better than the
     amber threshold (default: the target) → green, "On track";
  7. at or better than the red threshold (default: 10 % worse than the target) → amber,
     "At risk";
  8. otherwise → red, "Off track".

Colour is never the only signal: every status has a word, and a sentence saying why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# --- What a goal can be about ----------------------------------------------------------------

# Who made the commitment: the two sides of the SLA, or the revenue team as a whole.
MARKETING = "marketing"
SALES = "sales"
SHARED = "shared"
SIDES = ((SHARED, "Revenue team"), (MARKETING, "Marketing commits"), (SALES, "Sales commits"))


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    unit: str  # "count", "money", "percent", "hours" (as metrics.templatetags.kpi_format)
    accumulates: bool  # counts and sums grow through the period; rates and medians do not
    higher_is_better: bool
    side: str  # whose commitment it is, unless the goal says otherwise
    definition: str
    sample_label: str = ""  # what a rate's sample size counts
    forecast: bool = False  # a won amount: forecast from the open pipeline


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("mqls", "MQLs", "count", True, True, MARKETING,
               "Leads created in the period that reached MQL (or went further), as the cohort "
               "funnel counts them."),
    MetricSpec("sals", "SALs", "count", True, True, SHARED,
               "Leads created in the period that reached SAL (sales accepted) or further."),
    MetricSpec("sqls", "SQLs", "count", True, True, SHARED,
               "Leads created in the period that reached SQL or further."),
    MetricSpec("opportunities", "Opportunities created", "count", True, True, SHARED,
               "Opportunities created in the period."),
    MetricSpec("marketing_pipeline", "Marketing-sourced pipeline", "money", True, True,
               MARKETING, "Amount of the opportunities created in the period whose lead came "
               "from a marketing-sourced source."),
    MetricSpec("marketing_revenue", "Marketing-sourced revenue", "money", True, True, SHARED,
               "Amount won in the period on opportunities whose lead came from a "
               "marketing-sourced source.", forecast=True),
    MetricSpec("bookings", "Total bookings", "money", True, True, SHARED,
               "Amount of every opportunity won in the period.", forecast=True),
    MetricSpec("target_pipeline", "Pipeline from target accounts", "money", True, True, SHARED,
               "Amount of the opportunities created in the period on an account of the "
               "target-account list the period is counted under (its list at the period's end, "
               "or now while it runs); an opportunity's account is its own, else its lead's."),
    MetricSpec("target_revenue", "Revenue (won) from target accounts", "money", True, True,
               SHARED, "Amount won in the period on opportunities of target accounts (the same "
               "list and account as the pipeline from target accounts).", forecast=True),
    MetricSpec("acceptance_rate", "Lead acceptance rate", "percent", False, True, MARKETING,
               "Accepted ÷ (accepted + rejected) handoffs assigned in the period: the quality "
               "of what marketing hands over.", sample_label="decided handoffs"),
    MetricSpec("response_time", "Median response time", "hours", False, False, SALES,
               "Median business hours from assignment to first response, handoffs assigned in "
               "the period.", sample_label="answered handoffs"),
    MetricSpec("sla_compliance", "Response SLA compliance", "percent", False, True, SALES,
               "Handoffs answered by their response due time ÷ responses due in the period.",
               sample_label="responses due"),
    MetricSpec("decision_sla", "Decided within the SLA", "percent", False, True, SALES,
               "Handoffs accepted or rejected by their accept-by time (the SLA's business "
               "hours) ÷ decisions due in the period.", sample_label="decisions due"),
    MetricSpec("feedback_loop", "Rejections explained", "percent", False, True, SALES,
               "Rejections with a reason (and a note where the reason needs one) ÷ rejections "
               "in the period: the feedback-loop completion.", sample_label="rejections"),
)  # fmt: skip
METRICS_BY_KEY = {spec.key: spec for spec in METRICS}
METRIC_CHOICES = tuple((spec.key, spec.label) for spec in METRICS)

# A status on fewer decided handoffs than this would swing on one lead.
MIN_SAMPLE = 10
# Before this share of the period, a run-rate is mostly noise.
EARLY_SHARE = 0.10
# The red threshold when the goal does not set one: this much worse than the target.
DEFAULT_RED_MARGIN = 0.10
HISTORY_MONTHS = 6


# --- Periods ---------------------------------------------------------------------------------

MONTH = "month"
QUARTER = "quarter"
PERIOD_KINDS = ((QUARTER, "Quarter"), (MONTH, "Month"))
_KEY = re.compile(r"^(?P<year>\d{4})-(?:Q(?P<quarter>[1-4])|(?P<month>0[1-9]|1[0-2]))$")


@dataclass(frozen=True, order=True)
class GoalPeriod:
    """A calendar month or quarter, by its local days."""

    first_day: date
    last_day: date
    kind: str

    @property
    def key(self) -> str:
        """ "2026-Q4" or "2026-11": how the period is named in a URL."""
        if self.kind == QUARTER:
            return f"{self.first_day.year}-Q{(self.first_day.month - 1) // 3 + 1}"
        return f"{self.first_day:%Y-%m}"

    @property
    def label(self) -> str:
        if self.kind == QUARTER:
            return f"Q{(self.first_day.month - 1) // 3 + 1} {self.first_day.year}"
        return f"{self.first_day:%B %Y}"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def previous(self) -> GoalPeriod:
        day = self.first_day - timedelta(days=1)
        return quarter_of(day) if self.kind == QUARTER else month_of(day)

    def next(self) -> GoalPeriod:
        day = self.last_day + timedelta(days=1)
        return quarter_of(day) if self.kind == QUARTER else month_of(day)


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def month_of(day: date) -> GoalPeriod:
    return GoalPeriod(day.replace(day=1), _month_end(day.year, day.month), MONTH)


def quarter_of(day: date) -> GoalPeriod:
    first_month = (day.month - 1) // 3 * 3 + 1
    return GoalPeriod(
        date(day.year, first_month, 1), _month_end(day.year, first_month + 2), QUARTER
    )


def period_of(kind: str, day: date) -> GoalPeriod:
    if kind == QUARTER:
        return quarter_of(day)
    if kind == MONTH:
        return month_of(day)
    raise ValueError(f"A goal period is a month or a quarter, not {kind!r}.")


def parse_period_key(key: str) -> GoalPeriod:
    """ "2026-Q4" → the fourth quarter of 2026; "2026-11" → November 2026. ValueError else."""
    match = _KEY.match((key or "").strip())
    if match is None:
        raise ValueError(
            f"{key!r} is not a period: write 2026-Q4 for a quarter, 2026-11 for a month."
        )
    year = int(match["year"])
    if match["quarter"]:
        return quarter_of(date(year, (int(match["quarter"]) - 1) * 3 + 1, 1))
    return month_of(date(year, int(match["month"]), 1))


def elapsed_days(start: datetime, end: datetime, now: datetime) -> float:
    """Days of ``[start, end)`` gone by at ``now``, fractional, between 0 and the whole.

    Counted in the period's own time zone by the wall clock, so a quarter is its 90-odd local
    days whatever daylight saving does inside it."""
    now = now.astimezone(start.tzinfo)
    total = (end - start).total_seconds()
    gone = min(max((now - start).total_seconds(), 0.0), total)
    return gone / 86_400


# --- Pace and forecast -----------------------------------------------------------------------


def pace(actual: float | None, *, accumulates: bool, elapsed: float, total: float) -> float | None:
    """Where the goal's value lands at the period's end if it keeps its rate so far.

    ``elapsed`` and ``total`` are days. A count or sum is extrapolated linearly
    (``actual × total ÷ elapsed``); nothing can be extrapolated before any time has passed
    (None). A rate or a median is its value to date. A finished period's pace is its actual.
    """
    if actual is None:
        return None
    if total <= 0:
        raise ValueError("A period lasts more than no time.")
    if not accumulates:
        return float(actual)
    if elapsed <= 0:
        return None
    if elapsed >= total:
        return float(actual)
    return float(actual) * total / elapsed


def closing_share(days_left: float, cycle_days: float | None) -> float | None:
    """The share of today's open pipeline that can still close by the period's end: the days
    left over the average opportunity cycle, at most all of it. None without a known cycle."""
    if days_left <= 0:
        return 0.0
    if cycle_days is None or cycle_days <= 0:
        return None
    return min(1.0, days_left / cycle_days)


def forecast(
    actual: float | None,
    *,
    open_by_stage: Mapping[str, float],
    won_rate_from: Mapping[str, float | None],
    days_left: float,
    cycle_days: float | None,
) -> float | None:
    """The won amount expected by the period's end: won so far, plus each stage's open pipeline
    × the historical share of leads at that stage that went on to win, × ``closing_share``.

    None when there is nothing to forecast from: no actual, no stage with a known conversion,
    or no known cycle while days remain. Open pipeline at a stage without a known conversion
    (a stage off the funnel) adds nothing. A finished period's forecast is its actual.
    """
    if actual is None:
        return None
    if days_left <= 0:
        return float(actual)
    known = {stage: rate for stage, rate in won_rate_from.items() if rate is not None}
    share = closing_share(days_left, cycle_days)
    if not known or share is None:
        return None
    expected = sum(float(amount) * known.get(stage, 0.0) for stage, amount in open_by_stage.items())
    return float(actual) + expected * share


# --- Status ----------------------------------------------------------------------------------

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"


@dataclass(frozen=True)
class Status:
    colour: str  # green, amber, red, grey (not rated)
    word: str
    why: str


@dataclass(frozen=True)
class GoalTerms:
    """What was agreed: a target on a metric, and when it turns amber or red."""

    metric: str
    target: float
    higher_is_better: bool
    amber_at: float | None = None
    red_at: float | None = None
    floor: float | None = None  # a ceiling when lower is better

    @property
    def spec(self) -> MetricSpec:
        return METRICS_BY_KEY[self.metric]

    @property
    def amber_threshold(self) -> float:
        return self.target if self.amber_at is None else self.amber_at

    @property
    def red_threshold(self) -> float:
        if self.red_at is not None:
            return self.red_at
        margin = abs(self.target) * DEFAULT_RED_MARGIN
        return self.target - margin if self.higher_is_better else self.target + margin


def terms_problems(terms: GoalTerms) -> dict[str, str]:
    """What is inconsistent in a goal's thresholds, by field (empty: nothing)."""
    problems = {}
    better = "above" if terms.higher_is_better else "below"
    worse = "below" if terms.higher_is_better else "above"

    def at_least_as_good(a: float, b: float) -> bool:
        return a >= b if terms.higher_is_better else a <= b

    if terms.target < 0:
        problems["target"] = "A target cannot be negative."
    if terms.spec.unit == "percent" and terms.target > 1:
        problems["target"] = "A rate target is at most 100 %."
    if terms.amber_at is not None and terms.red_at is not None:
        if not at_least_as_good(terms.amber_at, terms.red_at):
            problems["red_at"] = (
                f"The red threshold must be {worse} the amber one "
                f"({'higher' if terms.higher_is_better else 'lower'} is better)."
            )
    elif terms.red_at is not None and not at_least_as_good(terms.amber_threshold, terms.red_at):
        problems["red_at"] = f"The red threshold must be {worse} the target."
    if terms.floor is not None and not at_least_as_good(terms.target, terms.floor):
        name = "floor" if terms.higher_is_better else "ceiling"
        problems["floor"] = f"The {name} must not be {better} the target."
    return problems


def _is_at_least_as_good(value: float, threshold: float, higher_is_better: bool) -> bool:
    return value >= threshold if higher_is_better else value <= threshold


def judge(
    terms: GoalTerms,
    *,
    actual: float | None,
    projected: float | None,
    sample: int | None,
    elapsed_share: float,
    fmt=str,
) -> Status:
    """The goal's status by the rule in this module's docstring. ``projected`` is the forecast
    where there is one, else the pace; ``elapsed_share`` is the share of the period gone by
    (0 to 1); ``fmt`` writes a value in the goal's unit for the sentence saying why."""
    spec = terms.spec
    if elapsed_share <= 0:
        return Status(GREY, "Not started", "The period has not begun.")
    if actual is None:
        counted = spec.sample_label or "no rows"
        return Status(GREY, "No data", f"Nothing to measure yet ({counted}).")
    if spec.accumulates and terms.higher_is_better and actual >= terms.target:
        why = f"{fmt(actual)} already reached the target {fmt(terms.target)}."
        return Status(GREEN, "Met", why)
    if not spec.accumulates and (sample or 0) < MIN_SAMPLE:
        return Status(
            GREY,
            "Too little data",
            f"Only {sample or 0} {spec.sample_label}: at least {MIN_SAMPLE} are needed to judge.",
        )
    if spec.accumulates and elapsed_share < EARLY_SHARE:
        return Status(
            GREY,
            "Too early",
            f"Less than {EARLY_SHARE:.0%} of the period has passed: the run-rate says little yet.",
        )
    if terms.floor is not None and not _is_at_least_as_good(
        actual, terms.floor, terms.higher_is_better
    ):
        if terms.higher_is_better:
            why = f"{fmt(actual)} is below the floor {fmt(terms.floor)}."
            return Status(RED, "Below floor", why)
        why = f"{fmt(actual)} is above the ceiling {fmt(terms.floor)}."
        return Status(RED, "Above ceiling", why)
    if projected is None:
        return Status(GREY, "Too early", "Not enough time has passed to project the period's end.")
    what = "heading for" if spec.accumulates else "at"
    if _is_at_least_as_good(projected, terms.amber_threshold, terms.higher_is_better):
        return Status(
            GREEN, "On track", f"{what.capitalize()} {fmt(projected)} against {fmt(terms.target)}."
        )
    if _is_at_least_as_good(projected, terms.red_threshold, terms.higher_is_better):
        return Status(
            AMBER,
            "At risk",
            f"{what.capitalize()} {fmt(projected)}, short of {fmt(terms.amber_threshold)}; red "
            f"past {fmt(terms.red_threshold)}.",
        )
    return Status(
        RED,
        "Off track",
        f"{what.capitalize()} {fmt(projected)}, past the red threshold "
        f"{fmt(terms.red_threshold)} (target {fmt(terms.target)}).",
    )


# --- One goal, read --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A goal's KPI over its period so far: the value and, for a rate, how many items it is
    over; for a won amount, what the forecast needs."""

    actual: float | None
    sample: int | None = None
    open_by_stage: Mapping[str, float] | None = None
    won_rate_from: Mapping[str, float | None] | None = None
    cycle_days: float | None = None


@dataclass(frozen=True)
class GoalResult:
    actual: float | None
    sample: int | None
    pace: float | None
    forecast: float | None
    status: Status
    progress: float | None  # actual ÷ target, for a bar (0 to 1)


def evaluate(
    terms: GoalTerms,
    reading: Reading,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    fmt=str,
) -> GoalResult:
    """Pace, forecast and status of one goal over ``[start, end)`` as of ``now``."""
    spec = terms.spec
    total = (end - start).total_seconds() / 86_400
    gone = elapsed_days(start, end, now)
    goal_pace = pace(reading.actual, accumulates=spec.accumulates, elapsed=gone, total=total)
    goal_forecast = None
    if spec.forecast and reading.won_rate_from is not None:
        goal_forecast = forecast(
            reading.actual,
            open_by_stage=reading.open_by_stage or {},
            won_rate_from=reading.won_rate_from,
            days_left=total - gone,
            cycle_days=reading.cycle_days,
        )
    projected = goal_forecast if goal_forecast is not None else goal_pace
    status = judge(
        terms,
        actual=reading.actual,
        projected=projected,
        sample=reading.sample,
        elapsed_share=gone / total,
        fmt=fmt,
    )
    progress = None
    if reading.actual is not None and terms.target > 0 and spec.accumulates:
        progress = min(1.0, max(0.0, reading.actual / terms.target))
    return GoalResult(
        actual=reading.actual,
        sample=reading.sample,
        pace=goal_pace,
        forecast=goal_forecast,
        status=status,
        progress=progress if progress is None or math.isfinite(progress) else None,
    )
