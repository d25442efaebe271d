"""Keeping the daily rollups (``metrics.rollup_models``) equal to the raw facts.

Triggers mark the hours in which facts changed (migration ``0008_rollups``); ``rollups_refresh``
takes those marks (one ``DELETE … RETURNING``, inside its transaction: if it fails, the marks
come back) and recomputes every local day they touch, set-based: one grouped query per instant
over those days, the day's rows deleted and written again. ``rollups_rebuild`` recomputes
everything: after a seed, a TRUNCATE, a change of display time zone or of the funnel's stages.

The rows are computed with the same conditions as the raw KPIs (``metrics.queries``), so a
rollup-backed figure equals the raw one; ``tests/metrics/test_rollups.py`` holds them equal on
random fact sets. PostgreSQL only: on SQLite (the embedded demo) nothing is rolled up and every
figure is read raw.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, PositiveIntegerField, Q, QuerySet, Sum
from django.db.models.functions import Trim, TruncDate
from django.utils import timezone

from leads.choices import HandoffOutcome, OpportunityStatus
from leads.models import Handoff, Lead, Opportunity, StageTransition
from leads.services.bulk import writer_for
from metrics.expressions import EpochSeconds, SecondsBetween
from metrics.open_deals import open_deals_refresh
from metrics.queries.funnel import (
    FunnelDefinition,
    _furthest_position,
    cohort_rules,
    cohort_win_values,
    exits_with_entry,
    first_win,
    funnel_definition,
    reached_opportunity_at,
    stay_seconds,
)
from metrics.queries.handoffs import (
    _ANSWERED,
    _RESPONSE_COUNTS,
    SlaClock,
    _feedback_complete,
    _rejected_before,
    sla_parts,
)
from metrics.queries.revenue import opportunity_cycles
from metrics.queries.rolled import days_q, local_days_of_hours, rollups_supported
from metrics.rollup_models import (
    DUE_AGGREGATE,
    LEAD_GRAINS,
    OWNER_GRAINS,
    VALUES_AGGREGATE,
    CohortDay,
    DueTimes,
    HandoffDay,
    OpenDealDirty,
    OpportunityDay,
    RollupDirty,
    RollupFact,
    RollupState,
    RollupValues,
    StageExitDay,
)
from revops.maintenance import tables_vacuum

logger = logging.getLogger(__name__)

# One refresh at a time: two would recompute the same day into duplicate rows.
_LOCK_KEY = 7_140_001
_WRITE_BATCH = 5_000
# Mark rows taken by one refresh past which it VACUUMs the mark tables (autovacuum off).
MARKS_VACUUM_PAST = 1_000
_DIMENSIONS = ("source_id", "campaign_id", "tier", "owner_id")


# --- What each rollup counts -----------------------------------------------------------------


def _handoff_parts() -> list[tuple[str, Q, dict[str, Count]]]:
    """(instant, rows dated by it, measures): each group of ``HandoffDay`` measures."""
    sla = sla_parts()
    response, acceptance = sla[SlaClock.RESPONSE], sla[SlaClock.ACCEPTANCE]
    return [
        (
            "assigned_at",
            Q(),
            {
                "accepted": Count("pk", filter=Q(outcome=HandoffOutcome.ACCEPTED)),
                "rejected": Count("pk", filter=Q(outcome=HandoffOutcome.REJECTED)),
                "pending": Count("pk", filter=Q(outcome=HandoffOutcome.PENDING)),
                **_RESPONSE_COUNTS,
                "requalified": Count("pk", filter=Q(_rejected_before())),
                "response_seconds": ArrayAgg(
                    "response_business_seconds", filter=_ANSWERED, default=[]
                ),
            },
        ),
        (
            "response_due_at",
            Q(),
            {
                "response_met": Count("pk", filter=response["on_time"]),
                "response_late": Count("pk", filter=response["late"]),
                "response_unanswered": Count("pk", filter=response["not_done"]),
                "response_unanswered_due": ArrayAgg(
                    EpochSeconds("response_due_at"),
                    filter=response["not_done"],
                    order_by=EpochSeconds("response_due_at"),
                    default=[],
                ),
            },
        ),
        (
            "accept_due_at",
            Q(),
            {
                "accept_met": Count("pk", filter=acceptance["on_time"]),
                "accept_late": Count("pk", filter=acceptance["late"]),
                # "not done" and "late" cannot both hold, but the raw count of missed is one
                # OR: keep the rollup's sum equal to it whatever the data.
                "accept_undecided": Count(
                    "pk", filter=acceptance["not_done"] & ~acceptance["late"]
                ),
                "accept_undecided_due": ArrayAgg(
                    EpochSeconds("accept_due_at"),
                    filter=acceptance["not_done"] & ~acceptance["late"],
                    order_by=EpochSeconds("accept_due_at"),
                    default=[],
                ),
            },
        ),
        (
            "rejected_at",
            Q(outcome=HandoffOutcome.REJECTED),
            {
                "feedback_rejected": Count("pk"),
                "feedback_complete": Count("pk", filter=_feedback_complete()),
            },
        ),
    ]


def _rows_by_instant(
    model,
    facts: QuerySet,
    owner: str,
    parts: list[tuple[str, Q, dict]],
    days: set[date] | None,
    zone: ZoneInfo,
) -> list:
    """Rollup rows of ``model`` from ``facts``: each part's measures grouped by the local day of
    its own instant and the lead's dimensions (the fact's ``owner`` field as owner), the parts
    of one day and group merged into one row."""
    merged: dict[tuple, dict] = defaultdict(dict)
    columns = ("lead__source_id", "lead__campaign_id", "lead__tier", f"{owner}_id")
    for instant, rows, measures in parts:
        dated = facts.filter(rows, **{f"{instant}__isnull": False})
        if days is not None:
            dated = dated.filter(days_q(instant, days, zone))
        grouped = (
            dated.annotate(rollup_day=TruncDate(instant, tzinfo=zone))
            .order_by()
            .values("rollup_day", *columns)
            .annotate(**measures)
        )
        for row in grouped:
            key = (row["rollup_day"], *(row[column] for column in columns))
            merged[key].update({name: row[name] for name in measures})
    return [
        model(day=key[0], **dict(zip(_DIMENSIONS, key[1:], strict=True)), **values)
        for key, values in merged.items()
    ]


def _handoff_rows(days: set[date] | None, zone: ZoneInfo) -> list[HandoffDay]:
    handoffs = Handoff.objects.annotate(trimmed_note=Trim("reject_note"))
    return _rows_by_instant(HandoffDay, handoffs, "assignee", _handoff_parts(), days, zone)


def _opportunity_rows(days: set[date] | None, zone: ZoneInfo) -> list[OpportunityDay]:
    won = Q(status=OpportunityStatus.WON)
    parts = [
        ("created_at", Q(), {"created": Count("pk"), "created_amount": Sum("amount")}),
        (
            "closed_at",
            Q(),
            {
                "closed": Count("pk"),
                "closed_amount": Sum("amount"),
                "won": Count("pk", filter=won),
                "won_amount": Sum("amount", filter=won, default=0),
                "lost": Count("pk", filter=Q(status=OpportunityStatus.LOST)),
                **{
                    f"{name}_seconds": ArrayAgg(seconds, filter=deals, default=[])
                    for name, (deals, seconds) in opportunity_cycles().items()
                },
            },
        ),
    ]
    return _rows_by_instant(OpportunityDay, Opportunity.objects.all(), "owner", parts, days, zone)


def _cohort_rows(
    days: set[date] | None, zone: ZoneInfo, definition: FunnelDefinition
) -> list[CohortDay]:
    leads = Lead.objects.all()
    if days is not None:
        leads = leads.filter(days_q("created_at", days, zone))
    keys = definition.keys
    reached_at = reached_opportunity_at(definition)
    opportunity_seconds = (
        {}
        if reached_at is None
        else {
            "opportunity_seconds": ArrayAgg(
                SecondsBetween(F("created_at"), F("reached_at")),
                filter=Q(reached_at__isnull=False),
                default=[],
            )
        }
    )
    won = Q(won_at__isnull=False)
    grouped = (
        leads.annotate(
            rollup_day=TruncDate("created_at", tzinfo=zone),
            furthest_position=_furthest_position(keys),
            won_at=first_win(timezone.now()),
            **({} if reached_at is None else {"reached_at": reached_at}),
        )
        .order_by()
        .values("rollup_day", *_DIMENSIONS, "furthest_position")
        .annotate(
            count=Count("pk"),
            won=Count("pk", filter=won),
            **{
                name: ArrayAgg(value, filter=won, default=[])
                for name, value in cohort_win_values(zone).items()
            },
            **opportunity_seconds,
        )
    )
    return [
        CohortDay(
            day=row["rollup_day"],
            **{name: row[name] for name in _DIMENSIONS},
            furthest_stage=keys[row["furthest_position"]],
            leads=row["count"],
            opportunity_seconds=row.get("opportunity_seconds", []),
            won=row["won"],
            won_seconds=row["won_seconds"],
            won_calendar_days=row["won_calendar_days"],
        )
        for row in grouped
    ]


def _stage_exit_rows(days: set[date] | None, zone: ZoneInfo) -> list[StageExitDay]:
    transitions = StageTransition.objects.all()
    if days is not None:
        transitions = transitions.filter(days_q("transitioned_at", days, zone))
    # Each exit's entry is looked up once (see ``funnel._stage_medians_postgresql``).
    inner = (
        exits_with_entry(transitions)
        .annotate(
            rollup_day=TruncDate("transitioned_at", tzinfo=zone),
            **{f"rollup_{name}": F(f"lead__{name}") for name in _DIMENSIONS},
            rollup_stage=F("from_stage"),
            rollup_stay=stay_seconds(),
        )
        .order_by()
    )
    keys = ["rollup_day", *(f"rollup_{name}" for name in _DIMENSIONS), "rollup_stage"]
    try:
        sql, params = inner.values(*keys, "rollup_stay").query.sql_with_params()
    except EmptyResultSet:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(keys)}, count(rollup_stay), array_agg(rollup_stay) "
            f"FROM ({sql} OFFSET 0) AS exits WHERE rollup_stay IS NOT NULL "
            f"GROUP BY {', '.join(keys)}",
            params,
        )
        return [
            StageExitDay(
                day=day,
                **dict(zip(_DIMENSIONS, dimensions, strict=True)),
                from_stage=stage,
                exits=exits,
                stay_seconds=stays,
            )
            for day, *dimensions, stage, exits, stays in cursor.fetchall()
        ]


_ROLLUPS = {
    RollupFact.HANDOFF: HandoffDay,
    RollupFact.COHORT: CohortDay,
    RollupFact.OPPORTUNITY: OpportunityDay,
    RollupFact.STAGE_EXIT: StageExitDay,
}


def _rows(fact: str, days: set[date] | None, zone: ZoneInfo, definition: FunnelDefinition):
    if fact == RollupFact.HANDOFF:
        return _handoff_rows(days, zone)
    if fact == RollupFact.OPPORTUNITY:
        return _opportunity_rows(days, zone)
    if fact == RollupFact.STAGE_EXIT:
        return _stage_exit_rows(days, zone)
    return _cohort_rows(days, zone, definition)


def _write(fact: str, days: set[date] | None, zone: ZoneInfo, definition: FunnelDefinition) -> int:
    model = _ROLLUPS[fact]
    rows = _rows(fact, days, zone, definition)
    coarser = (LEAD_GRAINS[model], OWNER_GRAINS[model])
    for grain in (model, *coarser):
        if days is None:
            grain.objects.all().delete()
        else:
            grain.objects.filter(day__in=sorted(days)).delete()
    _copy(model, rows)
    for grain in coarser:
        _write_grain(model, grain, days)
    return len(rows)


def _copy(model, rows: list) -> None:
    """The rows in with COPY, in batches: ``bulk_create`` spent 90 of a 1M rebuild's ~135 s
    adapting 625k rows (their value arrays most) one by one."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    names = [field.attname for field in fields]
    arrays = [isinstance(field, RollupValues) for field in fields]

    def cells(row) -> list:
        return [
            "{" + ",".join(map(repr, value)) + "}" if is_array else value
            for value, is_array in zip((getattr(row, name) for name in names), arrays, strict=True)
        ]

    writer = writer_for(connection)
    try:
        for start in range(0, len(rows), _WRITE_BATCH):
            batch = [cells(row) for row in rows[start : start + _WRITE_BATCH]]
            writer.insert(model, names, batch, prepared=True)
        writer.flush()
    finally:
        writer.close()


def _write_grain(model, grain, days: set[date] | None) -> None:
    """A coarser grain's rows of ``days`` (all without), summed in SQL from the full grain's
    rows just written, over the dimensions the grain lacks: counts and amounts added, value
    arrays concatenated (a percentile does not depend on the order of its values)."""
    quote = connection.ops.quote_name
    keys, columns, selected = [], [], []
    for field in grain._meta.concrete_fields:
        if field.primary_key:
            continue
        column = quote(field.column)
        columns.append(column)
        if isinstance(field, DueTimes):
            selected.append(f"{DUE_AGGREGATE}({column})")
        elif isinstance(field, RollupValues):
            selected.append(f"{VALUES_AGGREGATE}({column})")
        elif isinstance(field, PositiveIntegerField | DecimalField):
            selected.append(f"sum({column})")
        else:
            keys.append(column)
            selected.append(column)
    where, params = "", []
    if days is not None:
        where, params = f"WHERE {quote('day')} = ANY(%s)", [sorted(days)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(grain._meta.db_table)} ({', '.join(columns)}) "
            f"SELECT {', '.join(selected)} FROM {quote(model._meta.db_table)} {where} "
            f"GROUP BY {', '.join(keys)}",
            params,
        )


def _current_rules() -> tuple[str, FunnelDefinition]:
    return settings.DISPLAY_TIME_ZONE, funnel_definition(at=timezone.now())


def _locked() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
        return cursor.fetchone()[0]


def _take_marks() -> tuple[dict[str, set[datetime]], int]:
    """The hours marked per fact, and how many mark rows were taken (deleted)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {RollupDirty._meta.db_table} RETURNING fact, hour")
        rows = cursor.fetchall()
    marks: dict[str, set[datetime]] = defaultdict(set)
    for fact, hour in rows:
        marks[fact].add(hour)
    return marks, len(rows)


def _state_save(
    fact: str, zone_name: str, definition: FunnelDefinition, now, *, rebuilt: bool
) -> None:
    RollupState.objects.update_or_create(
        fact=fact,
        defaults={
            "built": True,
            "time_zone": zone_name,
            "funnel_keys": cohort_rules(definition),
            "refreshed_at": now,
            **({"built_at": now} if rebuilt else {}),
        },
    )


def rollups_rebuild() -> dict[str, int]:
    """Recompute every rollup from the raw facts (and drop the pending marks they cover)."""
    if not rollups_supported():
        return {}
    zone_name, definition = _current_rules()
    zone = ZoneInfo(zone_name)
    written = {}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        _take_marks()
        now = timezone.now()
        for fact in _ROLLUPS:
            written[fact] = _write(fact, None, zone, definition)
            _state_save(fact, zone_name, definition, now, rebuilt=True)
        open_deals_refresh(rebuild=True)
    logger.info("Rebuilt the rollups: %s rows", written)
    return written


def rollups_refresh() -> dict[str, int]:
    """Recompute the days whose facts changed since the last refresh; rebuild a rollup whose
    rules (time zone, funnel stages) are no longer those in force, or that was never built.
    Returns the number of days recomputed per rollup (-1: rebuilt), and of leads whose open
    deals were recomputed (``metrics.open_deals``). A no-op while another refresh holds the
    lock."""
    if not rollups_supported():
        return {}
    zone_name, definition = _current_rules()
    zone = ZoneInfo(zone_name)
    done: dict[str, int] = {}
    with transaction.atomic():
        if not _locked():
            return done
        states = {state.fact: state for state in RollupState.objects.select_for_update()}
        marks, taken = _take_marks()
        now = timezone.now()
        for fact in _ROLLUPS:
            state = states.get(fact)
            current = (
                state is not None
                and state.built
                and state.time_zone == zone_name
                and (fact != RollupFact.COHORT or state.funnel_keys == cohort_rules(definition))
            )
            if current:
                days = local_days_of_hours(marks.get(fact, ()), zone)
                if days:
                    _write(fact, days, zone, definition)
                done[fact] = len(days)
            else:
                _write(fact, None, zone, definition)
                done[fact] = -1
            _state_save(fact, zone_name, definition, now, rebuilt=not current)
        done[RollupFact.OPEN_DEALS] = open_deals_refresh()
    # Every read of a rollup looks its pending hours up in the mark table, and every slide its
    # marked leads: emptied every 15 s, the tables would hold hundreds of thousands of dead
    # rows between two tidies where autovacuum is off, each read walking past them.
    if taken + max(done[RollupFact.OPEN_DEALS], 0) >= MARKS_VACUUM_PAST:
        tables_vacuum([RollupDirty, OpenDealDirty])
    return done


def rollups_unbuilt(**kwargs) -> None:
    """Facts were written without their triggers (a bulk load): no rollup is read until the
    next refresh or rebuild builds it again."""
    if rollups_supported():
        RollupState.objects.update(built=False)


def rollups_after_seed(*, as_of: datetime) -> str:
    """``seed_demo``'s hook: the facts were loaded in bulk, so the rollups are built whole."""
    if not rollups_supported():
        return ""
    started = time.monotonic()
    written = rollups_rebuild()
    return (
        f"Rollups built: {sum(written.values()):,} daily rows "
        f"in {time.monotonic() - started:.1f} s."
    )
