"""Content requests: filed by sales from a handoff's page, listed and closed by marketing.

Views parse input with forms and call ``metrics.content_requests``; a refusal is shown on the
page it came from and changes nothing.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from leads.models import Handoff
from leads.selectors import stage_names_in_force
from metrics import content_requests
from metrics.content_request_forms import (
    ContentRequestFilterForm,
    ContentRequestForm,
    ContentRequestUpdateForm,
)
from metrics.models import ContentRequest
from revops.access import page_permission_required
from revops.pagination import page_of

PAGE_SIZE = 25
VIEW_LEAD = "leads.view_lead"


def _add_errors(form, invalid: ValidationError) -> None:
    if hasattr(invalid, "error_dict"):
        for field, errors in invalid.error_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        for error in invalid.messages:
            form.add_error(None, error)


@require_POST
@page_permission_required(VIEW_LEAD, content_requests.FILE_REQUEST)
def content_request_file_view(request, handoff_pk: int):
    """From a handoff's page: back to it with a confirmation, or a page with the form and its
    errors (400)."""
    handoff = get_object_or_404(Handoff.objects.select_related("lead"), pk=handoff_pk)
    form = ContentRequestForm(request.POST)
    if form.is_valid():
        try:
            filed = content_requests.content_request_file(
                handoff=handoff,
                requested_by=request.user,
                title=form.cleaned_data["title"],
                objection=form.cleaned_data["objection"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as invalid:
            _add_errors(form, invalid)
        else:
            messages.success(
                request, f"Content requested: “{filed.title}”. Marketing sees it on its list."
            )
            return redirect(reverse("leads:handoff", args=[handoff.pk]) + "#content-requests")
    return render(
        request,
        "metrics/content_request_new.html",
        {"handoff": handoff, "form": form},
        status=400,
    )


@require_GET
@page_permission_required(content_requests.LIST_REQUESTS)
def content_request_list_page(request):
    filters = ContentRequestFilterForm(request.GET)
    status = filters.status_or_default()
    rows = content_requests.content_request_list(status=status)
    page, query = page_of(request, rows, PAGE_SIZE)
    return render(
        request,
        "metrics/content_requests.html",
        {
            "page": page,
            "query": query,
            "status": status,
            "statuses": ContentRequestFilterForm.STATUSES,
            "can_close": content_requests.user_can_close(request.user),
            "stage_names": stage_names_in_force(),
            "update_form": ContentRequestUpdateForm(),
            "open_count": ContentRequest.objects.filter(
                status__in=ContentRequest.OPEN_STATUSES
            ).count(),
        },
    )


@require_POST
@page_permission_required(content_requests.CLOSE_REQUEST)
def content_request_update_view(request, pk: int):
    """Marketing moves a request on from the list; back to the list (its filters kept)."""
    content_request = get_object_or_404(ContentRequest, pk=pk)
    back = reverse("metrics:content_requests")
    # Back to the list's own path with its filter and page (nothing else is carried over).
    kept = QueryDict(request.POST.get("back", "").lstrip("?"))
    query = urlencode({key: kept[key] for key in ("status", "page") if kept.get(key)})
    if query:
        back = f"{back}?{query}"
    form = ContentRequestUpdateForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"“{content_request.title}”: {error}")
        return redirect(back)
    try:
        updated = content_requests.content_request_update(
            request=content_request,
            actor=request.user,
            status=form.cleaned_data["status"],
            fulfilled_by=form.cleaned_data["fulfilled_by"],
            close_note=form.cleaned_data["close_note"],
        )
    except (ValidationError, PermissionDenied) as refused:
        errors = refused.messages if isinstance(refused, ValidationError) else [str(refused)]
        for error in errors:
            messages.error(request, f"“{content_request.title}”: {error}")
    else:
        messages.success(
            request, f"“{updated.title}” is now {updated.get_status_display().lower()}."
        )
    return redirect(back)
