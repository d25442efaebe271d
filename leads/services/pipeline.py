"""Per-row writes on the pipeline's facts, as thin calls into the set-based write layer
(``leads.services.facts``), and opening handoffs. Each write is defined once, in the layer:
these services adapt model instances to its rows and back."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
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
    recorded = facts.stage_moves_record(
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
        current={
            lead.pk: facts.LeadStage(
                stage=lead.stage,
                entered_at=lead.stage_entered_at,
                in_nurture=lead.in_marketing_nurture,
            )
        },
    )
    _stage_fields_set(lead, recorded.stages[lead.pk])
    [transition] = recorded.transitions
    return transition


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


def sales_rep_pick(
    *, lead: Lead, at: datetime, exclude_user_id: int | None = None
) -> SalesRep | None:
    """Round robin: the eligible rep assigned longest ago. Eligible = active, in office, in the
    lead's territory and segment (or taking any), and below capacity. None ⇒ the fallback queue.
    """
    today = at.date()
    region = lead.account.region if lead.account_id else ""
    out_of_office = (
        Q(out_of_office_from__lte=today, out_of_office_until__gte=today)
        | Q(out_of_office_from__lte=today, out_of_office_until__isnull=True)
        | Q(out_of_office_from__isnull=True, out_of_office_until__gte=today)
    )
    eligible = (
        SalesRep.objects.filter(is_active=True, user__is_active=True)
        .exclude(out_of_office)
        .filter(Q(region="") | Q(region=region))
    )
    if exclude_user_id is not None:
        eligible = eligible.exclude(user_id=exclude_user_id)
    # Lock the eligible reps so concurrent assignments take turns, then count their queues
    # (FOR UPDATE cannot be combined with the GROUP BY of the count).
    locked = list(eligible.select_for_update().values_list("pk", flat=True))
    # Counted per rep from the queue index (assignee, outcome, …): a join with every handoff
    # the reps ever had, then filtered, read hundreds of thousands of rows per pick.
    open_count = (
        Handoff.objects.filter(assignee_id=OuterRef("user_id"), outcome="pending")
        .order_by()
        .values("assignee_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    reps = (
        SalesRep.objects.filter(pk__in=locked)
        .annotate(open_handoffs=Coalesce(Subquery(open_count), 0))
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
    )
    for rep in reps:
        if rep.tiers and lead.tier not in rep.tiers:
            continue
        if rep.open_handoffs < rep.capacity:
            return rep
    return None


def handoff_open(*, lead: Lead, stage_key: str, at: datetime) -> Handoff:
    """Hand a lead to sales: SLA due times from the policy in force, an assignee by round robin
    (or the fallback queue), and the lead's owner set. Called inside the stage move's transaction.
    """
    policy = sla_policy_for(stage_key=stage_key, tier=lead.tier, at=at)
    response_due_at = accept_due_at = None
    if policy is not None:
        calendar = calendar_spec(policy.calendar)
        response_due_at = add_business_hours(calendar, at, policy.respond_within_hours)
        accept_due_at = add_business_hours(calendar, at, policy.accept_within_hours)
    rep = sales_rep_pick(lead=lead, at=at)
    handoff = Handoff.objects.create(
        lead=lead,
        stage=stage_key,
        assignee=rep.user if rep else None,
        sla_policy=policy,
        assigned_at=at,
        response_due_at=response_due_at,
        accept_due_at=accept_due_at,
    )
    if rep is not None:
        rep.last_assigned_at = at
        rep.save(update_fields=["last_assigned_at"])
        lead.owner_id = rep.user_id
        lead.save(update_fields=["owner", "updated_at"])
    return handoff
