"""Handoffs over the API: list and detail, and the workflow's actions through the services —
who may act (403 otherwise), refusals of a decided or stale handoff (400), nothing changed by a
refusal."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils import timezone

from leads.choices import ActivityAction, ActorType
from leads.models import Handoff, Lead, LeadActivity
from leads.roles import SALES_MANAGER
from leads.services import handoff_open, lead_move_to_stage
from tests.api.conftest import errors_of, fields_of, token_client
from tests.factories import LeadFactory, SalesRepFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(db):
    manager = UserFactory(username="mgr.sam", role=SALES_MANAGER)
    rep = SalesRepFactory(user__username="rep.ana", manager=manager)
    teammate = SalesRepFactory(user__username="rep.ben", manager=manager)
    return SimpleNamespace(
        manager=manager, rep=rep.user, teammate=teammate.user, outsider=UserFactory()
    )


def hand_off(assignee) -> Handoff:
    """A lead scored into MQL an hour ago and handed to ``assignee``."""
    at = timezone.now() - timedelta(hours=1)
    lead = LeadFactory(stage_entered_at=at - timedelta(days=3))
    with transaction.atomic():
        lead_move_to_stage(lead=lead, to_stage="mql", actor_type=ActorType.SCORING, at=at)
        handoff = handoff_open(lead=lead, stage_key="mql", at=at)
    Handoff.objects.filter(pk=handoff.pk).update(assignee=assignee)
    Lead.objects.filter(pk=lead.pk).update(owner=assignee)
    handoff.refresh_from_db()
    return handoff


def url(handoff, action="") -> str:
    return f"/api/v1/handoffs/{handoff.pk}/{action + '/' if action else ''}"


def test_handoffs_are_listed_and_read(team, reader_api):
    mine = hand_off(team.rep)
    theirs = hand_off(team.teammate)
    listed = reader_api.get("/api/v1/handoffs/", {"assignee": team.rep.pk, "outcome": "pending"})
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [mine.pk]
    assert len(reader_api.get("/api/v1/handoffs/").json()["results"]) == 2
    detail = reader_api.get(url(theirs)).json()
    assert detail["outcome"] == "pending"
    assert detail["stage"] == "mql"
    assert detail["assignee"] == team.teammate.pk
    assert detail["response_due_at"].endswith("Z")
    assert detail["revision"] == 0


def test_the_assignee_logs_a_response(team):
    handoff = hand_off(team.rep)
    response = token_client(team.rep).post(
        url(handoff, "respond"),
        {"channel": "call", "note": "Wants pricing", "objections": ["price"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["first_response_at"] is not None
    assert response.json()["revision"] == 1
    activity = LeadActivity.objects.get(handoff=handoff, action=ActivityAction.RESPONDED)
    assert [tag.key for tag in activity.objections.all()] == ["price"]
    assert activity.actor == team.rep


def test_the_assignee_accepts_and_the_lead_moves_on(team):
    handoff = hand_off(team.rep)
    response = token_client(team.rep).post(
        url(handoff, "accept"), {"note": "Good fit"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "accepted"
    assert Lead.objects.get(pk=handoff.lead_id).stage == "sal"


def test_the_manager_rejects_with_a_reason(team):
    handoff = hand_off(team.rep)
    response = token_client(team.manager).post(
        url(handoff, "reject"), {"reason": "no_budget", "note": "Frozen"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["reject_reason"] == "no_budget"
    assert Lead.objects.get(pk=handoff.lead_id).stage == "nurture"


def test_the_manager_reassigns_within_the_team(team):
    handoff = hand_off(team.rep)
    response = token_client(team.manager).post(
        url(handoff, "reassign"), {"to_user": team.teammate.pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["assignee"] == team.teammate.pk
    assert Lead.objects.get(pk=handoff.lead_id).owner == team.teammate


@pytest.mark.parametrize(
    "action, body",
    [
        ("respond", {"channel": "call"}),
        ("accept", {}),
        ("reject", {"reason": "no_budget"}),
        ("reassign", {"to_user": None}),
    ],
)
def test_someone_else_gets_403_and_nothing_changes(team, action, body):
    handoff = hand_off(team.rep)
    if action == "reassign":
        body = {"to_user": team.teammate.pk}
    response = token_client(team.teammate).post(url(handoff, action), body, format="json")
    assert response.status_code == 403
    [entry] = errors_of(response)
    assert entry["code"] == "permission_denied"
    assert "only" in entry["message"].lower()
    fresh = Handoff.objects.get(pk=handoff.pk)
    assert (fresh.outcome, fresh.revision, fresh.assignee_id) == ("pending", 0, team.rep.pk)


def test_a_rep_cannot_reassign_even_their_own_handoff(team):
    handoff = hand_off(team.rep)
    response = token_client(team.rep).post(
        url(handoff, "reassign"), {"to_user": team.teammate.pk}, format="json"
    )
    assert response.status_code == 403


def test_acting_on_a_decided_handoff_is_400(team):
    handoff = hand_off(team.rep)
    rep = token_client(team.rep)
    assert rep.post(url(handoff, "accept"), {}, format="json").status_code == 200
    again = rep.post(url(handoff, "reject"), {"reason": "no_budget"}, format="json")
    assert again.status_code == 400
    [entry] = errors_of(again)
    assert (entry["field"], entry["code"]) == (None, "decided")
    assert "already accepted" in entry["message"]


def test_a_stale_revision_is_refused(team):
    handoff = hand_off(team.rep)
    rep = token_client(team.rep)
    assert rep.post(url(handoff, "respond"), {"channel": "email", "revision": 0}, format="json")
    stale = rep.post(url(handoff, "accept"), {"revision": 0}, format="json")
    assert stale.status_code == 400
    assert errors_of(stale)[0]["code"] == "stale"
    assert Handoff.objects.get(pk=handoff.pk).outcome == "pending"


@pytest.mark.parametrize(
    "action, body, field",
    [
        ("respond", {"channel": "pigeon"}, "channel"),
        ("respond", {}, "channel"),
        ("respond", {"channel": "call", "objections": ["nope"]}, "objections"),
        ("respond", {"channel": "call", "occurred_at": "2026-02-30T10:00"}, "occurred_at"),
        ("reject", {}, "reason"),
        ("reject", {"reason": "not_a_reason"}, "reason"),
        ("reject", {"reason": "other"}, "note"),  # "other" needs a note (the service says)
        ("accept", {"revision": -1}, "revision"),
        ("accept", {"occurred_at": "2000-01-01T00:00:00Z"}, "occurred_at"),  # before the handoff
    ],
)
def test_bad_action_input_is_a_field_error(team, action, body, field):
    handoff = hand_off(team.rep)
    response = token_client(team.rep).post(url(handoff, action), body, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {field}
    assert Handoff.objects.get(pk=handoff.pk).revision == 0


def test_an_unknown_handoff_is_404(team):
    response = token_client(team.rep).post("/api/v1/handoffs/999999/accept/", {}, format="json")
    assert response.status_code == 404


def test_actions_work_without_the_trailing_slash(team):
    handoff = hand_off(team.rep)
    response = token_client(team.rep).post(
        f"/api/v1/handoffs/{handoff.pk}/accept", {}, format="json"
    )
    assert response.status_code == 200
