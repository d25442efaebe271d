"""The handoff page's content requests: the ones filed from it, and the form to file one (for
those who may). A template tag, so the leads app's views need not know of metrics."""

from django import template

from metrics.content_request_forms import ContentRequestForm
from metrics.content_requests import LIST_REQUESTS, handoff_content_requests, user_can_file

register = template.Library()


@register.inclusion_tag("metrics/_handoff_content_requests.html", takes_context=True)
def handoff_content_request_panel(context, handoff):
    user = context["request"].user
    return {
        "handoff": handoff,
        "requests": list(handoff_content_requests(handoff)),
        "form": ContentRequestForm() if user_can_file(user) else None,
        "can_list": user.has_perm(LIST_REQUESTS),
        "csrf_token": context.get("csrf_token"),
    }
