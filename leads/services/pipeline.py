"""Writes on the pipeline's facts: stage moves, engagement events, opening handoffs."""

import itertools
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from leads.calendars import calendar_spec
from leads.choices import ActorType, StageKind, TriggerType
from leads.models import EngagementEvent, Handoff, Lead, SalesRep, StageTransition
from leads.selectors import sla_policy_for, stages_in_force
from leads.sla_clock import add_business_hours


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
    stages = {stage.key: stage for stage in stages_in_force(at=at)}
    target = stages.get(to_stage)
    if target is None:
        raise ValidationError(
            {"to_stage": f"Unknown stage {to_stage!r}; stages in force: {', '.join(stages)}."}
        )
    if lead.stage == to_stage:
        raise ValidationError({"to_stage": f"{lead} is already in {target.name}."})
    with transaction.atomic():
        transition = StageTransition.objects.create(
            lead=lead,
            from_stage=lead.stage,
            to_stage=to_stage,
            transitioned_at=at,
            actor_type=actor_type,
            actor=actor,
            reason=reason,
        )
        lead.stage = to_stage
        lead.stage_entered_at = at
        update_fields = ["stage", "stage_entered_at", "updated_at"]
        if target.team == "sales" and lead.in_marketing_nurture:
            # A lead in a sales conversation must leave automated marketing sequences.
            lead.in_marketing_nurture = False
            update_fields.append("in_marketing_nurture")
        elif target.kind == "nurture" and not lead.in_marketing_nurture:
            lead.in_marketing_nurture = True
            update_fields.append("in_marketing_nurture")
        lead.save(update_fields=update_fields)
    return transition


def lead_follow_opportunity(
    *, opportunity, actor: AbstractBaseUser | None = None
) -> StageTransition | None:
    """Keep the lead's stage in step with its opportunity, with the history a person moving it
    would write: an open deal moves the lead forward to the last open sales stage (Opportunity),
    a won one to the won stage (Customer), a lost one to the lost stage. A lead is never moved
    backwards by an open deal, and nothing happens when it is already there (re-saves are no-ops).
    """
    if opportunity.lead_id is None:
        return None
    at = opportunity.closed_at or opportunity.created_at or timezone.now()
    stages = stages_in_force(at=at)
    if opportunity.status == "open":
        candidates = [s for s in stages if s.kind == StageKind.OPEN and s.team == "sales"]
        target = candidates[-1] if candidates else None
    else:
        target = next((s for s in stages if s.kind == opportunity.status), None)
    if target is None:
        return None
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=opportunity.lead_id)
        if lead.stage == target.key:
            return None
        if opportunity.status == "open":
            order = {stage.key: stage.order for stage in stages}
            current = next((s for s in stages if s.key == lead.stage), None)
            closed = current is not None and current.kind in (StageKind.WON, StageKind.LOST)
            if closed or order.get(lead.stage, -1) >= target.order:
                return None
        verb = {"open": "opened", "won": "won", "lost": "lost"}[opportunity.status]
        return lead_move_to_stage(
            lead=lead,
            to_stage=target.key,
            actor_type=ActorType.USER if actor is not None else ActorType.SYSTEM,
            actor=actor,
            reason=f"Opportunity {opportunity.name!r} {verb}"[:300],
            at=max(at, lead.stage_entered_at) if lead.stage_entered_at else at,
        )


# --- Engagement events --------------------------------------------------------------------

_EVENTS_RECORDED_HOOKS: list[Callable[..., None]] = []


def on_events_recorded(hook: Callable[..., None]) -> None:
    """Register ``hook(lead_ids=…)``; it runs inside the recording transaction."""
    if hook not in _EVENTS_RECORDED_HOOKS:
        _EVENTS_RECORDED_HOOKS.append(hook)


def engagement_events_record(*, events: list[EngagementEvent]) -> tuple[list[EngagementEvent], int]:
    """Store new events, skipping any already received (same source system and external id).

    Returns the stored events and how many were duplicates. Scoring learns about the leads in the
    same transaction (it marks them for a rescore), so a lost broker message loses nothing.
    """
    keyed = {(e.source_system, e.external_id) for e in events if e.external_id}
    seen: set[tuple[str, str]] = set()
    if keyed:
        # By source system, so the lookup uses the (source_system, external_id) unique index.
        by_system: dict[str, set[str]] = defaultdict(set)
        for system, external_id in keyed:
            by_system[system].add(external_id)
        already = Q()
        for system, external_ids in by_system.items():
            already |= Q(source_system=system, external_id__in=external_ids)
        seen = set(
            # The condition of the partial unique index, repeated, so PostgreSQL uses it for
            # long id lists too instead of scanning every event.
            EngagementEvent.objects.filter(already)
            .exclude(external_id="")
            .order_by()
            .values_list("source_system", "external_id")
        )
    fresh = []
    for event in events:
        key = (event.source_system, event.external_id)
        if event.external_id:
            if key in seen:
                continue
            seen.add(key)
        fresh.append(event)
    with transaction.atomic():
        EngagementEvent.objects.bulk_create(fresh)
        leads_apply_event_triggers(events=fresh)
        lead_ids = sorted({event.lead_id for event in fresh})
        for hook in _EVENTS_RECORDED_HOOKS:
            hook(lead_ids=lead_ids)
    return fresh, len(events) - len(fresh)


def leads_apply_event_triggers(*, events: list[EngagementEvent]) -> int:
    """Move leads whose new event triggers the stage right after theirs (e.g. a booked meeting
    takes a SAL to SQL). Only the next open stage: skipping a stage with an open handoff would
    leave that handoff behind. Returns how many leads moved."""
    open_stages = [stage for stage in stages_in_force() if stage.kind == StageKind.OPEN]
    triggered = {}  # event kind -> [(stage the lead must be in, stage it moves to)]
    for before, stage in itertools.pairwise(open_stages):
        if stage.trigger_type == TriggerType.EVENT:
            triggered.setdefault(stage.trigger_event_kind, []).append((before.key, stage))
    relevant = sorted(
        (event for event in events if event.kind in triggered), key=lambda e: e.occurred_at
    )
    if not relevant:
        return 0
    from_keys = {before for moves in triggered.values() for before, _ in moves}
    leads = {
        lead.pk: lead
        for lead in Lead.objects.select_for_update().filter(
            pk__in={event.lead_id for event in relevant}, stage__in=from_keys
        )
    }
    moved = 0
    for event in relevant:
        lead = leads.get(event.lead_id)
        if lead is None:
            continue
        for before, stage in triggered[event.kind]:
            if lead.stage != before:
                continue
            at = max(event.occurred_at, lead.stage_entered_at)
            lead_move_to_stage(
                lead=lead,
                to_stage=stage.key,
                actor_type=ActorType.SYSTEM,
                reason=f"{event.get_kind_display()} recorded",
                at=at,
            )
            if stage.opens_handoff:
                handoff_open(lead=lead, stage_key=stage.key, at=at)
            moved += 1
            break
    return moved


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
    pending = Q(user__handoffs__outcome="pending")
    reps = (
        SalesRep.objects.filter(pk__in=locked)
        .annotate(open_handoffs=Count("user__handoffs", filter=pending))
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
