from datetime import timedelta

from django import template
from django.urls import reverse

from leads.audit.kinds import kind_for_model_label

register = template.Library()


@register.simple_tag
def definition_history_url(opts, original=None) -> str:
    """The change history of the definition an admin page edits ("" if it is not one), narrowed
    to the version on a version's page."""
    kind = kind_for_model_label(opts.label)
    if kind is None:
        return ""
    url = reverse("audit:history", args=[kind.key])
    if original is not None and opts.label == kind.version_model:
        url += f"?version={original.number}"
    return url


@register.filter
def as_minutes(value: timedelta) -> str:
    minutes = max(1, round(value.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
