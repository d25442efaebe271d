"""The weekly pipeline review page (projector mode), its actions, freezing, and past meetings;
the monthly review page and its freezing.

Views parse input with forms and call the services (writes) or ``metrics.meeting`` (reads); a
refusal is shown on the page it came from and changes nothing.
"""

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_POST

from leads.roles import MEETING_WRITE
from metrics import goals, monthly, services
from metrics.meeting import (
    display_today,
    figures_for_display,
    meeting_get,
    meeting_history,
    meeting_latest_snapshot,
    meeting_page_figures,
)
from metrics.meeting_forms import ActionItemForm, StallDaysForm
from metrics.models import ActionItem, Meeting, MonthlyReview
from revops.access import page_permission_required
from revops.db_router import reads_may_be_stale

HISTORY_PAGE_SIZE = 20
ACTIONS_SLIDE = "slide-actions"


def _meeting_or_404(held_on: date) -> Meeting:
    try:
        return meeting_get(held_on)
    except Meeting.DoesNotExist as missing:
        raise Http404(f"No meeting was held on {held_on:%Y-%m-%d}.") from missing


def _meeting_url(meeting: Meeting, *, live: bool = False, slide: str = "") -> str:
    url = reverse("meeting:detail", kwargs={"held_on": meeting.held_on})
    if live:
        url += "?live=1"
    return f"{url}#{slide}" if slide else url


def _render_meeting(request, meeting: Meeting, *, action_form=None, status: int = 200):
    """The meeting's slides: its latest snapshot when frozen (unless ``?live=1``), else the
    figures computed now."""
    snapshot = meeting_latest_snapshot(meeting)
    live = snapshot is None or request.GET.get("live") == "1" or action_form is not None
    stall_form = StallDaysForm(request.GET)
    if live:
        figures = meeting_page_figures(meeting, stall_days=stall_form.stall_days_or_default())
    else:
        figures = snapshot.figures
    if action_form is None:
        action_form = ActionItemForm(initial={"due_on": meeting.held_on + timedelta(days=7)})
    context = {
        "meeting": meeting,
        "snapshot": snapshot,
        "live": live,
        "figures": figures_for_display(figures),
        "stall_form": stall_form,
        "action_form": action_form,
        "start_slide": ACTIONS_SLIDE if action_form.errors else "",
    }
    return render(request, "metrics/meeting.html", context, status=status)


@require_GET
@login_required
def meeting_current(request):
    """This week's meeting. Beat opens it on Monday; someone who runs meetings opens it on
    their first visit otherwise. A Viewer (the meeting-room screen) changes nothing: before the
    week's meeting exists it is told so, and the page reloads until it does."""
    if request.user.has_perm(MEETING_WRITE):
        meeting, _created = services.meeting_get_or_create_for_week(
            today=display_today(), user=request.user
        )
    else:
        meeting = services.meeting_of_week(display_today())
        if meeting is None:
            latest = Meeting.objects.order_by("-held_on").first()
            return render(request, "metrics/meeting_not_open.html", {"latest": latest})
    url = _meeting_url(meeting)
    query = request.GET.urlencode()
    return redirect(f"{url}?{query}" if query else url)


@require_GET
@login_required
@reads_may_be_stale
def meeting_page(request, held_on: date):
    return _render_meeting(request, _meeting_or_404(held_on))


@require_POST
@page_permission_required(MEETING_WRITE)
def meeting_freeze_view(request, held_on: date):
    meeting = _meeting_or_404(held_on)
    replaced = meeting_latest_snapshot(meeting)
    stall_days = StallDaysForm(request.POST).stall_days_or_default()
    snapshot = services.meeting_freeze(meeting=meeting, user=request.user, stall_days=stall_days)
    at = date_format(timezone.localtime(snapshot.frozen_at), "j M Y, H:i")
    if replaced is None:
        messages.success(
            request,
            f"Figures frozen at {at}: this meeting now reopens with them; "
            "“Live figures” shows today's.",
        )
    else:
        before = date_format(timezone.localtime(replaced.frozen_at), "j M Y, H:i")
        messages.success(
            request,
            f"Figures frozen again at {at}; they replace the ones frozen at {before}, "
            "which stay on record.",
        )
    return redirect(_meeting_url(meeting))


@require_POST
@page_permission_required(MEETING_WRITE)
def action_item_add_view(request, held_on: date):
    meeting = _meeting_or_404(held_on)
    form = ActionItemForm(request.POST)
    if not form.is_valid():
        return _render_meeting(request, meeting, action_form=form, status=400)
    try:
        item = services.action_item_add(
            meeting=meeting,
            text=form.cleaned_data["text"],
            owner=form.cleaned_data["owner"],
            due_on=form.cleaned_data["due_on"],
            created_by=request.user,
        )
    except ValidationError as invalid:
        for field, errors in invalid.message_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
        return _render_meeting(request, meeting, action_form=form, status=400)
    frozen = meeting_latest_snapshot(meeting) is not None
    if frozen:
        messages.success(
            request,
            f"Action added: “{item.text}”. The frozen figures include it once you freeze again.",
        )
    else:
        messages.success(request, f"Action added: “{item.text}”.")
    return redirect(_meeting_url(meeting, live=frozen, slide=ACTIONS_SLIDE))


@require_POST
@page_permission_required(MEETING_WRITE)
def action_item_done_view(request, pk: int):
    item = get_object_or_404(ActionItem.objects.select_related("meeting"), pk=pk)
    # Back to the meeting the button was pressed in (items are carried to later meetings).
    try:
        back_to = _meeting_or_404(date.fromisoformat(request.POST.get("meeting", "")))
    except (ValueError, Http404):
        back_to = item.meeting
    try:
        services.action_item_complete(item=item, user=request.user)
    except ValidationError as refused:
        for error in refused.messages:
            messages.error(request, error)
    else:
        messages.success(request, f"Done: “{item.text}”.")
    live = meeting_latest_snapshot(back_to) is not None
    return redirect(_meeting_url(back_to, live=live, slide=ACTIONS_SLIDE))


@require_GET
@login_required
@reads_may_be_stale
def meeting_history_page(request):
    page = Paginator(meeting_history(), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "metrics/meeting_history.html", {"page": page, "query": ""})


# --- The monthly review ----------------------------------------------------------------------


def _review_or_404(month: str) -> MonthlyReview:
    try:
        first = goals.parse_period_key(month)
    except ValueError as invalid:
        raise Http404(str(invalid)) from invalid
    if first.kind != goals.MONTH:
        raise Http404("A monthly review is named by its month, e.g. 2026-11.")
    review = MonthlyReview.objects.filter(month=first.first_day).first()
    if review is None:
        raise Http404(f"No review was opened for {first.label}.")
    return review


def _review_url(review: MonthlyReview) -> str:
    return reverse("meeting:monthly_detail", kwargs={"month": f"{review.month:%Y-%m}"})


@require_GET
@login_required
def monthly_current(request):
    """The review of the month just ended (held early in the next one); someone who runs
    meetings opens it on their first visit, and a Viewer is sent to the latest one opened."""
    last_month = goals.month_of(display_today()).previous().first_day
    if request.user.has_perm(MEETING_WRITE):
        review, _created = services.monthly_review_get_or_create(
            month=last_month, user=request.user
        )
    else:
        review = MonthlyReview.objects.order_by("-month").first()
        if review is None:
            return render(request, "metrics/monthly_not_open.html")
    return redirect(_review_url(review))


@require_GET
@login_required
@reads_may_be_stale
def monthly_page(request, month: str):
    review = _review_or_404(month)
    snapshot = monthly.review_latest_snapshot(review)
    live = snapshot is None or request.GET.get("live") == "1"
    figures = monthly.review_page_figures(review) if live else snapshot.figures
    context = {
        "review": review,
        "snapshot": snapshot,
        "live": live,
        "figures": monthly.review_for_display(figures),
    }
    return render(request, "metrics/monthly.html", context)


@require_POST
@page_permission_required(MEETING_WRITE)
def monthly_freeze_view(request, month: str):
    review = _review_or_404(month)
    snapshot = services.monthly_review_freeze(review=review, user=request.user)
    at = date_format(timezone.localtime(snapshot.frozen_at), "j M Y, H:i")
    messages.success(request, f"Figures frozen at {at}: the review now reopens with them.")
    return redirect(_review_url(review))
