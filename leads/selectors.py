"""Reads of definitions and facts. Definitions are always read through here, so scoring, the
SLA clock and the KPIs agree on which version was in force at a given instant."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    Max,
    Prefetch,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from leads.calendars import CALENDAR_PREFETCH, calendar_spec
from leads.choices import ActivityAction, ActorType, DefinitionStatus, HandoffOutcome, TouchChannel
from leads.lifecycle import Lifecycle, Stage
from leads.models import (
    DefinitionVersion,
    EngagementEvent,
    Handoff,
    IcpVersion,
    Lead,
    LeadActivity,
    LifecycleStage,
    LifecycleVersion,
    Notification,
    Opportunity,
    SalesRep,
    SlaPolicy,
    SlaVersion,
    StageTransition,
)
from leads.sla_clock import countdown

V = TypeVar("V", bound=DefinitionVersion)


def version_in_force(model: type[V], *, at: datetime | None = None) -> V | None:
    """The published version with the latest ``effective_from`` at or before ``at`` (now)."""
    at = at or timezone.now()
    return (
        model.objects.filter(status=DefinitionStatus.PUBLISHED, effective_from__lte=at)
        .order_by("-effective_from")
        .first()
    )


def icp_in_force(*, at: datetime | None = None) -> IcpVersion | None:
    return version_in_force(IcpVersion, at=at)


def lifecycle_in_force(*, at: datetime | None = None) -> LifecycleVersion | None:
    return version_in_force(LifecycleVersion, at=at)


def sla_in_force(*, at: datetime | None = None) -> SlaVersion | None:
    return version_in_force(SlaVersion, at=at)


def stages_in_force(*, at: datetime | None = None) -> list[LifecycleStage]:
    version = lifecycle_in_force(at=at)
    if version is None:
        return []
    return list(version.stages.order_by("order"))


def lifecycle_at(at: datetime | None = None) -> Lifecycle:
    """The lifecycle in force at ``at`` (now) as one immutable value: every rule that follows
    from the stages (funnel, score moves, event triggers, rejection, deals) is answered by it."""
    version = lifecycle_in_force(at=at)
    if version is None:
        return Lifecycle(stages=())
    return lifecycle_of(version)


def lifecycle_of(version: LifecycleVersion) -> Lifecycle:
    return Lifecycle(
        stages=tuple(
            Stage(
                key=s.key,
                name=s.name,
                label=s.buyer_label,
                kind=s.kind,
                team=s.team,
                order=s.order,
                trigger_type=s.trigger_type,
                trigger_score=s.trigger_score,
                trigger_event_kind=s.trigger_event_kind,
                opens_handoff=s.opens_handoff,
                on_reject_key=s.on_reject_key,
                requalify_cooldown_days=s.requalify_cooldown_days,
            )
            for s in version.stages.order_by("order")
        ),
        version_id=version.pk,
        version_number=version.number,
    )


def stage_names_in_force(*, at: datetime | None = None) -> dict[str, str]:
    return {stage.key: stage.name for stage in stages_in_force(at=at)}


def latest_published_effective_from(model: type[DefinitionVersion]) -> datetime | None:
    return model.objects.filter(status=DefinitionStatus.PUBLISHED).aggregate(
        latest=Max("effective_from")
    )["latest"]


def sla_policy_for(*, stage_key: str, tier: str, at: datetime | None = None) -> SlaPolicy | None:
    """The policy for a stage and fit tier; a tier-specific policy beats the any-tier one."""
    version = sla_in_force(at=at)
    if version is None:
        return None
    candidates = version.policies.filter(stage_key=stage_key, tier__in=[tier, ""]).select_related(
        "calendar"
    )
    return min(candidates, key=lambda policy: policy.tier == "", default=None)


def definitions_overview(models: list[type[DefinitionVersion]]) -> list[dict]:
    """For the home page: each definition kind, its version in force and how many drafts wait."""
    rows = []
    for model in models:
        counts = model.objects.aggregate(
            drafts=Count("pk", filter=Q(status=DefinitionStatus.DRAFT))
        )
        meta = model._meta
        rows.append(
            {
                "label": meta.verbose_name,
                "in_force": version_in_force(model),
                "drafts": counts["drafts"],
                "admin_url": reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
            }
        )
    return rows


@dataclass(frozen=True)
class HeadlineCount:
    label: str
    value: int
    estimated: bool = False  # the planner's estimate of the table's rows, not a count


def _row_estimates(*models) -> dict[type, float | None]:
    """The rows ANALYZE last estimated for each model's table (a partitioned one: the sum of
    its analyzed partitions), or None where it was never analyzed; PostgreSQL only."""
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.name,
                   CASE WHEN bool_and(c.reltuples < 0) THEN NULL
                        ELSE sum(greatest(c.reltuples, 0)) END
            FROM unnest(%s::text[]) AS t(name)
            JOIN pg_class p ON p.oid = to_regclass(t.name)
            LEFT JOIN pg_inherits i ON i.inhparent = p.oid
            JOIN pg_class c ON c.oid = coalesce(i.inhrelid, p.oid)
            GROUP BY t.name
            """,
            [tables],
        )
        found = dict(cursor.fetchall())
    return {model: found.get(model._meta.db_table) for model in models}


def _table_count(model, label: str, estimate: float | None) -> HeadlineCount:
    # Exact while the table is small; past HOME_EXACT_COUNT_BELOW rows, the estimate (exact
    # counts of a million leads and ten million events took 2-3.5 s a home page).
    if estimate is not None and estimate >= settings.HOME_EXACT_COUNT_BELOW:
        return HeadlineCount(label, round(estimate), estimated=True)
    return HeadlineCount(label, model.objects.count())


def pipeline_counts() -> tuple[HeadlineCount, ...]:
    """Headline counts for the home page: the leads and the engagement events (exact, or
    estimated once a table is large), and the handoffs and deals still open (exact)."""
    estimates = (
        _row_estimates(Lead, EngagementEvent)
        if connection.vendor == "postgresql"
        else dict.fromkeys((Lead, EngagementEvent))
    )
    return (
        _table_count(Lead, "leads", estimates[Lead]),
        _table_count(EngagementEvent, "engagement events", estimates[EngagementEvent]),
        HeadlineCount("handoffs awaiting sales", Handoff.objects.filter(outcome="pending").count()),
        HeadlineCount("open opportunities", Opportunity.objects.filter(status="open").count()),
    )


def lead_list(
    *, stage: str = "", tier: str = "", source_id: str = "", query: str = "", target: str = ""
):
    """Leads for the list page, newest first, filtered; the caller paginates. ``target``:
    "yes" / "no" for leads whose account is / is not on the target-account list in force."""
    leads = Lead.objects.select_related("account", "source", "owner", "score_state").order_by(
        "-created_at", "-pk"
    )
    if stage:
        leads = leads.filter(stage=stage)
    if tier:
        leads = leads.filter(tier=tier)
    if source_id.isdigit():
        leads = leads.filter(source_id=int(source_id))
    if target in ("yes", "no"):
        from leads.target_accounts.selectors import on_list_q  # it reads version_in_force here

        on_list = on_list_q("account_id", at=timezone.now())
        leads = leads.filter(on_list) if target == "yes" else leads.exclude(on_list)
    if query:
        leads = leads.filter(
            Q(email__icontains=query)
            | Q(last_name__icontains=query)
            | Q(first_name__icontains=query)
            | Q(account__name__icontains=query)
        )
    return leads


def lead_detail(lead_id: int):
    return (
        Lead.objects.select_related("account", "source", "campaign", "owner", "score_state")
        .prefetch_related("handoffs__assignee", "handoffs__reject_reason")
        .get(pk=lead_id)
    )


def lead_recent_events(lead_id: int, *, limit: int = 50):
    return list(
        EngagementEvent.objects.filter(lead_id=lead_id)
        .select_related("content_asset")
        .order_by("-occurred_at")[:limit]
    )


# --- The handoff workflow ------------------------------------------------------------------


class QueueScope:
    MINE = "mine"
    TEAM = "team"
    UNASSIGNED = "unassigned"


def team_reps(manager):
    """The active reps a manager leads (every active rep, for a superuser): whose queue the team
    view shows, whose load it sums and to whom the manager may reassign."""
    reps = SalesRep.objects.filter(is_active=True, user__is_active=True)
    if not manager.is_superuser:
        reps = reps.filter(manager=manager)
    return reps


def week_start(now: datetime) -> datetime:
    """Monday 00:00 of ``now``'s week, in the display time zone (the team's week)."""
    local = now.astimezone(ZoneInfo(settings.DISPLAY_TIME_ZONE))
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime.combine(monday, datetime.min.time(), tzinfo=local.tzinfo)


@dataclass(frozen=True)
class RepLoad:
    """One rep's load as the manager's team view shows it."""

    user_id: int
    name: str
    capacity: int
    open: int
    overdue: int
    accepted_this_week: int
    rejected_this_week: int

    @property
    def label(self) -> str:
        return f"{self.name} — {self.open} open / {self.capacity}"

    @property
    def at_capacity(self) -> bool:
        return self.open >= self.capacity


def overdue_q(now: datetime, prefix: str = "") -> Q:
    """Pending and past a due time: unanswered past the response time, or undecided past the
    acceptance time (``prefix`` reaches the handoff through a relation)."""
    return Q(**{f"{prefix}outcome": HandoffOutcome.PENDING}) & (
        Q(**{f"{prefix}first_response_at__isnull": True, f"{prefix}response_due_at__lt": now})
        | Q(**{f"{prefix}accept_due_at__lt": now})
    )


def team_loads(manager, *, now: datetime | None = None) -> list[RepLoad]:
    """Each of the manager's reps with their open and overdue handoffs, what they accepted and
    rejected since Monday, and their capacity: one aggregate query (GROUP BY rep)."""
    now = now or timezone.now()
    since = week_start(now)
    handoff = "user__handoffs"
    reps = (
        team_reps(manager)
        .annotate(
            open_count=Count(handoff, filter=Q(**{f"{handoff}__outcome": HandoffOutcome.PENDING})),
            overdue_count=Count(handoff, filter=overdue_q(now, prefix=f"{handoff}__")),
            accepted_count=Count(handoff, filter=Q(**{f"{handoff}__accepted_at__gte": since})),
            rejected_count=Count(handoff, filter=Q(**{f"{handoff}__rejected_at__gte": since})),
        )
        .values(
            "user_id",
            "user__first_name",
            "user__last_name",
            "user__username",
            "capacity",
            "open_count",
            "overdue_count",
            "accepted_count",
            "rejected_count",
        )
        .order_by("user__first_name", "user__username")
    )
    return [
        RepLoad(
            user_id=row["user_id"],
            name=f"{row['user__first_name']} {row['user__last_name']}".strip()
            or row["user__username"],
            capacity=row["capacity"],
            open=row["open_count"],
            overdue=row["overdue_count"],
            accepted_this_week=row["accepted_count"],
            rejected_this_week=row["rejected_count"],
        )
        for row in reps
    ]


def handoff_queue(*, user, scope: str = QueueScope.MINE, rep_id: int | None = None):
    """Pending handoffs in urgency order: the earliest due time first (the response clock while
    unanswered, then the acceptance clock), overdue ones therefore on top. The caller paginates.
    """
    handoffs = Handoff.objects.filter(outcome=HandoffOutcome.PENDING)
    if scope == QueueScope.UNASSIGNED:
        handoffs = handoffs.filter(assignee__isnull=True)
    elif scope == QueueScope.TEAM:
        members = team_reps(user)
        if rep_id is not None:
            members = members.filter(user_id=rep_id)
        handoffs = handoffs.filter(assignee_id__in=members.values("user_id"))
    else:
        handoffs = handoffs.filter(assignee=user)
    next_due = Case(
        When(first_response_at__isnull=True, then=F("response_due_at")),
        default=F("accept_due_at"),
    )
    return (
        handoffs.select_related(
            "lead__account", "lead__source", "lead__campaign", "lead__score_state", "assignee"
        )
        .annotate(next_due=next_due)
        .order_by(F("next_due").asc(nulls_last=True), "assigned_at", "pk")
    )


def handoff_clocks(handoffs, *, now: datetime | None = None) -> dict[int, dict]:
    """Live countdowns of each pending handoff's response and acceptance clocks, in business
    time of its policy's calendar: one query for all the calendars involved."""
    now = now or timezone.now()
    policy_ids = {h.sla_policy_id for h in handoffs if h.sla_policy_id}
    specs = {
        policy.pk: calendar_spec(policy.calendar)
        for policy in SlaPolicy.objects.filter(pk__in=policy_ids)
        .select_related("calendar")
        .prefetch_related(*(f"calendar__{name}" for name in CALENDAR_PREFETCH))
    }
    clocks = {}
    for handoff in handoffs:
        spec = specs.get(handoff.sla_policy_id)
        entry = {"response": None, "accept": None}
        if spec is not None and handoff.outcome == HandoffOutcome.PENDING:
            if handoff.first_response_at is None and handoff.response_due_at:
                entry["response"] = countdown(spec, handoff.response_due_at, now)
            if handoff.accept_due_at:
                entry["accept"] = countdown(spec, handoff.accept_due_at, now)
        clocks[handoff.pk] = entry
    return clocks


def handoff_detail(pk: int) -> Handoff:
    return (
        Handoff.objects.select_related(
            "lead__account",
            "lead__source",
            "lead__campaign",
            "lead__owner",
            "lead__score_state",
            "assignee",
            "sla_policy__calendar",
            "reject_reason",
        )
        .prefetch_related(
            Prefetch(
                "activities",
                queryset=LeadActivity.objects.select_related("actor").prefetch_related(
                    "objections", "content_assets"
                ),
            )
        )
        .get(pk=pk)
    )


HISTORY_FIELDS = (
    "at",
    "entry",
    "entry_id",
    "action_key",
    "channel_key",
    "before",
    "after",
    "remark",
    "actor_kind",
    "actor_name",
)


def lead_history(lead_id: int):
    """One timeline of everything that happened to a lead: stage changes (by scoring, imports or
    a person) and every handoff action, newest first, as one SQL union the caller paginates.
    Each row has HISTORY_FIELDS: ``entry`` is "stage" (before → after stage keys, ``remark``
    the reason) or "activity" (``action_key``, ``channel_key``, ``remark`` the note)."""
    # Only annotations, named apart from the models' fields, so both sides of the union select
    # the same columns in the same order.
    stage_changes = (
        StageTransition.objects.filter(lead_id=lead_id)
        .annotate(
            at=F("transitioned_at"),
            entry=Value("stage"),
            entry_id=F("pk"),
            action_key=Value(""),
            channel_key=Value(""),
            before=F("from_stage"),
            after=F("to_stage"),
            remark=Cast("reason", TextField()),
            actor_kind=F("actor_type"),
            actor_name=F("actor__username"),
        )
        .values(*HISTORY_FIELDS)
        .order_by()
    )
    activities = (
        LeadActivity.objects.filter(lead_id=lead_id)
        .annotate(
            at=F("occurred_at"),
            entry=Value("activity"),
            entry_id=F("pk"),
            action_key=Cast("action", CharField()),
            channel_key=Cast("channel", CharField()),
            before=Value(""),
            after=Value(""),
            remark=F("note"),
            actor_kind=F("actor_type"),
            actor_name=F("actor__username"),
        )
        .values(*HISTORY_FIELDS)
        .order_by()
    )
    # SQLite refuses ORDER BY inside a compound statement's parts (the models' default ordering).
    return stage_changes.union(activities, all=True).order_by("-at", "-entry_id")


def lead_history_rows(rows) -> list[dict]:
    """A page of ``lead_history`` ready to show: stage and action names, and each activity's
    objections and shared content (two queries for the page, whatever its length)."""
    rows = list(rows)
    stage_names = stage_names_in_force()
    activity_ids = [row["entry_id"] for row in rows if row["entry"] == "activity"]
    extras = LeadActivity.objects.filter(pk__in=activity_ids).prefetch_related(
        "objections", "content_assets"
    )
    by_id = {activity.pk: activity for activity in extras} if activity_ids else {}
    actions = dict(ActivityAction.choices)
    channels = dict(TouchChannel.choices)
    actor_types = dict(ActorType.choices)
    shown = []
    for row in rows:
        activity = by_id.get(row["entry_id"]) if row["entry"] == "activity" else None
        shown.append(
            {
                **row,
                "action_label": actions.get(row["action_key"], row["action_key"]),
                "channel_label": channels.get(row["channel_key"], ""),
                "before_label": stage_names.get(row["before"], row["before"]),
                "after_label": stage_names.get(row["after"], row["after"]),
                "who": row["actor_name"] or actor_types.get(row["actor_kind"], "system"),
                "objections": list(activity.objections.all()) if activity else [],
                "content_assets": list(activity.content_assets.all()) if activity else [],
            }
        )
    return shown


def lead_handoffs(lead_id: int):
    return (
        Handoff.objects.filter(lead_id=lead_id)
        .select_related("assignee", "reject_reason")
        .order_by("-assigned_at")
    )


class OutcomeStatus:
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    BREACHED = "breached"
    CHOICES = [
        (PENDING, "Pending"),
        (ACCEPTED, "Accepted"),
        (REJECTED, "Rejected"),
        (BREACHED, "SLA breached"),
    ]


def breached_q(now: datetime | None = None) -> Q:
    """Late on either clock: reported by the sweep, answered / decided after the due time, or
    still waiting past it (before the next sweep has marked it)."""
    now = now or timezone.now()
    return (
        Q(outcome=HandoffOutcome.PENDING, first_response_at__isnull=True, response_due_at__lt=now)
        | Q(outcome=HandoffOutcome.PENDING, accept_due_at__lt=now)
        | Q(response_breached_at__isnull=False)
        | Q(accept_breached_at__isnull=False)
        | Q(first_response_at__gt=F("response_due_at"))
        | Q(accepted_at__gt=F("accept_due_at"))
        | Q(rejected_at__gt=F("accept_due_at"))
    )


def handoff_outcomes(
    *,
    source_id: int | None = None,
    campaign_id: int | None = None,
    status: str = "",
    assigned_from: datetime | None = None,
    assigned_until: datetime | None = None,
):
    """Handed-off leads and what sales did with them, newest first, for marketing's view."""
    handoffs = Handoff.objects.select_related(
        "lead__source", "lead__campaign", "lead__account", "assignee", "reject_reason"
    ).order_by("-assigned_at", "-pk")
    if source_id is not None:
        handoffs = handoffs.filter(lead__source_id=source_id)
    if campaign_id is not None:
        handoffs = handoffs.filter(lead__campaign_id=campaign_id)
    if status == OutcomeStatus.BREACHED:
        handoffs = handoffs.filter(breached_q())
    elif status in (OutcomeStatus.PENDING, OutcomeStatus.ACCEPTED, OutcomeStatus.REJECTED):
        handoffs = handoffs.filter(outcome=status)
    if assigned_from is not None:
        handoffs = handoffs.filter(assigned_at__gte=assigned_from)
    if assigned_until is not None:
        handoffs = handoffs.filter(assigned_at__lt=assigned_until)
    return handoffs


def handoff_outcome_counts(handoffs) -> dict[str, int]:
    """The status mix of a filtered handoff list, in one aggregate."""
    return handoffs.order_by().aggregate(
        total=Count("pk"),
        pending=Count("pk", filter=Q(outcome=HandoffOutcome.PENDING)),
        accepted=Count("pk", filter=Q(outcome=HandoffOutcome.ACCEPTED)),
        rejected=Count("pk", filter=Q(outcome=HandoffOutcome.REJECTED)),
        breached=Count("pk", filter=breached_q()),
    )


def notifications_for(user):
    return Notification.objects.filter(recipient=user).select_related("handoff__lead__account")


def unread_notification_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def reassign_candidates(manager, *, now: datetime | None = None) -> list[RepLoad]:
    """Active reps a manager may hand a lead to (their team; everyone, for a superuser), each
    with their load, so the choice shows who has room."""
    return team_loads(manager, now=now)


def lead_export_rows(leads):
    """Rows for the lead CSV export (the marketing-automation suppression flag included)."""
    return leads.values_list(
        "pk",
        "external_id",
        "email",
        "first_name",
        "last_name",
        "account__name",
        "source__name",
        "campaign__name",
        "stage",
        "tier",
        "owner__username",
        "in_marketing_nurture",
        "created_at",
    ).iterator(chunk_size=2_000)
