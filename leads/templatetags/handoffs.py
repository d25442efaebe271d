from django import template
from django.utils.html import format_html

from leads.sla_text import business_time_text, calendar_amount, sla_time

register = template.Library()


@register.filter
def business_duration(seconds) -> str:
    """Business seconds left (negative: overdue) in words: "3 business hours left"."""
    if seconds is None:
        return "—"
    return business_time_text(seconds)


@register.simple_tag
def countdown(clock):
    """A live SLA countdown in business time (static/js/countdown.js ticks it), the calendar
    time in its title."""
    if clock is None:
        return "—"
    shown = sla_time(clock.seconds_left, due=clock.due, now=clock.at)
    changes_at = int(clock.changes_at.timestamp()) if clock.changes_at else ""
    return format_html(
        '<span class="countdown{}" data-seconds="{}" data-running="{}" data-changes-at="{}" '
        'data-due="{}" title="{}{}">{}</span>',
        " overdue" if shown.overdue else "",
        int(clock.seconds_left),
        "1" if clock.running else "0",
        changes_at,
        int(clock.due.timestamp()) if clock.due else "",
        shown.title,
        "" if clock.running else " (clock paused outside working hours)",
        shown.text,
    )


@register.simple_tag
def sla_late(business_seconds, calendar_hours=None):
    """A clock already overdue, e.g. on the meeting slides: "27 business hours overdue", with
    the calendar time since it fell due in the title. Without the business time (a handoff
    without a policy, a snapshot frozen before it was kept) the calendar time, said as such."""
    if business_seconds in (None, ""):
        if calendar_hours in (None, ""):
            return "—"
        return format_html(
            '<span class="sla-late">{} overdue</span>',
            calendar_amount(float(calendar_hours) * 3600) + " (calendar time)",
        )
    title = "Business hours of the SLA calendar"
    if calendar_hours not in (None, ""):
        title += f"; due {calendar_amount(float(calendar_hours) * 3600)} ago (calendar time)"
    return format_html(
        '<span class="sla-late" title="{}">{}</span>',
        title,
        business_time_text(-abs(float(business_seconds))),
    )


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
