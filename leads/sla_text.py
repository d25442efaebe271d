"""SLA time in words, one wording everywhere (queue, handoff page, meeting slides, notices).

An SLA clock counts *business* time (``leads.sla_clock``), so it is shown as business time:
"27 business hours overdue", "3 business hours left", never "1d 3h", which reads as calendar
days. The calendar time goes in a hover title ("Due Tue 3 Mar 12:00 · 4 days 2 hours ago"), so
nobody confuses the two. Plain functions, no Django; ``static/js/countdown.js`` repeats
``business_time_text`` and ``calendar_time_text`` for the live countdown, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

HOUR = 3600
DAY = 86_400


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def business_amount(seconds: float) -> str:
    """The size of a business duration: whole business hours from one hour on (rounded down,
    so a clock never claims more time left than there is), business minutes below."""
    total = int(abs(seconds))
    if total >= HOUR:
        return _plural(total // HOUR, "business hour")
    return _plural(total // 60, "business minute")


def business_time_text(seconds: float) -> str:
    """Business seconds left (negative once overdue) in words: 10_800 → "3 business hours
    left"; -97_200 → "27 business hours overdue"; 1_500 → "25 business minutes left"."""
    if seconds < 0:
        return f"{business_amount(seconds)} overdue"
    return f"{business_amount(seconds)} left"


def calendar_amount(seconds: float) -> str:
    """A calendar duration: "4 days 2 hours", "5 hours 10 minutes", "12 minutes"."""
    total = int(abs(seconds))
    days, rest = divmod(total, DAY)
    hours, rest = divmod(rest, HOUR)
    minutes = rest // 60
    if days:
        return _plural(days, "day") + (f" {_plural(hours, 'hour')}" if hours else "")
    if hours:
        return _plural(hours, "hour") + (f" {_plural(minutes, 'minute')}" if minutes else "")
    return _plural(minutes, "minute")


def calendar_time_text(due: datetime, now: datetime) -> str:
    """When the clock is (or was) due, in calendar time: "due in 2 days 3 hours (calendar
    time)" or "due 4 days 2 hours ago (calendar time)"."""
    seconds = (due - now).total_seconds()
    if seconds < 0:
        return f"due {calendar_amount(seconds)} ago (calendar time)"
    return f"due in {calendar_amount(seconds)} (calendar time)"


@dataclass(frozen=True)
class SlaTime:
    """What a page shows for one SLA clock: the business-time text and its hover title."""

    text: str
    title: str
    overdue: bool


def sla_time(
    business_seconds: float, *, due: datetime | None = None, now: datetime | None = None
) -> SlaTime:
    """One clock's text ("27 business hours overdue") and title (calendar time when the due
    time is known)."""
    title = "Business hours of the SLA calendar"
    if due is not None and now is not None:
        title = f"{title}; {calendar_time_text(due, now)}"
    return SlaTime(business_time_text(business_seconds), title, business_seconds < 0)
