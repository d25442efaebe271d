"""The access matrix: every URL pattern × every role (and anonymous) × every method its view
accepts, generated from the URL configuration.

``test_every_url_pattern_is_classified`` walks ``get_resolver()`` (the admin's and the API
router's patterns included) and fails naming any pattern missing from ``EXPECTED``: a page or
endpoint added later is covered, or this fails until it is classified. The admin's model pages
are classified by rule (``admin:<app>_<model>_<view>`` is allowed iff the role holds the
matching model permission, the role is let into the admin, and the admin offers that view at
all). Allowed ⇒ 2xx (a form's success redirect counts), forbidden ⇒ 403, anonymous ⇒ the login
page (pages) or 401 (API).

Speed: one world (users of every role, a lead with a handoff, a meeting…) is built once per
module inside a transaction rolled back at the end; every case runs in a savepoint rolled back
after it, so a state-changing request never affects the next case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from leads.roles import MARKETING, REVOPS_ADMIN, SALES_MANAGER, SALES_REP, VIEWER

ANONYMOUS = "anonymous"
ROLES = (MARKETING, SALES_REP, SALES_MANAGER, REVOPS_ADMIN, VIEWER)
EVERYONE = frozenset(ROLES)
PIPELINE = EVERYONE - {VIEWER}
IMPORTERS = frozenset({MARKETING, REVOPS_ADMIN})
ADMINS = frozenset({REVOPS_ADMIN})
WORKERS = frozenset({SALES_REP, SALES_MANAGER})  # the assignee and their manager
MANAGERS = frozenset({SALES_MANAGER})
NOBODY = frozenset()

PAGE, API, PUBLIC = "page", "api", "public"
# The API's catch-all: any other path under /api/v1/ (a newline included) is the API's 404.
API_NOT_FOUND = r"api:<unnamed ^[\s\S]*$>"


@dataclass(frozen=True)
class Access:
    """Who may call one URL pattern, by method. ``kwargs``/``data``/``query`` build the request
    from the world; ``ok`` is what "allowed" answers when it is not plain 2xx."""

    kind: str
    methods: dict[str, frozenset[str]]
    kwargs: Callable | None = None
    data: dict[str, Callable] = field(default_factory=dict)
    query: str = ""
    ok: frozenset[int] | None = None
    multipart: bool = False


def page(methods, **options) -> Access:
    return Access(PAGE, methods, **options)


def api(methods, **options) -> Access:
    return Access(API, methods, **options)


def by_pk(attribute: str) -> Callable:
    return lambda w: {"pk": getattr(w, attribute).pk}


def held_on(w) -> dict:
    return {"held_on": w.meeting.held_on}


def revision(w) -> dict:
    w.handoff.refresh_from_db()
    return {"revision": w.handoff.revision}


def definition_api(basename: str, draft: str) -> dict[str, Access]:
    """A definition endpoint: read by everyone; drafts created, edited, published by the
    model's add/change permission (RevOps admin)."""
    detail = by_pk(draft)
    return {
        f"api:{basename}-list": api(
            {"GET": EVERYONE, "POST": ADMINS}, data={"POST": lambda w: {"note": "matrix"}}
        ),
        f"api:{basename}-detail": api(
            {"GET": EVERYONE, "PUT": ADMINS, "PATCH": ADMINS},
            kwargs=detail,
            data={"PUT": lambda w: {"note": "matrix"}, "PATCH": lambda w: {"note": "matrix"}},
        ),
        f"api:{basename}-publish": api(
            {"POST": ADMINS}, kwargs=detail, data={"POST": lambda w: {}}
        ),
    }


def fact_api(basename: str, attribute: str, create: Callable, change: Callable) -> dict:
    """A fact endpoint: reading needs the model's view permission (not the Viewer), writing
    its add/change permission."""
    model_roles = WRITERS[basename]
    return {
        f"api:{basename}-list": api(
            {"GET": PIPELINE, "POST": model_roles["add"]}, data={"POST": create}
        ),
        f"api:{basename}-detail": api(
            {"GET": PIPELINE, "PUT": model_roles["change"], "PATCH": model_roles["change"]},
            kwargs=by_pk(attribute),
            data={"PUT": lambda w: {**create(w), **change(w)}, "PATCH": change},
        ),
    }


# Who holds add / change of each fact model (leads.roles).
WRITERS = {
    "lead": {"add": ADMINS, "change": ADMINS},
    "account": {"add": ADMINS, "change": ADMINS},
    "source": {"add": IMPORTERS, "change": IMPORTERS},
    "campaign": {"add": IMPORTERS, "change": IMPORTERS},
    "opportunity": {"add": ADMINS, "change": ADMINS},
}

# Django's auth pages and the health check: public by design (POLICY.md), not role-checked.
PUBLIC_NAMES = {
    "healthz",
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "admin:login",
    "admin:logout",
    "admin:jsi18n",  # the admin's translation catalogue (JavaScript), no data
}

EXPECTED: dict[str, Access] = {
    # --- Home, Django's password change (every signed-in user) -------------------------------
    "home": page({"GET": EVERYONE}),
    "password_change": page({"GET": EVERYONE}),
    "password_change_done": page({"GET": EVERYONE}),
    "playbook": page({"GET": EVERYONE}),
    # --- Leads ------------------------------------------------------------------------------
    "leads:list": page({"GET": PIPELINE}),
    "leads:export": page({"GET": PIPELINE}),
    "leads:detail": page({"GET": PIPELINE}, kwargs=by_pk("lead")),
    "leads:recycle": page(
        {"POST": ADMINS}, kwargs=by_pk("lead"), data={"POST": lambda w: {"note": "again"}}
    ),
    "leads:queue": page({"GET": PIPELINE}),
    "leads:handoff_outcomes": page({"GET": PIPELINE}),
    "leads:handoff": page({"GET": PIPELINE}, kwargs=by_pk("handoff")),
    "leads:handoff_touch": page(
        {"POST": WORKERS},
        kwargs=by_pk("handoff"),
        data={"POST": lambda w: {"channel": "email", "note": "hi", **revision(w)}},
    ),
    "leads:handoff_accept": page(
        {"POST": WORKERS}, kwargs=by_pk("handoff"), data={"POST": revision}
    ),
    "leads:handoff_reject": page(
        {"POST": WORKERS},
        kwargs=by_pk("handoff"),
        data={"POST": lambda w: {"reason": w.reason.pk, "note": "no", **revision(w)}},
    ),
    "leads:handoff_reassign": page(
        {"POST": MANAGERS},
        kwargs=by_pk("handoff"),
        data={"POST": lambda w: {"to_user": w.other_rep.pk, **revision(w)}},
    ),
    "leads:notifications": page({"GET": PIPELINE, "POST": PIPELINE}, data={"POST": lambda w: {}}),
    # --- Imports ----------------------------------------------------------------------------
    "leads:imports:index": page(
        {"GET": IMPORTERS, "POST": IMPORTERS},
        data={
            "POST": lambda w: {
                "kind": "leads",
                "file": SimpleUploadedFile("leads.csv", b"email\nnew@example.com\n", "text/csv"),
            }
        },
        multipart=True,
    ),
    # POST without an action previews the mapping again (the page, 200).
    "leads:imports:job": page(
        {"GET": IMPORTERS, "POST": IMPORTERS},
        kwargs=by_pk("import_job"),
        data={"POST": lambda w: {}},
    ),
    "leads:imports:progress": page({"GET": IMPORTERS}, kwargs=by_pk("import_job")),
    "leads:imports:mapping": page({"GET": IMPORTERS}, kwargs=by_pk("import_job")),
    "leads:imports:problems": page({"GET": IMPORTERS}, kwargs=by_pk("import_job")),
    "leads:imports:saved-mapping": page({"GET": IMPORTERS}, kwargs=by_pk("saved_mapping")),
    # --- Rescoring progress (a consequence of publishing: readable like the definitions) ----
    "scoring:latest-job": page({"GET": EVERYONE}, ok=frozenset({200, 302})),
    "scoring:job": page({"GET": EVERYONE}, kwargs=by_pk("rescore_job")),
    "scoring:job-progress": page({"GET": EVERYONE}, kwargs=by_pk("rescore_job")),
    # --- Backtests and ICP insights: read by everyone; running a simulation, publishing from
    # it and turning a suggestion into a draft = changing the definition (RevOps admin) --------
    "scoring:backtests": page(
        {"GET": EVERYONE, "POST": ADMINS}, data={"POST": lambda w: {"icp": w.icp_draft.pk}}
    ),
    "scoring:backtest": page({"GET": EVERYONE}, kwargs=by_pk("backtest")),
    "scoring:backtest-progress": page({"GET": EVERYONE}, kwargs=by_pk("backtest")),
    "scoring:backtest-leads": page({"GET": EVERYONE}, kwargs=by_pk("backtest")),
    "scoring:backtest-resume": page(
        {"POST": ADMINS}, kwargs=by_pk("backtest"), data={"POST": lambda w: {}}
    ),
    "scoring:backtest-publish": page(
        {"GET": ADMINS, "POST": ADMINS},
        kwargs=lambda w: {"pk": w.backtest.pk, "which": "icp"},
        data={"POST": lambda w: {}},
    ),
    "scoring:insights": page({"GET": EVERYONE}),
    # No suggestion exists in this small world: the RevOps admin is sent back to the page with
    # the reason (302); the point here is that everyone else is refused before that (403).
    "scoring:insights-apply": page({"POST": ADMINS}, data={"POST": lambda w: {"key": "none"}}),
    # --- Predictive model: its quality figures read by everyone; retrain = add_predictivemodel
    "scoring:predictive-models": page({"GET": EVERYONE}),
    "scoring:predictive-retrain": page({"POST": ADMINS}, data={"POST": lambda w: {}}),
    # --- Definitions' audit history: everyone ----------------------------------------------
    "audit:index": page({"GET": EVERYONE}),
    "audit:history": page({"GET": EVERYONE}, kwargs=lambda w: {"kind": "icp"}),
    # --- Dashboards and drill-downs: everyone ------------------------------------------------
    "metrics:overview": page({"GET": EVERYONE}),
    "metrics:funnel": page({"GET": EVERYONE}),
    "metrics:handoffs": page({"GET": EVERYONE}),
    "metrics:pipeline": page({"GET": EVERYONE}),
    "metrics:content": page({"GET": EVERYONE}),
    "metrics:trends": page({"GET": EVERYONE}),
    "metrics:drill": page({"GET": EVERYONE}, kwargs=lambda w: {"kind": "acceptance"}),
    # --- Content requests: sales files them from a handoff; marketing lists and closes them --
    "metrics:content_request_file": page(
        {"POST": WORKERS},
        kwargs=lambda w: {"handoff_pk": w.handoff.pk},
        data={"POST": lambda w: {"title": "Matrix case study"}},
    ),
    "metrics:content_requests": page({"GET": IMPORTERS}),
    "metrics:content_request_update": page(
        {"POST": IMPORTERS},
        kwargs=by_pk("content_request"),
        data={"POST": lambda w: {"status": "in_progress"}},
    ),
    # --- Target accounts: everyone reads the list in force; RevOps admins edit and publish ----
    "target_accounts:list": page({"GET": EVERYONE}),
    "target_accounts:edit": page(
        {"GET": ADMINS, "POST": ADMINS}, data={"POST": lambda w: {"action": "note", "note": "m"}}
    ),
    # --- Shared goals: one scorecard for everyone; RevOps admins set the goals ---------------
    "metrics:scorecard": page({"GET": EVERYONE}),
    "metrics:planning": page({"GET": EVERYONE}),
    "metrics:goals_edit": page(
        {"GET": ADMINS, "POST": ADMINS},
        data={
            "POST": lambda w: {
                "goals-TOTAL_FORMS": "1",
                "goals-INITIAL_FORMS": "0",
                "goals-0-metric": "mqls",
                "goals-0-scope": "all",
                "goals-0-target": "400",
                "save": "1",
            }
        },
    ),
    # --- Pipeline review: everyone reads; the Viewer changes nothing -------------------------
    "meeting:current": page({"GET": EVERYONE}, ok=frozenset({302})),
    "meeting:history": page({"GET": EVERYONE}),
    "meeting:detail": page({"GET": EVERYONE}, kwargs=held_on),
    "meeting:freeze": page({"POST": PIPELINE}, kwargs=held_on, data={"POST": lambda w: {}}),
    "meeting:add_action": page(
        {"POST": PIPELINE},
        kwargs=held_on,
        data={
            "POST": lambda w: {
                "text": "Call back",
                "owner": w.users[SALES_REP].pk,
                "due_on": w.meeting.held_on + timedelta(days=7),
            }
        },
    ),
    "meeting:action_done": page(
        {"POST": PIPELINE}, kwargs=by_pk("action_item"), data={"POST": lambda w: {}}
    ),
    # The monthly review: everyone reads; opening (a GET that creates it) and freezing are for
    # those who run meetings; a Viewer is shown the latest review (here: the world's).
    "meeting:monthly": page({"GET": EVERYONE}, ok=frozenset({302})),
    "meeting:monthly_detail": page({"GET": EVERYONE}, kwargs=lambda w: {"month": "2026-03"}),
    "meeting:monthly_freeze": page(
        {"POST": PIPELINE}, kwargs=lambda w: {"month": "2026-03"}, data={"POST": lambda w: {}}
    ),
    # --- Admin site views (model pages: by rule, below) --------------------------------------
    "admin:index": page({"GET": IMPORTERS | ADMINS}),
    "admin:password_change": page({"GET": IMPORTERS | ADMINS}),
    "admin:password_change_done": page({"GET": IMPORTERS | ADMINS}),
    "admin:app_list": page({"GET": IMPORTERS | ADMINS}, kwargs=lambda w: {"app_label": "leads"}),
    # Autocomplete answers the admin's own widgets; without a field using it, every call is
    # refused (403) for every role, which is the point: no data through it.
    "admin:autocomplete": page({"GET": NOBODY}),
    "admin:view_on_site": page(
        {"GET": IMPORTERS | ADMINS},
        kwargs=lambda w: {"content_type_id": w.meeting_type.pk, "object_id": w.meeting.pk},
        # No model here has a page on the site (get_absolute_url): 404 once let in.
        ok=frozenset({404}),
    ),
    "admin:auth_user_password_change": page(
        {"GET": ADMINS}, kwargs=lambda w: {"id": w.users[VIEWER].pk}
    ),
    # --- API ---------------------------------------------------------------------------------
    "api:api-root": api({"GET": EVERYONE}),
    **fact_api(
        "lead",
        "lead",
        lambda w: {"email": "api.new@example.com", "first_name": "Api"},
        lambda w: {"first_name": "Renamed"},
    ),
    **fact_api(
        "account",
        "account",
        lambda w: {"name": "Api Account"},
        lambda w: {"employees": 250},
    ),
    **fact_api(
        "source",
        "source",
        lambda w: {"name": "Api source", "channel_group": "events"},
        lambda w: {"name": "Renamed source"},
    ),
    **fact_api(
        "campaign",
        "campaign",
        lambda w: {"name": "Api campaign", "source": w.source.pk},
        lambda w: {"name": "Renamed campaign"},
    ),
    **fact_api(
        "opportunity",
        "opportunity",
        lambda w: {"name": "Api deal", "lead": w.lead.pk, "amount": "100", "status": "open"},
        lambda w: {"amount": "200"},
    ),
    # Sales reps and teams: read like the facts (view_salesrep), written by the RevOps admin.
    "api:sales-rep-list": api(
        {"GET": PIPELINE, "POST": ADMINS},
        data={"POST": lambda w: {"user": w.users[MARKETING].pk, "tiers": ["A"]}},
    ),
    "api:sales-rep-detail": api(
        {"GET": PIPELINE, "PUT": ADMINS, "PATCH": ADMINS},
        kwargs=lambda w: {"pk": w.users[SALES_REP].sales_rep.pk},
        data={
            "PUT": lambda w: {"user": w.users[SALES_REP].pk, "capacity": 30},
            "PATCH": lambda w: {"capacity": 30},
        },
    ),
    "api:team-list": api(
        {"GET": PIPELINE, "POST": ADMINS},
        data={"POST": lambda w: {"manager": w.users[REVOPS_ADMIN].pk, "members": [w.other_rep.pk]}},
    ),
    "api:team-detail": api(
        {"GET": PIPELINE, "PUT": ADMINS},
        kwargs=lambda w: {"pk": w.users[SALES_MANAGER].pk},
        data={"PUT": lambda w: {"members": [w.users[SALES_REP].pk]}},
    ),
    "api:event-list": api(
        {"GET": PIPELINE, "POST": ADMINS},
        data={
            "POST": lambda w: [
                {
                    "lead": w.lead.pk,
                    "kind": "page_view",
                    "occurred_at": "2026-03-02T15:00:00Z",
                    "source_system": "matrix",
                    "external_id": "matrix-1",
                }
            ]
        },
    ),
    "api:event-detail": api({"GET": PIPELINE}, kwargs=by_pk("event")),
    "api:handoff-list": api({"GET": PIPELINE}),
    "api:handoff-detail": api({"GET": PIPELINE}, kwargs=by_pk("handoff")),
    "api:handoff-respond": api(
        {"POST": WORKERS},
        kwargs=by_pk("handoff"),
        data={"POST": lambda w: {"channel": "email", "note": "hi"}},
    ),
    "api:handoff-accept": api(
        {"POST": WORKERS}, kwargs=by_pk("handoff"), data={"POST": lambda w: {}}
    ),
    "api:handoff-reject": api(
        {"POST": WORKERS},
        kwargs=by_pk("handoff"),
        data={"POST": lambda w: {"reason": w.reason.key, "note": "no"}},
    ),
    "api:handoff-reassign": api(
        {"POST": MANAGERS},
        kwargs=by_pk("handoff"),
        data={"POST": lambda w: {"to_user": w.other_rep.pk}},
    ),
    **definition_api("icp-version", "icp_draft"),
    **definition_api("lifecycle-version", "lifecycle_draft"),
    **definition_api("sla-version", "sla_draft"),
    **definition_api("scoring-model", "scoring_draft"),
    # One's own API tokens (credentials, not the app's data): every signed-in user lists and
    # creates theirs. Revoking names a token by id: the world's is the Viewer's, so the Viewer
    # revokes it (204) and everyone else is told it does not exist (404, never someone else's).
    "api:api-token-list": api({"GET": EVERYONE, "POST": EVERYONE}),
    "api:api-token-detail": api(
        {"DELETE": EVERYONE}, kwargs=by_pk("api_token"), ok=frozenset({204, 404})
    ),
    "api:kpis": api({"GET": EVERYONE}),
    "api:kpi": api({"GET": EVERYONE}, kwargs=lambda w: {"name": "lead_acceptance"}),
    "api:schema": api({"GET": EVERYONE}),
    # The docs page sends an anonymous browser to log in (a page for people).
    "api:docs": page({"GET": EVERYONE}),
    # Any other path under /api/v1/: the API's 404 once authenticated.
    API_NOT_FOUND: api({"GET": EVERYONE}, ok=frozenset({404})),
}


# --- Walking the URL configuration ------------------------------------------------------------


def url_pattern_keys() -> set[str]:
    """Every pattern of the URL configuration, as ``namespace:name`` (unnamed ones by their
    route), recursively through every include."""
    keys: set[str] = set()

    def walk(resolver, namespace: str) -> None:
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern, inner)
            elif isinstance(pattern, URLPattern):
                name = pattern.name or f"<unnamed {pattern.pattern}>"
                keys.add(f"{namespace}{name}")

    walk(get_resolver(), "")
    return keys


ADMIN_MODEL_VIEWS = ("changelist", "add", "change", "delete", "history")


def admin_model_keys() -> dict[str, tuple[type, str]]:
    return {
        f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}": (model, view)
        for model in admin.site._registry
        for view in ADMIN_MODEL_VIEWS
    }


# Unnamed admin patterns: the per-model "<id>/" redirect to "<id>/change/" and the site's
# catch-all; both lead to a classified view, so they need no row of their own.
ADMIN_REDIRECTS = {"admin:<unnamed <path:object_id>/>", "admin:<unnamed (?P<url>.*)$>"}


def test_every_url_pattern_is_classified():
    """Fails naming each URL pattern nobody decided the access of."""
    classified = set(EXPECTED) | PUBLIC_NAMES | set(admin_model_keys()) | ADMIN_REDIRECTS
    unclassified = sorted(url_pattern_keys() - classified)
    assert not unclassified, (
        "URL patterns missing from tests/revops/test_access_matrix.py EXPECTED (decide who may "
        f"use them, per README 'Roles and permissions'): {unclassified}"
    )
    stale = sorted(set(EXPECTED) - url_pattern_keys())
    assert not stale, f"EXPECTED names patterns that no longer exist: {stale}"


def test_api_methods_in_the_table_are_the_methods_the_views_accept():
    """A DRF view that starts accepting a method (say DELETE) must be classified for it."""
    mismatches = []

    def walk(resolver, namespace):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern, inner)
                continue
            key = f"{namespace}{pattern.name}"
            callback = pattern.callback
            view_class = getattr(callback, "cls", None)
            if key not in EXPECTED or view_class is None or key == "api:api-root":
                continue
            if getattr(callback, "actions", None):
                accepted = {method.upper() for method in callback.actions}
            else:
                accepted = {
                    method.upper()
                    for method in view_class.http_method_names
                    if hasattr(view_class, method) and method not in ("options", "head")
                }
            accepted.discard("HEAD")
            accepted.discard("OPTIONS")
            if key != API_NOT_FOUND and accepted != set(EXPECTED[key].methods):
                mismatches.append((key, sorted(accepted), sorted(EXPECTED[key].methods)))

    walk(get_resolver(), "")
    assert not mismatches


# --- The world --------------------------------------------------------------------------------


def build_world():
    from django.contrib.contenttypes.models import ContentType

    from leads.imports import services as import_services
    from leads.models import (
        IcpVersion,
        LifecycleVersion,
        Notification,
        RejectionReason,
        SavedMapping,
        SlaVersion,
    )
    from leads.selectors import version_in_force
    from leads.services import definition_create_draft
    from metrics.models import ActionItem, ContentRequest, Meeting, MonthlyReview
    from revops.api_tokens.services import api_token_create
    from scoring.backtest.services import backtest_start
    from scoring.models import RescoreJob, ScoringModel
    from tests.factories import (
        AccountFactory,
        CampaignFactory,
        EventFactory,
        LeadFactory,
        SalesRepFactory,
        UserFactory,
    )
    from tests.metrics.factories import OpportunityFactory

    users = {role: UserFactory(username=f"matrix.{role.lower().replace(' ', '-')}", role=role)
             for role in ROLES}  # fmt: skip
    manager = users[SALES_MANAGER]
    SalesRepFactory(user=users[SALES_REP], manager=manager)
    other_rep = UserFactory(username="matrix.other-rep", role=SALES_REP)
    SalesRepFactory(user=other_rep, manager=manager)
    lead = LeadFactory(account=AccountFactory(), owner=users[SALES_REP])
    handoff = lead.handoffs.create(stage="mql", assignee=users[SALES_REP])
    Notification.objects.create(recipient=users[SALES_REP], handoff=handoff, kind="assigned")
    admin_user = users[REVOPS_ADMIN]
    meeting = Meeting.objects.create(held_on=timezone.localdate(), created_by=manager)
    action_item = ActionItem.objects.create(
        meeting=meeting,
        text="Follow up",
        owner=users[SALES_REP],
        due_on=meeting.held_on + timedelta(days=7),
    )
    MonthlyReview.objects.create(month=date(2026, 3, 1), created_by=manager)
    content_request = ContentRequest.objects.create(
        handoff=handoff, requested_by=users[SALES_REP], title="Matrix request", stage="mql"
    )
    import_job = import_services.import_job_create(
        kind="leads",
        upload=SimpleUploadedFile("leads.csv", b"email\nmatrix@example.com\n", "text/csv"),
        user=users[MARKETING],
    )
    saved_mapping = SavedMapping.objects.create(
        name="Matrix", kind="leads", mapping=import_job.mapping, created_by=users[MARKETING]
    )
    api_token = api_token_create(user=users[VIEWER], name="matrix").token
    drafts = {
        f"{name}_draft": definition_create_draft(
            model=model, actor=admin_user, copy_from=version_in_force(model)
        )
        for name, model in (
            ("icp", IcpVersion),
            ("lifecycle", LifecycleVersion),
            ("sla", SlaVersion),
            ("scoring", ScoringModel),
        )
    }
    return SimpleNamespace(
        users=users,
        backtest=backtest_start(actor=admin_user, draft_icp=drafts["icp_draft"]),
        **drafts,
        other_rep=other_rep,
        lead=lead,
        handoff=handoff,
        reason=RejectionReason.objects.first(),
        meeting=meeting,
        meeting_type=ContentType.objects.get_for_model(Meeting),
        action_item=action_item,
        content_request=content_request,
        import_job=import_job,
        saved_mapping=saved_mapping,
        api_token=api_token,
        rescore_job=RescoreJob.objects.create(reason="publish", note="matrix"),
        account=lead.account,
        source=lead.source,
        campaign=CampaignFactory(source=lead.source),
        opportunity=OpportunityFactory(lead=lead),
        event=EventFactory(lead=lead),
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        built = build_world()
        built.clients = {ANONYMOUS: Client()}
        for role, user in built.users.items():
            built.clients[role] = Client()
            built.clients[role].force_login(user)
        yield built
        transaction.set_rollback(True)


# --- Cases ------------------------------------------------------------------------------------


def app_cases():
    for key, access in sorted(EXPECTED.items()):
        for method in access.methods:
            for role in (*ROLES, ANONYMOUS):
                yield pytest.param(key, method, role, id=f"{key}-{method}-{role}")


def request_for(world, key: str, access: Access, method: str, client: Client):
    if key.startswith("api:<unnamed"):
        url = "/api/v1/no-such-endpoint/"
    else:
        url = reverse(key, kwargs=access.kwargs(world) if access.kwargs else None)
    if access.query:
        url = f"{url}?{access.query}"
    payload = access.data.get(method, lambda w: None)(world)
    if method == "GET":
        return client.get(url)
    if access.multipart:
        return client.post(url, payload)
    if access.kind == API:
        return client.generic(
            method, url, "" if payload is None else _json(payload), "application/json"
        )
    return client.generic(
        method,
        url,
        _form(payload or {}),
        "application/x-www-form-urlencoded",
    )


def _json(payload) -> str:
    import json

    return json.dumps(payload, default=str)


def _form(payload: dict) -> str:
    from urllib.parse import urlencode

    return urlencode({key: str(value) for key, value in payload.items()})


def assert_outcome(response, *, kind: str, allowed: bool, anonymous: bool, ok=None, where=""):
    status = response.status_code
    if anonymous:
        if kind == API:
            assert status == 401, f"{where}: anonymous got {status}, expected 401"
        else:
            assert status == 302, f"{where}: anonymous got {status}, expected the login page"
            location = response["Location"]
            assert "/login/" in location and "next=" in location, f"{where}: → {location}"
        return
    if allowed:
        if ok is not None:
            assert status in ok, f"{where}: allowed, got {status}, expected one of {sorted(ok)}"
        else:
            redirect_ok = status in (302, 303) and "/login/" not in response.get("Location", "")
            assert 200 <= status < 300 or redirect_ok, f"{where}: allowed, got {status}"
    else:
        assert status == 403, f"{where}: forbidden, got {status}, expected 403"


@pytest.mark.django_db
@pytest.mark.parametrize("key, method, role", list(app_cases()))
def test_app_url(world, key, method, role):
    access = EXPECTED[key]
    response = request_for(world, key, access, method, world.clients[role])
    assert_outcome(
        response,
        kind=access.kind,
        allowed=role in access.methods[method],
        anonymous=role == ANONYMOUS,
        ok=access.ok,
        where=f"{role} {method} {key}",
    )


# --- Admin model pages, by rule -----------------------------------------------------------------


# The admin's forms are Django's: a POST here checks the permission gate, not the form. Allowed
# deletes confirm ({"post": "yes"}: the row goes, 302; a protected row: the page says why, 200);
# allowed add/change POSTs send an empty form, which the admin answers with the form and its
# errors (200; the admin never answers 400), or saves when nothing is required (302). Forbidden
# POSTs are 403 like the GETs, and the row is still there.
ADMIN_POSTED_VIEWS = ("add", "change", "delete")


def admin_cases():
    for key, (_model, view) in sorted(admin_model_keys().items()):
        methods = ("GET", "POST") if view in ADMIN_POSTED_VIEWS else ("GET",)
        for method in methods:
            for role in (*ROLES, ANONYMOUS):
                yield pytest.param(key, method, role, id=f"{key}-{method}-{role}")


def role_permissions(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {
        f"{app_label}.{codename}"
        for app_label, codename in group.permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def admitted(permissions: set[str]) -> bool:
    return any(
        f"{model._meta.app_label}.{action}_{model._meta.model_name}" in permissions
        for model in admin.site._registry
        for action in ("add", "change", "delete")
    )


def offered(model_admin, view: str, method: str, obj) -> bool:
    """What the admin offers at all (to a superuser): append-only history has no add page, a
    published definition no delete…"""
    from django.contrib.auth import get_user_model

    request = RequestFactory().get("/")
    request.user = get_user_model()(is_superuser=True, is_active=True)
    if view == "add":
        try:
            return model_admin.has_add_permission(request)
        except TypeError:
            return model_admin.has_add_permission(request, None)
    if view == "delete":
        if method == "POST" and obj is not None:
            # Deleting cascades: append-only history under the row stops it, for everyone.
            perms_needed = model_admin.get_deleted_objects([obj], request)[2]
            if perms_needed:
                return False
        return model_admin.has_delete_permission(request, obj)
    if view == "change" and method == "POST":
        return model_admin.has_change_permission(request, obj)
    return model_admin.has_view_or_change_permission(request, obj)


def role_may(permissions: set[str], model, view: str, method: str) -> bool:
    label = f"{model._meta.app_label}.{{}}_{model._meta.model_name}"
    if view == "add":
        return label.format("add") in permissions
    if view == "delete":
        return label.format("delete") in permissions
    if view == "change" and method == "POST":
        return label.format("change") in permissions
    return bool({label.format("view"), label.format("change")} & permissions)


@pytest.mark.django_db
@pytest.mark.parametrize("key, method, role", list(admin_cases()))
def test_admin_model_page(world, key, method, role):
    model, view = admin_model_keys()[key]
    obj = model._default_manager.order_by("pk").first()
    if view == "changelist" or view == "add":
        url = reverse(key)
    elif obj is None:
        # No row of this model in the world: the permission check comes first all the same
        # (403), and an allowed user is redirected to the admin's index ("does not exist").
        url = reverse(key, args=[0])
    else:
        url = reverse(key, args=[obj.pk])
    client = world.clients[role]
    if method == "GET":
        response = client.get(url)
    else:
        response = client.post(url, {"post": "yes"} if view == "delete" else {})
    where = f"{role} {method} {key}"
    if role == ANONYMOUS:
        assert response.status_code == 302 and "/admin/login/" in response["Location"], where
        return
    permissions = role_permissions(role)
    allowed = (
        admitted(permissions)
        and offered(admin.site._registry[model], view, method, obj)
        and role_may(permissions, model, view, method)
    )
    missing_object = obj is None and view not in ("changelist", "add")
    if missing_object and view == "history" and admitted(permissions):
        # Django's history page looks the row up before the permission: "does not exist".
        allowed = True
    if missing_object:
        ok = frozenset({302})
    elif method == "POST":
        ok = frozenset({200, 302})
    else:
        ok = frozenset({200})
    assert_outcome(response, kind=PAGE, allowed=allowed, anonymous=False, ok=ok, where=where)
    if method == "POST" and not allowed and obj is not None:
        key_field = model._meta.pk.attname
        still_there = model._default_manager.filter(**{key_field: getattr(obj, key_field)})
        assert still_there.exists(), f"{where} deleted the row"


def test_the_matrix_reaches_every_role_both_ways():
    """The table is not vacuous: each role is allowed somewhere and refused somewhere."""
    for role in ROLES:
        verdicts = {role in roles for a in EXPECTED.values() for roles in a.methods.values()}
        assert verdicts == {True, False}, role
