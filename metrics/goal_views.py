"""The alignment scorecard and the goals editor.

Everyone signed in sees the same scorecard (marketing and sales alike); only holders of
``metrics.change_goalset`` (RevOps admins) edit goals: a draft per period, published when
agreed. Views parse input and call ``goal_selectors`` (reads) or ``goal_services`` (writes).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from metrics import goal_selectors, goal_services, goals, target_selectors
from metrics.goal_forms import GoalFormSet, GoalSetForm, metric_help
from metrics.goal_services import GOAL_FIELDS
from revops.access import page_permission_required
from revops.db_router import reads_may_be_stale

EDIT_GOALS = "metrics.change_goalset"


def _period_or_404(request):
    try:
        return goal_selectors.scorecard_period(
            goal_selectors.local_today(), requested=request.GET.get("period")
        )
    except ValueError as invalid:
        raise Http404(str(invalid)) from invalid


def _period_choices(current: goals.GoalPeriod) -> list[goals.GoalPeriod]:
    """The periods to switch to: this and next quarter and month, and any with goals."""
    today = goal_selectors.local_today()
    candidates = {
        goals.quarter_of(today),
        goals.quarter_of(today).next(),
        goals.quarter_of(today).previous(),
        goals.month_of(today),
        goals.month_of(today).next(),
        current,
        *goal_selectors.goal_periods(),
    }
    return sorted(candidates, key=lambda p: (p.first_day, p.kind == goals.QUARTER), reverse=True)


@login_required
@reads_may_be_stale
def scorecard_page(request):
    period = _period_or_404(request)
    card = goal_selectors.card_for_display(goal_selectors.scorecard(period))
    return render(
        request,
        "metrics/scorecard.html",
        {
            "card": card,
            "period": period,
            "periods": _period_choices(period),
            "targets": target_selectors.target_accounts_card(period),
        },
    )


def _initial_rows(goal_set) -> list[dict]:
    if goal_set is None:
        return []
    return [model_to_dict(goal, fields=GOAL_FIELDS) for goal in goal_set.goals.all()]


@require_http_methods(["GET", "POST"])
@page_permission_required(EDIT_GOALS)
def goals_edit(request):
    """A period's goals: the draft if there is one, else a copy of the set in force (else of
    the period before, to start from). Saving keeps a draft; publishing puts it in force."""
    period = _period_or_404(request)
    draft = goal_selectors.goal_set_draft(period)
    in_force = goal_selectors.goal_set_in_force(period)
    start_from = draft or in_force or goal_selectors.goal_set_in_force(period.previous())
    status = 200
    refusals: list[str] = []
    if request.method == "POST":
        formset = GoalFormSet(request.POST, prefix="goals")
        note_form = GoalSetForm(request.POST)
        if formset.is_valid() and note_form.is_valid():
            try:
                # All or nothing: a refused publish keeps neither a new draft nor its goals.
                with transaction.atomic():
                    draft = draft or goal_services.goal_set_create_draft(
                        period=period, actor=request.user
                    )
                    goal_services.goal_set_replace_goals(
                        draft=draft, goals=formset.goals(), note=note_form.cleaned_data["note"]
                    )
                    if "publish" in request.POST:
                        goal_services.goal_set_publish(draft=draft, actor=request.user)
            except ValidationError as refused:
                refusals = refused.messages
                draft = goal_selectors.goal_set_draft(period)
            else:
                scorecard_url = f"{reverse('metrics:scorecard')}?period={period.key}"
                if "publish" in request.POST:
                    messages.success(
                        request,
                        f"{period.label} goals v{draft.number} are published: both teams see "
                        "them on the scorecard now.",
                    )
                    return redirect(scorecard_url)
                messages.success(
                    request,
                    f"Draft v{draft.number} of the {period.label} goals saved; nobody sees it "
                    "until it is published.",
                )
                return redirect(f"{reverse('metrics:goals_edit')}?period={period.key}")
        status = 400
    else:
        formset = GoalFormSet(initial=_initial_rows(start_from), prefix="goals")
        note_form = GoalSetForm(initial={"note": draft.note if draft else ""})
    return render(
        request,
        "metrics/goals_edit.html",
        {
            "period": period,
            "periods": _period_choices(period),
            "formset": formset,
            "note_form": note_form,
            "draft": draft,
            "refusals": refusals,
            "in_force": in_force,
            "start_from": start_from,
            "metric_help": metric_help(),
        },
        status=status,
    )


@login_required
@reads_may_be_stale
def planning_page(request):
    """Quarterly planning: last quarter's goals against its actuals, and the next quarter's
    goals as drafted or agreed. Everyone reads; RevOps admins draft and publish in the editor."""
    today = goal_selectors.local_today()
    try:
        quarter = goals.parse_period_key(request.GET.get("quarter") or "")
    except ValueError:
        if request.GET.get("quarter"):
            raise Http404("Name a quarter, e.g. 2027-Q1.") from None
        quarter = goals.quarter_of(today).next()
    if quarter.kind != goals.QUARTER:
        raise Http404("Quarterly planning is per quarter, e.g. 2027-Q1.")
    context = goal_selectors.planning(quarter)
    context["choices"] = [goals.quarter_of(today), goals.quarter_of(today).next()]
    return render(request, "metrics/planning.html", context)
