from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from leads.choices import FitTier
from leads.csv_export import csv_response, export_filename
from leads.forms import RecycleForm
from leads.models import Lead, Source
from leads.panels import lead_panels
from leads.selectors import (
    lead_detail,
    lead_export_rows,
    lead_history,
    lead_history_rows,
    lead_list,
    lead_recent_events,
    lifecycle_at,
)
from revops.access import page_permission_required
from revops.db_router import reads_may_be_stale
from revops.pagination import BadCursor, newest_first_page

VIEW_LEAD = "leads.view_lead"

PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 25
EXPORT_HEADER = [
    "id", "external id", "email", "first name", "last name", "account", "source", "campaign",
    "stage", "tier", "owner", "in marketing nurture", "created at",
]  # fmt: skip


def _filters(request) -> dict:
    return {
        "stage": request.GET.get("stage", ""),
        "tier": request.GET.get("tier", ""),
        "source_id": request.GET.get("source", ""),
        "query": request.GET.get("q", "").strip(),
        "target": request.GET.get("target", ""),
    }


@page_permission_required(VIEW_LEAD)
def lead_index(request):
    filters = _filters(request)
    leads = lead_list(**filters)
    cursor_error = ""
    try:
        page = newest_first_page(
            leads,
            field="created_at",
            size=PAGE_SIZE,
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
        )
    except BadCursor as error:
        cursor_error = str(error)
        page = newest_first_page(leads, field="created_at", size=PAGE_SIZE)
    query = request.GET.copy()
    for key in ("after", "before", "page"):
        query.pop(key, None)
    lifecycle = lifecycle_at()
    return render(
        request,
        "leads/lead_list.html",
        {
            "page": page,
            "cursor_error": cursor_error,
            "filters": filters,
            "query": query.urlencode(),
            "stages": lifecycle.stages,
            "stage_names": lifecycle.names,
            "tiers": FitTier.choices,
            "sources": Source.objects.order_by("name"),
        },
    )


@page_permission_required(VIEW_LEAD)
@reads_may_be_stale
def lead_export(request):
    """The filtered lead list as CSV, with the nurture flag a marketing automation tool reads to
    suppress leads that sales is working."""
    filters = _filters(request)
    rows = (
        [*row[:-2], "yes" if row[-2] else "no", row[-1].isoformat()]
        for row in lead_export_rows(lead_list(**filters))
    )
    source = filters["source_id"]
    source = Source.objects.filter(pk=int(source)).first() if source.isdigit() else None
    name = export_filename(
        "leads",
        filters["stage"],
        f"tier {filters['tier']}" if filters["tier"] else "",
        source,
        f"search {filters['query']}" if filters["query"] else "",
        {"yes": "target accounts", "no": "not target accounts"}.get(filters["target"], ""),
    )
    return csv_response(name, EXPORT_HEADER, rows)


@page_permission_required(VIEW_LEAD)
def lead_page(request, pk: int):
    try:
        lead = lead_detail(pk)
    except Lead.DoesNotExist as missing:
        raise Http404("No such lead") from missing
    lifecycle = lifecycle_at()
    history_page = Paginator(lead_history(pk), HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "leads/lead_detail.html",
        {
            "lead": lead,
            **lead_panels(lead),  # what other apps show about a lead (scoring: its score)
            "events": lead_recent_events(pk),
            "history_page": history_page,
            "history": lead_history_rows(history_page.object_list),
            "stage": lifecycle.by_key.get(lead.stage),
            "can_recycle": lifecycle.recyclable(lead.stage)
            and request.user.has_perm("leads.recycle_lead"),
            "recycle_form": RecycleForm(),
        },
    )
