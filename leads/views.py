from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from leads.choices import FitTier
from leads.models import Lead, Source
from leads.selectors import lead_detail, lead_list, lead_recent_events, stages_in_force
from scoring.selectors import explain_lead_score

PAGE_SIZE = 50


@login_required
def lead_index(request):
    filters = {
        "stage": request.GET.get("stage", ""),
        "tier": request.GET.get("tier", ""),
        "source_id": request.GET.get("source", ""),
        "query": request.GET.get("q", "").strip(),
    }
    page = Paginator(lead_list(**filters), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "leads/lead_list.html",
        {
            "page": page,
            "filters": filters,
            "stages": stages_in_force(),
            "tiers": FitTier.choices,
            "sources": Source.objects.order_by("name"),
        },
    )


@login_required
def lead_page(request, pk: int):
    try:
        lead = lead_detail(pk)
    except Lead.DoesNotExist as missing:
        raise Http404("No such lead") from missing
    return render(
        request,
        "leads/lead_detail.html",
        {
            "lead": lead,
            "explanation": explain_lead_score(lead),
            "events": lead_recent_events(pk),
        },
    )
