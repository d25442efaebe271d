"""Import pages: upload ⇒ map and preview ⇒ commit ⇒ progress and report. Thin: forms check
the input, ``services`` do the work. Importing needs the ``leads.add_importjob`` permission."""

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from leads.csv_export import csv_response
from leads.imports import services
from leads.imports.engine import mapping_context
from leads.imports.forms import MappingForm, ReplaceMappingForm, SaveMappingForm, UploadForm
from leads.imports.mapping import (
    KIND_LABELS,
    MappingError,
    compile_mapping,
    target_fields,
    unmapped_columns,
)
from leads.imports.presets import PRESETS
from leads.models import ImportJob, SavedMapping

PERMISSION = "leads.add_importjob"
RECENT_JOBS = 25


def importer_required(view):
    @wraps(view)
    @login_required
    @permission_required(PERMISSION, raise_exception=True)
    def guarded(request, *args, **kwargs):
        return view(request, *args, **kwargs)

    return guarded


@importer_required
def import_index(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_job_create(
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                user=request.user,
                mapping=form.cleaned_data["chosen_mapping"],
            )
        except services.ImportRefused as refused:
            form.add_error("file", str(refused))
        else:
            return redirect("leads:imports:job", pk=job.pk)
    presets = [
        {"preset": preset, "path": preset.dataset_path(),
         "available": bool(preset.dataset_path() and preset.dataset_path().is_file())}
        for preset in PRESETS.values()
    ]  # fmt: skip
    return render(
        request,
        "leads/import_index.html",
        {
            "form": form,
            "jobs": ImportJob.objects.select_related("created_by")[:RECENT_JOBS],
            "saved_mappings": SavedMapping.objects.all(),
            "presets": presets,
        },
    )


@importer_required
def import_job_page(request, pk: int):
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    if job.status != ImportJob.Status.DRAFT:
        return render(
            request,
            "leads/import_job.html",
            {"job": job, "progress": services.import_job_progress(job), "report": job.report},
        )
    context = mapping_context()
    targets = list(target_fields(job.kind, context))
    try:
        mapping = services.job_mapping(job)
    except MappingError as problem:  # a stored mapping from an older version of the format
        messages.error(request, f"The stored mapping was unreadable ({problem}); guessed again.")
        mapping, _ = services.mapping_guess(job.file.path, kind=job.kind)
    replace_form = ReplaceMappingForm(kind=job.kind)
    save_form = SaveMappingForm()
    form_kwargs = {"targets": targets, "header": job.header, "mapping": mapping}
    form = MappingForm(skip_invalid=job.skip_invalid, **form_kwargs)
    if request.method == "POST":
        action = request.POST.get("action", "preview")
        if action == "replace":
            replace_form = ReplaceMappingForm(request.POST, request.FILES, kind=job.kind)
            if replace_form.is_valid():
                chosen = replace_form.cleaned_data["chosen_mapping"]
                if chosen == "guess":
                    chosen, _ = services.mapping_guess(job.file.path, kind=job.kind)
                services.import_job_set_mapping(
                    job=job, mapping=chosen, skip_invalid=job.skip_invalid
                )
                return redirect("leads:imports:job", pk=job.pk)
        else:
            form = MappingForm(request.POST, **form_kwargs)
            save_form = SaveMappingForm(request.POST if action == "save" else None)
            if form.is_valid():
                mapping = form.cleaned_data["built_mapping"]
                services.import_job_set_mapping(
                    job=job, mapping=mapping, skip_invalid=form.cleaned_data["skip_invalid"]
                )
                response = _mapping_action(request, job, action, mapping, save_form)
                if response is not None:
                    return response
    problems, preview = [], None
    try:
        compile_mapping(mapping, job.header, context)
    except MappingError as problem:
        problems = problem.problems
    else:
        preview = services.import_job_preview(job=job)
    mapped = [name for name, _ in mapping.fields]
    preview_fields = [t for t in targets if t.name in mapped]
    preview_rows = [
        {**item, "cells": [item["values"].get(t.name, "") for t in preview_fields]}
        for item in (preview.preview if preview else [])
    ]
    return render(
        request,
        "leads/import_mapping.html",
        {
            "job": job,
            "kind_label": KIND_LABELS[job.kind],
            "form": form,
            "replace_form": replace_form,
            "save_form": save_form,
            "problems": problems,
            "preview": preview,
            "preview_fields": preview_fields,
            "preview_rows": preview_rows,
            "unmapped": unmapped_columns(mapping, job.header),
            "encoding_note": job.report.get("encoding_note", job.encoding),
            "header_warnings": job.report.get("header_warnings", []),
        },
    )


def _mapping_action(request, job, action, mapping, save_form):
    if action == "commit":
        try:
            job = services.import_job_commit(job=job, user=request.user)
        except (services.ImportRefused, MappingError) as refused:
            messages.error(request, str(refused))
            return None
        return redirect("leads:imports:job", pk=job.pk)
    if action == "save":
        if not save_form.is_valid():
            return None
        saved = services.saved_mapping_save(
            name=save_form.cleaned_data["name"], mapping=mapping, user=request.user
        )
        messages.success(request, f"Saved the mapping “{saved.name}”.")
    return redirect("leads:imports:job", pk=job.pk)


@require_GET
@importer_required
def import_progress(request, pk: int):
    return JsonResponse(services.import_job_progress(get_object_or_404(ImportJob, pk=pk)))


def _json_download(data: dict, filename: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@importer_required
def import_mapping_download(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    return _json_download(job.mapping, f"{job.kind}-mapping-import-{job.pk}.json")


@require_GET
@importer_required
def saved_mapping_download(request, pk: int):
    saved = get_object_or_404(SavedMapping, pk=pk)
    slug = "".join(ch if ch.isalnum() else "-" for ch in saved.name.lower()).strip("-")
    return _json_download(saved.mapping, f"{saved.kind}-{slug or 'mapping'}.json")


@require_GET
@importer_required
def import_errors_csv(request, pk: int):
    """The import report's row errors, for fixing the file in a spreadsheet."""
    job = get_object_or_404(ImportJob, pk=pk)
    rows = (
        (e["row"], e["column"], e["field"], e["value"], e["message"])
        for e in job.report.get("errors", [])
    )
    return csv_response(
        f"import-{job.pk}-problems.csv", ["row", "column", "field", "value", "problem"], rows
    )
