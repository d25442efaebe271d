"""The metrics app's part of the demo data set: shared goals for the last and the current
quarter, three past weekly meetings with their action items, and a few content requests sales
filed from handoffs (some open, one done, one declined).

Run by ``seed_demo`` after the facts are loaded (``leads.demo.hooks``). Targets are set from the
seeded data itself, so on any seed and any ``--as-of`` some goals are on track and some are not:
each target is the goal's projected value (pace, or the rate to date) times a factor chosen for
the status it should show. Periods that already have goals are left alone (definitions survive
``--reset``); past meetings are recreated on every reset.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from math import floor, log10

from django.contrib.auth import get_user_model
from django.db import transaction

from leads.choices import HandoffOutcome
from leads.models import ContentAsset, Handoff, ObjectionTag
from leads.selectors import latest_published_effective_from
from metrics import goal_selectors, goal_services, goals, services
from metrics.goals import GoalPeriod
from metrics.kpis import NO_FILTERS, Period
from metrics.meeting import display_zone, week_of
from metrics.models import ActionItem, ContentRequest, Goal, GoalSet, Meeting

DEMO_NOTE = "Demo meeting (seed_demo)."

# metric -> (factor on the projected value, thresholds as fractions of the target): a factor
# above 1 on a higher-is-better goal asks for more than the pace (amber or red), below 1 less.
CURRENT_QUARTER = {
    "mqls": 0.95,  # on track
    "sqls": 1.3,  # off track
    "opportunities": 1.05,  # at risk
    "bookings": 0.9,
    "marketing_pipeline": 1.35,  # off track
    "target_pipeline": 0.9,  # on track: pipeline from the demo's target-account list
    "acceptance_rate": 0.85,  # on track, with a floor
    "response_time": 1.25,  # lower is better: a target above the actual is on track
    "sla_compliance": 1.12,  # off track
    "feedback_loop": 0.95,
    "decision_sla": 1.04,  # at risk
}
LAST_QUARTER = {
    "mqls": 0.9,  # met
    "sqls": 1.05,  # at risk
    "bookings": 1.3,  # off track
    "acceptance_rate": 1.25,  # off track
    "response_time": 0.8,  # off track
    "feedback_loop": 0.9,
}
ACTIONS = (
    # weeks before this week's meeting, owner, text, due after (days), done at the next one
    (3, "manager.sam", "Route webinar leads from EMEA to the EMEA team", 7, True),
    (3, "rep.alex", "Tag every rejection with a reason, not just 'other'", 7, False),
    (2, "marketing.riley", "Draft a case study answering the pricing objection", 14, False),
    (2, "rep.blake", "Call back the proposals stalled for two weeks", 7, True),
    (1, "manager.sam", "Check the SLA calendar covers the holiday week", 7, False),
    (1, "marketing.quinn", "Send the ROI one-pager to every new SQL", 10, False),
)


def _nice(value: float) -> Decimal:
    """Two significant digits: 1234 → 1200, 0.4567 → 0.46."""
    if value <= 0:
        return Decimal("0")
    digits = 1 - floor(log10(value))
    return Decimal(str(round(value, digits)))


def _target(metric: str, reading: goals.Reading, period: Period, as_of: datetime, factor: float):
    spec = goals.METRICS_BY_KEY[metric]
    if reading.actual is None:
        return None
    gone = goals.elapsed_days(period.start, period.end, as_of)
    total = (period.end - period.start).total_seconds() / 86_400
    projected = goals.pace(reading.actual, accumulates=spec.accumulates, elapsed=gone, total=total)
    if not projected:
        return None
    target = projected * factor
    if spec.unit == "percent":
        return Decimal(min(99, round(target * 100)))
    return _nice(target)


def _goal_rows(period: GoalPeriod, factors: dict[str, float], as_of: datetime) -> list[Goal]:
    kpi_period = Period.from_dates(period.first_day, period.last_day, display_zone())
    rows = []
    for metric, factor in factors.items():
        reading = goal_selectors.READINGS[metric](kpi_period, NO_FILTERS)
        target = _target(metric, reading, kpi_period, as_of, factor)
        if target is None:
            continue
        goal = Goal(metric=metric, target=target)
        if metric == "acceptance_rate":
            goal.floor = max(Decimal(0), target - 10)
        rows.append(goal)
    return rows


def _publish(period: GoalPeriod, factors: dict[str, float], as_of: datetime) -> GoalSet | None:
    if GoalSet.objects.filter(period_kind=period.kind, first_day=period.first_day).exists():
        return None
    rows = _goal_rows(period, factors, as_of)
    if not rows:
        return None
    start = datetime.combine(period.first_day, time.min, tzinfo=display_zone())
    latest = latest_published_effective_from(GoalSet)
    effective_from = start if latest is None else max(start, latest + timedelta(minutes=1))
    draft = goal_services.goal_set_create_draft(
        period=period, actor=None, note="Demo goals (seed_demo), set from the demo data."
    )
    goal_services.goal_set_replace_goals(draft=draft, goals=rows)
    return goal_services.goal_set_publish(draft=draft, actor=None, effective_from=effective_from)


# What sales asks marketing for: title, objection key (or None), days before the seed's instant,
# and how marketing answered (None: still open; "in_progress"; ("done", asset type);
# ("declined", the reason)).
CONTENT_REQUESTS = (
    ("Price comparison against the competitors we meet most", "price", 2, None),
    ("Security questionnaire answers (SOC 2, GDPR)", "security", 4, "in_progress"),
    ("Integration guide for Salesforce and HubSpot", "integration", 6, None),
    ("Case study from a company of this size", None, 12, ("done", "case_study")),
    (
        "Discount calculator for multi-year deals",
        "price",
        16,
        ("declined", "Discounts are sales' call; the ROI calculator covers the value side."),
    ),
)
CONTENT_MARKETER = "marketing.riley"


def _meetings(as_of: datetime) -> int:
    users = {user.username: user for user in get_user_model().objects.filter(is_active=True)}
    this_monday = week_of(as_of.astimezone(display_zone()).date())[0]
    made: dict[int, Meeting] = {}
    for weeks_back in sorted({row[0] for row in ACTIONS}, reverse=True):
        held_on = this_monday - timedelta(weeks=weeks_back)
        meeting, created = Meeting.objects.get_or_create(
            held_on=held_on,
            defaults={"title": f"Pipeline review, week of {held_on:%-d %B %Y}", "notes": DEMO_NOTE},
        )
        if created:
            made[weeks_back] = meeting
    for weeks_back, username, text, due_in, done in ACTIONS:
        meeting, owner = made.get(weeks_back), users.get(username)
        if meeting is None or owner is None:
            continue
        agreed_at = datetime.combine(meeting.held_on, time(10), tzinfo=display_zone())
        item = services.action_item_add(
            meeting=meeting,
            text=text,
            owner=owner,
            due_on=meeting.held_on + timedelta(days=due_in),
            created_by=owner,
            now=agreed_at,
        )
        if done:
            services.action_item_complete(item=item, user=owner, now=agreed_at + timedelta(days=7))
    return len(made)


def _content_requests(as_of: datetime) -> int:
    """The requests of ``CONTENT_REQUESTS``, each filed by the rep of one of the latest handoffs
    still being worked (none when some exist). Written as seed rows, validated like the
    services' (``full_clean``): the demo users get their roles only later
    (``create_demo_admin``), so the services' role checks would refuse them here."""
    if ContentRequest.objects.exists():
        return 0
    oldest = max(row[2] for row in CONTENT_REQUESTS)
    handoffs = list(
        Handoff.objects.filter(
            outcome__in=(HandoffOutcome.PENDING, HandoffOutcome.ACCEPTED),
            assignee__isnull=False,
            assigned_at__lte=as_of - timedelta(days=oldest),
        ).order_by("-assigned_at", "-pk")[: len(CONTENT_REQUESTS)]
    )
    marketer = get_user_model().objects.filter(username=CONTENT_MARKETER).first()
    tags = {tag.key: tag for tag in ObjectionTag.objects.filter(is_active=True)}
    made = 0
    for handoff, (title, objection, days, answer) in zip(handoffs, CONTENT_REQUESTS, strict=False):
        filed_at = as_of - timedelta(days=days)
        request = ContentRequest(
            handoff=handoff,
            requested_by_id=handoff.assignee_id,
            title=title,
            stage=handoff.stage,
            objection=tags.get(objection) if objection else None,
            note="Asked by the buyer on the last call.",
            created_at=filed_at,
        )
        if answer is not None and marketer is not None:
            status, detail = (answer, "") if isinstance(answer, str) else answer
            request.status = status
            if status in ContentRequest.CLOSED_STATUSES:
                request.closed_at, request.closed_by = filed_at + timedelta(days=2), marketer
            if status == ContentRequest.Status.DONE:
                request.fulfilled_by = (
                    ContentAsset.objects.filter(asset_type=detail).order_by("pk").first()
                )
                if request.fulfilled_by is None:
                    request.status, request.closed_at, request.closed_by = "open", None, None
            if status == ContentRequest.Status.DECLINED:
                request.close_note = detail
        request.full_clean()
        request.save()
        made += 1
    return made


@transaction.atomic
def demo_goals_and_meetings(*, as_of: datetime) -> str:
    """Goals for the quarter of ``as_of`` and the one before, and the past three weeks'
    meetings; a line for the seed's summary."""
    current = goals.quarter_of(as_of.astimezone(display_zone()).date())
    published = [
        goal_set
        for goal_set in (
            _publish(current.previous(), LAST_QUARTER, as_of),
            _publish(current, CURRENT_QUARTER, as_of),
        )
        if goal_set is not None
    ]
    meetings = _meetings(as_of)
    requests = _content_requests(as_of)
    parts = [f"{g.period.label} ({g.goals.count()} goals)" for g in published]
    return (
        f"Demo goals: {', '.join(parts) or 'none added (the periods already have goals)'}; "
        f"{meetings} past weekly meetings with their action items; "
        f"{requests} content requests."
    )


@transaction.atomic
def demo_meetings_reset(*, usernames: tuple[str, ...]) -> None:
    """Remove the demo meetings, every action item a demo user owns (they protect the users
    the reset deletes) and the content requests (they protect the assets they name)."""
    ContentRequest.objects.all().delete()
    ActionItem.objects.filter(owner__username__in=usernames).delete()
    demo = Meeting.objects.filter(notes=DEMO_NOTE)
    ActionItem.objects.filter(meeting__in=demo).delete()
    demo.delete()
