"""Per-row writes on the pipeline's facts, as thin calls into the set-based write layer
(``leads.services.facts``), and opening handoffs. Each write is defined once, in the layer:
these services adapt model instances to its rows and back."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.calendars import calendar_spec
from leads.choices import ActorType
from leads.models import (
    Account,
    EngagementEvent,
    Handoff,
    Lead,
    Opportunity,
    SalesRep,
    StageTransition,
)
from leads.selectors import lifecycle_at, sla_policy_for
from leads.services import facts
from leads.services.hooks import lead_facts_changed
from leads.sla_clock import add_business_hours

# Events of one ingestion batch written at once (see engagement_events_ingest).
INGEST_CHUNK = 1_000
INGEST_ATTEMPTS = 3


def _actor(actor: AbstractBaseUser | None) -> tuple[str, int | None]:
    if actor is not None and actor.is_authenticated:
        return ActorType.USER, actor.pk
    return ActorType.SYSTEM, None


# --- Stage moves ---------------------------------------------------------------------------


def lead_move_to_stage(
    *,
    lead: Lead,
    to_stage: str,
    actor_type: str = ActorType.USER,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    at: datetime | None = None,
) -> StageTransition:
    """Move a lead to a stage and record the transition in the same transaction."""
    at = at or timezone.now()
    lifecycle = lifecycle_at(at)
    target = lifecycle.by_key.get(to_stage)
    if target is None:
        raise ValidationError(
            {
                "to_stage": f"Unknown stage {to_stage!r}; stages in force: "
                f"{', '.join(lifecycle.keys)}."
            }
        )
    if lead.stage == to_stage:
        raise ValidationError({"to_stage": f"{lead} is already in {target.name}."})
    [transition] = locked_leads_move(
        leads=[lead],
        moves=[
            facts.StageMove(
                lead_id=lead.pk,
                to_stage=to_stage,
                at=at,
                actor_type=actor_type,
                actor_id=actor.pk if actor is not None else None,
                reason=reason,
            )
        ],
        lifecycle=lifecycle,
    )
    return transition


def locked_leads_move(
    *, leads: Sequence[Lead], moves: Sequence[facts.StageMove], lifecycle=None
) -> list[StageTransition]:
    """Record stage moves of leads the caller holds locked (their instances say where they
    are), and set the instances' stage fields to where the moves leave them."""
    by_pk = {lead.pk: lead for lead in leads}
    recorded = facts.stage_moves_record(
        moves=moves,
        lifecycle=lifecycle,
        current={
            pk: facts.LeadStage(
                stage=lead.stage,
                entered_at=lead.stage_entered_at,
                in_nurture=lead.in_marketing_nurture,
            )
            for pk, lead in by_pk.items()
        },
    )
    for pk, state in recorded.stages.items():
        _stage_fields_set(by_pk[pk], state)
    return recorded.transitions


def _stage_fields_set(lead: Lead, state: facts.LeadStage) -> None:
    lead.stage = state.stage
    lead.stage_entered_at = state.entered_at
    lead.in_marketing_nurture = state.in_nurture


def lead_follow_opportunity(
    *, opportunity: Opportunity, actor: AbstractBaseUser | None = None
) -> StageTransition | None:
    """Keep the lead's stage in step with its opportunity, with the history a person moving it
    would write (``Lifecycle.deal_target``): an open deal moves the lead forward to the last
    open sales stage (Opportunity), a won one to the won stage (Customer), a lost one to the
    lost stage. A lead is never moved backwards by an open deal, and nothing happens when it is
    already there (re-saves are no-ops).
    """
    if opportunity.lead_id is None:
        return None
    at = opportunity.closed_at or opportunity.created_at or timezone.now()
    actor_type, actor_id = _actor(actor)
    recorded = facts.leads_follow_deals(
        deals=[
            facts.DealFact(
                lead_id=opportunity.lead_id,
                name=opportunity.name,
                status=opportunity.status,
                at=at,
                actor_type=actor_type,
                actor_id=actor_id,
            )
        ],
        lifecycle=lifecycle_at(at),
    )
    return recorded.transitions[0] if recorded.transitions else None


def opportunity_save(
    *,
    opportunity: Opportunity,
    actor: AbstractBaseUser | None = None,
    update_fields: Iterable[str] | None = None,
) -> StageTransition | None:
    """Save a deal (created or changed) and move its lead as the deal says, in one transaction.
    Returns the lead's stage transition, if it moved."""
    with transaction.atomic():
        if opportunity._state.adding:
            opportunity.save(force_insert=True)
        else:
            opportunity.save(update_fields=list(update_fields) if update_fields else None)
        return lead_follow_opportunity(opportunity=opportunity, actor=actor)


# --- Leads and accounts ----------------------------------------------------------------------

LEAD_CHANGEABLE = ("first_name", "last_name", "email", "phone", "title", "seniority", "country",
                   "account", "source", "campaign", "owner", "in_marketing_nurture",
                   "external_id", "created_at")  # fmt: skip


def lead_create(
    *,
    lead: Lead,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    in_marketing_nurture: bool | None = None,
) -> Lead:
    """Create a (validated) lead through the write layer: it starts in the first stage of the
    lifecycle at its creation, with that history row, and scoring hears of it. The nurture flag
    is the first stage's unless given. ``lead`` gets its id and the fields the layer set."""
    actor_type, actor_id = _actor(actor)
    created_at = lead.created_at or timezone.now()
    lifecycle = lifecycle_at(created_at)
    result = facts.leads_upsert(
        new=[
            facts.NewLead(
                first_name=lead.first_name,
                last_name=lead.last_name,
                email=lead.email,
                phone=lead.phone,
                title=lead.title,
                seniority=lead.seniority,
                country=lead.country,
                account_id=lead.account_id,
                source_id=lead.source_id,
                campaign_id=lead.campaign_id,
                owner_id=lead.owner_id,
                external_id=lead.external_id,
                created_at=created_at,
                in_marketing_nurture=in_marketing_nurture,
                path=(facts.StageStep(stage=lifecycle.first, at=created_at, reason=reason),),
                actor_type=actor_type,
                actor_id=actor_id,
            )
        ],
        lifecycle=lifecycle,
    )
    [lead.pk] = result.created_ids
    lead._state.adding = False
    lead.refresh_from_db(
        fields=["stage", "stage_entered_at", "in_marketing_nurture", "tier", "created_at",
                "updated_at"]
    )  # fmt: skip
    return lead


def lead_update(
    *, lead: Lead, fields: Iterable[str], actor: AbstractBaseUser | None = None
) -> Lead:
    """Write the named fields of a (validated) lead through the write layer; its stage moves
    only through the pipeline. Scoring hears of the change."""
    names = [name for name in fields if name in LEAD_CHANGEABLE]
    if not names:
        return lead
    actor_type, actor_id = _actor(actor)
    facts.leads_upsert(
        changed=[
            facts.LeadChange(
                lead_id=lead.pk,
                fields={name: getattr(lead, Lead._meta.get_field(name).attname) for name in names},
                actor_type=actor_type,
                actor_id=actor_id,
            )
        ],
    )
    lead.refresh_from_db(fields=["updated_at"])
    return lead


ACCOUNT_CHANGEABLE = ("name", "domain", "industry", "employees", "annual_revenue", "country",
                      "region", "technologies", "signals", "external_id",
                      "created_at")  # fmt: skip


def account_create(*, account: Account) -> Account:
    """Create a (validated) account through the write layer."""
    result = facts.accounts_upsert(
        new=[
            facts.NewAccount(
                **{name: getattr(account, name) for name in ACCOUNT_CHANGEABLE},
            )
        ]
    )
    [account.pk] = result.created_ids
    account._state.adding = False
    account.refresh_from_db()
    return account


def account_update(*, account: Account, fields: Iterable[str]) -> Account:
    """Write the named fields of a (validated) account; its leads' fit changes with it, so
    scoring hears of them."""
    names = [name for name in fields if name in ACCOUNT_CHANGEABLE]
    if names:
        facts.accounts_upsert(
            changed=[
                facts.AccountChange(
                    account_id=account.pk,
                    fields={name: getattr(account, name) for name in names},
                )
            ]
        )
        account.refresh_from_db(fields=["technologies", "signals"])
    return account


# --- Engagement events --------------------------------------------------------------------


def engagement_events_record(*, events: list[EngagementEvent]) -> tuple[list[EngagementEvent], int]:
    """Store new events, skipping any already received (same source system and external id).

    Returns the stored events (they get their ids) and how many were duplicates. Scoring
    learns about the leads in the same transaction (it marks them for a rescore), so a lost
    broker message loses nothing.
    """
    result = facts.events_record(events=[facts.EventRow.of(event) for event in events])
    stored = []
    for position, saved in zip(result.stored, result.events, strict=True):
        event = events[position]
        event.pk, event.received_at = saved.pk, saved.received_at
        event._state.adding = False
        stored.append(event)
    return stored, len(result.duplicates)


def engagement_events_ingest(*, events: Sequence[facts.EventRow]) -> facts.EventsRecorded:
    """Record a batch of events from an integration in one transaction (all or nothing), in
    chunks of ``INGEST_CHUNK`` ordered by lead; positions in the result are the batch's.

    Ordered by lead: scoring marks the leads dirty (row locks) chunk by chunk, so two
    concurrent batches take their locks in the same order instead of deadlocking; a deadlock
    or a concurrent insert of the same events is retried (the transaction rolled back whole,
    the retry finds the other request's events as duplicates)."""
    order = sorted(range(len(events)), key=lambda position: events[position].lead_id)
    attempt = 1
    while True:
        try:
            return _events_ingest_once(events, order)
        except (IntegrityError, OperationalError) as exc:
            retryable = isinstance(exc, IntegrityError) or _is_deadlock(exc)
            if not retryable or attempt == INGEST_ATTEMPTS:
                raise
            attempt += 1


def _events_ingest_once(events: Sequence[facts.EventRow], order: list[int]) -> facts.EventsRecorded:
    stored, duplicates, saved, lead_ids, moved = [], [], [], set(), 0
    with transaction.atomic():
        for start in range(0, len(order), INGEST_CHUNK):
            positions = order[start : start + INGEST_CHUNK]
            result = facts.events_record(events=[events[p] for p in positions])
            stored += [positions[p] for p in result.stored]
            duplicates += [positions[p] for p in result.duplicates]
            saved += result.events
            lead_ids.update(result.lead_ids)
            moved += result.moved
    return facts.EventsRecorded(stored, sorted(duplicates), saved, sorted(lead_ids), moved)


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "pgcode", None) == "40P01"


def engagement_event_update(*, event: EngagementEvent, fields: Iterable[str]) -> EngagementEvent:
    """Save a changed event (the admin's correction); its lead, and the lead it was on before,
    are rescored."""
    names = list(fields)
    with transaction.atomic():
        before = EngagementEvent.objects.filter(pk=event.pk).values_list("lead_id", flat=True)
        lead_ids = {*before, event.lead_id}
        event.save(update_fields=names or None)
        lead_facts_changed(lead_ids=lead_ids)
    return event


def leads_apply_event_triggers(*, events: list[EngagementEvent]) -> int:
    """Move leads whose new event triggers the stage right after theirs (e.g. a booked meeting
    takes a SAL to SQL). Only the next open stage: skipping a stage with an open handoff would
    leave that handoff behind. Returns how many leads moved."""
    return facts.event_triggers_apply(events=events)


# --- Handoffs ------------------------------------------------------------------------------


def _eligible_reps(*, on: date, exclude_user_id: int | None = None):
    out_of_office = (
        Q(out_of_office_from__lte=on, out_of_office_until__gte=on)
        | Q(out_of_office_from__lte=on, out_of_office_until__isnull=True)
        | Q(out_of_office_from__isnull=True, out_of_office_until__gte=on)
    )
    eligible = SalesRep.objects.filter(is_active=True, user__is_active=True).exclude(out_of_office)
    if exclude_user_id is not None:
        eligible = eligible.exclude(user_id=exclude_user_id)
    return eligible


# pg_advisory_xact_lock(namespace, key) that rotations take turns on (scoring's buckets use
# namespace 7301, the beat leader 7302 with key 1).
ROTATION_LOCK = (7302, 2)


def rotation_lock() -> None:
    """Wait for any other rotation to commit, and hold off the next one until this transaction
    ends. One lock instead of a row lock on every eligible rep and their user: those rows stay
    free for admin edits, logins and the foreign-key checks of other assignments. SQLite runs
    one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(ROTATION_LOCK))


class RepRotation:
    """The round robin over the reps eligible on a day, for one transaction: rotations take
    turns on one lock (``rotation_lock``) and each eligible rep's open handoffs are counted
    once, from the queue index; then every pick is made in memory, so a batch of a thousand
    handoffs costs the same few queries as one. The rep assigned longest ago goes first, and a
    rep just picked goes to the back of the line even within one instant, so a burst is spread
    evenly."""

    def __init__(self, *, on: date, exclude_user_id: int | None = None) -> None:
        rotation_lock()
        # Read after the lock: the line as the previous rotation committed it.
        eligible = _eligible_reps(on=on, exclude_user_id=exclude_user_id)
        open_count = (
            Handoff.objects.filter(assignee_id=OuterRef("user_id"), outcome="pending")
            .order_by()
            .values("assignee_id")
            # COUNT(*), not of the id: the id is not in the queue index, and counting it read
            # each open handoff's row (~90 ms for 100,000 open handoffs, ~35 ms index-only).
            .annotate(n=Count("*"))
            .values("n")
        )
        self.line = list(
            eligible.annotate(open_handoffs=Coalesce(Subquery(open_count), 0)).order_by(
                F("last_assigned_at").asc(nulls_first=True), "pk"
            )
        )
        self.picked: list[SalesRep] = []
        # Stamps continue after the latest one in line: a burst moved in several transactions
        # (each with its own rotation, all at one instant) keeps one order across them.
        self.latest = max((rep.last_assigned_at for rep in self.line if rep.last_assigned_at),
                          default=None)  # fmt: skip

    def pick(self, *, region: str, tier: str, at: datetime) -> SalesRep | None:
        """The first rep in line in the lead's territory and segment (or taking any) and below
        capacity; None ⇒ the fallback queue."""
        for position, rep in enumerate(self.line):
            if rep.region not in ("", region):
                continue
            if rep.tiers and tier not in rep.tiers:
                continue
            if rep.open_handoffs >= rep.capacity:
                continue
            rep.open_handoffs += 1
            # Strictly later than the rep picked before, so the line keeps its order in the
            # database too (the next batch starts where this one stopped).
            stamp = at
            if self.latest is not None and self.latest >= at:
                stamp = self.latest + timedelta(microseconds=1)
            rep.last_assigned_at = self.latest = stamp
            self.line.append(self.line.pop(position))
            self.picked.append(rep)
            return rep
        return None

    def save(self) -> None:
        if self.picked:
            SalesRep.objects.bulk_update(
                list({rep.pk: rep for rep in self.picked}.values()), ["last_assigned_at"]
            )


def sales_rep_pick(
    *, lead: Lead, at: datetime, exclude_user_id: int | None = None
) -> SalesRep | None:
    """Round robin for one lead (a reassignment): the eligible rep assigned longest ago.
    Eligible = active, in office, in the lead's territory and segment (or taking any), and
    below capacity. None ⇒ the fallback queue. The caller records the assignment."""
    rotation = RepRotation(on=at.date(), exclude_user_id=exclude_user_id)
    region = lead.account.region if lead.account_id else ""
    return rotation.pick(region=region, tier=lead.tier, at=at)


@dataclass(frozen=True)
class HandoffRequest:
    lead: Lead  # locked by the caller, its stage move recorded
    stage_key: str
    at: datetime


def handoffs_open(requests: Sequence[HandoffRequest]) -> list[Handoff]:
    """Hand leads to sales, inside the stage moves' transaction: SLA due times from the policy
    in force (each policy and calendar read once), an assignee per lead by one round robin over
    the whole batch (or the fallback queue), and the leads' owners set. One INSERT for the
    handoffs and one UPDATE each for the reps and the owners, whatever the batch's size."""
    if not requests:
        return []
    policies: dict[tuple[str, str, datetime], object] = {}
    calendars: dict[int, object] = {}
    # A batch of moves opens its handoffs at one instant, so its due times are a few pairs
    # (one per policy), each walked through the business calendar once instead of per lead.
    due_times: dict[tuple[int, datetime], tuple[datetime, datetime]] = {}
    rotations: dict[date, RepRotation] = {}
    handoffs, owned = [], []
    for request in requests:
        lead, at = request.lead, request.at
        key = (request.stage_key, lead.tier, at)
        if key not in policies:
            policies[key] = sla_policy_for(stage_key=request.stage_key, tier=lead.tier, at=at)
        policy = policies[key]
        response_due_at = accept_due_at = None
        if policy is not None:
            due_key = (policy.pk, at)
            if due_key not in due_times:
                if policy.calendar_id not in calendars:
                    calendars[policy.calendar_id] = calendar_spec(policy.calendar)
                calendar = calendars[policy.calendar_id]
                due_times[due_key] = (
                    add_business_hours(calendar, at, policy.respond_within_hours),
                    add_business_hours(calendar, at, policy.accept_within_hours),
                )
            response_due_at, accept_due_at = due_times[due_key]
        rotation = rotations.get(at.date())
        if rotation is None:
            rotation = rotations[at.date()] = RepRotation(on=at.date())
        region = lead.account.region if lead.account_id else ""
        rep = rotation.pick(region=region, tier=lead.tier, at=at)
        handoffs.append(
            Handoff(
                lead=lead,
                stage=request.stage_key,
                assignee_id=rep.user_id if rep else None,
                sla_policy=policy,
                assigned_at=at,
                response_due_at=response_due_at,
                accept_due_at=accept_due_at,
            )
        )
        if rep is not None:
            lead.owner_id = rep.user_id
            owned.append(lead)
    Handoff.objects.bulk_create(handoffs)
    for rotation in rotations.values():
        rotation.save()
    if owned:
        now = timezone.now()
        for lead in owned:
            lead.updated_at = now
        _owners_write(owned, now)
    return handoffs


def _owners_write(leads: Sequence[Lead], now: datetime) -> None:
    if connection.vendor != "postgresql":
        Lead.objects.bulk_update(leads, ["owner", "updated_at"])
        return
    # One statement over arrays: bulk_update's CASE with a WHEN per lead cost more Python than
    # the whole UPDATE costs PostgreSQL (a publish opens thousands of handoffs).
    ordered = sorted(leads, key=lambda lead: lead.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Lead._meta.db_table} SET owner_id = v.owner_id, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::integer[]) AS v(id, owner_id) "
            f"WHERE {Lead._meta.db_table}.id = v.id",
            [now, [lead.pk for lead in ordered], [lead.owner_id for lead in ordered]],
        )


def handoff_open(*, lead: Lead, stage_key: str, at: datetime) -> Handoff:
    """Hand one lead to sales (see ``handoffs_open``). Called inside the stage move's
    transaction."""
    [handoff] = handoffs_open([HandoffRequest(lead=lead, stage_key=stage_key, at=at)])
    return handoff
