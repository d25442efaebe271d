"""E-mails about the shared goals: an alert when a goal turns red or falls past its floor (e.g. a
source's acceptance rate below the floor both teams agreed), and the Monday digest of the
scorecard to each team.

Each is sent once (``GoalNotice.key``); the record and the sending share a transaction, so a
failed send is retried on the next run instead of being lost, and a second run sends nothing.
Who hears about a goal follows whose commitment it is: marketing's goals go to marketing,
sales' to sales, the revenue team's to both; RevOps admins hear about all of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import get_connection, send_mass_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from leads.roles import MARKETING, REVOPS_ADMIN, SALES_MANAGER, SALES_REP
from metrics import goal_selectors, goals
from metrics.goal_selectors import FORMATS
from metrics.models import GoalNotice

# Whose goal it is -> the roles told about it.
AUDIENCE = {
    goals.MARKETING: (MARKETING, REVOPS_ADMIN),
    goals.SALES: (SALES_REP, SALES_MANAGER, REVOPS_ADMIN),
    goals.SHARED: (MARKETING, SALES_REP, SALES_MANAGER, REVOPS_ADMIN),
}
# The digest's teams: both get the same card.
TEAMS = {"marketing": (MARKETING, REVOPS_ADMIN), "sales": (SALES_REP, SALES_MANAGER)}
SYMBOLS = {goals.GREEN: "✓", goals.AMBER: "!", goals.RED: "✕", goals.GREY: "–"}


def _emails(roles: tuple[str, ...]) -> list[str]:
    users = get_user_model().objects.filter(is_active=True, groups__name__in=roles)
    return sorted(set(users.exclude(email="").values_list("email", flat=True)))


def _url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _value(row: dict, key: str) -> str:
    return FORMATS.get(row["unit"], str)(row[key])


def row_line(row: dict) -> str:
    """One goal as a line of text: status first, in words (the e-mail has no colours)."""
    status = row["status"]
    scope = "" if row["scope"] == "Whole revenue team" else f" ({row['scope']})"
    sign = "≥" if row["higher_is_better"] else "≤"
    sample = "" if row["accumulates"] else f", n = {row['sample'] or 0} {row['sample_label']}"
    projected = ""
    if row["accumulates"] and row["pace"] is not None:
        projected = f", pace {_value(row, 'pace')}"
    if row["forecast"] is not None:
        projected += f", forecast {_value(row, 'forecast')}"
    return (
        f"{SYMBOLS[status['colour']]} {status['word']}: {row['label']}{scope} — "
        f"{_value(row, 'actual')}{sample}{projected}; target {sign} {_value(row, 'target')}"
    )


def card_text(card: dict) -> str:
    """The scorecard as plain text, group by group."""
    period = card["period"]
    lines = [f"{period['label']}, day {period['elapsed_days']:.0f} of {period['days']}."]
    for group in card["groups"]:
        if group["rows"]:
            lines += ["", f"{group['title']}:", *(f"  {row_line(row)}" for row in group["rows"])]
    return "\n".join(lines)


def _cards(now: datetime) -> list[dict]:
    """The scorecards of the quarter and the month ``now`` falls in that have goals."""
    today = goal_selectors.local_today(now)
    periods = (goals.quarter_of(today), goals.month_of(today))
    cards = [goal_selectors.scorecard(period, now=now) for period in periods]
    return [card for card in cards if card["goal_set"] is not None]


def goal_alerts_send(*, now: datetime | None = None) -> int:
    """Alert once per goal that is red now (in the goals in force for this quarter and month):
    "past its floor" when its value to date is past the agreed floor, "off track" otherwise.
    Returns how many alerts were sent."""
    now = now or timezone.now()
    sent = 0
    for card in _cards(now):
        scorecard_url = _url(f"{reverse('metrics:scorecard')}?period={card['period']['key']}")
        for group in card["groups"]:
            for row in group["rows"]:
                if row["status"]["colour"] != goals.RED:
                    continue
                floor = row["status"]["word"] in ("Below floor", "Above ceiling")
                kind = GoalNotice.Kind.FLOOR if floor else GoalNotice.Kind.RED
                subject = f"[RevOps] {row['label']}: {row['status']['word'].lower()}"
                body = "\n".join(
                    [
                        f"A shared goal for {card['period']['label']} turned red.",
                        "",
                        row_line(row),
                        row["status"]["why"],
                        "",
                        f"The scorecard: {scorecard_url}",
                    ]
                )
                sent += _send_once(
                    key=f"{kind}:{row['id']}",
                    kind=kind,
                    goal_id=row["id"],
                    subject=subject,
                    body=body,
                    emails=_emails(AUDIENCE[row["side"]]),
                    now=now,
                )
    return sent


def scorecard_digest_send(*, now: datetime | None = None) -> int:
    """On Mondays (display time zone), the scorecard to each team, once per team and week.
    Returns how many teams were sent it (0 on other days, or when there are no goals)."""
    now = now or timezone.now()
    today = goal_selectors.local_today(now)
    if today.weekday() != 0:
        return 0
    cards = _cards(now)
    if not cards:
        return 0
    body = "\n\n".join(
        [
            "The goals marketing and sales agreed, as they stand this Monday:",
            *(card_text(card) for card in cards),
            f"The scorecard: {_url(reverse('metrics:scorecard'))}",
        ]
    )
    monday = today - timedelta(days=today.weekday())
    sent = 0
    for team, roles in TEAMS.items():
        sent += _send_once(
            key=f"digest:{team}:{monday.isoformat()}",
            kind=GoalNotice.Kind.DIGEST,
            goal_id=None,
            subject=f"[RevOps] Scorecard, week of {monday:%-d %B %Y}",
            body=body,
            emails=_emails(roles),
            now=now,
        )
    return sent


def _send_once(*, key, kind, goal_id, subject, body, emails, now) -> int:
    """Record the notice and send it in one transaction; 0 when it was sent before."""
    with transaction.atomic():
        _, created = GoalNotice.objects.get_or_create(
            key=key,
            defaults={
                "kind": kind,
                "goal_id": goal_id,
                "sent_at": now,
                "recipients": len(emails),
                "subject": subject[:200],
                "body": body,
            },
        )
        if not created:
            return 0
        if emails:
            messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [email]) for email in emails]
            send_mass_mail(messages, fail_silently=False, connection=get_connection())
    return 1
