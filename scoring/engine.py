"""The scoring engine: fit from the ICP, engagement from decaying events, and why.

Pure functions over frozen dataclasses; no ORM. The bulk paths in ``scoring.bulk`` compute the
same numbers set-based, and a property-based test holds them to identical results.

The rules, in words:

* **Fit** — each ICP criterion that matches the lead (or its account) adds its points. Any
  matching *exclusion* makes the lead a poor fit: tier D and never eligible for a score-triggered
  stage, whatever its engagement. Otherwise the tier follows the fit points (A/B/C thresholds of
  the ICP version).
* **Engagement** — each event kind has a weight (negative for unsubscribes, bounces…) and a daily
  cap: at most *cap* events of a kind count on one UTC day. Each day's points decay exponentially
  with the model's half-life, counted in whole days from the event's day to the scoring day.
  Leads whose e-mail domain is a personal mailbox or a competitor's get a fixed penalty. The sum is
  clamped between the model's floor and cap.
* **Total** = fit points + engagement, never below zero. **Grade** = tier + engagement band
  (1 = hottest), e.g. "A1".
* Every score is rounded to hundredths, half up, the same way in Python and SQL.

Decay factors out of the sum, which is what makes a weight change cheap: per kind, the engine keeps
``S_k = Σ_days min(count, cap) · 2^((day − E) / H)`` relative to an epoch day ``E``; the engagement
on day ``T`` is ``Σ_k weight_k · S_k · 2^((E − T) / H)``. A weight change re-reads no event.
"""

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

EPOCH = date(1970, 1, 1)

# Free mailbox providers: a lead writing from one is rarely a buyer (a penalty, not an exclusion).
PERSONAL_EMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "proton.me",
        "protonmail.com",
        "mail.com",
        "yandex.com",
        "qq.com",
        "163.com",
    }
)

RANGE_ATTRIBUTES = frozenset({"employees", "annual_revenue"})
ACCOUNT_ATTRIBUTES = frozenset(
    {"industry", "employees", "annual_revenue", "region", "technologies", "signals"}
)
PERSON_ATTRIBUTES = frozenset({"seniority", "title", "country"})


def quantize(value: float) -> float:
    """Round to hundredths, half up; SQL does ``FLOOR(x * 100 + 0.5) / 100``."""
    return math.floor(value * 100 + 0.5) / 100


def day_number(moment: datetime | date) -> int:
    """Days since 1970-01-01 of the UTC date of ``moment``."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return (moment - EPOCH).days


# --- Inputs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    attribute: str
    values: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    points: int = 0
    is_exclusion: bool = False


@dataclass(frozen=True, slots=True)
class IcpSpec:
    version: int
    criteria: tuple[Criterion, ...]
    tier_a_min_points: int
    tier_b_min_points: int
    tier_c_min_points: int

    def tier_for(self, points: int, *, excluded: bool) -> str:
        if excluded:
            return "D"
        if points >= self.tier_a_min_points:
            return "A"
        if points >= self.tier_b_min_points:
            return "B"
        if points >= self.tier_c_min_points:
            return "C"
        return "D"


@dataclass(frozen=True, slots=True)
class KindRule:
    weight: float
    daily_cap: int


@dataclass(frozen=True, slots=True)
class ScoringSpec:
    version: int
    half_life_days: float
    rules: Mapping[str, KindRule]
    floor: float = 0.0
    cap: float = 100.0
    personal_email_penalty: float = 0.0
    competitor_domains: frozenset[str] = frozenset()
    competitor_penalty: float = 0.0
    # Engagement at or above band_1 is band 1, then band 2, band 3; below band_3 is band 4.
    band_1: float = 60.0
    band_2: float = 30.0
    band_3: float = 10.0

    def band(self, engagement: float) -> int:
        if engagement >= self.band_1:
            return 1
        if engagement >= self.band_2:
            return 2
        if engagement >= self.band_3:
            return 3
        return 4


@dataclass(frozen=True, slots=True)
class AccountFacts:
    industry: str = ""
    employees: int | None = None
    annual_revenue: float | None = None
    region: str = ""
    technologies: frozenset[str] = frozenset()
    signals: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PersonFacts:
    seniority: str = ""
    title: str = ""
    # The account's country when it has one, else the lead's own.
    country: str = ""


@dataclass(frozen=True, slots=True)
class LeadFacts:
    person: PersonFacts
    account: AccountFacts | None
    email: str = ""


# --- Fit -----------------------------------------------------------------------------------


def criterion_matches(
    criterion: Criterion, person: PersonFacts, account: AccountFacts | None
) -> bool:
    attribute = criterion.attribute
    if attribute in ACCOUNT_ATTRIBUTES:
        if account is None:
            return False
        if attribute in RANGE_ATTRIBUTES:
            value = getattr(account, attribute)
            if value is None:
                return False
            if criterion.min_value is not None and value < criterion.min_value:
                return False
            return criterion.max_value is None or value <= criterion.max_value
        if attribute in ("technologies", "signals"):
            return any(item.lower() in criterion.values for item in getattr(account, attribute))
        return getattr(account, attribute).lower() in criterion.values
    if attribute == "title":
        title = person.title.lower()
        return any(keyword in title for keyword in criterion.values)
    return getattr(person, attribute).lower() in criterion.values


@dataclass(frozen=True, slots=True)
class PartialFit:
    points: int
    excluded: bool
    matched: tuple[tuple[str, int], ...]
    exclusions: tuple[str, ...]


def partial_fit(
    icp: IcpSpec, *, attributes: frozenset[str], person: PersonFacts, account: AccountFacts | None
) -> PartialFit:
    """Fit points from the criteria on ``attributes`` only (account part or person part)."""
    points = 0
    matched: list[tuple[str, int]] = []
    exclusions: list[str] = []
    for criterion in icp.criteria:
        if criterion.attribute not in attributes:
            continue
        if not criterion_matches(criterion, person, account):
            continue
        if criterion.is_exclusion:
            exclusions.append(criterion.name)
        else:
            points += criterion.points
            matched.append((criterion.name, criterion.points))
    return PartialFit(points, bool(exclusions), tuple(matched), tuple(exclusions))


@dataclass(frozen=True, slots=True)
class FitResult:
    points: int
    excluded: bool
    tier: str
    matched: tuple[tuple[str, int], ...]
    exclusions: tuple[str, ...]


def fit(icp: IcpSpec, lead: LeadFacts) -> FitResult:
    account_part = partial_fit(
        icp, attributes=ACCOUNT_ATTRIBUTES, person=lead.person, account=lead.account
    )
    person_part = partial_fit(
        icp, attributes=PERSON_ATTRIBUTES, person=lead.person, account=lead.account
    )
    points = account_part.points + person_part.points
    excluded = account_part.excluded or person_part.excluded
    return FitResult(
        points=points,
        excluded=excluded,
        tier=icp.tier_for(points, excluded=excluded),
        matched=account_part.matched + person_part.matched,
        exclusions=account_part.exclusions + person_part.exclusions,
    )


# --- Criteria matches ----------------------------------------------------------------------
# A score row keeps which criteria its lead matched (a bit each) and a key of what those criteria
# test. A new ICP version that tests the same things, with other points, exclusions or
# tier thresholds, then refits from the row alone: no read of the lead or its account.

MATCH_BITS = 63  # a signed 64-bit column


def _tested(criterion: Criterion) -> str:
    return repr((criterion.attribute, criterion.values, criterion.min_value, criterion.max_value))


def match_bits(icp: IcpSpec) -> tuple[int, ...]:
    """Each criterion's bit in the match mask, in the criteria's order. Bits follow what the
    criteria test, sorted, not the order they are listed in (a copied version may list them
    in another)."""
    order = sorted(range(len(icp.criteria)), key=lambda index: _tested(icp.criteria[index]))
    bits = [0] * len(icp.criteria)
    for position, index in enumerate(order):
        bits[index] = 1 << position
    return tuple(bits)


def conditions_key(icp: IcpSpec) -> int | None:
    """A stable key (a non-negative 63-bit integer) of what the criteria test: their
    attributes, values and ranges, in any order; not their names, points or whether they
    exclude. None when the criteria do not fit the bits of a match mask."""
    if len(icp.criteria) > MATCH_BITS:
        return None
    tested = sorted(_tested(criterion) for criterion in icp.criteria)
    digest = hashlib.blake2b(repr(tested).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def criteria_matched(icp: IcpSpec, lead: LeadFacts) -> int:
    """The match mask: each matching criterion's bit (``match_bits``)."""
    return sum(
        bit
        for criterion, bit in zip(icp.criteria, match_bits(icp), strict=True)
        if criterion_matches(criterion, lead.person, lead.account)
    )


def fit_from_matches(icp: IcpSpec, matches: int) -> tuple[int, bool]:
    """(points, excluded) under ``icp`` of a lead whose match mask, taken under criteria that
    test the same things, is ``matches``."""
    points, excluded = 0, False
    for criterion, bit in zip(icp.criteria, match_bits(icp), strict=True):
        if matches & bit:
            if criterion.is_exclusion:
                excluded = True
            else:
                points += criterion.points
    return points, excluded


# --- Engagement ----------------------------------------------------------------------------


def daily_counts(events: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """(kind, day) → number of events, from (kind, day number) pairs."""
    counts: dict[tuple[str, int], int] = {}
    for kind, day in events:
        counts[kind, day] = counts.get((kind, day), 0) + 1
    return counts


def decay_factor(spec: ScoringSpec, days: float) -> float:
    """2^(days / H): the multiplier that moves a sum ``days`` forward (negative: decays)."""
    return 2.0 ** (days / spec.half_life_days)


def decayed_sums(
    spec: ScoringSpec, counts: Mapping[tuple[str, int], int], *, epoch_day: int
) -> dict[str, float]:
    """Per kind with a rule: Σ_days min(count, cap) · 2^((day − E) / H)."""
    sums: dict[str, float] = {}
    for (kind, day), count in sorted(counts.items()):
        rule = spec.rules.get(kind)
        if rule is None:
            continue
        sums[kind] = sums.get(kind, 0.0) + min(count, rule.daily_cap) * decay_factor(
            spec, day - epoch_day
        )
    return sums


def email_adjustment(spec: ScoringSpec, email: str) -> float:
    domain = email.split("@", 1)[1] if "@" in email else ""
    adjustment = 0.0
    if domain in PERSONAL_EMAIL_DOMAINS:
        adjustment += spec.personal_email_penalty
    if domain in spec.competitor_domains:
        adjustment += spec.competitor_penalty
    return adjustment


def engagement_from_sums(
    spec: ScoringSpec,
    sums: Mapping[str, float],
    *,
    epoch_day: int,
    as_of_day: int,
    adjustment: float,
) -> float:
    # Kinds in a fixed order so Python and SQL add the same terms in the same order.
    raw = sum(
        spec.rules[kind].weight * sums.get(kind, 0.0) for kind in sorted(spec.rules)
    ) * decay_factor(spec, epoch_day - as_of_day)
    return quantize(min(max(raw + adjustment, spec.floor), spec.cap))


def total_score(fit_points: int, engagement: float) -> float:
    return quantize(max(fit_points + engagement, 0.0))


def grade(spec: ScoringSpec, tier: str, engagement: float) -> str:
    return f"{tier}{spec.band(engagement)}"


# --- The whole score, with its explanation --------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindContribution:
    kind: str
    events: int
    counted: int
    capped_out: int
    points_before_decay: float
    points_now: float

    @property
    def decay_removed(self) -> float:
        return quantize(self.points_before_decay - self.points_now)


@dataclass(frozen=True, slots=True)
class ScoreResult:
    fit: FitResult
    engagement: float
    total: float
    grade: str
    epoch_day: int
    as_of_day: int
    sums: Mapping[str, float]
    adjustment: float
    contributions: tuple[KindContribution, ...] = field(default=())

    @property
    def tier(self) -> str:
        return self.fit.tier


def score_lead(
    icp: IcpSpec,
    spec: ScoringSpec,
    lead: LeadFacts,
    events: Iterable[tuple[str, int]],
    *,
    as_of_day: int,
) -> ScoreResult:
    """Score one lead from its facts and its (kind, day number) events, as of ``as_of_day``."""
    fit_result = fit(icp, lead)
    counts = daily_counts(events)
    epoch_day = as_of_day
    sums = decayed_sums(spec, counts, epoch_day=epoch_day)
    adjustment = email_adjustment(spec, lead.email)
    engagement = engagement_from_sums(
        spec, sums, epoch_day=epoch_day, as_of_day=as_of_day, adjustment=adjustment
    )
    return ScoreResult(
        fit=fit_result,
        engagement=engagement,
        total=total_score(fit_result.points, engagement),
        grade=grade(spec, fit_result.tier, engagement),
        epoch_day=epoch_day,
        as_of_day=as_of_day,
        sums=sums,
        adjustment=adjustment,
        contributions=_contributions(spec, counts, sums),
    )


def _contributions(
    spec: ScoringSpec, counts: Mapping[tuple[str, int], int], sums: Mapping[str, float]
) -> tuple[KindContribution, ...]:
    per_kind: dict[str, list[int]] = {}
    for (kind, _day), count in counts.items():
        rule = spec.rules.get(kind)
        totals = per_kind.setdefault(kind, [0, 0])
        totals[0] += count
        totals[1] += min(count, rule.daily_cap) if rule else 0
    rows = []
    for kind, (events, counted) in sorted(per_kind.items()):
        rule = spec.rules.get(kind)
        weight = rule.weight if rule else 0.0
        rows.append(
            KindContribution(
                kind=kind,
                events=events,
                counted=counted,
                capped_out=events - counted if rule else 0,
                points_before_decay=quantize(weight * counted),
                points_now=quantize(weight * sums.get(kind, 0.0)),
            )
        )
    return tuple(sorted(rows, key=lambda row: -abs(row.points_now)))
