"""The dashboards' filter choices as ``<option>`` tags."""

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def option_tags(options) -> str:
    """``<option>`` tags of (value, label, selected) triples. Every dashboard lists every rep
    as an owner: with a few hundred reps a template loop over them took ~100 times as long
    as this (a hundred ms of a page on a busy machine)."""
    return mark_safe(
        "".join(
            f'<option value="{escape(value)}"{" selected" if selected else ""}>'
            f"{escape(label)}</option>"
            for value, label, selected in options
        )
    )
