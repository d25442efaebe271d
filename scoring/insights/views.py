"""ICP insights: every signed-in user reads them; turning a suggestion into a draft change
needs leads.change_icpversion (checked by the service)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from scoring.insights import selectors, services
from scoring.insights.maths import lift_direction

LIFT_TITLES = {
    "higher": "Wins more than overall: the whole 95 % interval is above the overall rate",
    "lower": "Wins less than overall: the whole 95 % interval is below the overall rate",
    "": "Not a clear difference: the 95 % interval includes the overall rate",
}


def _percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _segment_row(segment, *, overall, min_closed) -> dict:
    too_small = segment.closed < min_closed
    interval = segment.interval
    lift = segment.rate / overall if overall and segment.rate is not None else None
    direction = lift_direction(interval, overall) if lift is not None else ""
    return {
        "segment": segment,
        "too_small": too_small,
        "rate": _percent(segment.rate),
        "interval": "—"
        if interval is None
        else f"{_percent(interval[0])} – {_percent(interval[1])}",
        "lift": "—" if lift is None else f"{lift:.2f}×",
        # Coloured only when the interval excludes the overall rate (a significant lift).
        "lift_class": {"higher": "positive", "lower": "negative"}.get(direction, ""),
        "lift_title": LIFT_TITLES[direction] if lift is not None else "",
        "points": "—"
        if segment.points is None
        else ("excluded" if segment.excluded else segment.points),
    }


@login_required
def insights_page(request):
    insights = selectors.icp_insights()
    sections = [
        {
            "attribute": attribute,
            "heading": heading,
            "rows": [
                _segment_row(s, overall=insights.overall_rate, min_closed=insights.min_closed)
                for s in segments
            ],
        }
        for attribute, heading, segments in insights.sections
    ]
    return render(
        request,
        "scoring/insights/index.html",
        {
            "insights": insights,
            "overall": _percent(insights.overall_rate),
            "sections": sections,
            "suggestions": selectors.insight_suggestions(insights),
            "may_change_icp": request.user.has_perm(services.CHANGE_ICP),
        },
    )


@login_required
@require_POST
def suggestion_apply_view(request):
    try:
        applied = services.suggestion_apply(key=request.POST.get("key", ""), actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("scoring:insights")
    backtest_url = f"{reverse('scoring:backtests')}?icp={applied.draft.pk}"
    created = " (a new draft from the ICP in force)" if applied.created_draft else ""
    messages.success(
        request,
        format_html(
            '{}{} <a href="{}">Backtest this draft →</a>', applied.summary, created, backtest_url
        ),
    )
    return redirect("scoring:insights")
