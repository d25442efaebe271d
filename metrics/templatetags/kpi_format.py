"""Numbers formatted for people: 0.4231 → 42.3 %, 1234567.8 → $1,234,568, 5.25 h → 5h 15m."""

from decimal import Decimal

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

NO_DATA = "—"


@register.filter
def percent(value, digits: int = 1):
    if value is None:
        return NO_DATA
    return f"{float(value) * 100:.{digits}f} %"


# Amounts are in US dollars (``Opportunity.currency`` defaults to USD): every page and slide
# shows them with the sign, never as a bare number.
CURRENCY = "$"


@register.filter
def money(value):
    """1234567.8 → "$1,234,568"; -1200 → "-$1,200"."""
    if value is None or value == "":
        return NO_DATA
    amount = Decimal(str(value))
    return f"{'-' if amount < 0 else ''}{CURRENCY}{abs(amount):,.0f}"


@register.filter
def hours(value):
    if value is None:
        return NO_DATA
    whole = int(value)
    minutes = round((float(value) - whole) * 60)
    if minutes == 60:
        whole, minutes = whole + 1, 0
    return f"{whole}h {minutes:02d}m" if whole else f"{minutes}m"


@register.filter
def days(value):
    if value is None:
        return NO_DATA
    return f"{float(value):.1f} d"


@register.filter
def count(value):
    if value is None:
        return NO_DATA
    return f"{int(value):,}"


@register.simple_tag
def kpi_value(value, unit: str):
    formatters = {
        "percent": percent,
        "money": money,
        "hours": hours,
        "days": days,
        "count": count,
        "money_per_day": lambda v: NO_DATA if v is None else f"{money(v)}/day",
    }
    return formatters.get(unit, str)(value)


@register.simple_tag
def kpi_change(change, unit: str, higher_is_better: bool = True, coloured: bool = True):
    """The change from the previous period, green when it is an improvement (``coloured``
    False: in grey, where the trend beside it says whether the change is more than noise)."""
    if change.absolute is None:
        return mark_safe('<span class="change muted">no earlier data</span>')
    delta = float(change.absolute)
    if delta == 0:
        return mark_safe('<span class="change muted">no change</span>')
    good = (delta > 0) == higher_is_better
    if unit == "percent":
        text = f"{delta * 100:+.1f} pts"
    elif change.relative is not None:
        text = f"{change.relative * 100:+.0f} %"
    else:
        text = f"{delta:+,.1f}"
    return format_html(
        '<span class="change {}">{} {}</span>',
        ("positive" if good else "negative") if coloured else "muted",
        "▲" if delta > 0 else "▼",
        text,
    )


def _change_text(delta: float, unit: str) -> str:
    if unit == "percent":
        return f"{delta * 100:+.1f} pts"
    if unit in ("money", "money_per_day"):
        return f"{'+' if delta >= 0 else '-'}{CURRENCY}{abs(delta):,.0f}"
    if unit == "hours":
        return f"{delta:+.1f} h"
    return f"{delta:+,.1f}"


@register.simple_tag
def week_change(trend):
    """The last week's change against the week before, coloured only when the trends' rule
    (``metrics.trends``) finds it outside normal variation; the rule's words in the title."""
    if trend is None or trend.change is None:
        reason = trend.verdict.reason if trend is not None else "no weekly data"
        return format_html('<span class="change muted" title="{}">week: {}</span>', reason, reason)
    if trend.last is not None and trend.last.maturing:
        return format_html(
            '<span class="change muted maturing" title="{}">week: maturing</span>',
            trend.verdict.reason,
        )
    arrow = "▲" if trend.change > 0 else ("▼" if trend.change < 0 else "=")
    return format_html(
        '<span class="change {}" title="{}">week: {} {}{}</span>',
        trend.colour,
        trend.verdict.reason,
        arrow,
        _change_text(trend.change, trend.unit),
        " (unusual)" if trend.verdict.unusual else "",
    )


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (None when absent)."""
    return (mapping or {}).get(key)
