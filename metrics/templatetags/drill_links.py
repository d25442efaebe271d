"""``{% drill %}``: the link from a figure on a dashboard to the rows behind it.

``{% drill 'closed' source=row.source.id status='won' %}`` is the closed-deals drill-down under
the page's filters with the source filter replaced by the row's source: an id, or None for the
"No source" row (``source=none`` in the URL), so the list holds exactly the rows the figure
counts. ``group=row.group`` narrows to a breakdown row; ``params=`` adds a dict of parameters
(a headline's drill, whose ``kind`` key is skipped). The view puts ``drill_url`` in the context
(``metrics.views._drill_url_factory``).
"""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def drill(context, kind: str, params: dict | None = None, **narrowing) -> str:
    extra = {name: value for name, value in (params or {}).items() if name != "kind"}
    return context["drill_url"](kind=kind, **extra, **narrowing)
