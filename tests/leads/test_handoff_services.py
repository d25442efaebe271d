"""The MQL → sales handoff workflow as services: touches, accept/reject, reassign, recycle, the
breach sweep, its e-mails, and event-triggered stage moves.

Definitions (the v1 lifecycle, SLA policies on the New York calendar, rejection reasons and
objection tags) come from the data migrations.
"""

import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Permission
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from leads.choices import (
    ActivityAction,
    ActorType,
    EventKind,
    HandoffOutcome,
    NotificationKind,
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
    StageTransition,
)
from leads.roles import SALES_MANAGER
from leads.services import (
    engagement_events_record,
    handoff_accept,
    handoff_breach_sweep,
    handoff_log_touch,
    handoff_open,
    handoff_reassign,
    handoff_reject,
    lead_move_to_stage,
    lead_recycle,
    leads_apply_event_triggers,
    notifications_email_pending,
    user_can_act,
    user_manages,
)
from tests.factories import LeadFactory, SalesRepFactory, UserFactory
from tests.workers import wait_for

# Tuesday 2026-03-10 14:00 in New York (EDT): inside the default calendar's working hours.
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Thursday 2026-03-05 13:00 EST: both SLA clocks of the default tier-D policy (respond in 4,
# accept in 16 business hours) ran out before NOW (Thu 17:00 EST and Mon 2026-03-09 13:00 EDT).
LONG_AGO = NOW - timedelta(days=5)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


def grant(user, *codenames):
    """The user with these permissions, re-fetched (Django caches permissions on the object)."""
    perms = list(Permission.objects.filter(codename__in=codenames))
    assert len(perms) == len(codenames)
    user.user_permissions.add(*perms)
    return get_user_model().objects.get(pk=user.pk)


def reason(key: str) -> RejectionReason:
    return RejectionReason.objects.get(key=key)


def hand_off(*, assignee=None, at: datetime = NOW - HOUR, lead: Lead | None = None) -> Handoff:
    """A lead scored into MQL and handed to sales at ``at`` (by ``handoff_open``: due times from
    the policy in force); then given to ``assignee`` when round robin picked someone else."""
    if lead is None:
        lead = LeadFactory(stage_entered_at=at - timedelta(days=3))
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", actor_type=ActorType.SCORING, at=at)
        handoff = handoff_open(lead=lead, stage_key="mql", at=at)
    if assignee is not None and handoff.assignee_id != assignee.pk:
        Handoff.objects.filter(pk=handoff.pk).update(assignee=assignee)
        Lead.objects.filter(pk=lead.pk).update(owner=assignee)
        handoff.refresh_from_db()
    return handoff


def fresh(handoff: Handoff) -> Handoff:
    return Handoff.objects.select_related("lead").get(pk=handoff.pk)


def snapshot(handoff: Handoff) -> dict:
    """Everything a refused action must leave alone."""
    lead = Lead.objects.get(pk=handoff.lead_id)
    return {
        "handoff": Handoff.objects.filter(pk=handoff.pk).values().get(),
        "lead": (lead.stage, lead.stage_entered_at, lead.owner_id, lead.in_marketing_nurture),
        "transitions": StageTransition.objects.count(),
        "activities": LeadActivity.objects.count(),
        "notifications": Notification.objects.count(),
        "events": EngagementEvent.objects.count(),
        "reps": list(SalesRep.objects.order_by("pk").values_list("pk", "last_assigned_at")),
    }


@pytest.fixture
def world(db):
    """Team Sam (manager with the permission): Ana and Ben. Team Olga (also a manager): Oz.
    Lou manages nobody's handoffs: no permission."""
    manager = UserFactory(username="mgr.sam", role=SALES_MANAGER)
    other_manager = UserFactory(username="mgr.olga", role=SALES_MANAGER)
    return SimpleNamespace(
        manager=manager,
        other_manager=other_manager,
        unpermitted=UserFactory(username="mgr.lou"),
        rep=SalesRepFactory(user__username="rep.ana", manager=manager),
        teammate=SalesRepFactory(user__username="rep.ben", manager=manager),
        outsider=SalesRepFactory(user__username="rep.oz", manager=other_manager),
    )


# --- Who may act --------------------------------------------------------------------------------


def test_who_may_act_and_manage(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "pw")

    assert user_can_act(world.rep.user, handoff)
    assert not user_manages(world.rep.user, handoff)
    assert not user_can_act(world.teammate.user, handoff)
    assert user_manages(world.manager, handoff) and user_can_act(world.manager, handoff)
    assert not user_can_act(world.other_manager, handoff)
    assert user_manages(superuser, handoff)
    assert not user_can_act(AnonymousUser(), handoff)
    # Being a rep's manager is not enough without the permission.
    SalesRep.objects.filter(pk=world.rep.pk).update(manager=world.unpermitted)
    assert not user_can_act(world.unpermitted, handoff)
    assert not user_can_act(world.manager, handoff)  # no longer Ana's manager

    Handoff.objects.filter(pk=handoff.pk).update(assignee=None)
    handoff.refresh_from_db()
    assert user_manages(world.other_manager, handoff)  # the fallback queue: any manager
    assert not user_can_act(world.rep.user, handoff)
    assert not user_can_act(world.unpermitted, handoff)


# --- Touches ------------------------------------------------------------------------------------


def test_first_touch_is_the_first_response(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=NOW - HOUR)
    price, timing = ObjectionTag.objects.filter(key__in=["price", "timing"]).order_by("key")
    asset = ContentAsset.objects.create(
        title="ROI case study", asset_type="case_study", funnel_stage="bofu"
    )

    activity = handoff_log_touch(
        handoff=handoff,
        actor=world.rep.user,
        channel="call",
        note="  Spoke with the VP; wants pricing.  ",
        objections=[price, timing],
        content_assets=[asset],
        revision=0,
    )

    handoff = fresh(handoff)
    assert handoff.first_response_at == NOW
    assert handoff.response_business_seconds == 3600  # 13:00 → 14:00 New York time
    assert handoff.revision == 1
    assert handoff.outcome == HandoffOutcome.PENDING
    activity = LeadActivity.objects.get(pk=activity.pk)
    assert activity.action == ActivityAction.RESPONDED
    assert (activity.channel, activity.note) == ("call", "Spoke with the VP; wants pricing.")
    assert (activity.actor, activity.actor_type) == (world.rep.user, ActorType.USER)
    assert (activity.lead_id, activity.handoff_id) == (handoff.lead_id, handoff.pk)
    assert activity.occurred_at == NOW
    assert activity.details == {}
    assert set(activity.objections.values_list("key", flat=True)) == {"price", "timing"}
    assert list(activity.content_assets.all()) == [asset]
    assert handoff.lead.stage == "mql"  # a touch alone decides nothing
    assert not EngagementEvent.objects.filter(lead_id=handoff.lead_id).exists()


def test_a_second_touch_is_a_follow_up(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=NOW - 2 * HOUR)
    handoff_log_touch(handoff=handoff, actor=world.rep.user, channel="email", at=NOW - HOUR)

    follow_up = handoff_log_touch(
        handoff=handoff.pk, actor=world.rep.user, channel="call", note="voicemail", revision=1
    )

    handoff = fresh(handoff)
    assert follow_up.action == ActivityAction.TOUCHED
    assert handoff.first_response_at == NOW - HOUR
    assert handoff.response_business_seconds == 3600
    assert handoff.revision == 2
    assert list(LeadActivity.objects.filter(handoff=handoff).values_list("action", "channel")) == [
        (ActivityAction.RESPONDED, "email"),
        (ActivityAction.TOUCHED, "call"),
    ]


def test_a_touch_may_be_a_few_minutes_ahead_of_our_clock(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    handoff_log_touch(
        handoff=handoff, actor=world.rep.user, channel="call", at=NOW + timedelta(minutes=4)
    )
    assert fresh(handoff).first_response_at == NOW + timedelta(minutes=4)


def test_a_booked_meeting_on_an_accepted_handoff_moves_the_lead_to_sql(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=NOW - 2 * HOUR)
    handoff_accept(handoff=handoff, actor=world.rep.user, at=NOW - HOUR)
    assert Lead.objects.get(pk=handoff.lead_id).stage == "sal"

    activity = handoff_log_touch(
        handoff=handoff, actor=world.rep.user, channel="meeting", meeting_booked=True
    )

    assert activity.action == ActivityAction.TOUCHED  # accepting was the first response
    assert activity.details == {"meeting_booked": True}
    event = EngagementEvent.objects.get(lead_id=handoff.lead_id)
    assert event.kind == EventKind.MEETING_BOOKED
    assert event.occurred_at == NOW
    assert (event.source_system, event.external_id) == ("revops", f"activity-{activity.pk}")
    assert event.properties == {"logged_by": "rep.ana"}
    lead = Lead.objects.get(pk=handoff.lead_id)
    assert (lead.stage, lead.stage_entered_at) == ("sql", NOW)
    last = StageTransition.objects.filter(lead=lead).last()
    assert (last.from_stage, last.to_stage, last.actor_type) == ("sal", "sql", ActorType.SYSTEM)
    assert last.transitioned_at == NOW


def test_a_booked_meeting_on_a_pending_handoff_is_recorded_but_moves_nothing(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    transitions = StageTransition.objects.count()

    handoff_log_touch(handoff=handoff, actor=world.rep.user, channel="call", meeting_booked=True)

    assert EngagementEvent.objects.filter(lead_id=handoff.lead_id, kind="meeting_booked").exists()
    assert Lead.objects.get(pk=handoff.lead_id).stage == "mql"  # SQL only follows SAL
    assert StageTransition.objects.count() == transitions


def test_a_manager_logs_a_touch_for_the_team(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    activity = handoff_log_touch(handoff=handoff, actor=world.manager, channel="social")
    assert activity.actor == world.manager
    assert fresh(handoff).first_response_at == NOW


# --- Accept -------------------------------------------------------------------------------------


def test_accept_moves_the_lead_to_sal_and_stops_marketing_automation(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=NOW - HOUR)
    assert Lead.objects.get(pk=handoff.lead_id).in_marketing_nurture

    result = handoff_accept(handoff=handoff, actor=world.rep.user, note=" good fit ", revision=0)

    handoff = fresh(handoff)
    assert result.pk == handoff.pk
    assert handoff.outcome == HandoffOutcome.ACCEPTED
    assert handoff.accepted_at == NOW
    assert handoff.rejected_at is None
    assert handoff.first_response_at == NOW  # accepting is a response too
    assert handoff.response_business_seconds == 3600
    assert handoff.revision == 1
    lead = handoff.lead
    assert (lead.stage, lead.stage_entered_at, lead.in_marketing_nurture) == ("sal", NOW, False)
    transition = StageTransition.objects.filter(lead=lead).last()
    assert (transition.from_stage, transition.to_stage) == ("mql", "sal")
    assert (transition.actor, transition.actor_type) == (world.rep.user, ActorType.USER)
    assert transition.reason == "handoff accepted"
    assert transition.transitioned_at == NOW
    activity = LeadActivity.objects.get(handoff=handoff)
    assert (activity.action, activity.note, activity.actor) == (
        ActivityAction.ACCEPTED,
        "good fit",
        world.rep.user,
    )


def test_accept_keeps_an_earlier_first_response(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=NOW - 3 * HOUR)
    handoff_log_touch(handoff=handoff, actor=world.rep.user, channel="call", at=NOW - 2 * HOUR)

    handoff_accept(handoff=handoff, actor=world.rep.user, at=NOW - HOUR)

    handoff = fresh(handoff)
    assert handoff.first_response_at == NOW - 2 * HOUR
    assert handoff.response_business_seconds == 3600
    assert handoff.accepted_at == NOW - HOUR
    assert handoff.lead.stage_entered_at == NOW - HOUR


def test_the_team_manager_accepts_for_a_rep(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    handoff_accept(handoff=handoff, actor=world.manager)
    handoff = fresh(handoff)
    assert handoff.outcome == HandoffOutcome.ACCEPTED
    assert handoff.assignee == world.rep.user  # still Ana's lead
    assert StageTransition.objects.filter(lead_id=handoff.lead_id).last().actor == world.manager


# --- Reject -------------------------------------------------------------------------------------


def test_reject_sends_the_lead_to_nurture_with_its_reason(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=NOW - HOUR)

    handoff_reject(
        handoff=handoff, actor=world.rep.user, reason=reason("no_budget"), note=" Q3 ", revision=0
    )

    handoff = fresh(handoff)
    assert handoff.outcome == HandoffOutcome.REJECTED
    assert handoff.rejected_at == NOW and handoff.accepted_at is None
    assert handoff.reject_reason.key == "no_budget"
    assert handoff.reject_note == "Q3"
    assert handoff.first_response_at == NOW
    assert handoff.revision == 1
    lead = handoff.lead
    assert (lead.stage, lead.stage_entered_at, lead.in_marketing_nurture) == ("nurture", NOW, True)
    transition = StageTransition.objects.filter(lead=lead).last()
    assert (transition.from_stage, transition.to_stage) == ("mql", "nurture")
    assert transition.reason == "handoff rejected: No budget"
    assert transition.actor == world.rep.user
    activity = LeadActivity.objects.get(handoff=handoff)
    assert activity.action == ActivityAction.REJECTED
    assert (activity.note, activity.details) == ("Q3", {"reason": "no_budget"})
    # What marketing sees: rejected handoffs by reason.
    assert list(
        Handoff.objects.filter(outcome="rejected").values_list("reject_reason__label", flat=True)
    ) == ["No budget"]


def test_other_with_a_note_is_a_valid_rejection(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    handoff_reject(
        handoff=handoff, actor=world.rep.user, reason=reason("other"), note="Works at a partner"
    )
    handoff = fresh(handoff)
    assert (handoff.reject_reason.key, handoff.reject_note) == ("other", "Works at a partner")
    assert handoff.lead.stage == "nurture"


# --- Refusals change nothing --------------------------------------------------------------------
#
# Each scenario builds its situation and returns the handoff and the refused action; the test
# snapshots everything before the action and compares afterwards.


def _accept_rejected(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_reject(handoff=handoff, actor=w.rep.user, reason=reason("bad_timing"))
    return handoff, lambda: handoff_accept(handoff=handoff.pk, actor=w.rep.user)


def _reject_accepted(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_accept(handoff=handoff, actor=w.rep.user)
    return handoff, lambda: handoff_reject(
        handoff=handoff.pk, actor=w.rep.user, reason=reason("no_budget")
    )


def _touch_rejected(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_reject(handoff=handoff, actor=w.rep.user, reason=reason("unreachable"))
    return handoff, lambda: handoff_log_touch(
        handoff=handoff.pk, actor=w.rep.user, channel="call", meeting_booked=True
    )


def _reassign_accepted(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_accept(handoff=handoff, actor=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff.pk, actor=w.manager, to_user=w.teammate.user
    )


def _double_accept(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_accept(handoff=handoff, actor=w.rep.user, revision=0)
    return handoff, lambda: handoff_accept(handoff=handoff.pk, actor=w.rep.user, revision=0)


def _reject_on_stale_page(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_accept(handoff=handoff, actor=w.manager, revision=0)
    return handoff, lambda: handoff_reject(
        handoff=handoff.pk, actor=w.rep.user, reason=reason("no_budget"), revision=0
    )


def _double_touch(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_log_touch(handoff=handoff, actor=w.rep.user, channel="call", revision=0)
    return handoff, lambda: handoff_log_touch(
        handoff=handoff.pk, actor=w.rep.user, channel="call", revision=0
    )


def _stale_reassign(w):
    handoff = hand_off(assignee=w.rep.user)
    handoff_log_touch(handoff=handoff, actor=w.rep.user, channel="call", revision=0)
    return handoff, lambda: handoff_reassign(
        handoff=handoff.pk, actor=w.manager, to_user=w.teammate.user, revision=0
    )


def _teammate_accepts(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_accept(handoff=handoff, actor=w.teammate.user)


def _teammate_rejects(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reject(
        handoff=handoff, actor=w.teammate.user, reason=reason("not_icp_fit")
    )


def _teammate_touches(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_log_touch(
        handoff=handoff, actor=w.teammate.user, channel="call", meeting_booked=True
    )


def _unpermitted_manager_accepts(w):
    SalesRep.objects.filter(pk=w.rep.pk).update(manager=w.unpermitted)
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_accept(handoff=handoff, actor=w.unpermitted)


def _unpermitted_manager_reassigns(w):
    SalesRep.objects.filter(pk__in=[w.rep.pk, w.teammate.pk]).update(manager=w.unpermitted)
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff, actor=w.unpermitted, to_user=w.teammate.user
    )


def _other_team_manager_rejects(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reject(
        handoff=handoff, actor=w.other_manager, reason=reason("duplicate")
    )


def _other_team_manager_reassigns(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff, actor=w.other_manager, to_user=w.outsider.user
    )


def _rep_reassigns(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff, actor=w.rep.user, to_user=w.teammate.user
    )


def _reassign_to_other_team(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff, actor=w.manager, to_user=w.outsider.user
    )


def _reassign_to_inactive_rep(w):
    SalesRep.objects.filter(pk=w.teammate.pk).update(is_active=False)
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff, actor=w.manager, to_user=w.teammate.user
    )


def _reassign_to_deactivated_user(w):
    get_user_model().objects.filter(pk=w.teammate.user_id).update(is_active=False)
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(
        handoff=handoff, actor=w.manager, to_user=w.teammate.user
    )


def _reassign_to_a_non_rep(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(handoff=handoff, actor=w.manager, to_user=w.manager)


def _reassign_to_the_assignee(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(handoff=handoff, actor=w.manager, to_user=w.rep.user)


def _reassign_to_nobody(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reassign(handoff=handoff, actor=w.manager, to_user=None)


def _reject_without_reason(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reject(
        handoff=handoff, actor=w.rep.user, reason=None, note="no idea"
    )


def _other_without_note(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reject(
        handoff=handoff, actor=w.rep.user, reason=reason("other"), note="   "
    )


def _inactive_reason(w):
    RejectionReason.objects.filter(key="duplicate").update(is_active=False)
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_reject(
        handoff=handoff, actor=w.rep.user, reason=reason("duplicate")
    )


def _touch_before_assignment(w):
    handoff = hand_off(assignee=w.rep.user, at=NOW - HOUR)
    return handoff, lambda: handoff_log_touch(
        handoff=handoff, actor=w.rep.user, channel="call", at=NOW - 2 * HOUR
    )


def _touch_in_the_future(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_log_touch(
        handoff=handoff, actor=w.rep.user, channel="call", at=NOW + timedelta(minutes=10)
    )


def _accept_before_assignment(w):
    handoff = hand_off(assignee=w.rep.user, at=NOW - HOUR)
    return handoff, lambda: handoff_accept(
        handoff=handoff, actor=w.rep.user, at=NOW - HOUR - timedelta(seconds=1)
    )


def _touch_on_unknown_channel(w):
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_log_touch(handoff=handoff, actor=w.rep.user, channel="fax")


def _touch_with_retired_objection(w):
    ObjectionTag.objects.filter(key="competitor").update(is_active=False)
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: handoff_log_touch(
        handoff=handoff,
        actor=w.rep.user,
        channel="call",
        objections=list(ObjectionTag.objects.filter(key__in=["price", "competitor"])),
    )


def _recycle_without_permission(w):
    handoff = hand_off(assignee=w.rep.user)
    lead_move_to_stage(lead=Lead.objects.get(pk=handoff.lead_id), to_stage="disqualified")
    return handoff, lambda: lead_recycle(lead=handoff.lead_id, actor=w.manager)


def _recycle_a_nurtured_lead(w):
    admin = grant(UserFactory(username="ops.admin"), "recycle_lead")
    handoff = hand_off(assignee=w.rep.user)
    handoff_reject(handoff=handoff, actor=w.rep.user, reason=reason("bad_timing"))
    return handoff, lambda: lead_recycle(lead=handoff.lead_id, actor=admin)


def _recycle_an_mql(w):
    admin = grant(UserFactory(username="ops.admin"), "recycle_lead")
    handoff = hand_off(assignee=w.rep.user)
    return handoff, lambda: lead_recycle(lead=handoff.lead_id, actor=admin)


DENIED = (PermissionDenied, None, None)


def _invalid(*, code=None, field=None):
    return (ValidationError, code, field)


REFUSALS = [
    (_accept_rejected, _invalid(code="decided")),
    (_reject_accepted, _invalid(code="decided")),
    (_touch_rejected, _invalid(code="decided")),
    (_reassign_accepted, _invalid(code="decided")),
    (_double_accept, _invalid(code="stale")),
    (_reject_on_stale_page, _invalid(code="stale")),
    (_double_touch, _invalid(code="stale")),
    (_stale_reassign, _invalid(code="stale")),
    (_teammate_accepts, DENIED),
    (_teammate_rejects, DENIED),
    (_teammate_touches, DENIED),
    (_unpermitted_manager_accepts, DENIED),
    (_unpermitted_manager_reassigns, DENIED),
    (_other_team_manager_rejects, DENIED),
    (_other_team_manager_reassigns, DENIED),
    (_rep_reassigns, DENIED),
    (_reassign_to_other_team, _invalid(field="to_user")),
    (_reassign_to_inactive_rep, _invalid(field="to_user")),
    (_reassign_to_deactivated_user, _invalid(field="to_user")),
    (_reassign_to_a_non_rep, _invalid(field="to_user")),
    (_reassign_to_the_assignee, _invalid(field="to_user")),
    (_reassign_to_nobody, _invalid(field="to_user")),
    (_reject_without_reason, _invalid(field="reason")),
    (_other_without_note, _invalid(field="note")),
    (_inactive_reason, _invalid(field="reason")),
    (_touch_before_assignment, _invalid(field="occurred_at")),
    (_touch_in_the_future, _invalid(field="occurred_at")),
    (_accept_before_assignment, _invalid(field="occurred_at")),
    (_touch_on_unknown_channel, _invalid(field="channel")),
    (_touch_with_retired_objection, _invalid(field="objections")),
    (_recycle_without_permission, DENIED),
    (_recycle_a_nurtured_lead, _invalid()),
    (_recycle_an_mql, _invalid()),
]


@pytest.mark.parametrize(
    ("scenario", "expected"), REFUSALS, ids=[s.__name__.strip("_") for s, _ in REFUSALS]
)
def test_a_refusal_changes_nothing(world, frozen_now, scenario, expected):
    handoff, act = scenario(world)
    before = snapshot(handoff)
    error, code, field = expected

    with pytest.raises(error) as excinfo:
        act()

    if code is not None:
        assert excinfo.value.code == code
    if field is not None:
        assert list(excinfo.value.error_dict) == [field]
    assert snapshot(handoff) == before


# --- Reassign -----------------------------------------------------------------------------------


def test_the_manager_reassigns_within_the_team(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)

    handoff_reassign(
        handoff=handoff, actor=world.manager, to_user=world.teammate.user, note=" OOO ", revision=0
    )

    handoff = fresh(handoff)
    assert handoff.assignee == world.teammate.user
    assert handoff.revision == 1
    assert handoff.outcome == HandoffOutcome.PENDING
    assert handoff.lead.owner == world.teammate.user
    assert SalesRep.objects.get(pk=world.teammate.pk).last_assigned_at == NOW
    activity = LeadActivity.objects.get(handoff=handoff)
    assert (activity.action, activity.actor, activity.note) == (
        ActivityAction.REASSIGNED,
        world.manager,
        "OOO",
    )
    assert activity.details == {
        "from_user": world.rep.user_id,
        "to_user": world.teammate.user_id,
        "on_breach": False,
    }
    notice = Notification.objects.get()
    assert (notice.recipient, notice.kind, notice.handoff) == (
        world.teammate.user,
        NotificationKind.REASSIGNED,
        handoff,
    )
    assert notice.emailed_at is None and notice.read_at is None
    # The new assignee acts on it now; the previous one no longer can.
    assert user_can_act(world.teammate.user, handoff)
    assert not user_can_act(world.rep.user, handoff)


def test_a_rep_who_gets_a_handoff_back_is_notified_again(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    handoff_reassign(handoff=handoff, actor=world.manager, to_user=world.teammate.user)
    notifications_email_pending()
    Notification.objects.filter(recipient=world.teammate.user).update(read_at=NOW)
    handoff_reassign(handoff=handoff, actor=world.manager, to_user=world.rep.user)
    mail.outbox.clear()

    handoff_reassign(handoff=handoff, actor=world.manager, to_user=world.teammate.user)

    notice = Notification.objects.get(recipient=world.teammate.user, handoff=handoff)
    assert notice.kind == NotificationKind.REASSIGNED
    assert (notice.read_at, notice.emailed_at, notice.created_at) == (None, None, NOW)
    assert notifications_email_pending() == 2  # Ana's, and Ben's again
    assert sorted(message.to for message in mail.outbox) == [
        ["rep.ana@example.com"],
        ["rep.ben@example.com"],
    ]
    assert LeadActivity.objects.filter(action=ActivityAction.REASSIGNED).count() == 3


def test_a_manager_assigns_an_unassigned_handoff_to_the_team(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    Handoff.objects.filter(pk=handoff.pk).update(assignee=None)

    handoff_reassign(handoff=handoff, actor=world.manager, to_user=world.teammate.user)

    assert fresh(handoff).assignee == world.teammate.user
    assert LeadActivity.objects.get(handoff=handoff).details["from_user"] is None


def test_a_superuser_reassigns_across_teams(world, frozen_now):
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    handoff = hand_off(assignee=world.rep.user)
    handoff_reassign(handoff=handoff, actor=superuser, to_user=world.outsider.user)
    assert fresh(handoff).assignee == world.outsider.user


# --- Recycle ------------------------------------------------------------------------------------


def test_recycling_a_disqualified_lead_puts_it_back_in_nurture(world, frozen_now):
    admin = grant(UserFactory(username="ops.admin"), "recycle_lead")
    handoff = hand_off(assignee=world.rep.user, at=NOW - 3 * HOUR)
    lead = Lead.objects.get(pk=handoff.lead_id)
    lead_move_to_stage(lead=lead, to_stage="disqualified", at=NOW - 2 * HOUR)

    recycled = lead_recycle(lead=lead, actor=admin, note=" new budget ")

    lead = Lead.objects.get(pk=lead.pk)
    assert recycled.pk == lead.pk
    assert (lead.stage, lead.stage_entered_at, lead.in_marketing_nurture) == ("nurture", NOW, True)
    transition = StageTransition.objects.filter(lead=lead).last()
    assert (transition.from_stage, transition.to_stage) == ("disqualified", "nurture")
    assert (transition.actor, transition.reason) == (admin, "recycled: new budget")
    activity = LeadActivity.objects.get(lead=lead)
    assert activity.action == ActivityAction.RECYCLED
    assert (activity.actor, activity.actor_type, activity.note) == (
        admin,
        ActorType.USER,
        "new budget",
    )
    assert activity.handoff_id == handoff.pk


def test_recycling_a_lead_without_handoff(db, frozen_now):
    admin = grant(UserFactory(username="ops.admin"), "recycle_lead")
    lead = LeadFactory(stage="disqualified", in_marketing_nurture=False)
    lead_recycle(lead=lead.pk, actor=admin)
    lead.refresh_from_db()
    assert lead.stage == "nurture" and lead.in_marketing_nurture
    assert StageTransition.objects.get(lead=lead).reason == "recycled"
    assert LeadActivity.objects.get(lead=lead).handoff is None


# --- Breach sweep -------------------------------------------------------------------------------


@pytest.fixture
def escalate_to_manager(world):
    SlaPolicy.objects.filter(stage_key="mql").update(escalate_to=world.manager)


def notices():
    return sorted(
        Notification.objects.values_list("recipient__username", "handoff_id", "kind"),
    )


def test_the_sweep_marks_an_unanswered_handoff_once_and_tells_assignee_and_manager(
    world, escalate_to_manager, frozen_now
):
    # Sunday 2026-03-08: due Monday 13:00 EDT to respond, Tuesday 17:00 EDT (after NOW) to decide.
    handoff = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    assert handoff.response_due_at < NOW < handoff.accept_due_at
    activities = LeadActivity.objects.count()

    result = handoff_breach_sweep()

    handoff = fresh(handoff)
    assert handoff.response_breached_at == NOW
    assert handoff.accept_breached_at is None
    assert handoff.assignee == world.rep.user  # the policy does not reassign
    assert (result.response_breaches, result.accept_breaches) == (1, 0)
    assert (result.notifications, result.reassigned, result.more) == (2, 0, False)
    assert notices() == [
        ("mgr.sam", handoff.pk, NotificationKind.RESPONSE_BREACH),
        ("rep.ana", handoff.pk, NotificationKind.RESPONSE_BREACH),
    ]
    assert all(n.created_at == NOW for n in Notification.objects.all())
    breach = LeadActivity.objects.get(handoff=handoff)
    assert (breach.action, breach.actor, breach.actor_type) == (
        ActivityAction.RESPONSE_BREACHED,
        None,
        ActorType.SYSTEM,
    )
    assert (breach.occurred_at, breach.lead_id, breach.details) == (NOW, handoff.lead_id, {})
    assert LeadActivity.objects.count() == activities + 1

    again = handoff_breach_sweep()

    assert (again.response_breaches, again.accept_breaches, again.notifications) == (0, 0, 0)
    assert again.reassigned == 0
    assert Notification.objects.count() == 2
    assert LeadActivity.objects.count() == activities + 1
    assert fresh(handoff).response_breached_at == NOW


def test_the_sweep_marks_both_clocks_of_a_forgotten_handoff(world, escalate_to_manager, frozen_now):
    handoff = hand_off(assignee=world.rep.user, at=LONG_AGO)
    assert handoff.accept_due_at < NOW

    result = handoff_breach_sweep()

    handoff = fresh(handoff)
    assert handoff.response_breached_at == handoff.accept_breached_at == NOW
    assert (result.response_breaches, result.accept_breaches, result.notifications) == (1, 1, 4)
    assert sorted(
        LeadActivity.objects.filter(handoff=handoff).values_list("action", flat=True)
    ) == sorted([ActivityAction.RESPONSE_BREACHED, ActivityAction.ACCEPT_BREACHED])
    assert len(notices()) == 4
    assert handoff_breach_sweep() == type(result)(0, 0, 0, 0, False)


def test_the_sweep_leaves_answered_decided_and_current_handoffs_alone(
    world, escalate_to_manager, frozen_now
):
    answered = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    handoff_log_touch(handoff=answered, actor=world.rep.user, channel="call")
    accepted = hand_off(assignee=world.rep.user, at=LONG_AGO)
    handoff_accept(handoff=accepted, actor=world.rep.user)
    rejected = hand_off(assignee=world.rep.user, at=LONG_AGO)
    handoff_reject(handoff=rejected, actor=world.rep.user, reason=reason("no_budget"))
    current = hand_off(assignee=world.rep.user, at=NOW - HOUR)
    late_answer = hand_off(assignee=world.rep.user, at=LONG_AGO)  # answered late, undecided
    handoff_log_touch(handoff=late_answer, actor=world.rep.user, channel="email")
    notifications = Notification.objects.count()

    result = handoff_breach_sweep()

    assert (result.response_breaches, result.accept_breaches) == (0, 1)
    for handoff in (answered, accepted, rejected, current):
        handoff = fresh(handoff)
        assert handoff.response_breached_at is None and handoff.accept_breached_at is None
    late_answer = fresh(late_answer)
    assert late_answer.response_breached_at is None  # answered: no response breach any more
    assert late_answer.accept_breached_at == NOW
    assert Notification.objects.count() == notifications + 2
    assert set(Notification.objects.values_list("handoff_id", "kind")) == {
        (late_answer.pk, NotificationKind.ACCEPT_BREACH)
    }


def test_an_escalation_recipient_who_is_the_assignee_hears_once(world, frozen_now):
    SlaPolicy.objects.filter(stage_key="mql").update(escalate_to=world.rep.user)
    handoff = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    result = handoff_breach_sweep()
    assert result.notifications == 1
    assert notices() == [("rep.ana", handoff.pk, NotificationKind.RESPONSE_BREACH)]


def test_an_unassigned_breach_goes_to_the_escalation_recipient(
    world, escalate_to_manager, frozen_now
):
    handoff = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    Handoff.objects.filter(pk=handoff.pk).update(assignee=None)
    result = handoff_breach_sweep()
    assert (result.response_breaches, result.notifications, result.reassigned) == (1, 1, 0)
    assert notices() == [("mgr.sam", handoff.pk, NotificationKind.RESPONSE_BREACH)]


def test_a_policy_escalating_to_the_reps_manager_tells_each_reps_own_manager(world, frozen_now):
    SlaPolicy.objects.filter(stage_key="mql").update(escalate_to_manager=True)
    ana_late = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    oz_late = hand_off(assignee=world.outsider.user, at=NOW - timedelta(days=2))
    loose = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    Handoff.objects.filter(pk=loose.pk).update(assignee=None)  # no rep, so no manager

    result = handoff_breach_sweep()

    assert (result.response_breaches, result.notifications) == (3, 4)
    assert notices() == sorted(
        [
            ("mgr.olga", oz_late.pk, NotificationKind.RESPONSE_BREACH),
            ("mgr.sam", ana_late.pk, NotificationKind.RESPONSE_BREACH),
            ("rep.ana", ana_late.pk, NotificationKind.RESPONSE_BREACH),
            ("rep.oz", oz_late.pk, NotificationKind.RESPONSE_BREACH),
        ]
    )


def test_a_manager_named_and_escalated_to_as_manager_hears_once(world, frozen_now):
    SlaPolicy.objects.filter(stage_key="mql").update(
        escalate_to=world.manager, escalate_to_manager=True
    )
    handoff = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    assert handoff_breach_sweep().notifications == 2
    assert notices() == [
        ("mgr.sam", handoff.pk, NotificationKind.RESPONSE_BREACH),
        ("rep.ana", handoff.pk, NotificationKind.RESPONSE_BREACH),
    ]


def test_every_notification_email_links_to_its_handoff_page(
    world, escalate_to_manager, frozen_now, settings
):
    settings.SITE_URL = "https://revops.example.com"
    handoff = hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    handoff_breach_sweep()
    mail.outbox.clear()

    assert notifications_email_pending() == 2

    link = f"https://revops.example.com/leads/handoffs/{handoff.pk}/"
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert link in message.body.splitlines()[3]  # under the notice it belongs to
        assert "https://revops.example.com/leads/queue/" in message.body


def test_reassign_on_breach_hands_the_lead_to_another_eligible_rep(db, frozen_now):
    manager = UserFactory(username="mgr.sam")
    ana = SalesRepFactory(user__username="rep.ana")
    ben = SalesRepFactory(user__username="rep.ben")
    SalesRepFactory(user__username="rep.cy", is_active=False)
    SlaPolicy.objects.filter(stage_key="mql").update(reassign_on_breach=True, escalate_to=manager)
    handoff = hand_off(assignee=ana.user, at=NOW - timedelta(days=2))

    result = handoff_breach_sweep()

    handoff = fresh(handoff)
    assert result.reassigned == 1
    assert handoff.assignee == ben.user
    assert handoff.lead.owner == ben.user
    assert handoff.response_breached_at == NOW
    assert SalesRep.objects.get(pk=ben.pk).last_assigned_at == NOW
    moved = LeadActivity.objects.get(handoff=handoff, action=ActivityAction.REASSIGNED)
    assert (moved.actor, moved.actor_type) == (None, ActorType.SYSTEM)
    assert moved.details == {"from_user": ana.user_id, "to_user": ben.user_id, "on_breach": True}
    assert notices() == [
        ("mgr.sam", handoff.pk, NotificationKind.RESPONSE_BREACH),
        ("rep.ana", handoff.pk, NotificationKind.RESPONSE_BREACH),
        ("rep.ben", handoff.pk, NotificationKind.REASSIGNED),
    ]
    assert "after its SLA was breached" in Notification.objects.get(recipient=ben.user).message

    again = handoff_breach_sweep()

    assert again.reassigned == 0
    assert fresh(handoff).assignee == ben.user  # not passed on again, nor back to Ana
    assert LeadActivity.objects.filter(action=ActivityAction.REASSIGNED).count() == 1


def test_reassign_on_breach_without_another_rep_keeps_the_assignee(db, frozen_now):
    ana = SalesRepFactory(user__username="rep.ana")
    SalesRepFactory(user__username="rep.ben", out_of_office_from=NOW.date())
    SlaPolicy.objects.filter(stage_key="mql").update(reassign_on_breach=True)
    handoff = hand_off(assignee=ana.user, at=NOW - timedelta(days=2))

    result = handoff_breach_sweep()

    assert (result.response_breaches, result.reassigned) == (1, 0)
    assert fresh(handoff).assignee == ana.user
    assert not LeadActivity.objects.filter(action=ActivityAction.REASSIGNED).exists()


def test_reassign_on_breach_only_for_the_response_clock(db, frozen_now):
    ana = SalesRepFactory(user__username="rep.ana")
    SalesRepFactory(user__username="rep.ben")
    SlaPolicy.objects.filter(stage_key="mql").update(reassign_on_breach=True)
    handoff = hand_off(assignee=ana.user, at=LONG_AGO)
    handoff_log_touch(handoff=handoff, actor=ana.user, channel="call")  # answered, undecided

    result = handoff_breach_sweep()

    assert (result.response_breaches, result.accept_breaches, result.reassigned) == (0, 1, 0)
    assert fresh(handoff).assignee == ana.user


def test_the_sweep_works_a_backlog_off_in_bounded_runs_most_overdue_first(world, frozen_now):
    oldest = hand_off(assignee=world.rep.user, at=LONG_AGO)
    older = hand_off(assignee=world.rep.user, at=LONG_AGO + timedelta(days=1))
    old = hand_off(assignee=world.rep.user, at=LONG_AGO + timedelta(days=2))
    assert oldest.response_due_at < older.response_due_at < old.response_due_at < NOW

    first = handoff_breach_sweep(limit=2)

    assert first.response_breaches == 2 and first.more
    assert fresh(oldest).response_breached_at == fresh(older).response_breached_at == NOW
    assert fresh(old).response_breached_at is None

    second = handoff_breach_sweep(limit=2)

    assert second.response_breaches == 1
    assert fresh(old).response_breached_at == NOW
    assert not second.more
    assert LeadActivity.objects.filter(action=ActivityAction.RESPONSE_BREACHED).count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_racing_sweeps_report_each_breach_once(frozen_now):
    """A sweep still running when the next beat starts one: the second waits on the first's row
    locks and must then find nothing left to report."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks make the race: PostgreSQL only")
    rep = SalesRepFactory(user__username="rep.race")
    handoffs = [hand_off(assignee=rep.user, at=LONG_AGO) for _ in range(3)]
    swept, release = threading.Event(), threading.Event()
    results, errors = {}, []

    def first_sweep():
        try:
            with transaction.atomic():
                results["first"] = handoff_breach_sweep(now=NOW)
                swept.set()
                release.wait(timeout=30)
        except Exception as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            swept.set()
            connections.close_all()

    def second_sweep():
        try:
            results["second"] = handoff_breach_sweep(now=NOW)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def second_is_waiting_on_a_lock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] > 0

    first = threading.Thread(target=first_sweep)
    second = threading.Thread(target=second_sweep)
    first.start()
    try:
        assert swept.wait(timeout=30)
        second.start()
        wait_for(second_is_waiting_on_a_lock, timeout=30, interval=0.01)
    finally:
        release.set()
        first.join(timeout=30)
        if second.is_alive() or second.ident is not None:
            second.join(timeout=30)

    assert not errors
    assert (results["first"].response_breaches, results["first"].accept_breaches) == (3, 3)
    assert results["second"] == type(results["first"])(0, 0, 0, 0, False)
    assert LeadActivity.objects.filter(action=ActivityAction.RESPONSE_BREACHED).count() == 3
    assert LeadActivity.objects.filter(action=ActivityAction.ACCEPT_BREACHED).count() == 3
    assert Notification.objects.count() == 6
    assert all(fresh(h).response_breached_at == NOW for h in handoffs)


# --- Notification e-mails -----------------------------------------------------------------------


def test_pending_notifications_are_emailed_once_per_recipient(
    world, escalate_to_manager, frozen_now
):
    forgotten = hand_off(assignee=world.rep.user, at=LONG_AGO)
    handoff_breach_sweep()
    assert Notification.objects.count() == 4  # both clocks, to Ana and to Sam
    mail.outbox.clear()

    handled = notifications_email_pending()

    assert handled == 4
    assert sorted(message.to for message in mail.outbox) == [
        ["mgr.sam@example.com"],
        ["rep.ana@example.com"],
    ]
    for message in mail.outbox:
        assert message.subject == "[RevOps] 2 handoffs need attention"
        assert str(forgotten.lead) in message.body
        assert "Response SLA breached" in message.body and "Accept SLA breached" in message.body
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
    assert set(Notification.objects.values_list("emailed_at", flat=True)) == {NOW}

    assert notifications_email_pending() == 0
    assert len(mail.outbox) == 2


def test_a_single_notification_is_named_in_the_subject(world, frozen_now):
    handoff = hand_off(assignee=world.rep.user)
    handoff_reassign(handoff=handoff, actor=world.manager, to_user=world.teammate.user)
    mail.outbox.clear()

    assert notifications_email_pending() == 1

    (message,) = mail.outbox
    assert message.to == ["rep.ben@example.com"]
    assert message.subject == "[RevOps] Handoff reassigned to you"


def test_recipients_without_an_address_are_notified_in_the_app_only(world, frozen_now):
    get_user_model().objects.filter(pk=world.teammate.user_id).update(email="")
    handoff = hand_off(assignee=world.rep.user)
    handoff_reassign(handoff=handoff, actor=world.manager, to_user=world.teammate.user)
    mail.outbox.clear()

    assert notifications_email_pending() == 1

    assert mail.outbox == []
    assert Notification.objects.get().emailed_at == NOW


def test_notifications_are_emailed_in_batches(world, escalate_to_manager, frozen_now):
    hand_off(assignee=world.rep.user, at=LONG_AGO)
    handoff_breach_sweep()
    mail.outbox.clear()

    assert notifications_email_pending(batch=3) == 3
    assert Notification.objects.filter(emailed_at__isnull=True).count() == 1
    assert notifications_email_pending(batch=3) == 1
    assert notifications_email_pending(batch=3) == 0
    assert len(mail.outbox) == 3  # two recipients in the first batch, one in the second


@pytest.mark.parametrize("failing", ["get_connection", "send_mass_mail"])
def test_a_failed_send_leaves_the_notifications_pending(
    world, escalate_to_manager, frozen_now, failing
):
    hand_off(assignee=world.rep.user, at=NOW - timedelta(days=2))
    handoff_breach_sweep()
    mail.outbox.clear()

    with (
        mock.patch(f"django.core.mail.{failing}", side_effect=OSError("SMTP down")),
        pytest.raises(OSError),
    ):
        notifications_email_pending()

    assert mail.outbox == []
    assert Notification.objects.filter(emailed_at__isnull=True).count() == 2

    # The next run (the mail server is back) sends them.
    assert notifications_email_pending() == 2
    assert len(mail.outbox) == 2
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


# --- Event triggers -----------------------------------------------------------------------------


def meeting_booked(lead: Lead, at: datetime, external_id: str = "") -> EngagementEvent:
    return EngagementEvent(
        lead=lead,
        kind=EventKind.MEETING_BOOKED,
        occurred_at=at,
        source_system="calendly",
        external_id=external_id or f"meeting-{lead.pk}-{at:%H%M}",
    )


def test_a_booked_meeting_moves_a_sal_to_sql(db, frozen_now):
    lead = LeadFactory(stage="sal", stage_entered_at=NOW - 2 * HOUR, in_marketing_nurture=False)

    stored, duplicates = engagement_events_record(events=[meeting_booked(lead, NOW - HOUR)])

    assert (len(stored), duplicates) == (1, 0)
    lead.refresh_from_db()
    assert (lead.stage, lead.stage_entered_at) == ("sql", NOW - HOUR)
    transition = StageTransition.objects.get(lead=lead)
    assert (transition.from_stage, transition.to_stage) == ("sal", "sql")
    assert (transition.actor, transition.actor_type) == (None, ActorType.SYSTEM)
    assert transition.reason == "Meeting booked recorded"
    assert not Handoff.objects.filter(lead=lead).exists()  # SQL opens no handoff

    # The same event delivered again is a duplicate and moves nothing.
    again, duplicates = engagement_events_record(events=[meeting_booked(lead, NOW - HOUR)])
    assert (again, duplicates) == ([], 1)
    assert StageTransition.objects.filter(lead=lead).count() == 1


def test_a_meeting_booked_before_the_lead_became_a_sal_moves_it_at_its_entry(db, frozen_now):
    lead = LeadFactory(stage="sal", stage_entered_at=NOW - HOUR, in_marketing_nurture=False)
    moved = leads_apply_event_triggers(events=[meeting_booked(lead, NOW - 3 * HOUR)])
    lead.refresh_from_db()
    assert moved == 1
    assert (lead.stage, lead.stage_entered_at) == ("sql", NOW - HOUR)


@pytest.mark.parametrize("stage", ["lead", "mql", "sql", "nurture", "disqualified"])
def test_a_booked_meeting_moves_no_lead_outside_sal(db, frozen_now, stage):
    lead = LeadFactory(stage=stage, stage_entered_at=NOW - 2 * HOUR)

    engagement_events_record(events=[meeting_booked(lead, NOW - HOUR)])

    lead.refresh_from_db()
    assert lead.stage == stage
    assert not StageTransition.objects.filter(lead=lead).exists()
    assert EngagementEvent.objects.filter(lead=lead, kind="meeting_booked").count() == 1


def test_other_events_move_no_sal(db, frozen_now):
    lead = LeadFactory(stage="sal", stage_entered_at=NOW - 2 * HOUR)
    events = [
        EngagementEvent(lead=lead, kind=kind, occurred_at=NOW - HOUR, source_system="web")
        for kind in ("demo_request", "pricing_page", "trial_signup")
    ]
    assert leads_apply_event_triggers(events=events) == 0
    engagement_events_record(events=events)
    lead.refresh_from_db()
    assert lead.stage == "sal"


def test_one_batch_moves_each_lead_once(db, frozen_now):
    sal = LeadFactory(stage="sal", stage_entered_at=NOW - 3 * HOUR)
    mql = LeadFactory(stage="mql", stage_entered_at=NOW - 3 * HOUR)
    events = [
        meeting_booked(sal, NOW - 2 * HOUR),
        meeting_booked(sal, NOW - HOUR),
        meeting_booked(mql, NOW - HOUR),
    ]

    assert leads_apply_event_triggers(events=events) == 1

    sal.refresh_from_db()
    assert (sal.stage, sal.stage_entered_at) == ("sql", NOW - 2 * HOUR)
    assert StageTransition.objects.filter(lead=sal).count() == 1
    assert Lead.objects.get(pk=mql.pk).stage == "mql"


# --- Round robin under load ----------------------------------------------------------------------


def rows_locked(table: str, ids: list[int]) -> list[int]:
    """Which of these rows this transaction (or a savepoint of it) locked or changed: PostgreSQL
    stamps the locker's transaction id in the row's ``xmax``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s) AND xmax::text <> '0' ORDER BY id", [ids]
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="locks of PostgreSQL")
def test_a_rotation_takes_turns_on_one_lock_and_leaves_reps_it_does_not_pick_unlocked(
    db, frozen_now
):
    """Opening handoffs takes turns with every other rotation on one advisory lock held to the
    commit, instead of locking every eligible rep and their user rows: a publish's moves no
    longer hold reps (and users) an admin edit, a login or another assignment waits for."""
    picked = SalesRepFactory(user__username="rep.ana")
    idle = SalesRepFactory(user__username="rep.ben", last_assigned_at=NOW - HOUR)
    lead = LeadFactory(stage_entered_at=NOW - timedelta(days=3))
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", actor_type=ActorType.SCORING, at=NOW)
        handoff = handoff_open(lead=lead, stage_key="mql", at=NOW)
        assert handoff.assignee == picked.user  # never assigned: first in line
        assert rows_locked("leads_salesrep", [idle.pk]) == []
        assert rows_locked("auth_user", [picked.user_id, idle.user_id]) == []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND mode = 'ExclusiveLock'"
            )
            assert cursor.fetchone()[0] == 1
    assert SalesRep.objects.get(pk=picked.pk).last_assigned_at == NOW
