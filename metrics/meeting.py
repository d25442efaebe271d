"""Reads for the weekly pipeline review page: the meeting's figures, section by section.

``meeting_figures`` follows the meeting's agenda and returns plain JSON-ready data (ISO dates,
money as strings of cents, rates as fractions or None), so the very same structure is rendered
from live data or from a ``MeetingSnapshot`` frozen when the meeting was held. The KPIs come
from ``metrics.queries`` (one definition for every page); the few extra counts the agenda needs
are small SQL aggregates here. Lists are cut to the top few rows: a slide never scrolls.

Naming in the figures: keys ending in ``_on`` hold ISO dates, ``_at`` ISO instants (UTC),
``amount`` money as a string; ``this`` is the week reviewed and ``last`` the week before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Trim
from django.utils import timezone

from leads.choices import FitTier, HandoffOutcome, OpportunityStage, OpportunityStatus
from leads.defaults import DEFAULT_STAGES, FUNNEL_STAGE_KEYS
from leads.models import Handoff, HeardObjection, Lead, Opportunity, StageTransition
from leads.selectors import handoff_clocks, lifecycle_at
from metrics import goal_selectors, kpis, queries, snapshots
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.models import FIGURES_VERSION, ActionItem, ContentRequest, Meeting, MeetingSnapshot
from metrics.queries import NO_SOURCE, SourceRef
from metrics.queries.content import OpenDealContent, open_deal_content
from metrics.queries.shared import reads_shared
from revops.concurrent_reads import run_concurrently

STALL_DAYS_DEFAULT = 14
STALL_DAYS_MAX = 365
TOP = 6  # rows per list on a slide
HELPFUL_ASSETS = 3  # assets shown per group of open deals on the content slide
ACTIONS_PER_SLIDE = 6
REP_ROWS = 7
MQL_KEY = "mql"
GOOD_FIT_TIERS = (FitTier.A, FitTier.B)
NO_LOSS_REASON = "No reason given"
# Used when no lifecycle is published: the default stages sales owns.
DEFAULT_FORWARD_KEYS = ("sal", "sql", "opportunity", "customer")
DEFAULT_STALL_KEYS = ("sal", "sql", "opportunity")


# --- Meetings, weeks and periods -------------------------------------------------------------


def display_zone() -> ZoneInfo:
    return ZoneInfo(settings.DISPLAY_TIME_ZONE)


def display_today(now: datetime | None = None) -> date:
    """Today in the display time zone (a meeting's day is a local day)."""
    return timezone.localdate(now or timezone.now(), display_zone())


def week_of(day: date) -> tuple[date, date]:
    """Monday and Sunday of the week ``day`` falls in."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def review_periods(held_on: date) -> tuple[Period, Period]:
    """The week a meeting reviews, and the week before it.

    A meeting reviews the 7 whole days before the day it is held (a Monday meeting: the
    previous Monday to Sunday), so this week and last week are complete and comparable, and the
    numbers do not drift while the meeting runs.
    """
    period = Period.from_dates(
        held_on - timedelta(days=7), held_on - timedelta(days=1), display_zone()
    )
    return period, period.previous()


def meeting_get(held_on: date) -> Meeting:
    """The meeting held on that day; ``Meeting.DoesNotExist`` if there was none."""
    return Meeting.objects.select_related("created_by").get(held_on=held_on)


def meeting_latest_snapshot(meeting: Meeting) -> MeetingSnapshot | None:
    """The figures the page shows for a frozen meeting: its latest freeze."""
    return (
        MeetingSnapshot.objects.filter(meeting=meeting)
        .select_related("frozen_by")
        .order_by("-frozen_at", "-pk")
        .first()
    )


def meeting_history() -> QuerySet[Meeting]:
    """Meetings, latest first, with their action counts and latest freeze (the caller pages)."""
    latest = MeetingSnapshot.objects.filter(meeting=OuterRef("pk")).order_by("-frozen_at", "-pk")
    return (
        Meeting.objects.annotate(
            actions_agreed=Count("action_items"),
            actions_open=Count("action_items", filter=Q(action_items__done_at__isnull=True)),
            frozen_at=Subquery(latest.values("frozen_at")[:1]),
            freezes=Subquery(
                MeetingSnapshot.objects.filter(meeting=OuterRef("pk"))
                .order_by()
                .values("meeting")
                .annotate(n=Count("pk"))
                .values("n")
            ),
        )
        .select_related("created_by")
        .order_by("-held_on")
    )


def meeting_action_items(meeting: Meeting) -> QuerySet[ActionItem]:
    """The actions a meeting goes through: the ones it agreed, and every earlier one still not
    done when the day of the meeting began (done that day: shown, ticked). Oldest first, so last
    week's promises come before this week's."""
    day_start = datetime.combine(meeting.held_on, time.min, tzinfo=display_zone())
    carried = Q(meeting__held_on__lt=meeting.held_on) & (
        Q(done_at__isnull=True) | Q(done_at__gte=day_start)
    )
    return (
        ActionItem.objects.filter(Q(meeting=meeting) | carried)
        .select_related("meeting", "owner", "done_by")
        .order_by("meeting__held_on", "id")
    )


def meeting_page_figures(
    meeting: Meeting, *, now: datetime | None = None, stall_days: int = STALL_DAYS_DEFAULT
) -> dict:
    """The live figures of a meeting's page. With the default threshold they come from a
    snapshot at most a minute old (the page is projected and reloaded all meeting long); the
    action items are always read now, since the meeting edits them."""
    period, previous = review_periods(meeting.held_on)
    # The figures' snapshot and the scorecard's goal readings share the KPI reads they repeat
    # (and the rollups' state) when this request computes them.
    with reads_shared():
        if now is None and stall_days == STALL_DAYS_DEFAULT and previous == period.previous():
            # The week's first view computes the figures and the goals' readings side by side.
            figures_part, first_view = snapshots.page_data_part("meeting", period, NO_FILTERS)
            (figures, _), scorecard = run_concurrently(
                [figures_part, partial(scorecard_section, meeting)], worth_it=first_view
            )
            return {**figures, "actions": actions_section(meeting), "scorecard": scorecard}
        now = now or timezone.now()
        figures = meeting_figures(period, previous, now, stall_days=stall_days, meeting=meeting)
        return {**figures, "scorecard": scorecard_section(meeting, now=now)}


def scorecard_section(meeting: Meeting, *, now: datetime | None = None) -> dict:
    """The alignment scorecard of the quarter (or month) the meeting is held in: the opening
    slide, frozen with the meeting's other figures. Goals are read now; their KPIs come from
    their own snapshots."""
    return goal_selectors.scorecard(goal_selectors.scorecard_period(meeting.held_on), now=now)


def _meeting_snapshot(period: Period, filters: KpiFilters) -> dict:
    """The figures of a week's review without its action items, for ``snapshots``."""
    return meeting_figures(period, period.previous(), timezone.now())


snapshots.register("meeting", _meeting_snapshot)


# --- JSON-ready values -----------------------------------------------------------------------


def _iso_at(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()


def _iso_on(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _amount(value) -> str:
    return str(kpis.money(value) or queries.ZERO)


def _optional_amount(value) -> str | None:
    return None if value is None else _amount(value)


def _number(value):
    """Decimals become floats (for change in money, rates…); other numbers stay as they are."""
    return float(value) if isinstance(value, Decimal) else value


def _change(current, previous) -> dict:
    return {key: _number(value) for key, value in asdict(kpis.change(current, previous)).items()}


def _source(ref: SourceRef) -> dict:
    return {"id": ref.id, "name": ref.name}


def _person(user) -> str:
    if user is None:
        return "Unassigned"
    return user.get_full_name() or user.get_username()


def _lead_name(lead: Lead | None) -> str:
    if lead is None:
        return "No lead"
    return lead.full_name or lead.email or f"Lead {lead.pk}"


def _in(field: str, period: Period) -> Q:
    return Q(**{f"{field}__gte": period.start, f"{field}__lt": period.end})


def _period(period: Period) -> dict:
    return {
        "first_on": _iso_on(period.first_day),
        "last_on": _iso_on(period.last_day),
        "start_at": _iso_at(period.start),
        "end_at": _iso_at(period.end),
    }


# --- (a) New leads and their quality by source -----------------------------------------------


def _quality(leads: int, good_fit: int, mql: int | None, accepted: int, rejected: int, pending):
    return {
        "leads": leads,
        "good_fit": good_fit,
        "good_fit_share": kpis.rate(good_fit, leads),
        "mql": mql,
        "mql_share": None if mql is None else kpis.rate(mql, leads),
        "accepted": accepted,
        "rejected": rejected,
        "pending": pending,
        "acceptance_rate": kpis.rate(accepted, accepted + rejected),
    }


_QUALITY_COUNTS = ("leads", "good_fit", "mql", "accepted", "rejected", "pending")


def _sum_quality(rows: Iterable[dict]) -> dict:
    rows = list(rows)
    totals = {key: sum(row[key] or 0 for row in rows) for key in _QUALITY_COUNTS}
    if rows and all(row["mql"] is None for row in rows):
        totals["mql"] = None
    return _quality(**totals)


def _lead_quality_by_source(period: Period, previous: Period) -> dict[SourceRef, dict]:
    both = {"this": period, "last": previous}
    good_fit = Q(tier__in=GOOD_FIT_TIERS)
    aggregates = {}
    for side, span in both.items():
        aggregates[f"{side}_leads"] = Count("pk", filter=_in("created_at", span))
        aggregates[f"{side}_good_fit"] = Count("pk", filter=_in("created_at", span) & good_fit)
    created = (
        Lead.objects.filter(_in("created_at", period) | _in("created_at", previous))
        .order_by()
        .values("source_id", "source__name")
        .annotate(**aggregates)
    )
    counts: dict[SourceRef, dict[str, dict]] = {}

    def entry(ref: SourceRef) -> dict[str, dict]:
        empty = {"leads": 0, "good_fit": 0, "mql": 0, "accepted": 0, "rejected": 0, "pending": 0}
        return counts.setdefault(ref, {side: dict(empty) for side in both})

    for row in created:
        ref = SourceRef(row["source_id"], row["source__name"] or NO_SOURCE)
        for side in both:
            entry(ref)[side]["leads"] = row[f"{side}_leads"]
            entry(ref)[side]["good_fit"] = row[f"{side}_good_fit"]
    for side, span in both.items():
        # The cohort funnel's definition of "reached MQL": a lead that skipped it passed it.
        conversion = queries.conversion_by_source(span)
        has_mql = MQL_KEY in {stage.key for stage in conversion.stages}
        for row in conversion.by_source:
            entry(row.source)[side]["mql"] = row.funnel.reached(MQL_KEY) if has_mql else None
        for row in queries.lead_acceptance_by_source(span):
            acceptance = row.acceptance
            entry(row.source)[side].update(
                accepted=acceptance.accepted,
                rejected=acceptance.rejected,
                pending=acceptance.pending,
            )
    return {
        ref: {side: _quality(**values) for side, values in sides.items()}
        for ref, sides in counts.items()
    }


def new_leads_section(period: Period, previous: Period, *, top: int = TOP) -> dict:
    """New leads (created in the week) by source: how many, the share that fits the ICP well
    (tier A or B), how many of them already reached MQL; and sales' acceptance of the handoffs
    assigned in the week (accepted ÷ decided). This week beside last week."""
    by_source = _lead_quality_by_source(period, previous)
    ranked = sorted(
        by_source.items(),
        key=lambda item: (
            -item[1]["this"]["leads"],
            -(item[1]["this"]["accepted"] + item[1]["this"]["rejected"]),
            -item[1]["last"]["leads"],
            item[0].id is None,
            item[0].name.lower(),
        ),
    )
    shown, rest = ranked[:top], ranked[top:]
    this_total = _sum_quality(sides["this"] for sides in by_source.values())
    last_total = _sum_quality(sides["last"] for sides in by_source.values())
    return {
        "total": {
            "this": this_total,
            "last": last_total,
            "change": {
                key: _change(this_total[key], last_total[key])
                for key in ("leads", "good_fit_share", "mql", "acceptance_rate")
            },
        },
        "by_source": [
            {"source": _source(ref), "this": sides["this"], "last": sides["last"]}
            for ref, sides in shown
        ],
        "other_sources": (
            {
                "count": len(rest),
                "this": _sum_quality(sides["this"] for _, sides in rest),
                "last": _sum_quality(sides["last"] for _, sides in rest),
            }
            if rest
            else None
        ),
    }


# --- (b) Follow-up on time (SLA) -------------------------------------------------------------


def _sla_result(result: queries.SlaResult) -> dict:
    return asdict(result)


def open_breaches(now: datetime) -> QuerySet[Handoff]:
    """Handoffs late right now: still unanswered past the response due time, or still
    undecided past the accept-by time, whenever they were assigned. Annotated with ``clock``
    (the one that is late; response first) and ``late_since`` (its due time)."""
    response_late = Q(
        outcome=HandoffOutcome.PENDING, first_response_at__isnull=True, response_due_at__lt=now
    )
    accept_late = Q(outcome=HandoffOutcome.PENDING, accept_due_at__lt=now)
    return (
        Handoff.objects.filter(response_late | accept_late)
        .annotate(
            clock=Case(
                When(response_late, then=Value(queries.SlaClock.RESPONSE)),
                default=Value(queries.SlaClock.ACCEPTANCE),
            ),
            late_since=Case(
                When(response_late, then=F("response_due_at")), default=F("accept_due_at")
            ),
        )
        .select_related("lead__source", "assignee")
        .order_by("late_since", "pk")
    )


def follow_up_section(period: Period, previous: Period, now: datetime, *, top: int = TOP) -> dict:
    """SLA compliance of the handoffs due in the week (response and acceptance clocks), this
    week vs last and by rep (most missed first); response time; the breaches still open now."""
    this_sla = queries.sla_compliance(period, now=now)
    last_sla = queries.sla_compliance(previous, now=now)
    this_time = queries.response_time(period)
    last_time = queries.response_time(previous)
    reps = sorted(
        queries.sla_compliance_by_rep(period, now=now),
        key=lambda row: (
            -(row.compliance.response.missed + row.compliance.acceptance.missed),
            row.rep_id is None,
            row.rep_name.lower(),
        ),
    )
    breaches = open_breaches(now)
    response_late = Q(clock=queries.SlaClock.RESPONSE)
    breach_counts = breaches.order_by().aggregate(
        total=Count("pk"),
        response=Count("pk", filter=response_late),
        acceptance=Count("pk", filter=~response_late),
    )
    oldest = []
    # The oldest few picked from the handoffs alone, then joined to their leads: joined first,
    # every late handoff (most of the undecided ones) met its lead before the cut.
    first = open_breaches(now).order_by("late_since", "pk").values("pk")[:top]
    shown = list(breaches.filter(pk__in=first)[:top])
    # How late in business hours of each handoff's SLA calendar (what the clock counts); the
    # calendar time stays beside it for the hover title.
    clocks = handoff_clocks(shown, now=now)
    for handoff in shown:
        late = now - handoff.late_since
        clock = clocks.get(handoff.pk, {}).get(
            "response" if handoff.clock == queries.SlaClock.RESPONSE else "accept"
        )
        oldest.append(
            {
                "handoff_id": handoff.pk,
                "lead_id": handoff.lead_id,
                "lead_name": _lead_name(handoff.lead),
                "source_name": handoff.lead.source.name if handoff.lead.source else NO_SOURCE,
                "rep_name": _person(handoff.assignee),
                "clock": handoff.clock,
                "due_at": _iso_at(handoff.late_since),
                "late_hours": round(late.total_seconds() / 3600, 1),
                "late_business_seconds": round(-clock.seconds_left) if clock else None,
            }
        )
    return {
        "response": {
            "this": _sla_result(this_sla.response),
            "last": _sla_result(last_sla.response),
            "change": _change(this_sla.response.rate, last_sla.response.rate),
        },
        "acceptance": {
            "this": _sla_result(this_sla.acceptance),
            "last": _sla_result(last_sla.acceptance),
            "change": _change(this_sla.acceptance.rate, last_sla.acceptance.rate),
        },
        "response_time": {
            "this": asdict(this_time),
            "last": asdict(last_time),
            "change": _change(this_time.median_hours, last_time.median_hours),
        },
        "by_rep": [
            {
                "rep_id": row.rep_id,
                "rep_name": row.rep_name,
                "response": _sla_result(row.compliance.response),
                "acceptance": _sla_result(row.compliance.acceptance),
            }
            for row in reps[:REP_ROWS]
        ],
        "more_reps": max(len(reps) - REP_ROWS, 0),
        "open_breaches": {**breach_counts, "oldest": oldest},
    }


# --- (c) Opportunities that moved forward, and stalled ones ----------------------------------


def _sales_stages(at: datetime) -> tuple[list[str], list[str], list[str], dict[str, str]]:
    """From the lifecycle in force: the funnel's stage keys in order, the stages sales owns
    that a lead can move forward into, those of them a lead can stall in (open ones), and every
    stage's name."""
    lifecycle = lifecycle_at(at)
    if not lifecycle.stages:
        names = {row[0]: row[1] for row in DEFAULT_STAGES}
        return (
            list(FUNNEL_STAGE_KEYS),
            list(DEFAULT_FORWARD_KEYS),
            list(DEFAULT_STALL_KEYS),
            names,
        )
    return (
        list(lifecycle.funnel),
        list(lifecycle.sales_funnel_keys),
        list(lifecycle.sales_open_keys),
        dict(lifecycle.names),
    )


def _funnel_position(field: str, keys: list[str]) -> Case:
    """Position in the funnel (0 = first stage); -1 for no stage or a stage off the funnel
    (nurture, disqualified…), so a lead coming back from nurture moves forward too."""
    return Case(
        *(When(**{field: key}, then=Value(index)) for index, key in enumerate(keys)),
        default=Value(-1),
        output_field=IntegerField(),
    )


def forward_moves(funnel_keys: list[str], forward_keys: list[str]) -> QuerySet[StageTransition]:
    """Stage history moves into a sales stage from a stage earlier in the funnel (or from none,
    or from off the funnel): the pipeline moving forward."""
    return (
        StageTransition.objects.filter(to_stage__in=forward_keys)
        .annotate(
            to_position=_funnel_position("to_stage", funnel_keys),
            from_position=_funnel_position("from_stage", funnel_keys),
        )
        .filter(to_position__gt=F("from_position"))
    )


def _stalled_q(stall_keys: list[str], now: datetime, stall_days: int) -> Q:
    return Q(stage__in=stall_keys, stage_entered_at__lte=now - timedelta(days=stall_days))


def stalled_leads(stall_keys: list[str], now: datetime, stall_days: int) -> QuerySet[Lead]:
    """Leads sitting in an open sales stage whose stage has not changed for ``stall_days`` days
    or more (by when they entered it), longest first, with ``open_amount``: the amount of their
    open opportunities."""
    open_amount = (
        Opportunity.objects.filter(lead=OuterRef("pk"), status=OpportunityStatus.OPEN)
        .order_by()
        .values("lead")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Lead.objects.filter(_stalled_q(stall_keys, now, stall_days))
        .annotate(open_amount=Subquery(open_amount))
        .select_related("owner", "source")
        .order_by("stage_entered_at", "pk")
    )


def pipeline_section(
    period: Period, previous: Period, now: datetime, *, stall_days: int, top: int = TOP
) -> dict:
    """Leads that moved forward into a sales stage in the week (distinct leads per stage, this
    week vs last) and new opportunities; the leads stalled in a sales stage for ``stall_days``
    days or more. The data keeps no history of an opportunity's own stage, so "moved" and
    "stalled" read the lead's lifecycle stage (which includes Opportunity)."""
    funnel_keys, forward_keys, stall_keys, names = _sales_stages(now)
    moves = forward_moves(funnel_keys, forward_keys)
    this_moves, last_moves = _in("transitioned_at", period), _in("transitioned_at", previous)
    counted = {
        row["to_stage"]: row
        for row in moves.filter(this_moves | last_moves)
        .order_by()
        .values("to_stage")
        .annotate(
            this=Count("lead", filter=this_moves, distinct=True),
            last=Count("lead", filter=last_moves, distinct=True),
        )
    }
    stages = [
        {
            "key": key,
            "name": names.get(key, key),
            "this": counted.get(key, {}).get("this", 0),
            "last": counted.get(key, {}).get("last", 0),
        }
        for key in forward_keys
    ]
    recent = [
        {
            "lead_id": move.lead_id,
            "lead_name": _lead_name(move.lead),
            "from_stage": names.get(move.from_stage, move.from_stage) if move.from_stage else "",
            "to_stage": names.get(move.to_stage, move.to_stage),
            "moved_at": _iso_at(move.transitioned_at),
        }
        for move in moves.filter(this_moves)
        .select_related("lead")
        .order_by("-transitioned_at", "-pk")[:top]
    ]
    created_this, created_last = _in("created_at", period), _in("created_at", previous)
    new_opportunities = (
        Opportunity.objects.filter(created_this | created_last)
        .order_by()
        .aggregate(
            this_count=Count("pk", filter=created_this),
            this_amount=Sum("amount", filter=created_this),
            last_count=Count("pk", filter=created_last),
            last_amount=Sum("amount", filter=created_last),
        )
    )
    stalled = stalled_leads(stall_keys, now, stall_days)
    # Counted and ranked from the index lead_stage_entered (stage, entered, id) alone: tens of
    # thousands of open-stage leads would each cost a heap page; only the shown ones are read.
    stalled_ids = Lead.objects.filter(_stalled_q(stall_keys, now, stall_days)).order_by()
    stalled_by_stage = {
        row["stage"]: row["n"] for row in stalled_ids.values("stage").annotate(n=Count("pk"))
    }
    stalled_pipeline = (
        Opportunity.objects.filter(status=OpportunityStatus.OPEN, lead__in=stalled_ids.values("pk"))
        .order_by()
        .aggregate(n=Count("pk"), amount=Sum("amount"))
    )
    shown = stalled_ids.order_by("stage_entered_at", "pk").values("pk")[:top]
    oldest = [
        {
            "lead_id": lead.pk,
            "lead_name": _lead_name(lead),
            "stage": names.get(lead.stage, lead.stage),
            "owner_name": _person(lead.owner),
            "source_name": lead.source.name if lead.source else NO_SOURCE,
            "entered_at": _iso_at(lead.stage_entered_at),
            "days": (now - lead.stage_entered_at).days,
            "open_amount": _optional_amount(lead.open_amount),
        }
        for lead in stalled.filter(pk__in=shown)
    ]
    return {
        "forward": {
            "stages": stages,
            "this": sum(stage["this"] for stage in stages),
            "last": sum(stage["last"] for stage in stages),
        },
        "recent": recent,
        "new_opportunities": {
            "this": {
                "count": new_opportunities["this_count"],
                "amount": _amount(new_opportunities["this_amount"]),
            },
            "last": {
                "count": new_opportunities["last_count"],
                "amount": _amount(new_opportunities["last_amount"]),
            },
        },
        "stalled": {
            "days": stall_days,
            "count": sum(stalled_by_stage.values()),
            "by_stage": [
                {"key": key, "name": names.get(key, key), "count": stalled_by_stage.get(key, 0)}
                for key in stall_keys
            ],
            "open_opportunities": stalled_pipeline["n"],
            "open_amount": _amount(stalled_pipeline["amount"]),
            "oldest": oldest,
        },
    }


# --- (d) Rejection reasons and objections heard ----------------------------------------------


def _ranked_counts(this: dict, last: dict, labels: dict, top: int) -> list[dict]:
    keys = sorted(
        this.keys() | last.keys(),
        key=lambda key: (-this.get(key, 0), -last.get(key, 0), str(labels[key]).lower()),
    )
    return [
        {"key": key, "label": labels[key], "this": this.get(key, 0), "last": last.get(key, 0)}
        for key in keys[:top]
    ]


def feedback_section(period: Period, previous: Period, *, top: int = TOP) -> dict:
    """Why sales rejected handoffs in the week (handoffs rejected in it, per reason), whether
    every rejection says why (feedback-loop completion), and the objections buyers raised on
    the touches logged in the week (touches naming each objection). Most frequent first."""
    labels: dict = {}
    reasons = {}
    for side, span in (("this", period), ("last", previous)):
        rows = (
            queries.feedback_handoffs(span)
            .order_by()
            .values("reject_reason__key", "reject_reason__label")
            .annotate(n=Count("pk"))
        )
        reasons[side] = {row["reject_reason__key"]: row["n"] for row in rows}
        labels.update({row["reject_reason__key"]: row["reject_reason__label"] for row in rows})
    this_loop = queries.feedback_loop_completion(period)
    last_loop = queries.feedback_loop_completion(previous)
    heard_this = _in("occurred_at", period)
    heard_last = _in("occurred_at", previous)
    # The touches that named an objection in the two weeks, per tag, from the narrow table of
    # heard objections (its rows carry the touch's instant): not every objection link joined
    # to its touch.
    tags = [
        {"key": row["objection__key"], "label": row["objection__label"], **row}
        for row in HeardObjection.objects.filter(heard_this | heard_last)
        .order_by()
        .values("objection__key", "objection__label")
        .annotate(
            this=Count("activity_id", filter=heard_this, distinct=True),
            last=Count("activity_id", filter=heard_last, distinct=True),
        )
    ]
    return {
        "rejections": {
            "this": sum(reasons["this"].values()),
            "last": sum(reasons["last"].values()),
            "reasons": _ranked_counts(reasons["this"], reasons["last"], labels, top),
        },
        "feedback_loop": {
            "this": asdict(this_loop),
            "last": asdict(last_loop),
            "change": _change(this_loop.rate, last_loop.rate),
        },
        "objections": {
            "this": sum(tag["this"] for tag in tags),
            "last": sum(tag["last"] for tag in tags),
            "tags": _ranked_counts(
                {tag["key"]: tag["this"] for tag in tags if tag["this"]},
                {tag["key"]: tag["last"] for tag in tags if tag["last"]},
                {tag["key"]: tag["label"] for tag in tags},
                top,
            ),
        },
    }


# --- (e) Closed won / lost -------------------------------------------------------------------


def _results(results: queries.OpportunityResults) -> dict:
    return {
        "won": results.won,
        "lost": results.lost,
        "win_rate": results.win_rate,
        "won_amount": _amount(results.won_amount),
        "average_deal_size": _optional_amount(results.average_deal_size),
        "median_cycle_days": results.median_cycle_days,
    }


def closed_section(period: Period, previous: Period, *, top: int = TOP) -> dict:
    """Opportunities closed in the week: won, lost, win rate, amount won, deal size and cycle,
    this week vs last; by source; the loss reasons given; the biggest wins."""
    this_results = queries.opportunity_results(period)
    last_results = queries.opportunity_results(previous)
    by_source = sorted(
        queries.opportunity_results_by_source(period),
        key=lambda row: (
            -row.results.won_amount,
            -(row.results.won + row.results.lost),
            row.source.id is None,
            row.source.name.lower(),
        ),
    )
    losses = (
        queries.closed_opportunities(period, status=OpportunityStatus.LOST)
        .order_by()
        .annotate(reason=Trim("loss_reason"))
        .values("reason")
        .annotate(n=Count("pk"))
    )
    loss_reasons = sorted(
        ({"reason": row["reason"] or NO_LOSS_REASON, "count": row["n"]} for row in losses),
        key=lambda row: (-row["count"], row["reason"] == NO_LOSS_REASON, row["reason"].lower()),
    )
    wins = queries.closed_opportunities(period, status=OpportunityStatus.WON).order_by(
        "-amount", "-closed_at", "-pk"
    )[:3]
    return {
        "this": _results(this_results),
        "last": _results(last_results),
        "change": {
            "won": _change(this_results.won, last_results.won),
            "lost": _change(this_results.lost, last_results.lost),
            "win_rate": _change(this_results.win_rate, last_results.win_rate),
            "won_amount": _change(this_results.won_amount, last_results.won_amount),
        },
        "by_source": [
            {"source": _source(row.source), **_results(row.results)} for row in by_source[:top]
        ],
        "more_sources": max(len(by_source) - top, 0),
        "loss_reasons": loss_reasons[:top],
        "biggest_wins": [
            {
                "opportunity_id": opportunity.pk,
                "name": opportunity.name,
                "amount": _amount(opportunity.amount),
                "source_name": (
                    opportunity.lead.source.name
                    if opportunity.lead and opportunity.lead.source
                    else NO_SOURCE
                ),
                "owner_name": _person(opportunity.owner),
                "closed_at": _iso_at(opportunity.closed_at),
            }
            for opportunity in wins
        ],
    }


# --- (f) Content that could support open deals -----------------------------------------------


def open_handoffs(now: datetime, open_stages: Iterable[str]) -> QuerySet[Handoff]:
    """Handoffs sales is still working at ``now``: undecided, or accepted with the lead still
    in an open sales stage and no opportunity yet (the content slide's definition, as in
    ``queries.content.open_deal_content``)."""
    has_opportunity = Opportunity.objects.filter(lead=OuterRef("lead_id"))
    # The open-stage leads' ids from the index lead_stage_entered, not a join to every lead.
    open_leads = Lead.objects.filter(stage__in=list(open_stages)).values("pk")
    worked = Q(outcome=HandoffOutcome.ACCEPTED, lead_id__in=open_leads)
    return Handoff.objects.filter(assigned_at__lte=now).filter(
        Q(outcome=HandoffOutcome.PENDING) | worked & ~Exists(has_opportunity)
    )


def content_section(now: datetime, *, top: int = TOP) -> dict:
    """Content that could support the deals still open: open opportunities and the handoffs
    sales is working (``open_handoffs``), grouped by stage and objection heard (the biggest
    groups, those with an objection first), each with the assets most used by similar won deals
    at that stage (same industry, same objection); and the content sales asked for that does not
    exist yet (open content requests, oldest first)."""
    _, _, open_stages, lifecycle_names = _sales_stages(now)
    # The matching is one PostgreSQL statement (arrays, ANY, casts); the embedded SQLite run
    # shows the rest of the slide and says why the matching is missing.
    matched = connection.vendor == "postgresql"
    found = (
        open_deal_content(now, open_stages=open_stages, top=top, assets=HELPFUL_ASSETS)
        if matched
        else OpenDealContent(groups=(), group_count=0)
    )
    opportunity_names = dict(OpportunityStage.choices)
    groups = [
        {
            "kind": group.kind,
            "stage": group.stage,
            "stage_name": (
                opportunity_names if group.kind == "opportunity" else lifecycle_names
            ).get(group.stage, group.stage),
            "objection": (
                {"key": group.objection_key, "label": group.objection_label}
                if group.objection_key is not None
                else None
            ),
            "deals": group.deals,
            "amount": _optional_amount(group.amount if group.kind == "opportunity" else None),
            "similar_won": group.similar_won,
            "open_requests": group.open_requests,
            "assets": [
                {
                    "asset_id": asset.asset_id,
                    "title": asset.title,
                    "asset_type": asset.asset_type,
                    "funnel_stage": asset.funnel_stage,
                    "won_deals": asset.won_deals,
                }
                for asset in group.assets
            ],
        }
        for group in found.groups
    ]
    opportunities = Opportunity.objects.filter(
        status=OpportunityStatus.OPEN, created_at__lte=now
    ).aggregate(n=Count("pk"), amount=Sum("amount"))
    waiting = ContentRequest.objects.filter(
        status__in=ContentRequest.OPEN_STATUSES, created_at__lte=now
    )
    requests = [
        {
            "id": request.pk,
            "title": request.title,
            "status": request.status,
            "stage_name": lifecycle_names.get(request.stage, request.stage),
            "objection_label": request.objection.label if request.objection else None,
            "requested_by_name": _person(request.requested_by),
            "lead_name": _lead_name(request.handoff.lead),
            "handoff_id": request.handoff_id,
            "requested_at": _iso_at(request.created_at),
            "days": (now - request.created_at).days,
        }
        for request in waiting.select_related(
            "objection", "requested_by", "handoff__lead"
        ).order_by("created_at", "pk")[:top]
    ]
    return {
        "open_opportunities": {
            "count": opportunities["n"],
            "amount": _amount(opportunities["amount"]),
        },
        # The matching statement counts them as it reads them.
        "open_handoffs": (
            found.open_handoffs if matched else open_handoffs(now, open_stages).count()
        ),
        "groups": groups,
        "matched": matched,
        "more_groups": max(found.group_count - len(groups), 0),
        "requests": {"open": waiting.count(), "oldest": requests},
    }


# --- (g) Action items ------------------------------------------------------------------------


def actions_section(meeting: Meeting) -> dict:
    """The meeting's own actions and the earlier ones carried to it (see
    ``meeting_action_items``); overdue = not done and due before the meeting's day."""
    items = []
    for item in meeting_action_items(meeting):
        if item.done_at is not None:
            status = "done"
        elif item.due_on < meeting.held_on:
            status = "overdue"
        else:
            status = "open"
        items.append(
            {
                "id": item.pk,
                "text": item.text,
                "owner_name": _person(item.owner),
                "due_on": _iso_on(item.due_on),
                "agreed_on": _iso_on(item.meeting.held_on),
                "is_new": item.meeting_id == meeting.pk,
                "status": status,
                "done_at": _iso_at(item.done_at),
                "done_by_name": _person(item.done_by) if item.done_by_id else None,
            }
        )
    return {
        "items": items,
        "new": sum(item["is_new"] for item in items),
        "carried": sum(not item["is_new"] for item in items),
        "open": sum(item["status"] != "done" for item in items),
        "overdue": sum(item["status"] == "overdue" for item in items),
        "done": sum(item["status"] == "done" for item in items),
    }


# --- The whole page --------------------------------------------------------------------------


def meeting_figures(
    period: Period,
    previous_period: Period,
    now: datetime,
    *,
    stall_days: int = STALL_DAYS_DEFAULT,
    meeting: Meeting | None = None,
) -> dict:
    """Every figure and table of the pipeline review page, as JSON-ready data.

    ``period`` is the week reviewed, ``previous_period`` the one it is compared with; ``now``
    is the instant "still open", "late" and "stalled" are judged at. ``actions`` is None
    without a meeting.
    """
    if not 1 <= stall_days <= STALL_DAYS_MAX:
        raise ValueError(f"Stalled means 1 to {STALL_DAYS_MAX} days without a stage change.")
    # The sections read independently of each other: side by side (``run_concurrently``), the
    # heaviest (content) first, in this thread.
    sections = {
        "content": partial(content_section, now),
        "follow_up": partial(follow_up_section, period, previous_period, now),
        "pipeline": partial(pipeline_section, period, previous_period, now, stall_days=stall_days),
        "new_leads": partial(new_leads_section, period, previous_period),
        "closed": partial(closed_section, period, previous_period),
        "feedback": partial(feedback_section, period, previous_period),
    }
    computed = dict(zip(sections, run_concurrently(list(sections.values())), strict=True))
    return {
        "version": FIGURES_VERSION,
        "computed_at": _iso_at(now),
        "time_zone": settings.DISPLAY_TIME_ZONE,
        "period": _period(period),
        "previous_period": _period(previous_period),
        "stall_days": stall_days,
        **computed,
        "actions": actions_section(meeting) if meeting is not None else None,
    }


# --- Rendering either live figures or a snapshot ---------------------------------------------


def _revive(value, key: str = ""):
    if isinstance(value, dict):
        return {name: _revive(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_revive(item, key) for item in value]
    if isinstance(value, str):
        if key.endswith("_on"):
            return date.fromisoformat(value)
        if key.endswith("_at"):
            return datetime.fromisoformat(value)
    return value


def figures_for_display(figures: dict) -> dict:
    """The figures with dates and instants back as ``date`` / aware ``datetime`` (so templates
    format them in the display time zone), and the action items split into slides."""
    shown = _revive(figures)
    actions = shown.get("actions")
    if actions is not None:
        items = actions["items"]
        actions["pages"] = [
            items[index : index + ACTIONS_PER_SLIDE]
            for index in range(0, len(items), ACTIONS_PER_SLIDE)
        ] or [[]]
    return shown
