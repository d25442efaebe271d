"""The set-based write layer writes exactly the facts the per-row services wrote, over random
leads and batches: the same stage history, the same events stored (duplicates skipped), the
same stage fields on the leads and the same leads announced to other apps.

The reference is the per-row services as they were before the layer existed (commit 0c48a29),
kept below as plain ORM code reading the stage rows: today's per-row services (thin calls into
the layer), a batch through the ORM and a batch streamed through the bulk writer (COPY on
PostgreSQL) must all write what it writes."""

import itertools
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.choices import ActorType, EventKind, StageKind, TriggerType
from leads.defaults import DEFAULT_STAGES
from leads.models import EngagementEvent, Lead, Opportunity, StageTransition
from leads.selectors import stages_in_force
from leads.services import (
    engagement_events_record,
    facts,
    hooks,
    lead_create,
    lead_follow_opportunity,
    lead_move_to_stage,
)
from leads.services.bulk import writer_for

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STAGES = [row[0] for row in DEFAULT_STAGES]
KINDS = [EventKind.PAGE_VIEW, EventKind.PRICING_PAGE, EventKind.MEETING_BOOKED]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

leads_st = st.lists(
    st.tuples(st.sampled_from(STAGES), st.integers(0, 48), st.booleans()), min_size=1, max_size=4
)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


# --- The reference: the per-row services before the write layer (plain ORM) -------------------


def reference_move(*, lead, to_stage, actor_type=ActorType.USER, reason="", at):
    stages = {stage.key: stage for stage in stages_in_force(at=at)}
    target = stages[to_stage]
    StageTransition.objects.create(
        lead=lead,
        from_stage=lead.stage,
        to_stage=to_stage,
        transitioned_at=at,
        actor_type=actor_type,
        reason=reason,
    )
    lead.stage, lead.stage_entered_at = to_stage, at
    if target.team == "sales":
        lead.in_marketing_nurture = False
    elif target.kind == "nurture":
        lead.in_marketing_nurture = True
    lead.save(update_fields=["stage", "stage_entered_at", "in_marketing_nurture", "updated_at"])


def reference_triggers(events) -> None:
    open_stages = [s for s in stages_in_force() if s.kind == StageKind.OPEN]
    triggered = {}
    for before, stage in itertools.pairwise(open_stages):
        if stage.trigger_type == TriggerType.EVENT:
            triggered.setdefault(stage.trigger_event_kind, []).append((before.key, stage))
    relevant = sorted((e for e in events if e.kind in triggered), key=lambda e: e.occurred_at)
    leads = Lead.objects.in_bulk({e.lead_id for e in relevant})
    for event in relevant:
        lead = leads[event.lead_id]
        for before, stage in triggered[event.kind]:
            if lead.stage == before:
                reference_move(
                    lead=lead,
                    to_stage=stage.key,
                    actor_type=ActorType.SYSTEM,
                    reason=f"{EventKind(event.kind).label} recorded",
                    at=max(event.occurred_at, lead.stage_entered_at),
                )
                break


def reference_events_record(events, announced) -> None:
    seen = set(
        EngagementEvent.objects.exclude(external_id="").values_list("source_system", "external_id")
    )
    fresh = []
    for event in events:
        key = (event.source_system, event.external_id)
        if event.external_id:
            if key in seen:
                continue
            seen.add(key)
        fresh.append(event)
    EngagementEvent.objects.bulk_create(fresh)
    reference_triggers(fresh)
    if fresh:
        announced.append(sorted({event.lead_id for event in fresh}))


def reference_follow(opportunity) -> None:
    at = opportunity.closed_at or opportunity.created_at
    stages = stages_in_force(at=at)
    if opportunity.status == "open":
        candidates = [s for s in stages if s.kind == StageKind.OPEN and s.team == "sales"]
        target = candidates[-1] if candidates else None
    else:
        target = next((s for s in stages if s.kind == opportunity.status), None)
    lead = Lead.objects.get(pk=opportunity.lead_id)
    if target is None or lead.stage == target.key:
        return
    if opportunity.status == "open":
        order = {stage.key: stage.order for stage in stages}
        current = next((s for s in stages if s.key == lead.stage), None)
        closed = current is not None and current.kind in (StageKind.WON, StageKind.LOST)
        if closed or order.get(lead.stage, -1) >= target.order:
            return
    verb = {"open": "opened", "won": "won", "lost": "lost"}[opportunity.status]
    reference_move(
        lead=lead,
        to_stage=target.key,
        actor_type=ActorType.SYSTEM,
        reason=f"Opportunity {opportunity.name!r} {verb}",
        at=max(at, lead.stage_entered_at),
    )


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def announced():
    """Every announcement of the facts-changed hook, as lists of lead ids."""
    calls: list[list[int]] = []

    def record(*, lead_ids):
        calls.append(list(lead_ids))

    hooks.on_lead_facts_changed(record)
    yield calls
    hooks._FACTS_CHANGED_HOOKS.remove(record)


def make_leads(specs) -> list[int]:
    leads = Lead.objects.bulk_create(
        Lead(
            email=f"lead{index}@example.com",
            stage=stage,
            stage_entered_at=minutes(entered),
            in_marketing_nurture=nurture,
        )
        for index, (stage, entered, nurture) in enumerate(specs)
    )
    return [lead.pk for lead in leads]


def facts_of(lead_ids) -> dict:
    return {
        "transitions": list(
            StageTransition.objects.filter(lead_id__in=lead_ids)
            .order_by("lead_id", "transitioned_at", "pk")
            .values_list(
                "lead_id", "from_stage", "to_stage", "transitioned_at", "actor_type", "reason"
            )
        ),
        "events": sorted(
            EngagementEvent.objects.filter(lead_id__in=lead_ids).values_list(
                "lead_id", "kind", "occurred_at", "source_system", "external_id"
            )
        ),
        "leads": list(
            Lead.objects.filter(pk__in=lead_ids)
            .order_by("pk")
            .values_list("pk", "stage", "stage_entered_at", "in_marketing_nurture")
        ),
    }


def four_ways(lead_ids, announced, reference, per_row, batch) -> list[tuple[dict, list]]:
    """Run the reference, today's per-row services, the batch through the ORM and the batch
    streamed through the bulk writer, each from the same state; return each one's facts and
    announcements."""
    results = []
    for way in ("reference", "per_row", "batch", "streamed"):
        with rolled_back():
            announced.clear()
            if way == "reference":
                reference_announced: list[list[int]] = []
                reference(reference_announced)
                announced[:] = reference_announced
            elif way == "per_row":
                per_row()
            elif way == "batch":
                batch(None)
            else:
                writer = writer_for()
                try:
                    batch(writer)
                    writer.flush()
                finally:
                    writer.close()
            results.append((facts_of(lead_ids), list(announced)))
    return results


# --- Events ---------------------------------------------------------------------------------

event_st = st.tuples(
    st.integers(0, 3),  # lead (modulo the leads made)
    st.sampled_from(KINDS),
    st.integers(0, 120),  # minutes after T0
    st.sampled_from(["hubspot", "web"]),
    st.sampled_from(["", "e1", "e2", "e3"]),  # few ids: duplicates happen
)


@SETTINGS
@given(specs=leads_st, raw=st.lists(event_st, min_size=1, max_size=8))
def test_recording_events_in_a_batch_equals_recording_them_one_by_one(announced, specs, raw):
    with rolled_back():
        lead_ids = make_leads(specs)
        # In the order they occurred: the order a batch applies stage triggers in.
        rows = sorted(
            (
                facts.EventRow(
                    lead_id=lead_ids[lead % len(lead_ids)],
                    kind=kind,
                    occurred_at=minutes(at),
                    source_system=system,
                    external_id=external_id,
                    received_at=T0,
                )
                for lead, kind, at, system, external_id in raw
            ),
            key=lambda row: row.occurred_at,
        )

        def event_of(row):
            return EngagementEvent(
                lead_id=row.lead_id,
                kind=row.kind,
                occurred_at=row.occurred_at,
                source_system=row.source_system,
                external_id=row.external_id,
                received_at=row.received_at,
            )

        def reference(heard):
            for row in rows:
                reference_events_record([event_of(row)], heard)

        def per_row():
            for row in rows:
                engagement_events_record(events=[event_of(row)])

        def batch(writer):
            result = facts.events_record(events=rows, writer=writer)
            assert len(result.stored) + len(result.duplicates) == len(rows)

        [(expected, heard), (singly, singles), (batched, once), (streamed, streamed_once)] = (
            four_ways(lead_ids, announced, reference, per_row, batch)
        )
        assert singly == expected
        assert batched == expected
        assert streamed == expected
        assert singles == heard  # one announcement per call, as before
        stored_leads = sorted({lead_id for lead_id, *_ in expected["events"]})
        expected_once = [stored_leads] if stored_leads else []
        assert once == expected_once
        assert streamed_once == expected_once


# --- Stage moves ------------------------------------------------------------------------------

move_st = st.tuples(st.integers(0, 3), st.sampled_from(STAGES), st.integers(0, 200))


@SETTINGS
@given(specs=leads_st, raw=st.lists(move_st, min_size=1, max_size=8))
def test_moving_leads_in_a_batch_equals_moving_them_one_by_one(announced, specs, raw):
    with rolled_back():
        lead_ids = make_leads(specs)
        stage_of = {pk: stage for pk, (stage, *_) in zip(lead_ids, specs, strict=True)}
        moves = []
        for lead, stage, at in raw:  # a move to the stage a lead is in is refused: leave it out
            lead_id = lead_ids[lead % len(lead_ids)]
            if stage_of[lead_id] != stage:
                stage_of[lead_id] = stage
                moves.append(
                    facts.StageMove(
                        lead_id=lead_id,
                        to_stage=stage,
                        at=minutes(at),
                        actor_type=ActorType.SYSTEM,
                        reason=f"to {stage}",
                    )
                )

        def reference(heard):
            for move in moves:
                reference_move(
                    lead=Lead.objects.get(pk=move.lead_id),
                    to_stage=move.to_stage,
                    actor_type=move.actor_type,
                    reason=move.reason,
                    at=move.at,
                )

        def per_row():
            for move in moves:
                lead_move_to_stage(
                    lead=Lead.objects.get(pk=move.lead_id),
                    to_stage=move.to_stage,
                    actor_type=move.actor_type,
                    reason=move.reason,
                    at=move.at,
                )

        def batch(writer):
            facts.stage_moves_record(moves=moves, writer=writer)

        [(expected, _), (singly, singles), (batched, once), (streamed, _)] = four_ways(
            lead_ids, announced, reference, per_row, batch
        )
        assert singly == expected
        assert batched == expected
        assert streamed == expected
        assert singles == once == []  # a stage move changes nothing a score reads


def test_a_move_to_the_stage_a_lead_is_in_is_refused_and_writes_nothing():
    [lead_id] = make_leads([("mql", 0, True)])
    move = facts.StageMove(lead_id=lead_id, to_stage="sal", at=minutes(5))
    with pytest.raises(ValidationError, match="already in SAL"):
        facts.stage_moves_record(moves=[move, move])
    assert not StageTransition.objects.filter(lead_id=lead_id).exists()
    assert Lead.objects.get(pk=lead_id).stage == "mql"


# --- Deals ------------------------------------------------------------------------------------

deal_st = st.tuples(
    st.integers(0, 3), st.sampled_from(["open", "won", "lost"]), st.integers(0, 200)
)


@SETTINGS
@given(specs=leads_st, raw=st.lists(deal_st, min_size=1, max_size=6))
def test_following_deals_in_a_batch_equals_following_them_one_by_one(announced, specs, raw):
    with rolled_back():
        lead_ids = make_leads(specs)
        deals = [
            facts.DealFact(
                lead_id=lead_ids[lead % len(lead_ids)],
                name=f"Deal {n}",
                status=status,
                at=minutes(at),
            )
            for n, (lead, status, at) in enumerate(raw)
        ]

        def opportunity_of(deal):
            return Opportunity(
                lead_id=deal.lead_id,
                name=deal.name,
                status=deal.status,
                created_at=deal.at,
                closed_at=None if deal.status == "open" else deal.at,
            )

        def reference(heard):
            for deal in deals:
                reference_follow(opportunity_of(deal))

        def per_row():
            for deal in deals:
                lead_follow_opportunity(opportunity=opportunity_of(deal))

        def batch(writer):
            facts.leads_follow_deals(deals=deals, writer=writer)

        [(expected, _), (singly, _), (batched, _), (streamed, _)] = four_ways(
            lead_ids, announced, reference, per_row, batch
        )
        assert singly == expected
        assert batched == expected
        assert streamed == expected


# --- New leads --------------------------------------------------------------------------------

new_lead_st = st.tuples(st.integers(0, 500), st.booleans(), st.sampled_from(["", "DE", "US"]))


@SETTINGS
@given(raw=st.lists(new_lead_st, min_size=1, max_size=5))
def test_creating_leads_in_a_batch_equals_creating_them_one_by_one(announced, raw):
    rows = [
        facts.NewLead(
            email=f"new{n}@example.com",
            first_name=f"New {n}",
            country=country,
            created_at=minutes(at),
            external_id=f"X-{n}" if with_id else "",
        )
        for n, (at, with_id, country) in enumerate(raw)
    ]

    def snapshot():
        leads = list(
            Lead.objects.filter(email__startswith="new")
            .order_by("email")
            .values_list("pk", "email", "first_name", "country", "external_id", "stage",
                         "stage_entered_at", "in_marketing_nurture", "tier", "created_at")
        )  # fmt: skip
        emails = {pk: email for pk, email, *_ in leads}
        transitions = sorted(
            (emails[lead_id], *rest)
            for lead_id, *rest in StageTransition.objects.filter(lead_id__in=emails).values_list(
                "lead_id", "from_stage", "to_stage", "transitioned_at", "actor_type"
            )
        )
        return [row[1:] for row in leads], transitions, emails

    results = []
    for way in ("per_row", "batch", "streamed"):
        with rolled_back():
            announced.clear()
            if way == "per_row":
                for row in rows:
                    lead_create(
                        lead=Lead(
                            email=row.email,
                            first_name=row.first_name,
                            country=row.country,
                            created_at=row.created_at,
                            external_id=row.external_id,
                        )
                    )
            elif way == "batch":
                facts.leads_upsert(new=rows)
            else:
                writer = writer_for()
                try:
                    facts.leads_upsert(new=rows, writer=writer)
                    writer.flush()
                finally:
                    writer.close()
            leads, transitions, emails = snapshot()
            heard = [[emails[i] for i in ids] for ids in announced]
            results.append((leads, transitions, heard))
    [(reference, history, singles), (batched, batched_history, once), streamed] = results
    assert (batched, batched_history) == (reference, history)
    assert streamed[:2] == (reference, history)
    assert sorted(email for ids in singles for email in ids) == sorted(r.email for r in rows)
    assert [sorted(ids) for ids in once] == [sorted(r.email for r in rows)]
    assert streamed[2] == once
