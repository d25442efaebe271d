"""The target-account list: every signed-in user reads the list in force (search, pages, CSV);
RevOps admins (``leads.change_targetaccountlistversion``) edit a draft and publish it. Views
parse input and call ``selectors`` (reads) or ``services`` (writes)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from leads.csv_export import csv_response, export_filename, export_reads_may_be_stale
from leads.target_accounts import selectors, services
from leads.target_accounts.forms import ImportForm, NoteForm
from revops.access import page_permission_required
from revops.pagination import page_of

EDIT_LIST = "leads.change_targetaccountlistversion"
PAGE_SIZE = 50
CSV_HEADER = ["account", "domain", "industry", "country", "tier", "note"]


def _csv_rows(rows):
    for row in rows.iterator(chunk_size=2_000):
        account = row.account
        yield [account.name, account.domain, account.industry, account.country, row.tier, row.note]


@login_required
@export_reads_may_be_stale
def target_list_page(request):
    """The list in force, searched by name or domain, 50 a page; ``?format=csv`` exports it."""
    version = selectors.list_in_force()
    query = request.GET.get("q", "").strip()
    rows = selectors.list_rows(version, query=query)
    if request.GET.get("format") == "csv":
        name = export_filename(
            "target-accounts", f"v{version.number}" if version else "", query and f"search {query}"
        )
        return csv_response(name, CSV_HEADER, _csv_rows(rows))
    page, query_string = page_of(request, rows, PAGE_SIZE)
    return render(
        request,
        "leads/target_accounts.html",
        {
            "version": version,
            "draft": selectors.list_draft(),
            "page": page,
            "search": query,
            "query": query_string,
            "can_edit": request.user.has_perm(EDIT_LIST),
        },
    )


@require_http_methods(["GET", "POST"])
@page_permission_required(EDIT_LIST)
def target_list_edit(request):
    """The draft: paste accounts to add, tick rows to remove, note, publish. Shown from the
    list in force until the first change makes the draft (a copy of it); a refused change
    keeps nothing, not even that new draft."""
    draft = selectors.list_draft()
    in_force = selectors.list_in_force()
    import_form = ImportForm()
    note_form = NoteForm(initial={"note": draft.note if draft else ""})
    refusals: list[str] = []
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "import":
            import_form = ImportForm(request.POST)
        elif action in ("note", "publish"):
            note_form = NoteForm(request.POST)
        try:
            with transaction.atomic():
                draft = services.target_list_draft(actor=request.user)
                done = _apply(request, action, draft, import_form, note_form)
        except ValidationError as refused:
            refusals = refused.messages
            status = 400
            draft = selectors.list_draft()
        else:
            messages.success(request, done)
            if action == "publish":
                return redirect("target_accounts:list")
            return redirect("target_accounts:edit")
    shown = draft or in_force
    query = request.GET.get("q", "").strip()
    page, query_string = page_of(request, selectors.list_rows(shown, query=query), PAGE_SIZE)
    return render(
        request,
        "leads/target_accounts_edit.html",
        {
            "draft": draft,
            "in_force": in_force,
            "shown": shown,
            "page": page,
            "search": query,
            "query": query_string,
            "import_form": import_form,
            "note_form": note_form,
            "refusals": refusals,
        },
        status=status,
    )


def _apply(request, action: str, draft, import_form: ImportForm, note_form: NoteForm) -> str:
    """Run one edit on the draft; the message saying what was done."""
    if action == "import":
        if not import_form.is_valid():
            raise ValidationError("Paste at least one account (domain or name) a line.")
        result = services.target_accounts_import(
            draft=draft, text=import_form.cleaned_data["lines"], actor=request.user
        )
        return (
            f"Draft v{draft.number}: {result.added} added, {result.updated} updated. "
            "Nobody sees it until it is published."
        )
    if action == "remove":
        ids = [int(v) for v in request.POST.getlist("account") if v.isdigit()]
        if not ids:
            raise ValidationError("Tick the accounts to remove.")
        removed = services.target_accounts_remove(draft=draft, account_ids=ids)
        return f"Draft v{draft.number}: {removed} removed."
    if action in ("note", "publish"):
        note = note_form.cleaned_data.get("note", "") if note_form.is_valid() else ""
        services.target_list_note(draft=draft, note=note)
        if action == "publish":
            services.target_list_publish(draft=draft, actor=request.user)
            return (
                f"Target-account list v{draft.number} is published and in force: both teams "
                "see it, and the scorecard counts the running period under it."
            )
        return f"Draft v{draft.number} saved."
    raise ValidationError("Unknown action.")
