"""The five roles (Django groups) and the permissions each one holds: the one place the access
policy is written in code. README "Roles and permissions" shows it as a matrix.

Groups are created by a data migration (``leads/migrations/0008_roles.py``) and granted their
permissions after every ``migrate`` (``roles_grant``, run from ``post_migrate``): permissions of
apps or models added later (scoring, metrics, a new model) are created by Django only after
leads' migrations ran, so a migration alone could not grant them.
"""

from __future__ import annotations

MARKETING = "Marketing"
SALES_REP = "Sales rep"
SALES_MANAGER = "Sales manager"
REVOPS_ADMIN = "RevOps admin"
VIEWER = "Viewer"
ROLES = (MARKETING, SALES_REP, SALES_MANAGER, REVOPS_ADMIN, VIEWER)

# Lead pages, queue, handoff pages and outcomes, notifications; API reads of the facts.
PIPELINE_READ = frozenset(
    {
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
        # Who works the leads, and in which team (API sales-reps/ and teams/).
        "leads.view_salesrep",
    }
)
# Freeze the meeting's figures, add and complete its action items.
MEETING_WRITE = "metrics.run_meeting"
# Marketing's list of the content sales asked for, and closing a request (sales files them
# with WORK_HANDOFFS, from a handoff's page).
CONTENT_REQUESTS_READ = "metrics.view_contentrequest"
CONTENT_REQUESTS_CLOSE = "metrics.change_contentrequest"
# Log a touch, accept, reject: on the handoffs the service lets the user act on.
WORK_HANDOFFS = "leads.work_handoffs"
MANAGE_HANDOFFS = "leads.manage_handoffs"
# The meeting-room account's long session: given to that user, not to a role.
LONG_SESSION = "metrics.long_session"

# Apps whose every permission a RevOps admin holds, except the ones listed below.
REVOPS_ADMIN_APPS = ("leads", "scoring", "backtest", "metrics")
REVOPS_ADMIN_EXCLUDED = frozenset({WORK_HANDOFFS, MANAGE_HANDOFFS, LONG_SESSION})
# Managing users (never superusers: see revops.user_admin), listing and revoking their API
# tokens (metadata only: keys are stored hashed and never shown again, revops.api_tokens), lifting
# a login lockout early, and reading the audit trail's raw entries in the admin.
REVOPS_ADMIN_EXTRA = frozenset(
    {
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
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    MARKETING: PIPELINE_READ
    | {
        MEETING_WRITE,
        "leads.add_importjob",
        "leads.view_importjob",
        "leads.add_source",
        "leads.change_source",
        "leads.add_campaign",
        "leads.change_campaign",
        "leads.add_contentasset",
        "leads.change_contentasset",
        # The content requests sales files from handoffs: list them, work and close them.
        CONTENT_REQUESTS_READ,
        CONTENT_REQUESTS_CLOSE,
    },
    SALES_REP: PIPELINE_READ | {MEETING_WRITE, WORK_HANDOFFS},
    SALES_MANAGER: PIPELINE_READ | {MEETING_WRITE, WORK_HANDOFFS, MANAGE_HANDOFFS},
    # Plus every permission of REVOPS_ADMIN_APPS (see role_permission_query).
    REVOPS_ADMIN: REVOPS_ADMIN_EXTRA,
    VIEWER: frozenset(),
}


def role_permission_query(role: str):
    """The permissions ``role`` holds, as a Q over ``auth.Permission``."""
    from django.db.models import Q

    query = Q(pk__in=[])
    for name in ROLE_PERMISSIONS[role]:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    if role == REVOPS_ADMIN:
        excluded = Q(pk__in=[])
        for name in REVOPS_ADMIN_EXCLUDED:
            app_label, codename = name.split(".")
            excluded |= Q(content_type__app_label=app_label, codename=codename)
        query |= Q(content_type__app_label__in=REVOPS_ADMIN_APPS) & ~excluded
    return query


def roles_create(group_model, using: str = "default") -> None:
    """The five groups, created if missing (idempotent; usable from a migration)."""
    for role in ROLES:
        group_model.objects.using(using).get_or_create(name=role)


def roles_grant(*, group_model=None, permission_model=None, using: str = "default") -> None:
    """Give each group exactly its role's permissions, among those that exist (idempotent).

    A permission created by a later ``migrate`` is granted then; one a role no longer lists is
    taken away, so the database follows this module."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    roles_create(group_model, using)
    for role in ROLES:
        group = group_model.objects.using(using).get(name=role)
        wanted = set(
            permission_model.objects.using(using)
            .filter(role_permission_query(role))
            .values_list("pk", flat=True)
        )
        held = set(group.permissions.values_list("pk", flat=True))
        if wanted - held:
            group.permissions.add(*(wanted - held))
        if held - wanted:
            group.permissions.remove(*(held - wanted))


def grant_roles_after_migrate(sender, *, using: str = "default", apps=None, **kwargs) -> None:
    """``post_migrate`` receiver: Django creates an app's permissions in its own receiver for
    that app, so granting after every app's signal picks up each app's as they appear."""
    from django.db import router

    if apps is None:
        return
    try:
        group_model = apps.get_model("auth", "Group")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:  # auth not migrated in this run
        return
    if not router.allow_migrate_model(using, group_model):
        return
    roles_grant(group_model=group_model, permission_model=permission_model, using=using)


def extend_meeting_room_session(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: the meeting-room screen (``metrics.long_session``) stays
    signed in for ``MEETING_ROOM_SESSION_DAYS`` instead of the usual session length."""
    from django.conf import settings

    if user.has_perm(LONG_SESSION) and hasattr(request, "session"):
        request.session.set_expiry(settings.MEETING_ROOM_SESSION_DAYS * 24 * 60 * 60)
