"""The MQL → sales handoff workflow: respond, accept, reject, reassign, recycle, breach sweep.

Every action locks the handoff, checks who may act and in which state, and writes its history
(``LeadActivity``, plus ``StageTransition`` for a stage move) in the same transaction: a refusal
raises before anything is written, so nothing changes.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from leads.calendars import calendar_spec
from leads.choices import (
    ActivityAction,
    ActorType,
    EventKind,
    HandoffOutcome,
    NotificationKind,
    TouchChannel,
)
from leads.models import (
    ContentAsset,
    EngagementEvent,
    Handoff,
    Lead,
    LeadActivity,
    Notification,
    ObjectionTag,
    RejectionReason,
    SalesRep,
    SlaPolicy,
)
from leads.selectors import lifecycle_at
from leads.services.pipeline import (
    engagement_events_record,
    lead_move_to_stage,
    rotation_lock,
    sales_rep_pick,
)
from leads.sla_clock import business_seconds_between

# A client clock slightly ahead of ours must not make a fresh action "in the future".
CLOCK_SKEW = timedelta(minutes=5)
SOURCE_SYSTEM = "revops"


# --- Who may act -----------------------------------------------------------------------------


def user_manages(user: AbstractBaseUser, handoff: Handoff) -> bool:
    """A manager (``leads.manage_handoffs``) manages unassigned handoffs and their team's; a
    superuser manages all."""
    if not user.is_authenticated or not user.has_perm("leads.manage_handoffs"):
        return False
    if user.is_superuser or handoff.assignee_id is None:
        return True
    return SalesRep.objects.filter(user_id=handoff.assignee_id, manager_id=user.pk).exists()


def user_can_act(user: AbstractBaseUser, handoff: Handoff) -> bool:
    """Users who work handoffs (``leads.work_handoffs``) act on the ones assigned to them;
    managers on the ones they manage."""
    if not user.is_authenticated or not user.has_perm("leads.work_handoffs"):
        return False
    return handoff.assignee_id == user.pk or user_manages(user, handoff)


def _require_actor(user: AbstractBaseUser, handoff: Handoff) -> None:
    if not user_can_act(user, handoff):
        raise PermissionDenied(
            "This handoff is assigned to someone else; only they or their sales manager can "
            "act on it."
        )


def _locked(handoff: Handoff | int, revision: int | None) -> Handoff:
    """The handoff row locked for this transaction, refused when the page it was acted on from
    is stale (a double submission, or someone else acted first)."""
    pk = handoff.pk if isinstance(handoff, Handoff) else handoff
    locked = Handoff.objects.select_for_update(of=("self",)).select_related("lead").get(pk=pk)
    if revision is not None and locked.revision != revision:
        raise ValidationError(
            "This handoff changed since the page was loaded (it was already acted on, perhaps by "
            "a double submission). Nothing was changed: reload the page to see where it stands.",
            code="stale",
        )
    return locked


def _require_pending(handoff: Handoff, verb: str) -> None:
    if handoff.outcome != HandoffOutcome.PENDING:
        decided_at = handoff.accepted_at or handoff.rejected_at
        raise ValidationError(
            f"This handoff was already {handoff.get_outcome_display().lower()} on "
            f"{decided_at:%Y-%m-%d %H:%M} UTC, so it cannot be {verb}. Nothing was changed.",
            code="decided",
        )


def _action_time(handoff: Handoff, at: datetime | None, field: str = "occurred_at") -> datetime:
    now = timezone.now()
    at = at or now
    if at < handoff.assigned_at:
        raise ValidationError(
            {field: f"Cannot be before the handoff ({handoff.assigned_at:%Y-%m-%d %H:%M} UTC)."}
        )
    if at > now + CLOCK_SKEW:
        raise ValidationError({field: "Cannot be in the future."})
    return at


def _set_first_response(handoff: Handoff, at: datetime) -> list[str]:
    """Record the first response and its business-hours delay; the fields to save."""
    handoff.first_response_at = at
    if handoff.sla_policy_id is not None:
        spec = calendar_spec(handoff.sla_policy.calendar)
        handoff.response_business_seconds = round(
            business_seconds_between(spec, handoff.assigned_at, at)
        )
    return ["first_response_at", "response_business_seconds"]


def _save(handoff: Handoff, *fields: str) -> None:
    handoff.revision += 1
    handoff.save(update_fields=[*fields, "revision"])


def _record(handoff: Handoff, action: str, actor, at: datetime, **fields) -> LeadActivity:
    return LeadActivity.objects.create(
        lead_id=handoff.lead_id,
        handoff=handoff,
        action=action,
        occurred_at=at,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_type=ActorType.USER if actor is not None else ActorType.SYSTEM,
        **fields,
    )


# --- Actions ---------------------------------------------------------------------------------


def handoff_log_touch(
    *,
    handoff: Handoff | int,
    actor: AbstractBaseUser,
    channel: str,
    note: str = "",
    objections: Iterable[ObjectionTag] = (),
    content_assets: Iterable[ContentAsset] = (),
    meeting_booked: bool = False,
    at: datetime | None = None,
    revision: int | None = None,
) -> LeadActivity:
    """Log a call, e-mail or meeting. The first one is the handoff's first response (the SLA's
    response clock stops); later ones are follow-ups. A booked meeting is recorded as an
    engagement event, which moves the lead on when a stage is triggered by it (e.g. SQL)."""
    if channel not in TouchChannel.values:
        raise ValidationError(
            {"channel": f"Unknown channel {channel!r}; use {', '.join(TouchChannel.values)}."}
        )
    objections = list(objections)
    inactive = [tag.label for tag in objections if not tag.is_active]
    if inactive:
        raise ValidationError({"objections": f"No longer in use: {', '.join(inactive)}."})
    content_assets = list(content_assets)
    with transaction.atomic():
        locked = _locked(handoff, revision)
        _require_actor(actor, locked)
        if locked.outcome == HandoffOutcome.REJECTED:
            raise ValidationError(
                "This handoff was rejected: the lead is back with marketing, so no touch can be "
                "logged on it. Nothing was changed.",
                code="decided",
            )
        at = _action_time(locked, at)
        first = locked.first_response_at is None
        if first:
            _save(locked, *_set_first_response(locked, at))
        else:
            _save(locked)
        activity = _record(
            locked,
            ActivityAction.RESPONDED if first else ActivityAction.TOUCHED,
            actor,
            at,
            channel=channel,
            note=note.strip(),
            details={"meeting_booked": True} if meeting_booked else {},
        )
        if objections:
            activity.objections.set(objections)
        if content_assets:
            activity.content_assets.set(content_assets)
        if meeting_booked:
            engagement_events_record(
                events=[
                    EngagementEvent(
                        lead_id=locked.lead_id,
                        kind=EventKind.MEETING_BOOKED,
                        occurred_at=at,
                        source_system=SOURCE_SYSTEM,
                        external_id=f"activity-{activity.pk}",
                        properties={"logged_by": actor.get_username()},
                    )
                ]
            )
    return activity


def handoff_accept(
    *,
    handoff: Handoff | int,
    actor: AbstractBaseUser,
    note: str = "",
    at: datetime | None = None,
    revision: int | None = None,
) -> Handoff:
    """Sales accepts the lead as worth working: it moves to the next stage (e.g. SAL). Accepting
    is also a response, when none was logged before."""
    with transaction.atomic():
        locked = _locked(handoff, revision)
        _require_actor(actor, locked)
        _require_pending(locked, "accepted")
        at = _action_time(locked, at)
        locked.outcome = HandoffOutcome.ACCEPTED
        locked.accepted_at = at
        fields = ["outcome", "accepted_at"]
        if locked.first_response_at is None:
            fields += _set_first_response(locked, at)
        _save(locked, *fields)
        _record(locked, ActivityAction.ACCEPTED, actor, at, note=note.strip())
        target = lifecycle_at(at).accept_target(locked.stage)
        if target and locked.lead.stage == locked.stage:
            lead_move_to_stage(
                lead=locked.lead, to_stage=target, actor=actor, reason="handoff accepted", at=at
            )
    return locked


def handoff_reject(
    *,
    handoff: Handoff | int,
    actor: AbstractBaseUser,
    reason: RejectionReason | None,
    note: str = "",
    at: datetime | None = None,
    revision: int | None = None,
) -> Handoff:
    """Sales rejects the lead with a reason marketing will see; the lead goes to the stage's
    on-reject target (nurture or disqualified)."""
    note = note.strip()
    if reason is None:
        raise ValidationError({"reason": "Choose a reason, so marketing learns why."})
    if not reason.is_active:
        raise ValidationError({"reason": f"“{reason}” is no longer in use; choose another."})
    if reason.requires_note and not note:
        raise ValidationError({"note": f"The reason “{reason}” needs a note explaining it."})
    with transaction.atomic():
        locked = _locked(handoff, revision)
        _require_actor(actor, locked)
        _require_pending(locked, "rejected")
        at = _action_time(locked, at)
        locked.outcome = HandoffOutcome.REJECTED
        locked.rejected_at = at
        locked.reject_reason = reason
        locked.reject_note = note
        fields = ["outcome", "rejected_at", "reject_reason", "reject_note"]
        if locked.first_response_at is None:
            fields += _set_first_response(locked, at)
        _save(locked, *fields)
        _record(
            locked, ActivityAction.REJECTED, actor, at, note=note, details={"reason": reason.key}
        )
        target = lifecycle_at(at).reject_target(locked.stage)
        if target and locked.lead.stage == locked.stage:
            lead_move_to_stage(
                lead=locked.lead,
                to_stage=target,
                actor=actor,
                reason=f"handoff rejected: {reason.label}",
                at=at,
            )
    return locked


def _reassign(
    locked: Handoff, to_user, *, actor, at: datetime, note: str, breach: bool = False
) -> None:
    previous = locked.assignee_id
    locked.assignee = to_user
    _save(locked, "assignee")
    Lead.objects.filter(pk=locked.lead_id).update(owner=to_user, updated_at=at)
    # A reassignment moves the rep in the round robin's line too: it takes its turn with the
    # rotations, which read the line and the open handoffs under the same lock (after the
    # lead's row, in the order the stage moves lock them).
    rotation_lock()
    SalesRep.objects.filter(user=to_user).update(last_assigned_at=at)
    details = {"from_user": previous, "to_user": to_user.pk, "on_breach": breach}
    _record(locked, ActivityAction.REASSIGNED, actor, at, note=note, details=details)
    # One notice per recipient, handoff and kind: a rep who gets the handoff back hears of it
    # again (the earlier notice is renewed, unread and not yet e-mailed), not silently nothing.
    Notification.objects.update_or_create(
        recipient=to_user,
        kind=NotificationKind.REASSIGNED,
        handoff=locked,
        defaults={
            "message": "A handoff was reassigned to you"
            + (" after its SLA was breached." if breach else "."),
            "created_at": at,
            "read_at": None,
            "emailed_at": None,
        },
    )


def handoff_reassign(
    *,
    handoff: Handoff | int,
    actor: AbstractBaseUser,
    to_user,
    note: str = "",
    at: datetime | None = None,
    revision: int | None = None,
) -> Handoff:
    """A manager moves a pending handoff to another active rep of their team."""
    if to_user is None:
        raise ValidationError({"to_user": "Choose the rep to hand this lead to."})
    with transaction.atomic():
        locked = _locked(handoff, revision)
        if not user_manages(actor, locked):
            raise PermissionDenied("Only the team's sales manager can reassign this handoff.")
        _require_pending(locked, "reassigned")
        at = _action_time(locked, at)
        rep = SalesRep.objects.filter(user=to_user, is_active=True, user__is_active=True).first()
        if rep is None:
            raise ValidationError({"to_user": f"{to_user} is not an active sales rep."})
        if not actor.is_superuser and rep.manager_id != actor.pk:
            raise ValidationError({"to_user": f"{to_user} is not on your team."})
        if locked.assignee_id == to_user.pk:
            raise ValidationError({"to_user": f"The handoff is already assigned to {to_user}."})
        _reassign(locked, to_user, actor=actor, at=at, note=note.strip())
    return locked


def lead_recycle(
    *, lead: Lead | int, actor: AbstractBaseUser, note: str = "", at: datetime | None = None
) -> Lead:
    """An ops admin gives a disqualified lead another chance: back to nurture."""
    if not actor.has_perm("leads.recycle_lead"):
        raise PermissionDenied("Only RevOps admins can recycle a disqualified lead.")
    at = at or timezone.now()
    with transaction.atomic():
        pk = lead.pk if isinstance(lead, Lead) else lead
        locked = Lead.objects.select_for_update().get(pk=pk)
        lifecycle = lifecycle_at(at)
        if lifecycle.nurture_key is None:
            raise ValidationError("The lifecycle in force has no nurture stage to recycle into.")
        if not lifecycle.recyclable(locked.stage):
            raise ValidationError(
                f"Only a disqualified lead can be recycled; {locked} is in {locked.stage!r}."
            )
        nurture = lifecycle.nurture_key
        lead_move_to_stage(
            lead=locked,
            to_stage=nurture,
            actor=actor,
            reason=f"recycled{': ' + note.strip() if note.strip() else ''}",
            at=at,
        )
        LeadActivity.objects.create(
            lead=locked,
            handoff=locked.handoffs.order_by("-assigned_at").first(),
            action=ActivityAction.RECYCLED,
            occurred_at=at,
            actor=actor,
            actor_type=ActorType.USER,
            note=note.strip(),
        )
    return locked


# --- Breach sweep ------------------------------------------------------------------------------


BREACH_SWEEP_LIMIT = 2_000


@dataclass(frozen=True)
class BreachSweepResult:
    response_breaches: int
    accept_breaches: int
    notifications: int
    reassigned: int
    # A clock hit the per-run limit: more breaches wait for the next run.
    more: bool = False


_BREACH_SQL = {
    # One statement marks and returns each newly breached handoff, so two sweeps racing each
    # other cannot both report the same breach (the outer IS NULL is re-checked after a row lock
    # wait). The most overdue come first, at most ``limit`` per run, so a backlog is worked off
    # in short transactions.
    "response": (
        "UPDATE {handoff} SET response_breached_at = %s "
        "WHERE response_breached_at IS NULL AND id IN ("
        "SELECT id FROM {handoff} WHERE outcome = 'pending' AND first_response_at IS NULL "
        "AND response_breached_at IS NULL AND response_due_at < %s "
        "ORDER BY response_due_at LIMIT %s) "
        "RETURNING id, sla_policy_id, assignee_id"
    ),
    "accept": (
        "UPDATE {handoff} SET accept_breached_at = %s "
        "WHERE accept_breached_at IS NULL AND id IN ("
        "SELECT id FROM {handoff} WHERE outcome = 'pending' AND accept_breached_at IS NULL "
        "AND accept_due_at < %s ORDER BY accept_due_at LIMIT %s) "
        "RETURNING id, sla_policy_id, assignee_id"
    ),
}
_BREACH_KINDS = {
    "response": (NotificationKind.RESPONSE_BREACH, ActivityAction.RESPONSE_BREACHED),
    "accept": (NotificationKind.ACCEPT_BREACH, ActivityAction.ACCEPT_BREACHED),
}
# The notices and history rows are written by INSERT … SELECT over the marked ids, so a
# backlog of many thousand breaches costs a few statements, not a Python object per row.
_NOTIFY_ASSIGNEES_SQL = (
    "INSERT INTO {notification} (recipient_id, kind, handoff_id, message, created_at) "
    "SELECT h.assignee_id, %s, h.id, %s, %s FROM {handoff} h "
    "WHERE h.id IN ({ids}) AND h.assignee_id IS NOT NULL "
    "ON CONFLICT DO NOTHING"
)
_NOTIFY_ESCALATION_SQL = (
    "INSERT INTO {notification} (recipient_id, kind, handoff_id, message, created_at) "
    "SELECT p.escalate_to_id, %s, h.id, %s, %s FROM {handoff} h "
    "JOIN {policy} p ON p.id = h.sla_policy_id "
    "WHERE h.id IN ({ids}) AND p.escalate_to_id IS NOT NULL "
    "AND (h.assignee_id IS NULL OR h.assignee_id <> p.escalate_to_id) "
    "ON CONFLICT DO NOTHING"
)
# "Escalate to the rep's manager": the manager of the rep the handoff is assigned to, unless
# the policy already names that person (the notice is unique per recipient, handoff and kind).
_NOTIFY_MANAGER_SQL = (
    "INSERT INTO {notification} (recipient_id, kind, handoff_id, message, created_at) "
    "SELECT r.manager_id, %s, h.id, %s, %s FROM {handoff} h "
    "JOIN {policy} p ON p.id = h.sla_policy_id "
    "JOIN {rep} r ON r.user_id = h.assignee_id "
    "WHERE h.id IN ({ids}) AND p.escalate_to_manager AND r.manager_id IS NOT NULL "
    "AND r.manager_id <> h.assignee_id "
    "ON CONFLICT DO NOTHING"
)
_LOG_BREACH_SQL = (
    "INSERT INTO {activity} (lead_id, handoff_id, action, channel, note, occurred_at, "
    "actor_type, details) "
    "SELECT h.lead_id, h.id, %s, '', '', %s, %s, '{{}}' FROM {handoff} h WHERE h.id IN ({ids})"
)


def _id_set_sql() -> str:
    """A subquery over one parameter holding many ids (an array, or JSON on SQLite)."""
    if connection.vendor == "postgresql":
        return "SELECT unnest(%s::bigint[])"
    return "SELECT value FROM json_each(%s)"


def _id_set_param(ids: list[int]):
    return ids if connection.vendor == "postgresql" else json.dumps(ids)


def handoff_breach_sweep(
    *, now: datetime | None = None, limit: int = BREACH_SWEEP_LIMIT
) -> BreachSweepResult:
    """Mark every handoff past its response or acceptance due time (once), tell the assignee,
    the policy's escalation recipient and (when the policy says so) the rep's manager, write
    the breach into the handoff's history, and reassign where the policy says so.

    Idempotent: a breach already marked is never reported again, and notifications are unique
    per recipient, handoff and kind. E-mails go out from the notifications afterwards
    (``notifications_email_pending``), so a mail outage loses nothing. At most ``limit``
    breaches per clock are handled per call; ``more`` says when to call again.
    """
    now = now or timezone.now()
    quote = connection.ops.quote_name
    tables = {
        "handoff": quote(Handoff._meta.db_table),
        "notification": quote(Notification._meta.db_table),
        "activity": quote(LeadActivity._meta.db_table),
        "policy": quote(SlaPolicy._meta.db_table),
        "rep": quote(SalesRep._meta.db_table),
        "ids": _id_set_sql(),
    }
    counts = {"response": 0, "accept": 0, "notifications": 0}
    reassign_candidates: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        reassigning_policies = set(
            SlaPolicy.objects.filter(reassign_on_breach=True).values_list("pk", flat=True)
        )
        for clock, mark_sql in _BREACH_SQL.items():
            cursor.execute(mark_sql.format(**tables), [now, now, limit])
            rows = cursor.fetchall()
            if not rows:
                continue
            counts[clock] = len(rows)
            ids = _id_set_param([row[0] for row in rows])
            kind, action = _BREACH_KINDS[clock]
            message = f"{kind.label}: a handed-off lead is waiting past its due time."
            for notify_sql in (_NOTIFY_ASSIGNEES_SQL, _NOTIFY_ESCALATION_SQL, _NOTIFY_MANAGER_SQL):
                cursor.execute(notify_sql.format(**tables), [kind.value, message, now, ids])
                counts["notifications"] += max(cursor.rowcount, 0)
            cursor.execute(
                _LOG_BREACH_SQL.format(**tables), [action.value, now, ActorType.SYSTEM, ids]
            )
            if clock == "response":
                reassign_candidates += [
                    handoff_id
                    for handoff_id, policy_id, assignee_id in rows
                    if policy_id in reassigning_policies and assignee_id is not None
                ]
        reassigned = sum(_reassign_on_breach(pk, now=now) for pk in reassign_candidates)
    return BreachSweepResult(
        response_breaches=counts["response"],
        accept_breaches=counts["accept"],
        notifications=counts["notifications"],
        reassigned=reassigned,
        more=max(counts["response"], counts["accept"]) >= limit,
    )


def _reassign_on_breach(handoff_id: int, *, now: datetime) -> bool:
    locked = _locked(handoff_id, None)
    if locked.outcome != HandoffOutcome.PENDING or locked.first_response_at is not None:
        return False
    rep = sales_rep_pick(lead=locked.lead, at=now, exclude_user_id=locked.assignee_id)
    if rep is None:
        return False
    _reassign(locked, rep.user, actor=None, at=now, note="response SLA breached", breach=True)
    return True


# --- E-mail ----------------------------------------------------------------------------------


def site_url(path: str) -> str:
    """An absolute link for a message read outside the site (``settings.SITE_URL`` + path)."""
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def handoff_url(handoff_id: int) -> str:
    return site_url(reverse("leads:handoff", args=[handoff_id]))


def notifications_email_pending(*, batch: int = 500) -> int:
    """E-mail notifications not yet sent, one message per recipient per batch; returns how many
    notifications were handled. A failed send rolls the batch back, so it is retried on the
    next run instead of being lost."""
    from django.core.mail import get_connection, send_mass_mail

    with transaction.atomic():
        pending = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(emailed_at__isnull=True)
            .select_related("recipient", "handoff__lead")
            .order_by("created_at", "id")[:batch]
        )
        if not pending:
            return 0
        by_recipient: dict[int, list[Notification]] = defaultdict(list)
        for notification in pending:
            by_recipient[notification.recipient_id].append(notification)
        messages = []
        for items in by_recipient.values():
            recipient = items[0].recipient
            if not recipient.email:
                continue  # in-app only: the notification list still shows it
            lines = []
            for n in items:
                lines.append(
                    f"- {n.get_kind_display()}: {n.handoff.lead if n.handoff else ''} — {n.message}"
                )
                if n.handoff_id:
                    lines.append(f"  {handoff_url(n.handoff_id)}")
            subject = (
                f"[RevOps] {items[0].get_kind_display()}"
                if len(items) == 1
                else f"[RevOps] {len(items)} handoffs need attention"
            )
            body = "\n".join(
                [
                    "Handed-off leads need your attention:",
                    "",
                    *lines,
                    "",
                    f"Your queue: {site_url(reverse('leads:queue'))}",
                ]
            )
            messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email]))
        if messages:
            send_mass_mail(messages, fail_silently=False, connection=get_connection())
        Notification.objects.filter(pk__in=[n.pk for n in pending]).update(
            emailed_at=timezone.now()
        )
    return len(pending)


def notifications_mark_read(*, user: AbstractBaseUser, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when ``ids`` is None)."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
