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


def _percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _segment_row(segment, *, overall, min_closed) -> dict:
    too_small = segment.closed < min_closed
    interval = segment.interval
    lift = segment.rate / overall if overall and segment.rate is not None else None
    return {
        "segment": segment,
        "too_small": too_small,
        "rate": _percent(segment.rate),
        "interval": "—"
        if interval is None
        else f"{_percent(interval[0])} – {_percent(interval[1])}",
        "lift": "—" if lift is None else f"{lift:.2f}×",
        "lift_class": "" if lift is None else ("positive" if lift > 1 else "negative"),
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
