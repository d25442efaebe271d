"""The set-based write layer for pipeline facts: one definition of each write.

Leads, accounts, engagement events, stage transitions and the stage moves deals imply are
written here, for a batch of plain rows at a time (frozen dataclasses). The per-row services
(``lead_move_to_stage``, ``engagement_events_record``, ``lead_follow_opportunity``…), the API,
the admin and the CSV import all call these functions, so each fact is written one way:

* ``stage_moves_record`` — append-only ``StageTransition`` rows and the lead's ``stage``,
  ``stage_entered_at`` and ``in_marketing_nurture`` (``Lifecycle.in_nurture``); several moves
  of one lead in a batch are a path, applied in order;
* ``events_record`` — engagement events, idempotent on (source system, external id): one
  received before, or earlier in the batch, is a duplicate and not stored; the stage triggers
  of the stored events apply (``event_triggers_apply``);
* ``leads_upsert`` / ``accounts_upsert`` — new leads with the stage history their path
  implies, changed leads and accounts;
* ``leads_follow_deals`` — the stage an open, won or lost deal implies (``Lifecycle.deal_target``).

Writes go through the ORM (multi-row INSERT, one UPDATE per lead or per batch), or, given a
``writer`` (``leads.services.bulk``: COPY on PostgreSQL), stream through it. Each batch whose
writes change what a score depends on (new leads, changed lead or account fields, new events)
is announced once through ``leads.services.hooks.lead_facts_changed`` with its lead ids, after
its rows are written and inside the writing transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from leads.choices import ActorType, EventKind, FitTier, Seniority
from leads.lifecycle import Lifecycle
from leads.models import Account, EngagementEvent, EventKey, Lead, StageTransition
from leads.models.facts import normalize_tags
from leads.selectors import lifecycle_at
from leads.services.bulk import Writer, rows_matching
from leads.services.hooks import lead_facts_changed

READ_BATCH = 10_000  # ids per read (below SQLite's variable limit)
UPDATE_BATCH = 1_000

TRANSITION_FIELDS = ["lead", "from_stage", "to_stage", "transitioned_at", "actor_type", "actor",
                     "reason"]  # fmt: skip
TRANSITION_ATTNAMES = ["lead_id", "from_stage", "to_stage", "transitioned_at", "actor_type",
                       "actor_id", "reason"]  # fmt: skip
LEAD_FIELDS = ["id", "first_name", "last_name", "email", "phone", "title", "seniority",
               "country", "account", "source", "campaign", "owner", "stage", "stage_entered_at",
               "tier", "in_marketing_nurture", "external_id", "created_at",
               "updated_at"]  # fmt: skip
EVENT_FIELDS = ["lead", "kind", "occurred_at", "properties", "content_asset", "source_system",
                "external_id", "received_at"]  # fmt: skip
ACCOUNT_FIELDS = ["id", "name", "domain", "industry", "employees", "annual_revenue", "country",
                  "region", "technologies", "signals", "external_id", "created_at"]  # fmt: skip
LEAD_STAGE_FIELDS = ("stage", "stage_entered_at", "in_marketing_nurture", "updated_at")
# Written by the pipeline only (stage paths, scoring): never by a lead change.
NOT_CHANGEABLE = frozenset({"id", "stage", "stage_entered_at", "tier", "updated_at"})


# --- Rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StageMove:
    """Move a lead to a stage at an instant; who did it and why go into its history."""

    lead_id: int
    to_stage: str
    at: datetime
    actor_type: str = ActorType.SYSTEM
    actor_id: int | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class LeadStage:
    """A lead's stage fields."""

    stage: str
    entered_at: datetime | None
    in_nurture: bool


@dataclass(frozen=True, kw_only=True)
class StageStep:
    """One step of a stage path (a new or changed lead's history)."""

    stage: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class EventRow:
    lead_id: int
    kind: str
    occurred_at: datetime
    source_system: str = ""
    external_id: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    content_asset_id: int | None = None
    received_at: datetime | None = None  # now when not given

    @classmethod
    def of(cls, event: EngagementEvent) -> EventRow:
        return cls(
            lead_id=event.lead_id,
            kind=event.kind,
            occurred_at=event.occurred_at,
            source_system=event.source_system,
            external_id=event.external_id,
            properties=event.properties or {},
            content_asset_id=event.content_asset_id,
            received_at=event.received_at,
        )


@dataclass(frozen=True, kw_only=True)
class NewLead:
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    title: str = ""
    seniority: str = Seniority.UNKNOWN
    country: str = ""
    account_id: int | None = None
    source_id: int | None = None
    campaign_id: int | None = None
    owner_id: int | None = None
    external_id: str = ""
    created_at: datetime | None = None  # now when not given
    in_marketing_nurture: bool | None = None  # None: as its path implies (from True)
    # The stages it went through, the first from nothing; empty: the lifecycle's first stage
    # at its creation.
    path: tuple[StageStep, ...] = ()
    actor_type: str = ActorType.SYSTEM
    actor_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class LeadChange:
    lead_id: int
    # Field name → new value (foreign keys by name, with an id: {"account": 7}); an explicit
    # in_marketing_nurture wins over the one the path implies.
    fields: Mapping[str, Any] = field(default_factory=dict)
    path: tuple[StageStep, ...] = ()  # stage moves, from the lead's current stage
    actor_type: str = ActorType.SYSTEM
    actor_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class NewAccount:
    name: str
    domain: str = ""
    industry: str = ""
    employees: int | None = None
    annual_revenue: Any = None
    country: str = ""
    region: str = ""
    technologies: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    external_id: str = ""
    created_at: datetime | None = None  # now when not given


@dataclass(frozen=True, kw_only=True)
class AccountChange:
    account_id: int
    fields: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class DealFact:
    """What a deal says about its lead: open, won or lost, as of ``at``."""

    lead_id: int
    name: str
    status: str  # open, won, lost
    at: datetime
    actor_type: str = ActorType.SYSTEM
    actor_id: int | None = None


# --- Results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MovesRecorded:
    transitions: list[StageTransition]  # with ids when written without a writer
    stages: dict[int, LeadStage]  # the moved leads' stage fields after the moves


@dataclass(frozen=True)
class EventsRecorded:
    stored: list[int]  # positions (in the rows given) of the events stored
    duplicates: list[int]  # positions of events received before, or earlier in the batch
    events: list[EngagementEvent]  # the stored events (with ids when written without a writer)
    lead_ids: list[int]  # announced
    moved: int = 0  # leads their stage triggers moved


@dataclass(frozen=True)
class LeadsUpserted:
    created_ids: list[int]  # in the order of ``new``
    changed_ids: list[int]
    transitions: int
    lead_ids: list[int]  # announced


@dataclass(frozen=True)
class AccountsUpserted:
    created_ids: list[int]  # in the order of ``new``
    lead_ids: list[int]  # announced: the leads of changed accounts


# --- Transactions and announcing -------------------------------------------------------------


def _atomic(writer: Writer | None, *, savepoint: bool = True):
    """A savepoint around the batch's writes, unless they stream through a writer: then the
    caller's transaction holds them (a writer only works inside one), and no statement may run
    while a COPY is in flight on the connection — the layer flushes the writer before it reads,
    and opens no savepoint whose release could overtake a queued COPY."""
    if writer is not None:
        if not transaction.get_connection().in_atomic_block:
            raise TransactionManagementError("Writing through a bulk writer needs a transaction.")
        return nullcontext()
    return transaction.atomic(savepoint=savepoint)


def _settle(writer: Writer | None) -> None:
    """Let the writer finish what is queued before this function queries the connection."""
    if writer is not None:
        writer.flush()


def _announce(lead_ids: Iterable[int], writer: Writer | None) -> list[int]:
    """Announce once the batch's rows are written (at once without a writer)."""
    ids = sorted(set(lead_ids))
    if not ids:
        return ids
    if writer is None:
        lead_facts_changed(lead_ids=ids)
    elif writer.announced is not None:
        writer.announced.update(ids)  # the caller announces them once: announce_collected
    else:
        writer.after_flush(lambda: lead_facts_changed(lead_ids=ids))
    return ids


def announce_collected(writer: Writer) -> list[int]:
    """Announce the leads collected in ``writer.announced`` (see ``bulk.Writer``) once what is
    in flight is written, and empty it. An import touching a lead in several chunks marks it
    for rescoring once instead of once a chunk (each mark rewrites its score row)."""
    writer.flush()
    ids = sorted(writer.announced or ())
    if writer.announced:
        writer.announced.clear()
    if ids:
        lead_facts_changed(lead_ids=ids)
    return ids


# --- Stage moves ------------------------------------------------------------------------------


def lead_stages_locked(lead_ids: Iterable[int], *, writer: Writer | None = None):
    """The stage fields of these leads, their rows locked (in id order) until the commit."""
    if writer is not None:
        writer.flush()
    ids = sorted(set(lead_ids))
    states: dict[int, LeadStage] = {}
    for start in range(0, len(ids), READ_BATCH):
        rows = (
            Lead.objects.select_for_update()
            .filter(pk__in=ids[start : start + READ_BATCH])
            .order_by("pk")
            .values_list("pk", "stage", "stage_entered_at", "in_marketing_nurture")
        )
        for pk, stage, entered_at, nurture in rows:
            states[pk] = LeadStage(stage=stage, entered_at=entered_at, in_nurture=nurture)
    return states


def stage_moves_record(
    *,
    moves: Sequence[StageMove],
    lifecycle: Lifecycle | None = None,
    current: Mapping[int, LeadStage] | None = None,
    writer: Writer | None = None,
) -> MovesRecorded:
    """Record stage moves: a ``StageTransition`` per move, and each moved lead's stage fields
    as its last move leaves them. Moves of one lead apply in the order given, each from where
    the one before left it. ``current``: the leads' stage fields when the caller holds them
    (locked), else they are read and locked. ``lifecycle``: the one in force at the latest move
    when not given. Refuses unknown stages and moves to the stage a lead is in."""
    _settle(writer)
    moves = list(moves)
    if not moves:
        return MovesRecorded([], {})
    lifecycle = lifecycle or lifecycle_at(max(move.at for move in moves))
    for move in moves:
        if move.to_stage not in lifecycle.by_key:
            raise ValidationError(
                {
                    "to_stage": f"Unknown stage {move.to_stage!r}; stages in force: "
                    f"{', '.join(lifecycle.keys)}."
                }
            )
    with _atomic(writer):
        if current is None:
            current = lead_stages_locked((move.lead_id for move in moves), writer=writer)
        after: dict[int, LeadStage] = {}
        transitions = []
        for move in moves:
            state = after.get(move.lead_id) or current.get(move.lead_id)
            if state is None:
                raise ValidationError({"lead": f"No lead #{move.lead_id}."})
            if state.stage == move.to_stage:
                raise ValidationError(
                    {
                        "to_stage": f"Lead #{move.lead_id} is already in "
                        f"{lifecycle.names[move.to_stage]}."
                    }
                )
            transitions.append(
                StageTransition(
                    lead_id=move.lead_id,
                    from_stage=state.stage,
                    to_stage=move.to_stage,
                    transitioned_at=move.at,
                    actor_type=move.actor_type,
                    actor_id=move.actor_id,
                    reason=move.reason[:300],
                )
            )
            after[move.lead_id] = LeadStage(
                stage=move.to_stage,
                entered_at=move.at,
                in_nurture=lifecycle.in_nurture(move.to_stage, state.in_nurture),
            )
        _transitions_write(transitions, writer)
        _lead_stages_write(after, writer)
    return MovesRecorded(transitions, after)


def _transitions_write(transitions: list[StageTransition], writer: Writer | None) -> None:
    if not transitions:
        return
    if writer is None:
        StageTransition.objects.bulk_create(transitions, batch_size=UPDATE_BATCH)
        return
    writer.insert(
        StageTransition,
        TRANSITION_FIELDS,
        [
            (t.lead_id, t.from_stage, t.to_stage, t.transitioned_at, t.actor_type, t.actor_id,
             t.reason)
            for t in transitions
        ],
    )  # fmt: skip


def _lead_stages_write(states: Mapping[int, LeadStage], writer: Writer | None) -> None:
    now = timezone.now()
    if writer is not None:
        rows = [(pk, s.stage, s.entered_at, s.in_nurture, now) for pk, s in states.items()]
        writer.update(Lead, list(LEAD_STAGE_FIELDS), rows)
        return
    if len(states) == 1:
        [(pk, state)] = states.items()
        Lead.objects.filter(pk=pk).update(
            stage=state.stage,
            stage_entered_at=state.entered_at,
            in_marketing_nurture=state.in_nurture,
            updated_at=now,
        )
        return
    if connection.vendor == "postgresql":
        # One statement over arrays: Django's bulk_update builds a CASE per field with a WHEN
        # per lead, ~2.5 ms of Python a lead (a publish's 7,000 threshold crossings spent 18 s
        # there, against 0.6 s in PostgreSQL).
        ordered = sorted(states.items())
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Lead._meta.db_table} SET stage = v.stage, "
                "stage_entered_at = v.entered_at, in_marketing_nurture = v.in_nurture, "
                "updated_at = %s FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], "
                "%s::boolean[]) AS v(id, stage, entered_at, in_nurture) "
                f"WHERE {Lead._meta.db_table}.id = v.id",
                [
                    now,
                    [pk for pk, _ in ordered],
                    [s.stage for _, s in ordered],
                    [s.entered_at for _, s in ordered],
                    [s.in_nurture for _, s in ordered],
                ],
            )
        return
    Lead.objects.bulk_update(
        [
            Lead(pk=pk, stage=s.stage, stage_entered_at=s.entered_at,
                 in_marketing_nurture=s.in_nurture, updated_at=now)
            for pk, s in states.items()
        ],
        list(LEAD_STAGE_FIELDS),
        batch_size=UPDATE_BATCH,
    )  # fmt: skip


# --- Engagement events -----------------------------------------------------------------------


def events_received(keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (source system, external id) pairs were received before. One indexed query per
    source system, on the key table (its primary key; it also holds the keys of events
    retention dropped, so a re-sent old event stays a duplicate)."""
    by_system: dict[str, set[str]] = defaultdict(set)
    for system, external_id in keys:
        if external_id:
            by_system[system].add(external_id)
    received = set()
    for system, external_ids in by_system.items():
        found = rows_matching(EventKey, "external_id", external_ids, ["external_id"],
                              where={"source_system": system})  # fmt: skip
        received.update((system, row["external_id"]) for row in found)
    return received


def events_record(
    *,
    events: Sequence[EventRow],
    lifecycle: Lifecycle | None = None,
    apply_triggers: bool = True,
    writer: Writer | None = None,
) -> EventsRecorded:
    """Store new engagement events, skipping any received before (same source system and
    external id, or earlier in the batch); apply the stage triggers of those stored (unless
    the caller applies them later, as the import does for the whole file); announce their
    leads."""
    _settle(writer)
    events = list(events)
    seen = events_received((e.source_system, e.external_id) for e in events)
    stored, duplicates = [], []
    for position, event in enumerate(events):
        if event.external_id:
            key = (event.source_system, event.external_id)
            if key in seen:
                duplicates.append(position)
                continue
            seen.add(key)
        stored.append(position)
    now = timezone.now()
    fresh = [
        EngagementEvent(
            lead_id=e.lead_id,
            kind=e.kind,
            occurred_at=e.occurred_at,
            properties=dict(e.properties),
            content_asset_id=e.content_asset_id,
            source_system=e.source_system,
            external_id=e.external_id,
            received_at=e.received_at or now,
        )
        for e in (events[position] for position in stored)
    ]
    moved = 0
    # Part of the caller's transaction when there is one (no savepoint): nothing here refuses
    # a row, so a failure is a database error that fails the caller's batch whole.
    with _atomic(writer, savepoint=False):
        if writer is None:
            EngagementEvent.objects.bulk_create(fresh, batch_size=UPDATE_BATCH)
        else:
            writer.insert(
                EngagementEvent,
                EVENT_FIELDS,
                [
                    (e.lead_id, e.kind, e.occurred_at, e.properties, e.content_asset_id,
                     e.source_system, e.external_id, e.received_at)
                    for e in fresh
                ],
            )  # fmt: skip
        # Announce before the triggers: scoring locks the leads' score rows, then the triggers
        # their lead rows — the order a full rescore takes them in, so the two never deadlock.
        lead_ids = _announce((e.lead_id for e in fresh), writer)
        if apply_triggers:
            moved = event_triggers_apply(events=fresh, lifecycle=lifecycle, writer=writer)
    return EventsRecorded(stored, duplicates, fresh, lead_ids, moved)


def events_stage(
    *, events: Sequence[EventRow] = (), rows: Iterable[tuple] = (), writer: Writer
) -> None:
    """Queue new events for ``events_staged_store``: ``events``, or ``rows`` already in
    ``EVENT_FIELDS`` order (a caller holding its events as columns zips them, with no object
    a row). The caller has left out those received before (``events_received``) and repeats
    within its rows. Nothing reaches the event table, and no id is taken from its sequence,
    until then: a caller that finds a bad row later rolls back having written nothing."""
    now = timezone.now()
    writer.stage(
        EngagementEvent,
        EVENT_FIELDS,
        [
            *((e.lead_id, e.kind, e.occurred_at, e.properties, e.content_asset_id,
               e.source_system, e.external_id, e.received_at or now)
              for e in events),
            *rows,
        ],
    )  # fmt: skip


def events_staged_store(
    *,
    writer: Writer,
    lead_ids: Iterable[int],
    triggers: Sequence = (),
    lifecycle: Lifecycle | None = None,
    batch: int = 5_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Store every event ``events_stage`` queued, in one statement and in (lead, occurred_at)
    order, so the lead index and the foreign key's lookups walk their pages in order; announce
    their leads (``lead_ids``, once each); then apply the stage triggers of ``triggers`` (the
    staged events of trigger kinds) in the order they occurred, ``batch`` leads' events at a
    time. ``progress(events stored so far)`` is called as they are. Returns how many stage
    moves the triggers made."""
    writer.insert_staged(
        EngagementEvent, EVENT_FIELDS, order_by=["lead", "occurred_at"], progress=progress
    )
    # Announce before the triggers, as events_record does (score rows, then lead rows).
    _announce(lead_ids, writer)
    if writer.announced is not None:
        announce_collected(writer)
    events = sorted(triggers, key=lambda e: e.occurred_at)
    moved = 0
    for start in range(0, len(events), batch):
        moved += event_triggers_apply(
            events=events[start : start + batch], lifecycle=lifecycle, writer=writer
        )
    return moved


def event_triggers_apply(
    *, events: Sequence, lifecycle: Lifecycle | None = None, writer: Writer | None = None
) -> int:
    """Move leads whose new event triggers the stage right after theirs (e.g. a booked meeting
    takes a SAL to SQL), in the order the events occurred; a stage that opens a handoff opens
    one. ``events`` have ``lead_id``, ``kind`` and ``occurred_at``. Returns how many moves."""
    _settle(writer)
    lifecycle = lifecycle or lifecycle_at()
    triggers = lifecycle.event_triggers
    relevant = sorted((e for e in events if e.kind in triggers), key=lambda e: e.occurred_at)
    if not relevant:
        return 0
    from_keys = {before for moves in triggers.values() for before, _ in moves}
    with _atomic(writer):
        locked = lead_stages_locked({e.lead_id for e in relevant}, writer=writer)
        current = {pk: state for pk, state in locked.items() if state.stage in from_keys}
        states = dict(current)
        moves: list[StageMove] = []
        for event in relevant:
            state = states.get(event.lead_id)
            if state is None:
                continue
            for before, stage in triggers[event.kind]:
                if state.stage != before:
                    continue
                at = max(event.occurred_at, state.entered_at)
                moves.append(
                    StageMove(
                        lead_id=event.lead_id,
                        to_stage=stage.key,
                        at=at,
                        actor_type=ActorType.SYSTEM,
                        reason=f"{EventKind(event.kind).label} recorded",
                    )
                )
                states[event.lead_id] = LeadStage(
                    stage=stage.key,
                    entered_at=at,
                    in_nurture=lifecycle.in_nurture(stage.key, state.in_nurture),
                )
                break
        stage_moves_record(moves=moves, lifecycle=lifecycle, current=current, writer=writer)
        opening = [move for move in moves if lifecycle.by_key[move.to_stage].opens_handoff]
        if opening:
            from leads.services.pipeline import HandoffRequest, handoffs_open

            if writer is not None:
                writer.flush()
            leads = Lead.objects.select_related("account").in_bulk(
                {move.lead_id for move in opening}
            )
            handoffs_open(
                [
                    HandoffRequest(lead=leads[move.lead_id], stage_key=move.to_stage, at=move.at)
                    for move in opening
                ]
            )
    return len(moves)


# --- Leads and accounts ------------------------------------------------------------------------


def _attname(model, name: str) -> str:
    return model._meta.get_field(name).attname


def _path_nurture(lifecycle: Lifecycle, path: Iterable[StageStep], nurture: bool) -> bool:
    for step in path:
        nurture = lifecycle.in_nurture(step.stage, nurture)
    return nurture


def leads_upsert(
    *,
    new: Sequence[NewLead] = (),
    changed: Sequence[LeadChange] = (),
    lifecycle: Lifecycle | None = None,
    current: Mapping[int, LeadStage] | None = None,
    writer: Writer | None = None,
) -> LeadsUpserted:
    """Create leads with the stage history their path implies (``"" → first stage`` at the
    creation, then each step), and change leads: their fields, and the stage moves of their
    path from where they are. Announces every created and changed lead."""
    # No flush here: each step that runs a statement settles the writer itself, so a caller
    # that reserved the ids (``Writer.reserve_ids``) builds its next batch while this one's
    # COPYs are still in flight.
    new, changed = list(new), [c for c in changed if c.fields or c.path]
    if lifecycle is None:
        _settle(writer)
        lifecycle = lifecycle_at()
    for change in changed:
        refused = NOT_CHANGEABLE & set(change.fields)
        if refused:
            raise ValidationError(
                f"{', '.join(sorted(refused))} change through the pipeline (a stage path), "
                "not as a lead field."
            )
    now = timezone.now()
    transitions = 0
    with _atomic(writer):
        created_ids = _leads_create(new, lifecycle, writer, now)
        transitions += sum(len(row.path) or 1 for row in new)
        moves = [
            StageMove(lead_id=change.lead_id, to_stage=step.stage, at=step.at,
                      actor_type=change.actor_type, actor_id=change.actor_id,
                      reason=step.reason)
            for change in changed
            for step in change.path
        ]  # fmt: skip
        if moves:
            transitions += len(
                stage_moves_record(
                    moves=moves, lifecycle=lifecycle, current=current, writer=writer
                ).transitions
            )
        _leads_change(changed, writer, now)
        changed_ids = [change.lead_id for change in changed]
        lead_ids = _announce([*created_ids, *changed_ids], writer)
    return LeadsUpserted(created_ids, changed_ids, transitions, lead_ids)


def _leads_create(new: list[NewLead], lifecycle: Lifecycle, writer, now) -> list[int]:
    if not new:
        return []
    paths, nurtures = [], []
    for row in new:
        path = row.path or (StageStep(stage=lifecycle.first, at=row.created_at or now),)
        nurture = row.in_marketing_nurture
        if nurture is None:
            nurture = _path_nurture(lifecycle, path, True)
        paths.append(path)
        nurtures.append(nurture)
    unknown = {step.stage for path in paths for step in path} - lifecycle.by_key.keys()
    if unknown:
        raise ValidationError({"stage": f"Unknown stage {sorted(unknown)[0]!r}."})
    tier = FitTier.D.value  # scoring sets the tier when it scores the lead
    if writer is None:
        leads = [
            Lead(
                first_name=row.first_name, last_name=row.last_name, email=row.email,
                phone=row.phone, title=row.title, seniority=row.seniority, country=row.country,
                account_id=row.account_id, source_id=row.source_id,
                campaign_id=row.campaign_id, owner_id=row.owner_id, stage=path[-1].stage,
                stage_entered_at=path[-1].at, tier=tier, in_marketing_nurture=nurture,
                external_id=row.external_id, created_at=row.created_at or now, updated_at=now,
            )
            for row, path, nurture in zip(new, paths, nurtures, strict=True)
        ]  # fmt: skip
        Lead.objects.bulk_create(leads, batch_size=UPDATE_BATCH)
        ids = [lead.pk for lead in leads]
    else:
        # Rows in LEAD_FIELDS' order, straight from the batch: a model instance per lead (and
        # per history row) cost more than the COPY that writes it.
        ids = writer.allocate_ids(Lead, len(new))
        writer.insert(
            Lead, LEAD_FIELDS,
            [
                (pk, row.first_name, row.last_name, row.email, row.phone, row.title,
                 row.seniority, row.country, row.account_id, row.source_id, row.campaign_id,
                 row.owner_id, path[-1].stage, path[-1].at, tier, nurture, row.external_id,
                 row.created_at or now, now)
                for pk, row, path, nurture in zip(ids, new, paths, nurtures, strict=True)
            ],
        )  # fmt: skip
    history = []
    for pk, row, path in zip(ids, new, paths, strict=True):
        previous = ""
        for step in path:
            history.append((pk, previous, step.stage, step.at, row.actor_type, row.actor_id,
                            step.reason[:300]))  # fmt: skip
            previous = step.stage
    if writer is None:
        _transitions_write(
            [StageTransition(**dict(zip(TRANSITION_ATTNAMES, values, strict=True)))
             for values in history],
            writer,
        )  # fmt: skip
    else:
        writer.insert(StageTransition, TRANSITION_FIELDS, history)
    return ids


def _grouped(changes: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[tuple[str, ...], list]:
    """Rows ``(pk, *values)`` by the set of fields they change."""
    grouped: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for pk, fields in changes:
        names = tuple(sorted(fields))
        grouped[names].append((pk, *(fields[name] for name in names)))
    return grouped


def _rows_change(model, changes, writer, extra: Mapping[str, Any] | None = None) -> None:
    """Write field changes ``(pk, {field: value})``: through the writer, else one UPDATE per
    row for a few rows and ``bulk_update`` per field set for more."""
    changes = [(pk, {**fields, **(extra or {})}) for pk, fields in changes if fields]
    if not changes:
        return
    for names, rows in _grouped(changes).items():
        if writer is not None:
            writer.update(model, list(names), rows)
        elif len(rows) == 1:
            pk, *values = rows[0]
            model.objects.filter(pk=pk).update(**dict(zip(names, values, strict=True)))
        else:
            objects = []
            for pk, *values in rows:
                instance = model(pk=pk)
                for name, value in zip(names, values, strict=True):
                    setattr(instance, _attname(model, name), value)
                objects.append(instance)
            model.objects.bulk_update(objects, list(names), batch_size=UPDATE_BATCH)


def _leads_change(changed: list[LeadChange], writer, now) -> None:
    _rows_change(
        Lead,
        [(change.lead_id, dict(change.fields)) for change in changed],
        writer,
        extra={"updated_at": now},
    )


def accounts_upsert(
    *,
    new: Sequence[NewAccount] = (),
    changed: Sequence[AccountChange] = (),
    writer: Writer | None = None,
) -> AccountsUpserted:
    """Create and change accounts (technologies and signals stored normalized, as
    ``Account.save`` stores them). A changed account changes its leads' fit: they are
    announced."""
    _settle(writer)
    new, changed = list(new), [c for c in changed if c.fields]
    now = timezone.now()
    accounts = [
        Account(
            name=row.name, domain=row.domain, industry=row.industry, employees=row.employees,
            annual_revenue=row.annual_revenue, country=row.country, region=row.region,
            technologies=normalize_tags(list(row.technologies)),
            signals=normalize_tags(list(row.signals)), external_id=row.external_id,
            created_at=row.created_at or now,
        )
        for row in new
    ]  # fmt: skip
    with _atomic(writer):
        if accounts and writer is None:
            Account.objects.bulk_create(accounts, batch_size=UPDATE_BATCH)
        elif accounts:
            for account, pk in zip(accounts, writer.allocate_ids(Account, len(accounts)),
                                   strict=True):  # fmt: skip
                account.pk = pk
            writer.insert(
                Account,
                ACCOUNT_FIELDS,
                [tuple(getattr(a, name) for name in ACCOUNT_FIELDS) for a in accounts],
            )
        tags = ("technologies", "signals")
        _rows_change(
            Account,
            [
                (c.account_id,
                 {k: normalize_tags(list(v)) if k in tags else v for k, v in c.fields.items()})
                for c in changed
            ],
            writer,
        )  # fmt: skip
        lead_ids: list[int] = []
        if changed:
            if writer is not None:
                writer.flush()
            account_ids = sorted({c.account_id for c in changed})
            for start in range(0, len(account_ids), READ_BATCH):
                lead_ids += Lead.objects.filter(
                    account_id__in=account_ids[start : start + READ_BATCH]
                ).values_list("pk", flat=True)
        announced = _announce(lead_ids, writer)
    return AccountsUpserted([account.pk for account in accounts], announced)


# --- Deals -------------------------------------------------------------------------------------

DEAL_VERBS = {"open": "opened", "won": "won", "lost": "lost"}


def leads_follow_deals(
    *,
    deals: Sequence[DealFact],
    lifecycle: Lifecycle | None = None,
    writer: Writer | None = None,
) -> MovesRecorded:
    """Keep leads' stages in step with their deals, in the order given, with the history a
    person moving them would write: where ``Lifecycle.deal_target`` says (an open deal forward
    to the last open sales stage, never backwards; a won one to the won stage, a lost one to
    the lost stage), never before the lead entered its current stage. A lead already there
    does not move (re-saving a deal is a no-op)."""
    _settle(writer)
    deals = list(deals)
    if not deals:
        return MovesRecorded([], {})
    lifecycle = lifecycle or lifecycle_at(max(deal.at for deal in deals))
    with _atomic(writer):
        current = lead_stages_locked({deal.lead_id for deal in deals}, writer=writer)
        states = dict(current)
        moves = []
        for deal in deals:
            state = states.get(deal.lead_id)
            if state is None:
                continue
            target = lifecycle.deal_target(deal.status, state.stage)
            if target is None:
                continue
            at = max(deal.at, state.entered_at) if state.entered_at else deal.at
            moves.append(
                StageMove(
                    lead_id=deal.lead_id,
                    to_stage=target,
                    at=at,
                    actor_type=deal.actor_type,
                    actor_id=deal.actor_id,
                    reason=f"Opportunity {deal.name!r} {DEAL_VERBS[deal.status]}",
                )
            )
            states[deal.lead_id] = LeadStage(
                stage=target,
                entered_at=at,
                in_nurture=lifecycle.in_nurture(target, state.in_nurture),
            )
        return stage_moves_record(moves=moves, lifecycle=lifecycle, current=current, writer=writer)
