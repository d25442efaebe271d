"""``{% definition %}text{% enddefinition %}``: the "?" mark that explains a figure.

A real button (focusable, announced as "Definition" with the text as its description through
``aria-describedby``) and a tooltip shown on hover and on keyboard focus by CSS; Escape hides it
and a tap toggles it (static/js/definitions.js, no inline script under the CSP).
"""

from django import template
from django.utils.html import format_html

register = template.Library()


def _next_id(context) -> str:
    # Unique per response: included templates render with their own render context, so the
    # counter lives on the request when there is one.
    holder = context.get("request") or context.render_context
    if isinstance(holder, template.context.RenderContext):
        count = holder.get("definition_marks", 0) + 1
        holder["definition_marks"] = count
    else:
        count = getattr(holder, "_definition_marks", 0) + 1
        holder._definition_marks = count
    return f"definition-{count}"


class DefinitionNode(template.Node):
    def __init__(self, nodelist):
        self.nodelist = nodelist

    def render(self, context) -> str:
        text = self.nodelist.render(context).strip()
        mark_id = _next_id(context)
        return format_html(
            '<span class="define"><button type="button" class="info" aria-label="Definition" '
            'aria-describedby="{}">?</button><span class="tooltip" role="tooltip" id="{}">{}'
            "</span></span>",
            mark_id,
            mark_id,
            text,
        )


@register.tag("definition")
def definition(parser, token):
    nodelist = parser.parse(("enddefinition",))
    parser.delete_first_token()
    return DefinitionNode(nodelist)
