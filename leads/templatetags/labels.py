"""Display names for the keys the facts store (event kinds, funnel stages, lifecycle stages):
pages say "Demo request" and "Middle of funnel", never ``demo_request`` or ``mofu``. A key the
vocabulary no longer knows is shown as it is rather than hidden."""

from django import template

from leads.choices import CriterionAttribute, EventKind, FunnelStage
from leads.selectors import stage_names_in_force

register = template.Library()

_EVENT_KINDS = dict(EventKind.choices)
_FUNNEL_STAGES = dict(FunnelStage.choices)
_ATTRIBUTES = dict(CriterionAttribute.choices)
_STAGE_NAMES = "leads.labels.stage_names"


@register.filter
def event_kind(key) -> str:
    return _EVENT_KINDS.get(key, key)


@register.filter
def funnel_stage(key) -> str:
    return _FUNNEL_STAGES.get(key, key)


@register.filter
def criterion_attribute(key) -> str:
    """What an ICP criterion looks at: "Lead seniority" for ``seniority``."""
    return _ATTRIBUTES.get(key, key)


@register.simple_tag(takes_context=True)
def stage_name(context, key) -> str:
    """The name of a lifecycle stage in force ("MQL" for ``mql``), read once per rendered
    template however many rows ask."""
    if not key:
        return ""
    names = context.render_context.get(_STAGE_NAMES)
    if names is None:
        names = context.render_context[_STAGE_NAMES] = stage_names_in_force()
    return names.get(key, key)
