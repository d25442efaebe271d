from django import template
from django.utils.html import format_html

from scoring.predictive.wording import chance_effect

register = template.Library()


@register.simple_tag
def chance(log_odds, baseline):
    """A reason of the predictive score in words, what it alone does to an average lead, and the
    exact log-odds in the title for whoever wants the model's own number."""
    effect = chance_effect(float(log_odds), float(baseline))
    return format_html(
        '<span class="{}" title="{} on the model\'s log-odds scale">{}</span>'
        ' <span class="muted">(an average lead: {} % → {} %)</span>',
        "positive" if effect.raises else "negative",
        f"{effect.log_odds:+.2f}",
        effect.text,
        effect.average_before,
        effect.average_after,
    )
