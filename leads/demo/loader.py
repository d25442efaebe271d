"""Write the demo data set: ``COPY … FROM STDIN`` on PostgreSQL, ``executemany`` elsewhere.

The generator assigns every id (starting after the ids already in use), so rows are written as
they stream out, without reading anything back. The whole load (and the reset before it) is one
transaction: it lands completely or not at all. On PostgreSQL constraints are checked per COPY
statement (``SET CONSTRAINTS ALL IMMEDIATE``) instead of being queued until commit, which keeps
the server's memory flat on a ten-million-row load; a background thread runs each COPY while the
next chunk is being generated, so Python and the database work at the same time.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max

from leads.demo.activities import demo_activities_create
from leads.demo.generator import (
    DAY,
    DEMO_USERNAMES,
    TABLES,
    WINDOW_DAYS,
    CalendarSpec,
    Chunk,
    DemoPlan,
    ReasonRef,
    SlaTerms,
    TableSpec,
    default_calendar,
    default_sla_terms,
    generate,
    start_of_today_utc,
)
from leads.models import RejectionReason, SlaVersion
from leads.selectors import latest_published_effective_from, sla_in_force, sla_policy_for
from leads.services.bulk import constraints_per_statement, indexes_built_after, writer_for
from leads.services.definitions import definition_create_draft, definition_publish

# The fact tables a reset empties, children first (users are handled apart: only demo users go).
FACT_KEYS = ("opportunity", "handoff", "transition", "event", "lead", "account", "content_asset",
             "campaign", "source")  # fmt: skip


class DemoDataError(Exception):
    """The demo data cannot be loaded as asked (e.g. facts exist and no reset was requested)."""


@dataclass
class TableLoad:
    key: str
    rows: int = 0
    seconds: float = 0.0  # time spent writing this table's rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class SeedReport:
    plan: DemoPlan
    tables: dict[str, TableLoad] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    reset_seconds: float = 0.0
    total_seconds: float = 0.0
    activities: int = 0  # sales activities written for the answered handoffs


Progress = Callable[[TableLoad], None]


def model_for(spec_or_key: TableSpec | str) -> type[models.Model]:
    spec = spec_or_key if isinstance(spec_or_key, TableSpec) else _SPECS[spec_or_key]
    return get_user_model() if spec.model == "user" else apps.get_model(spec.model)


_SPECS = {spec.key: spec for spec in TABLES}


# --- Reads ---------------------------------------------------------------------------------------


def demo_data_present() -> list[str]:
    """What already holds data the seed would write: fact tables with rows, and demo users."""
    present = [
        str(model_for(key)._meta.verbose_name_plural)
        for key in reversed(FACT_KEYS)
        if model_for(key)._default_manager.exists()
    ]
    if get_user_model()._default_manager.filter(username__in=DEMO_USERNAMES).exists():
        present.append("demo users")
    return present


def _label(model: type[models.Model]) -> str:
    keys = {model_for(spec): spec.key for spec in TABLES}
    return keys.get(model, model._meta.label_lower)


def _first_ids() -> dict[str, int]:
    first = {}
    for spec in TABLES:
        model = model_for(spec)
        top = model._default_manager.aggregate(top=Max("pk"))["top"]
        first[spec.key] = (top or 0) + 1
    return first


DEMO_SLA_NOTE = "Demo: an SLA breach is also told to the rep's sales manager."


def demo_sla_escalation(as_of: datetime) -> SlaVersion | None:
    """The demo's reps are the demo manager's team, and the manager should hear when one of
    them lets a handoff go late. When a policy of the SLA version in force at ``as_of`` escalates
    to nobody, publish a copy whose policies escalate to the rep's manager, in force from the
    demo window's first day, so the demo's handoffs run on it. Returns the new version (None
    when nothing was needed, or when a later version already took force)."""
    in_force = sla_in_force(at=as_of)
    if in_force is None:
        return None
    if all(p.escalate_to_id or p.escalate_to_manager for p in in_force.policies.all()):
        return None
    window_start = datetime.fromtimestamp(
        (int(as_of.timestamp()) // DAY - WINDOW_DAYS) * DAY, tz=UTC
    )
    latest = latest_published_effective_from(SlaVersion)
    effective_from = max(window_start, latest + timedelta(seconds=1))
    if effective_from > as_of:
        return None
    draft = definition_create_draft(
        model=SlaVersion, actor=None, copy_from=in_force, note=DEMO_SLA_NOTE
    )
    draft.policies.update(escalate_to_manager=True)
    return definition_publish(version=draft, actor=None, effective_from=effective_from)


def _sla_terms_and_calendar(as_of: datetime) -> tuple[dict[str, SlaTerms], CalendarSpec]:
    """The MQL SLA policy per fit tier in force at ``as_of``, and the calendar it runs on."""
    fallback = default_sla_terms()
    terms, calendar = {}, None
    for tier in fallback:
        policy = sla_policy_for(stage_key="mql", tier=tier, at=as_of)
        if policy is None:
            terms[tier] = SlaTerms(None, fallback[tier].respond_hours, fallback[tier].accept_hours)
            continue
        terms[tier] = SlaTerms(
            policy.pk, float(policy.respond_within_hours), float(policy.accept_within_hours)
        )
        if calendar is None:
            calendar = _calendar_spec(policy.calendar)
    return terms, calendar or default_calendar()


def _calendar_spec(calendar) -> CalendarSpec:
    hours: dict[int, tuple[int, int]] = {}
    for block in calendar.working_hours.all():
        opens = block.opens_at.hour * 60 + block.opens_at.minute
        closes = block.closes_at.hour * 60 + block.closes_at.minute
        earlier = hours.get(block.weekday, (opens, closes))
        hours[block.weekday] = (min(opens, earlier[0]), max(closes, earlier[1]))
    holidays = frozenset(calendar.holidays.values_list("date", flat=True))
    if not hours:
        return default_calendar()
    return CalendarSpec(time_zone=calendar.time_zone, hours=hours, holidays=holidays)


def _reasons() -> tuple[ReasonRef, ...]:
    return tuple(
        ReasonRef(key=r.key, id=r.pk, label=r.label, requires_note=r.requires_note)
        for r in RejectionReason.objects.filter(is_active=True).order_by("order", "pk")
    )


# --- Writes --------------------------------------------------------------------------------------


def demo_data_reset() -> dict[str, int]:
    """Delete every fact the seed writes, and the demo users; definitions stay.

    Rows of other apps that point at the facts go as their foreign keys say: rows that would
    all cascade away (e.g. per-lead score state) are emptied with the facts, nullable or
    set-null references are released first, and a protecting reference refuses the reset.
    Returns the number of rows deleted per table.
    """
    wiped, released = _wipe_plan([model_for(key) for key in FACT_KEYS])
    with transaction.atomic():
        deleted = {_label(m): m._base_manager.count() for m in wiped}
        for relation in released:
            _release(relation)
        tables = [connection.ops.quote_name(m._meta.db_table) for m in wiped]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and not released:
                # Ten million events go in a blink instead of minutes of DELETE.
                cursor.execute(f"TRUNCATE {', '.join(tables)}")
            else:
                for table in tables:  # children first
                    cursor.execute(f"DELETE FROM {table}")
        user_model = get_user_model()
        _, per_model = user_model._default_manager.filter(username__in=DEMO_USERNAMES).delete()
        deleted["user"] = per_model.get(user_model._meta.label, 0)
    return {key: count for key, count in deleted.items() if count}


def _wipe_plan(fact_models: list[type[models.Model]]) -> tuple[list[type[models.Model]], list]:
    """(the tables to empty, children first; the outside relations to release before).

    A model outside the facts whose every row points at a fact through a non-null cascading
    key (or is a many-to-many link to one) loses all its rows anyway, so it is emptied along,
    transitively. Any other reference into the emptied tables is released row by row."""
    wiped, released = list(fact_models), []
    for model in wiped:  # grows while iterating
        for relation in model._meta.related_objects:
            other = relation.through if relation.many_to_many else relation.related_model
            if other in wiped:
                continue
            if relation.many_to_many or (
                relation.on_delete is models.CASCADE and not relation.field.null
            ):
                wiped.append(other)
            else:
                released.append(relation)
    outside = wiped[len(fact_models) :]
    return [*reversed(outside), *fact_models], released


def _release(relation) -> None:
    manager = relation.related_model._base_manager
    pointing = manager.filter(**{f"{relation.field.name}__isnull": False})
    on_delete = relation.on_delete
    if on_delete is models.CASCADE:
        pointing.delete()
    elif on_delete is models.SET_NULL:
        pointing.update(**{relation.field.name: None})
    elif on_delete is not models.DO_NOTHING and pointing.exists():
        raise DemoDataError(
            f"{relation.related_model._meta.verbose_name_plural} point at "
            f"{relation.model._meta.verbose_name_plural} and protect them: delete those first."
        )


def demo_data_seed(
    *,
    seed: int = 42,
    leads: int = 5000,
    events_per_lead: float = 8,
    as_of: datetime | None = None,
    reset: bool = False,
    progress: Progress | None = None,
) -> SeedReport:
    """Load the demo data set in one transaction; refuses when facts exist unless ``reset``."""
    started = time.perf_counter()
    with transaction.atomic():
        deleted = {}
        if reset:
            deleted = demo_data_reset()
        else:
            present = demo_data_present()
            if present:
                raise DemoDataError(
                    f"The database already has {', '.join(present)}: use --reset to replace "
                    "them with the demo data set."
                )
        reset_seconds = time.perf_counter() - started
        as_of = as_of or start_of_today_utc()
        demo_sla_escalation(as_of)
        sla_terms, calendar = _sla_terms_and_calendar(as_of)
        plan = DemoPlan(
            seed=seed,
            leads=leads,
            events_per_lead=events_per_lead,
            as_of=as_of,
            first_ids=_first_ids(),
            sla_terms=sla_terms,
            calendar=calendar,
            reasons=_reasons(),
        )
        report = SeedReport(plan=plan, deleted=deleted, reset_seconds=reset_seconds)
        with indexes_built_after(connection, demo_bulk_models()):
            _Loader(report, progress).load(generate(plan))
        _reset_sequences(connection, [model_for(spec) for spec in TABLES])
        report.activities = demo_activities_create(seed=seed)
        _analyze(connection, [model_for(spec) for spec in TABLES])
    report.total_seconds = time.perf_counter() - started
    return report


# The tables whose rows the seed writes by the million: built without their indexes, which are
# added once the rows are in (the small ones keep theirs: nothing to gain).
BULK_TABLE_KEYS = ("account", "lead", "event", "transition", "handoff", "opportunity")


def demo_bulk_models() -> list[type[models.Model]]:
    return [model_for(key) for key in BULK_TABLE_KEYS]


def _analyze(connection, model_list: Iterable[type[models.Model]]) -> None:
    """Fresh statistics after a bulk load, or the planner guesses badly on the first queries."""
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in model_list)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _reset_sequences(connection, model_list: Iterable[type[models.Model]]) -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), list(model_list))
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


class _Table:
    """Where a TableSpec's rows go: the model, the fields it has and which generator columns to
    keep."""

    def __init__(self, spec: TableSpec) -> None:
        self.model = model_for(spec)
        opts = self.model._meta
        self.fields, keep = [], []
        for index, name in enumerate(spec.columns):
            try:
                opts.get_field(name)
            except FieldDoesNotExist:
                if name in spec.optional:
                    continue
                raise
            self.fields.append(name)
            keep.append(index)
        self.project = None if len(keep) == len(spec.columns) else operator.itemgetter(*keep)

    def rows(self, rows: list[tuple]) -> list[tuple]:
        return rows if self.project is None else [self.project(row) for row in rows]


class _Loader:
    """Streams the generated chunks through the write layer's bulk writer (COPY on a thread of
    its own on PostgreSQL, so the next chunk is generated meanwhile; chunks keep their order),
    timing each table's writes for the report."""

    def __init__(self, report: SeedReport, progress: Progress | None) -> None:
        self.report = report
        self.progress = progress
        self.tables: dict[str, _Table] = {}

    def record(self, key: str, rows: int, seconds: float) -> None:
        load = self.report.tables.setdefault(key, TableLoad(key))
        load.rows += rows
        load.seconds += seconds
        if self.progress:
            self.progress(load)

    def load(self, chunks: Iterable[Chunk]) -> None:
        constraints_per_statement(connection)
        writer = writer_for(connection, on_written=self.record)
        try:
            for chunk in chunks:
                spec = chunk.table
                if spec.key not in self.tables:
                    self.tables[spec.key] = _Table(spec)
                table = self.tables[spec.key]
                writer.insert(
                    table.model, table.fields, table.rows(chunk.rows), prepared=True,
                    label=spec.key,
                )  # fmt: skip
            writer.flush()
        finally:
            writer.close()
