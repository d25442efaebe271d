"""Handoff and SLA KPIs: lead acceptance, response time, SLA compliance, the feedback loop and
re-qualification (docs/kpis.md, "Handoff and SLA")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Trim
from django.utils import timezone

from leads.choices import HandoffOutcome
from leads.models import (
    Handoff,
)
from metrics import kpis
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries.common import (
    SECONDS_PER_HOUR,
    FactPaths,
    GroupRef,
    SourceRef,
    _group_order,
    _grouped,
    _grouped_by,
    _handoffs,
    _in,
    _percentiles,
    _scaled,
    _source_order,
    _source_ref,
)
from metrics.queries.rolled import (
    RollupSplit,
    added,
    rolled_grouped,
    rolled_percentiles,
    rollup_split,
)
from metrics.queries.shared import shared_read
from metrics.rollup_models import HandoffDay, RollupFact

# --- Lead acceptance -------------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    """Accepted ÷ (accepted + rejected) over handoffs assigned in the period; the pending ones
    are shown beside the rate, not counted in it."""

    accepted: int
    rejected: int
    pending: int
    rate: float | None


@dataclass(frozen=True)
class SourceAcceptance:
    source: SourceRef
    acceptance: Acceptance


_ACCEPTANCE_COUNTS = {
    "accepted": Count("pk", filter=Q(outcome=HandoffOutcome.ACCEPTED)),
    "rejected": Count("pk", filter=Q(outcome=HandoffOutcome.REJECTED)),
    "pending": Count("pk", filter=Q(outcome=HandoffOutcome.PENDING)),
}


def _acceptance(row: dict) -> Acceptance:
    accepted, rejected = row["accepted"], row["rejected"]
    return Acceptance(accepted, rejected, row["pending"], kpis.rate(accepted, accepted + rejected))


def acceptance_handoffs(
    period: Period, filters: KpiFilters = NO_FILTERS, *, outcome: str | None = None
) -> QuerySet[Handoff]:
    """Drill-down: the handoffs assigned in the period (optionally of one outcome)."""
    handoffs = _handoffs(filters).filter(_in("assigned_at", period))
    if outcome is not None:
        handoffs = handoffs.filter(outcome=outcome)
    return handoffs.select_related("lead__source", "assignee", "reject_reason").order_by(
        "-assigned_at", "-pk"
    )


def _acceptance_grouped(
    period: Period,
    filters: KpiFilters,
    group_by: Sequence[str],
    handoffs: QuerySet[Handoff] | None = None,
) -> dict[tuple, dict]:
    """Acceptance counts per group: the rolled-up days from the daily rollup, the rest (today,
    days waiting for a refresh) from the handoffs themselves."""
    if handoffs is None:
        handoffs = acceptance_handoffs(period, filters)
    split = rollup_split(RollupFact.HANDOFF, period)
    if split is None:
        return _grouped(handoffs, group_by, **_ACCEPTANCE_COUNTS)
    raw = _grouped(handoffs.filter(split.raw_q("assigned_at")), group_by, **_ACCEPTANCE_COUNTS)
    from_rollup = rolled_grouped(split, HandoffDay, filters, group_by, tuple(_ACCEPTANCE_COUNTS))
    return added(tuple(_ACCEPTANCE_COUNTS), raw, from_rollup, group_by=group_by)


@shared_read
def lead_acceptance(period: Period, filters: KpiFilters = NO_FILTERS) -> Acceptance:
    return _acceptance(_acceptance_grouped(period, filters, ())[()])


def lead_acceptance_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> list[SourceAcceptance]:
    found = _acceptance_grouped(period, filters, ("lead__source_id", "lead__source__name"))
    rows = [SourceAcceptance(_source_ref(*key), _acceptance(row)) for key, row in found.items()]
    return sorted(rows, key=lambda row: _source_order(row.source))


@dataclass(frozen=True)
class GroupAcceptance:
    group: GroupRef
    acceptance: Acceptance


HANDOFF_PATHS = FactPaths(lead="lead__", owner="assignee", instant="assigned_at")


def lead_acceptance_by(
    period: Period, filters: KpiFilters = NO_FILTERS, *, by: str
) -> list[GroupAcceptance]:
    """Lead acceptance broken down ``by`` owner (the assignee), team, source, campaign, tier or
    month (of the assignment): one GROUP BY."""
    handoffs, columns, ref = _grouped_by(
        acceptance_handoffs(period, filters), by, HANDOFF_PATHS, period
    )
    found = _acceptance_grouped(period, filters, columns, handoffs)
    rows = [GroupAcceptance(ref(key), _acceptance(row)) for key, row in found.items()]
    return sorted(rows, key=lambda row: _group_order(row.group))


# --- Lead response time ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseTime:
    """First response − assignment in business hours of the handoff's SLA calendar, over the
    handoffs assigned in the period that have a response; ``unanswered``: those without one."""

    answered: int
    unanswered: int
    median_hours: float | None
    p90_hours: float | None


def response_time_handoffs(
    period: Period, filters: KpiFilters = NO_FILTERS, *, answered: bool | None = None
) -> QuerySet[Handoff]:
    """Drill-down: handoffs assigned in the period; ``answered`` narrows to those with a timed
    response (True) or with no response yet (False)."""
    handoffs = acceptance_handoffs(period, filters)
    if answered is True:
        handoffs = handoffs.filter(response_business_seconds__isnull=False)
    elif answered is False:
        handoffs = handoffs.filter(first_response_at__isnull=True)
    return handoffs


_ANSWERED = Q(response_business_seconds__isnull=False)
_RESPONSE_COUNTS = {
    "answered": Count("pk", filter=_ANSWERED),
    "unanswered": Count("pk", filter=Q(first_response_at__isnull=True)),
}


def _response(row: dict, percentiles: tuple[float | None, float | None]) -> ResponseTime:
    median, p90 = percentiles
    return ResponseTime(
        answered=row["answered"],
        unanswered=row["unanswered"],
        median_hours=_scaled(median, SECONDS_PER_HOUR),
        p90_hours=_scaled(p90, SECONDS_PER_HOUR),
    )


def _response_grouped(
    period: Period, filters: KpiFilters, group_by: Sequence[str], handoffs: QuerySet[Handoff]
) -> tuple[dict[tuple, dict], dict[tuple, tuple]]:
    """Answered / unanswered counts and the response time's median and p90 per group: the
    rolled-up days from the daily rollup (counts and the days' response times), the rest from
    the handoffs themselves."""
    response = F("response_business_seconds")
    split = rollup_split(RollupFact.HANDOFF, period)
    if split is None:
        counts = _grouped(handoffs, group_by, **_RESPONSE_COUNTS)
        percentiles = _percentiles(handoffs.filter(_ANSWERED), response, (0.5, 0.9), group_by)
        return counts, percentiles
    raw = handoffs.filter(split.raw_q("assigned_at"))
    counts = added(
        tuple(_RESPONSE_COUNTS),
        _grouped(raw, group_by, **_RESPONSE_COUNTS),
        rolled_grouped(split, HandoffDay, filters, group_by, tuple(_RESPONSE_COUNTS)),
        group_by=group_by,
    )
    percentiles = rolled_percentiles(
        split, HandoffDay, filters, "response_seconds", raw, response, (0.5, 0.9), group_by
    )
    return counts, percentiles


@shared_read
def response_time(period: Period, filters: KpiFilters = NO_FILTERS) -> ResponseTime:
    counts, percentiles = _response_grouped(
        period, filters, (), acceptance_handoffs(period, filters)
    )
    return _response(counts[()], percentiles[()])


@dataclass(frozen=True)
class GroupResponseTime:
    group: GroupRef
    response: ResponseTime


def response_time_by(
    period: Period, filters: KpiFilters = NO_FILTERS, *, by: str
) -> list[GroupResponseTime]:
    """Response time broken down ``by`` owner (the assignee), team, source, campaign, tier or
    month (of the assignment): a GROUP BY for the counts, one for the percentiles."""
    handoffs, columns, ref = _grouped_by(
        acceptance_handoffs(period, filters), by, HANDOFF_PATHS, period
    )
    counts, percentiles = _response_grouped(period, filters, columns, handoffs)
    rows = [
        GroupResponseTime(ref(key), _response(row, percentiles.get(key, (None, None))))
        for key, row in counts.items()
    ]
    return sorted(rows, key=lambda row: _group_order(row.group))


# --- SLA compliance --------------------------------------------------------------------------


class SlaClock:
    RESPONSE = "response"
    ACCEPTANCE = "acceptance"


class SlaStatus:
    MET = "met"
    MISSED = "missed"
    OPEN = "open"


@dataclass(frozen=True)
class SlaResult:
    """One clock over the handoffs whose due time falls in the period: ``met`` on time,
    ``missed`` late or still not done past due, ``open`` not done and not yet due (left out of
    the rate until it resolves). Rate = met ÷ (met + missed)."""

    met: int
    missed: int
    open: int
    rate: float | None


@dataclass(frozen=True)
class SlaCompliance:
    response: SlaResult
    acceptance: SlaResult


@dataclass(frozen=True)
class RepSlaCompliance:
    rep_id: int | None
    rep_name: str
    compliance: SlaCompliance


@dataclass(frozen=True)
class SourceSlaCompliance:
    source: SourceRef
    compliance: SlaCompliance


def sla_parts() -> dict[str, dict[str, Q]]:
    """Each clock's handoffs split by what a later instant cannot change: done on time, done
    late, not done yet. Whether "not done" is missed or still open depends on when one asks,
    so the daily rollups store these parts and ``_sla_conditions`` combines them with now."""
    decided_on_time = Q(accepted_at__lte=F("accept_due_at")) | Q(
        rejected_at__lte=F("accept_due_at")
    )
    decided_late = Q(accepted_at__gt=F("accept_due_at")) | Q(rejected_at__gt=F("accept_due_at"))
    return {
        SlaClock.RESPONSE: {
            "on_time": Q(first_response_at__lte=F("response_due_at")),
            "late": Q(first_response_at__gt=F("response_due_at")),
            "not_done": Q(first_response_at__isnull=True),
        },
        SlaClock.ACCEPTANCE: {
            "on_time": decided_on_time,
            "late": decided_late,
            "not_done": Q(outcome=HandoffOutcome.PENDING),
        },
    }


def _sla_conditions(now: datetime) -> dict[str, dict[str, Q]]:
    conditions = {}
    for clock, parts in sla_parts().items():
        due = _DUE_FIELDS[clock]
        conditions[clock] = {
            SlaStatus.MET: parts["on_time"],
            SlaStatus.MISSED: parts["late"] | (parts["not_done"] & Q(**{f"{due}__lt": now})),
            SlaStatus.OPEN: parts["not_done"] & Q(**{f"{due}__gte": now}),
        }
    return conditions


_DUE_FIELDS = {SlaClock.RESPONSE: "response_due_at", SlaClock.ACCEPTANCE: "accept_due_at"}
_SLA_ROLLUP_MEASURES_BY_CLOCK = {
    SlaClock.RESPONSE: ("response_met", "response_late", "response_unanswered"),
    SlaClock.ACCEPTANCE: ("accept_met", "accept_late", "accept_undecided"),
}


def _due_ahead(column: str, now: datetime) -> RawSQL:
    """How many of a rollup row's due times (``column``, sorted epoch seconds) are not before
    ``now``: a binary search per row (today's rows hold every handoff still due, tens of
    thousands on a busy day). ``now`` goes in as the double the rollup made of it
    (``EpochSeconds``: the exact microseconds rounded to the nearest double, as Python's
    ``timestamp()`` rounds them), a constant instead of a conversion per row."""
    return RawSQL(
        f"metrics_rollup_due_not_before({column}, CAST(%s AS double precision))",
        [now.timestamp()],
        output_field=IntegerField(),
    )


def sla_rolled(
    split: RollupSplit,
    filters: KpiFilters,
    group_by: Sequence[str],
    now: datetime,
    *,
    clocks: Sequence[str] = (SlaClock.RESPONSE, SlaClock.ACCEPTANCE),
) -> dict[tuple, dict[str, int]]:
    """The SLA counts of the rolled-up days, per group, named as the raw query names them:
    done on time or late as the rollup counted them; not done, missed once its due time (the
    row keeps them) is past ``now`` and open until then. A group is there when one of the
    ``clocks`` was due in it, as in the raw query."""
    today = timezone.localtime(now, split.zone).date()
    rolled = rolled_grouped(
        split,
        HandoffDay,
        filters,
        group_by,
        tuple(name for clock in clocks for name in _SLA_ROLLUP_MEASURES_BY_CLOCK[clock]),
        computed={
            f"{name}_ahead": Sum(
                # A day before now's is past whole: none of its due times is ahead.
                Case(When(day__lt=today, then=Value(0)), default=_due_ahead(f"{name}_due", now))
            )
            for name in (_SLA_ROLLUP_MEASURES_BY_CLOCK[clock][-1] for clock in clocks)
        },
    )

    def counts(row: dict) -> dict[str, int]:
        def count(name: str) -> int:
            return row.get(name) or 0

        return {
            f"{SlaClock.RESPONSE}_{SlaStatus.MET}": count("response_met"),
            f"{SlaClock.RESPONSE}_{SlaStatus.MISSED}": count("response_late")
            + count("response_unanswered")
            - count("response_unanswered_ahead"),
            f"{SlaClock.RESPONSE}_{SlaStatus.OPEN}": count("response_unanswered_ahead"),
            f"{SlaClock.ACCEPTANCE}_{SlaStatus.MET}": count("accept_met"),
            f"{SlaClock.ACCEPTANCE}_{SlaStatus.MISSED}": count("accept_late")
            + count("accept_undecided")
            - count("accept_undecided_ahead"),
            f"{SlaClock.ACCEPTANCE}_{SlaStatus.OPEN}": count("accept_undecided_ahead"),
        }

    return {key: counts(row) for key, row in rolled.items()}


def sla_handoffs(
    period: Period,
    filters: KpiFilters = NO_FILTERS,
    *,
    clock: str = SlaClock.RESPONSE,
    status: str | None = None,
    now: datetime | None = None,
) -> QuerySet[Handoff]:
    """Drill-down: handoffs whose ``clock`` was due in the period (optionally met / missed /
    open as of ``now``)."""
    handoffs = _handoffs(filters).filter(_in(_DUE_FIELDS[clock], period))
    if status is not None:
        handoffs = handoffs.filter(_sla_conditions(now or timezone.now())[clock][status])
    return handoffs.select_related("lead__source", "assignee").order_by(_DUE_FIELDS[clock], "pk")


def _sla_by(
    period: Period, filters: KpiFilters, group_by: Sequence[str], now: datetime | None
) -> dict[tuple, SlaCompliance]:
    now = now or timezone.now()
    conditions = _sla_conditions(now)
    split = rollup_split(RollupFact.HANDOFF, period)
    aggregates = {}
    due_in_period = {}
    for clock, due_field in _DUE_FIELDS.items():
        due_in_period[clock] = _in(due_field, period)
        if split is not None:  # the rolled-up days are counted from the rollup
            due_in_period[clock] &= split.raw_q(due_field)
        for status, condition in conditions[clock].items():
            aggregates[f"{clock}_{status}"] = Count("pk", filter=due_in_period[clock] & condition)
    handoffs = _handoffs(filters).filter(reduce(or_, due_in_period.values()))
    found = _grouped(handoffs, group_by, **aggregates)
    if split is not None:
        found = added(
            tuple(aggregates), found, sla_rolled(split, filters, group_by, now), group_by=group_by
        )

    def result(row: dict, clock: str) -> SlaResult:
        met, missed = row[f"{clock}_{SlaStatus.MET}"], row[f"{clock}_{SlaStatus.MISSED}"]
        return SlaResult(
            met, missed, row[f"{clock}_{SlaStatus.OPEN}"], kpis.rate(met, met + missed)
        )

    return {
        key: SlaCompliance(result(row, SlaClock.RESPONSE), result(row, SlaClock.ACCEPTANCE))
        for key, row in found.items()
    }


@shared_read
def sla_compliance(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> SlaCompliance:
    return _sla_by(period, filters, (), now)[()]


def sla_compliance_by_rep(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> list[RepSlaCompliance]:
    found = _sla_by(
        period,
        filters,
        ("assignee_id", "assignee__first_name", "assignee__last_name", "assignee__username"),
        now,
    )
    rows = [
        RepSlaCompliance(
            rep_id=rep_id,
            rep_name=f"{first or ''} {last or ''}".strip() or username or "Unassigned",
            compliance=compliance,
        )
        for (rep_id, first, last, username), compliance in found.items()
    ]
    return sorted(rows, key=lambda row: (row.rep_id is None, row.rep_name.lower()))


def sla_compliance_by_source(
    period: Period, filters: KpiFilters = NO_FILTERS, *, now: datetime | None = None
) -> list[SourceSlaCompliance]:
    found = _sla_by(period, filters, ("lead__source_id", "lead__source__name"), now)
    rows = [SourceSlaCompliance(_source_ref(*key), value) for key, value in found.items()]
    return sorted(rows, key=lambda row: _source_order(row.source))


# --- Feedback loop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackLoop:
    """Rejected handoffs that tell marketing why (a reason, plus a note where the reason asks
    for one) ÷ handoffs rejected in the period."""

    rejected: int
    complete: int
    rate: float | None


def _feedback_complete() -> Q:
    return Q(reject_reason__isnull=False) & (
        Q(reject_reason__requires_note=False) | ~Q(trimmed_note="")
    )


def feedback_handoffs(
    period: Period, filters: KpiFilters = NO_FILTERS, *, complete: bool | None = None
) -> QuerySet[Handoff]:
    """Drill-down: handoffs rejected in the period (optionally only complete / incomplete)."""
    handoffs = (
        _handoffs(filters)
        .filter(_in("rejected_at", period), outcome=HandoffOutcome.REJECTED)
        .annotate(trimmed_note=Trim("reject_note"))
    )
    if complete is True:
        handoffs = handoffs.filter(_feedback_complete())
    elif complete is False:
        handoffs = handoffs.exclude(_feedback_complete())
    return handoffs.select_related("lead__source", "assignee", "reject_reason").order_by(
        "-rejected_at", "-pk"
    )


@shared_read
def feedback_loop_completion(period: Period, filters: KpiFilters = NO_FILTERS) -> FeedbackLoop:
    handoffs = feedback_handoffs(period, filters)
    split = rollup_split(RollupFact.HANDOFF, period)
    if split is not None:
        handoffs = handoffs.filter(split.raw_q("rejected_at"))
    row = _grouped(
        handoffs, (), rejected=Count("pk"), complete=Count("pk", filter=_feedback_complete())
    )[()]
    if split is not None:
        rolled = rolled_grouped(
            split, HandoffDay, filters, (), ("feedback_rejected", "feedback_complete")
        )[()]
        row = {
            "rejected": row["rejected"] + (rolled["feedback_rejected"] or 0),
            "complete": row["complete"] + (rolled["feedback_complete"] or 0),
        }
    return FeedbackLoop(
        row["rejected"], row["complete"], kpis.rate(row["complete"], row["rejected"])
    )


# --- Re-qualification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Requalification:
    """Handoffs assigned in the period that re-qualify a lead: one handed to sales again at a
    stage where an earlier handoff of the same lead had been rejected. ``rate`` = re-qualified ÷
    handoffs opened; a high rate says the rejection or the scoring is off."""

    opened: int
    requalified: int
    rate: float | None


def _rejected_before() -> Exists:
    """An earlier handoff of the same lead at the same stage, rejected no later than this one
    was opened (the rejection may be outside the period and under any assignee)."""
    return Exists(
        Handoff.objects.filter(
            lead_id=OuterRef("lead_id"),
            stage=OuterRef("stage"),
            outcome=HandoffOutcome.REJECTED,
            rejected_at__lte=OuterRef("assigned_at"),
        ).exclude(pk=OuterRef("pk"))
    )


def requalified_handoffs(period: Period, filters: KpiFilters = NO_FILTERS) -> QuerySet[Handoff]:
    """Drill-down: the re-qualified handoffs assigned in the period."""
    return acceptance_handoffs(period, filters).filter(_rejected_before())


_REQUALIFICATION_COUNTS = ("accepted", "rejected", "pending", "requalified")


def requalification(period: Period, filters: KpiFilters = NO_FILTERS) -> Requalification:
    """The rolled-up days from the handoff rollup (opened = accepted + rejected + pending), the
    rest from the handoffs themselves."""
    handoffs = acceptance_handoffs(period, filters)
    split = rollup_split(RollupFact.HANDOFF, period)
    if split is not None:
        handoffs = handoffs.filter(split.raw_q("assigned_at"))
    row = _grouped(
        handoffs,
        (),
        **_ACCEPTANCE_COUNTS,
        requalified=Count("pk", filter=Q(_rejected_before())),
    )[()]
    if split is not None:
        rolled = rolled_grouped(split, HandoffDay, filters, (), _REQUALIFICATION_COUNTS)[()]
        row = {name: row[name] + (rolled[name] or 0) for name in _REQUALIFICATION_COUNTS}
    row["opened"] = row["accepted"] + row["rejected"] + row["pending"]
    return Requalification(
        row["opened"], row["requalified"], kpis.rate(row["requalified"], row["opened"])
    )
