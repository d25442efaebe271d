from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def business_duration(seconds) -> str:
    """4500 → '1h 15m'; negative values read as overdue by that much."""
    if seconds is None:
        return "—"
    total = abs(int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes:02d}m"
    else:
        text = f"{minutes}m"
    return f"overdue {text}" if seconds < 0 else f"{text} left"


@register.simple_tag
def countdown(clock):
    """A live SLA countdown (static/js/countdown.js ticks it in business time)."""
    if clock is None:
        return "—"
    changes_at = int(clock.changes_at.timestamp()) if clock.changes_at else ""
    return format_html(
        '<span class="countdown{}" data-seconds="{}" data-running="{}" data-changes-at="{}" '
        'title="Business hours of the SLA calendar{}">{}</span>',
        " overdue" if clock.overdue else "",
        int(clock.seconds_left),
        "1" if clock.running else "0",
        changes_at,
        "" if clock.running else " (clock paused outside working hours)",
        business_duration(clock.seconds_left),
    )


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
