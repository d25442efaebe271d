"""The sales queue, the handoff page and its actions, marketing's outcome view, notifications.

Views parse input with forms and call the services, which decide who may do what; a refusal is
shown on the page it came from and changes nothing.
"""

from datetime import datetime, time

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from leads import services
from leads.csv_export import csv_response, export_filename, export_reads_may_be_stale
from leads.forms import (
    AcceptForm,
    OutcomeFilterForm,
    ReassignForm,
    RecycleForm,
    RejectForm,
    TouchForm,
)
from leads.models import Campaign, Handoff, Lead
from leads.panels import lead_panels
from leads.roles import MANAGE_HANDOFFS, WORK_HANDOFFS
from leads.selectors import (
    QueueScope,
    handoff_clocks,
    handoff_detail,
    handoff_outcome_counts,
    handoff_outcomes,
    handoff_queue,
    lead_handoffs,
    notifications_for,
    reassign_candidates,
    stage_names_in_force,
    team_loads,
)
from revops.access import page_permission_required
from revops.pagination import page_of

PAGE_SIZE = 50
VIEW_LEAD = "leads.view_lead"


@page_permission_required(VIEW_LEAD)
def queue(request):
    user = request.user
    is_manager = user.has_perm("leads.manage_handoffs")
    # A manager's day starts on the team: who is loaded, who is late.
    scope = request.GET.get("scope", QueueScope.TEAM if is_manager else QueueScope.MINE)
    if not is_manager or scope not in (QueueScope.TEAM, QueueScope.UNASSIGNED):
        scope = QueueScope.MINE
    rep_id = request.GET.get("rep", "")
    rep_id = int(rep_id) if rep_id.isdigit() else None
    handoffs = handoff_queue(user=user, scope=scope, rep_id=rep_id)
    page, query = page_of(request, handoffs, PAGE_SIZE)
    return render(
        request,
        "leads/queue.html",
        {
            "page": page,
            "query": query,
            "clocks": handoff_clocks(page.object_list),
            "scope": scope,
            "is_manager": is_manager,
            "team": team_loads(user) if is_manager else [],
            "rep_id": rep_id,
        },
    )


def _handoff_or_404(pk: int) -> Handoff:
    try:
        return handoff_detail(pk)
    except Handoff.DoesNotExist as missing:
        raise Http404("No such handoff") from missing


def _render_handoff(request, handoff: Handoff, *, forms=None, status: int = 200):
    user = request.user
    can_act = services.user_can_act(user, handoff)
    manages = services.user_manages(user, handoff)
    initial = {"revision": handoff.revision}
    candidates = reassign_candidates(user) if manages else None
    context = {
        "handoff": handoff,
        "lead": handoff.lead,
        "clock": handoff_clocks([handoff])[handoff.pk],
        "events": handoff.lead.events.select_related("content_asset").order_by("-occurred_at")[:50],
        "earlier_handoffs": lead_handoffs(handoff.lead_id).exclude(pk=handoff.pk),
        "stage_names": stage_names_in_force(),
        "can_act": can_act,
        "manages": manages,
        "touch_form": TouchForm(initial=initial),
        "accept_form": AcceptForm(initial=initial),
        "reject_form": RejectForm(initial=initial),
        "reassign_form": ReassignForm(initial=initial, candidates=candidates) if manages else None,
    }
    context.update(lead_panels(handoff.lead, names=["explanation", "target_account"]))
    context.update(forms or {})
    return render(request, "leads/handoff.html", context, status=status)


@page_permission_required(VIEW_LEAD)
def handoff_page(request, pk: int):
    return _render_handoff(request, _handoff_or_404(pk))


def _act(request, pk: int, form_name: str, form, action, success: str):
    """Validate the form, run the service; show the page again with the errors on a refusal."""
    handoff = get_object_or_404(Handoff, pk=pk)
    if not form.is_valid():
        return _render_handoff(request, _handoff_or_404(pk), forms={form_name: form}, status=400)
    try:
        action(handoff, form.cleaned_data)
    except PermissionDenied as refused:
        messages.error(request, str(refused))
        return _render_handoff(request, _handoff_or_404(pk), status=403)
    except ValidationError as invalid:
        if hasattr(invalid, "error_dict"):
            for field, errors in invalid.error_dict.items():
                target = field if field in form.fields else None
                for error in errors:
                    form.add_error(target, error)
        else:
            # Not about one field (a stale page, a decided handoff): say it at the top, where
            # it shows even when the form it came from is no longer offered.
            for error in invalid.messages:
                messages.error(request, error)
        return _render_handoff(request, _handoff_or_404(pk), forms={form_name: form}, status=400)
    messages.success(request, success)
    return redirect("leads:handoff", pk=pk)


@require_POST
@page_permission_required(VIEW_LEAD, WORK_HANDOFFS)
def handoff_touch(request, pk: int):
    def action(handoff, data):
        services.handoff_log_touch(
            handoff=handoff,
            actor=request.user,
            channel=data["channel"],
            note=data["note"],
            objections=data["objections"],
            content_assets=data["content_assets"],
            meeting_booked=data["meeting_booked"],
            revision=data["revision"],
        )

    return _act(request, pk, "touch_form", TouchForm(request.POST), action, "Logged.")


@require_POST
@page_permission_required(VIEW_LEAD, WORK_HANDOFFS)
def handoff_accept_view(request, pk: int):
    def action(handoff, data):
        services.handoff_accept(
            handoff=handoff, actor=request.user, note=data["note"], revision=data["revision"]
        )

    return _act(request, pk, "accept_form", AcceptForm(request.POST), action, "Lead accepted.")


@require_POST
@page_permission_required(VIEW_LEAD, WORK_HANDOFFS)
def handoff_reject_view(request, pk: int):
    def action(handoff, data):
        services.handoff_reject(
            handoff=handoff,
            actor=request.user,
            reason=data["reason"],
            note=data["note"],
            revision=data["revision"],
        )

    return _act(
        request,
        pk,
        "reject_form",
        RejectForm(request.POST),
        action,
        "Lead rejected; marketing sees the reason.",
    )


@require_POST
@page_permission_required(VIEW_LEAD, MANAGE_HANDOFFS)
def handoff_reassign_view(request, pk: int):
    form = ReassignForm(request.POST, candidates=reassign_candidates(request.user))

    def action(handoff, data):
        services.handoff_reassign(
            handoff=handoff,
            actor=request.user,
            to_user=data["to_user"],
            note=data["note"],
            revision=data["revision"],
        )

    return _act(request, pk, "reassign_form", form, action, "Handoff reassigned.")


@require_POST
@page_permission_required(VIEW_LEAD, "leads.recycle_lead")
def lead_recycle_view(request, pk: int):
    lead = get_object_or_404(Lead, pk=pk)
    form = RecycleForm(request.POST)
    if form.is_valid():
        try:
            services.lead_recycle(lead=lead, actor=request.user, note=form.cleaned_data["note"])
        except PermissionDenied as refused:
            messages.error(request, str(refused))
        except ValidationError as invalid:
            messages.error(request, " ".join(invalid.messages))
        else:
            messages.success(request, "Lead recycled to nurture.")
    return redirect("leads:detail", pk=pk)


def _day_start(day) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


OUTCOME_CSV_HEADER = [
    "handoff id", "lead id", "lead", "email", "account", "source", "campaign", "assigned at",
    "assignee", "status", "breached", "reason", "note",
]  # fmt: skip


def _outcome_row(handoff: Handoff) -> list:
    lead = handoff.lead
    return [
        handoff.pk,
        lead.pk,
        lead.full_name,
        lead.email,
        lead.account.name if lead.account else "",
        lead.source.name if lead.source else "",
        lead.campaign.name if lead.campaign else "",
        handoff.assigned_at.isoformat(),
        handoff.assignee.get_username() if handoff.assignee else "",
        handoff.outcome,
        "yes" if handoff.was_breached else "no",
        handoff.reject_reason.label if handoff.reject_reason else "",
        handoff.reject_note,
    ]


@page_permission_required(VIEW_LEAD)
@export_reads_may_be_stale
def outcomes(request):
    """Marketing's view: handed-off leads and what sales did with them, with the reasons."""
    form = OutcomeFilterForm(request.GET or None)
    filters = {}
    described = []  # the filters in words, for the export's file name
    if form.is_valid():
        data = form.cleaned_data
        until = data["assigned_until"]
        filters = {
            "source_id": data["source"].pk if data["source"] else None,
            "campaign_id": data["campaign"],
            "status": data["status"],
            "assigned_from": _day_start(data["assigned_from"]),
            "assigned_until": _day_start(until + timezone.timedelta(days=1)) if until else None,
        }
        described = [
            data["assigned_from"],
            data["assigned_until"],
            data["source"],
            data["campaign"],  # its name is looked up for an export only
            data["status"],
        ]
    handoffs = handoff_outcomes(**filters)
    if request.GET.get("format") == "csv":
        if described and described[3]:
            described[3] = Campaign.objects.filter(pk=described[3]).first()
        return csv_response(
            export_filename("handoff-outcomes", *described),
            OUTCOME_CSV_HEADER,
            (_outcome_row(h) for h in handoffs.iterator(chunk_size=2_000)),
        )
    page, query = page_of(request, handoffs, PAGE_SIZE, drop=("format",))
    source = form.cleaned_data.get("source") if form.is_bound and form.is_valid() else None
    return render(
        request,
        "leads/handoff_outcomes.html",
        {
            "form": form,
            "page": page,
            "counts": handoff_outcome_counts(handoffs),
            "campaigns": Campaign.objects.filter(source=source) if source else Campaign.objects,
            "query": query,
            "csv_url": f"{reverse('leads:handoff_outcomes')}?{query}&format=csv",
        },
    )


@page_permission_required(VIEW_LEAD)
def notifications(request):
    if request.method == "POST":
        services.notifications_mark_read(user=request.user)
        return redirect("leads:notifications")
    page = Paginator(notifications_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "leads/notifications.html",
        {"page": page},
    )
