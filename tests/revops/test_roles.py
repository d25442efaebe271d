"""The roles: groups and their permissions after migrate, the admin's door and its user page,
a rep guessing another rep's handoff id, the meeting-room session."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from leads.models import Handoff, LeadActivity, RejectionReason
from leads.roles import (
    MARKETING,
    REVOPS_ADMIN,
    ROLES,
    SALES_MANAGER,
    SALES_REP,
    VIEWER,
    roles_grant,
)
from metrics.models import Meeting
from metrics.tasks import open_this_weeks_meeting
from tests.factories import LeadFactory, SalesRepFactory, UserFactory

pytestmark = pytest.mark.django_db

PIPELINE_READ = {
    "leads.view_lead",
    "leads.view_account",
    "leads.view_source",
    "leads.view_campaign",
    "leads.view_contentasset",
    "leads.view_engagementevent",
    "leads.view_handoff",
    "leads.view_opportunity",
    "leads.view_rejectionreason",
    "leads.view_objectiontag",
    "leads.view_salesrep",
}
# POLICY.md, written out: what each group holds after migrate.
EXPECTED = {
    MARKETING: PIPELINE_READ
    | {
        "metrics.run_meeting",
        "leads.add_importjob",
        "leads.view_importjob",
        "leads.add_source",
        "leads.change_source",
        "leads.add_campaign",
        "leads.change_campaign",
        "leads.add_contentasset",
        "leads.change_contentasset",
        "metrics.view_contentrequest",
        "metrics.change_contentrequest",
    },
    SALES_REP: PIPELINE_READ | {"metrics.run_meeting", "leads.work_handoffs"},
    SALES_MANAGER: PIPELINE_READ
    | {"metrics.run_meeting", "leads.work_handoffs", "leads.manage_handoffs"},
    VIEWER: set(),
}


def held(group_name: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=group_name).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


@pytest.mark.parametrize("role", [MARKETING, SALES_REP, SALES_MANAGER, VIEWER])
def test_each_group_exists_with_exactly_the_policys_permissions(role):
    assert held(role) == EXPECTED[role]


def test_revops_admin_holds_every_app_permission_but_the_sales_workflow_and_long_session():
    app_perms = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(
            content_type__app_label__in=("leads", "scoring", "backtest", "metrics")
        ).values_list("content_type__app_label", "codename")
    }
    expected = app_perms - {
        "leads.work_handoffs",
        "leads.manage_handoffs",
        "metrics.long_session",
    } | {
        "auditlog.view_logentry",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
        "auth.view_group",
        "api_tokens.view_apitoken",
        "api_tokens.delete_apitoken",
    }
    permissions = held(REVOPS_ADMIN)
    assert permissions == expected
    assert {"leads.change_icpversion", "scoring.change_scoringmodel", "leads.recycle_lead"} <= (
        permissions
    )
    assert "auth.change_group" not in permissions


def test_granting_again_restores_a_changed_group_and_adds_nothing_twice():
    viewer = Group.objects.get(name=VIEWER)
    viewer.permissions.add(Permission.objects.get(codename="change_lead"))
    Group.objects.get(name=SALES_REP).permissions.clear()
    roles_grant()
    roles_grant()
    assert held(VIEWER) == set()
    assert held(SALES_REP) == EXPECTED[SALES_REP]
    assert sorted(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == sorted(
        ROLES
    )


# --- A rep guessing another rep's handoff ------------------------------------------------------


@pytest.fixture
def two_reps():
    manager = UserFactory(username="mgr", role=SALES_MANAGER)
    mine = UserFactory(username="rep.mine", role=SALES_REP)
    theirs = UserFactory(username="rep.theirs", role=SALES_REP)
    for user in (mine, theirs):
        SalesRepFactory(user=user, manager=manager)
    handoff = LeadFactory().handoffs.create(stage="mql", assignee=theirs)
    return mine, handoff


def snapshot(handoff: Handoff) -> tuple:
    handoff.refresh_from_db()
    return (
        handoff.outcome,
        handoff.assignee_id,
        handoff.revision,
        handoff.first_response_at,
        LeadActivity.objects.filter(lead_id=handoff.lead_id).count(),
    )


@pytest.mark.parametrize(
    "action, data",
    [
        ("handoff_touch", {"channel": "email", "note": "mine now"}),
        ("handoff_accept", {}),
        ("handoff_reject", {"note": "no"}),
        ("handoff_reassign", {}),
    ],
)
def test_a_rep_cannot_act_on_another_reps_handoff_from_the_pages(client, two_reps, action, data):
    mine, handoff = two_reps
    before = snapshot(handoff)
    client.force_login(mine)
    payload = {**data, "revision": handoff.revision, "to_user": mine.pk}
    if action == "handoff_reject":
        payload["reason"] = RejectionReason.objects.first().pk
    response = client.post(reverse(f"leads:{action}", args=[handoff.pk]), payload)
    assert response.status_code in (403, 404)
    assert snapshot(handoff) == before


@pytest.mark.parametrize(
    "action, data",
    [
        ("respond", {"channel": "email", "note": "mine now"}),
        ("accept", {}),
        ("reject", {"reason": "no_budget", "note": "no"}),
        ("reassign", {}),
    ],
)
def test_a_rep_cannot_act_on_another_reps_handoff_through_the_api(two_reps, action, data):
    mine, handoff = two_reps
    before = snapshot(handoff)
    api = APIClient()
    api.force_authenticate(mine)
    response = api.post(
        f"/api/v1/handoffs/{handoff.pk}/{action}/", {**data, "to_user": mine.pk}, format="json"
    )
    assert response.status_code in (403, 404), response.content
    assert snapshot(handoff) == before


def test_the_rep_the_handoff_is_assigned_to_can_act_on_it(client, two_reps):
    """The refusals above are about whose handoff it is, not a broken action."""
    _mine, handoff = two_reps
    client.force_login(handoff.assignee)
    response = client.post(
        reverse("leads:handoff_accept", args=[handoff.pk]), {"revision": handoff.revision}
    )
    assert response.status_code == 302
    handoff.refresh_from_db()
    assert handoff.outcome == "accepted"


# --- The admin's door and its user page --------------------------------------------------------


@pytest.mark.parametrize(
    "role, status", [(MARKETING, 200), (REVOPS_ADMIN, 200), (SALES_REP, 403), (VIEWER, 403)]
)
def test_roles_that_edit_something_use_the_admin_without_is_staff(client, role, status):
    user = UserFactory(role=role)
    assert not user.is_staff
    client.force_login(user)
    assert client.get(reverse("admin:index")).status_code == status


def test_a_revops_admin_manages_users_but_cannot_make_a_superuser(client):
    ops = UserFactory(username="ops.roles", role=REVOPS_ADMIN)
    target = UserFactory(username="newbie")
    client.force_login(ops)
    url = reverse("admin:auth_user_change", args=[target.pk])
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "is_superuser" not in form.fields
    assert set(form.fields["groups"].queryset.values_list("name", flat=True)) == set(ROLES)
    response = client.post(
        url,
        {
            "username": "newbie",
            "is_active": "on",
            "is_superuser": "on",
            "groups": [Group.objects.get(name=SALES_REP).pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    target.refresh_from_db()
    assert not target.is_superuser
    assert list(target.groups.values_list("name", flat=True)) == [SALES_REP]


def test_a_revops_admin_cannot_change_a_superuser_nor_their_own_roles(client, admin_user):
    ops = UserFactory(username="ops.roles", role=REVOPS_ADMIN)
    client.force_login(ops)
    assert client.get(reverse("admin:auth_user_change", args=[admin_user.pk])).status_code == 200
    refused = client.post(
        reverse("admin:auth_user_change", args=[admin_user.pk]), {"username": "taken"}
    )
    assert refused.status_code == 403
    assert (
        client.get(reverse("admin:auth_user_password_change", args=[admin_user.pk])).status_code
        == 403
    )
    own = client.get(reverse("admin:auth_user_change", args=[ops.pk])).context["adminform"].form
    assert not {"groups", "user_permissions", "is_superuser"} & set(own.fields)


# --- The meeting-room screen -------------------------------------------------------------------


def test_the_meeting_room_account_stays_signed_in_for_the_configured_days(client, settings):
    settings.MEETING_ROOM_SESSION_DAYS = 30
    room = UserFactory(username="meeting.room", role=VIEWER)
    room.set_password("pw")
    room.save()
    room.user_permissions.add(Permission.objects.get(codename="long_session"))
    response = client.post(reverse("login"), {"username": "meeting.room", "password": "pw"})
    assert response.status_code == 302
    assert client.session.get_expiry_age() == 30 * 24 * 60 * 60
    assert client.get(reverse("meeting:current"), follow=True).status_code == 200
    frozen = client.post(reverse("meeting:freeze", args=[timezone.localdate()]))
    assert frozen.status_code == 403


def test_other_users_keep_the_usual_session_length(client, settings):
    user = UserFactory(username="exec", role=VIEWER)
    user.set_password("pw")
    user.save()
    client.post(reverse("login"), {"username": "exec", "password": "pw"})
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert client.session.get_expiry_age() < timedelta(days=30).total_seconds()


def test_demo_admin_puts_the_demo_team_in_their_roles(db, capsys):
    for username in ("rep.alex", "manager.sam", "marketing.riley"):
        UserFactory(username=username)
    call_command("create_demo_admin")
    groups = {
        user.username: {group.name for group in user.groups.all()}
        for user in get_user_model().objects.prefetch_related("groups")
    }
    assert groups["rep.alex"] == {SALES_REP}
    assert groups["manager.sam"] == {SALES_MANAGER}
    assert groups["marketing.riley"] == {MARKETING}
    assert groups["ops.morgan"] == {REVOPS_ADMIN}
    assert groups["meeting.room"] == {VIEWER}
    out = capsys.readouterr().out
    assert "meeting.room" in out and "Viewer" in out


def test_a_viewer_never_opens_the_weeks_meeting_the_beat_does(client):
    client.force_login(UserFactory(role=VIEWER))

    waiting = client.get(reverse("meeting:current"))
    assert waiting.status_code == 200
    assert "not open yet" in waiting.content.decode()
    assert not Meeting.objects.exists()

    open_this_weeks_meeting.delay()
    open_this_weeks_meeting.delay()  # hourly: still one meeting this week
    meeting = Meeting.objects.get()
    assert meeting.created_by is None
    assert client.get(reverse("meeting:current"))["Location"] == reverse(
        "meeting:detail", args=[meeting.held_on]
    )


# --- What a role is shown ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, shown, hidden",
    [
        (VIEWER, {"/dashboards/"}, {"/leads/", "/leads/queue/", "/admin/"}),
        (SALES_REP, {"/leads/", "/leads/queue/"}, {"/admin/", "/leads/imports/"}),
        (MARKETING, {"/leads/", "/leads/imports/", "/admin/"}, {"/leads/queue/"}),
        (REVOPS_ADMIN, {"/leads/", "/leads/imports/", "/admin/"}, {"/leads/queue/"}),
    ],
)
def test_the_top_bar_links_only_what_the_role_may_open(client, role, shown, hidden):
    client.force_login(UserFactory(role=role))
    nav = client.get(reverse("home")).content.decode().split("<nav>")[1].split("</nav>")[0]
    links = set(re.findall(r'href="([^"]+)"', nav))
    assert shown <= links
    assert not hidden & links


@pytest.mark.parametrize("role, buttons", [(VIEWER, False), (SALES_REP, True)])
def test_the_meeting_shows_its_write_buttons_only_to_roles_that_may_use_them(client, role, buttons):
    open_this_weeks_meeting.delay()
    client.force_login(UserFactory(role=role))
    page = client.get(reverse("meeting:current"), {"live": "1"}, follow=True)
    assert page.status_code == 200
    assert "Follow-up on time" in page.content.decode()  # the meeting itself
    body = page.content.decode()
    assert ("Freeze figures" in body) is buttons
    assert ("Add action" in body) is buttons
