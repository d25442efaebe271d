"""Definitions and their change history: readable by every signed-in user, so both teams can
see who changed the rules, when, and what exactly changed."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from leads.audit import selectors
from leads.audit.kinds import KINDS_BY_KEY
from revops.pagination import page_of

PAGE_SIZE = 50


def _positive_int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


@login_required
def definitions_index(request):
    rows = selectors.definitions_index()
    for row in rows:
        row["can_edit"] = request.user.has_perm(row["edit_permission"])
    return render(request, "audit/index.html", {"rows": rows})


@login_required
def definition_history(request, kind: str):
    definition = KINDS_BY_KEY.get(kind)
    if definition is None:
        raise Http404("No such definition")
    version = _positive_int(request.GET.get("version"))
    actor_id = _positive_int(request.GET.get("actor"))
    entries = selectors.definition_history(definition, version=version, actor_id=actor_id)
    page, query = page_of(request, entries, PAGE_SIZE)
    return render(
        request,
        "audit/history.html",
        {
            "kind": definition,
            "page": page,
            "entries": [selectors.history_entry(entry) for entry in page.object_list],
            "version": version,
            "actor_id": actor_id,
            "query": query,
            **selectors.history_filter_options(definition),
        },
    )
