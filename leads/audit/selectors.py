"""Reads of the definitions' audit trail: the index of definitions and each one's history."""

from dataclasses import dataclass, field
from datetime import datetime

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from leads.audit.kinds import KINDS, DefinitionKind
from leads.audit.services import DRAFT_CREATED, PUBLISHED
from leads.choices import DefinitionStatus
from leads.selectors import version_in_force

ACTION_LABELS = {
    LogEntry.Action.CREATE: "created",
    LogEntry.Action.UPDATE: "changed",
    LogEntry.Action.DELETE: "deleted",
}
EVENT_LABELS = {DRAFT_CREATED: "draft created", PUBLISHED: "published"}


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    what: str
    object_repr: str
    action: str
    version: int | None
    is_publish: bool
    summary: str
    changes: list[FieldChange] = field(default_factory=list)


def kind_entries(kind: DefinitionKind) -> QuerySet[LogEntry]:
    """Every audit entry of a definition (all its models), newest first."""
    return (
        LogEntry.objects.filter(content_type_id__in=kind.content_type_ids())
        .select_related("actor", "content_type")
        .order_by("-timestamp", "-pk")
    )


def definition_history(
    kind: DefinitionKind, *, version: int | None = None, actor_id: int | None = None
) -> QuerySet[LogEntry]:
    entries = kind_entries(kind)
    if version is not None:
        entries = entries.filter(additional_data__version=version)
    if actor_id is not None:
        entries = entries.filter(actor_id=actor_id)
    return entries


def history_filter_options(kind: DefinitionKind) -> dict:
    """The versions and the people a history can be filtered by."""
    version_model = kind.version_class()
    versions = (
        list(version_model.objects.order_by("-number").values_list("number", flat=True))
        if version_model is not None
        else []
    )
    actor_ids = kind_entries(kind).order_by().filter(actor__isnull=False).values("actor_id")
    actors = list(get_user_model().objects.filter(pk__in=actor_ids).order_by("username"))
    return {"versions": versions, "actors": actors}


def _display(value) -> str:
    return "—" if value in (None, "None", "") else str(value)


def history_entry(entry: LogEntry) -> HistoryEntry:
    data = entry.additional_data or {}
    event = data.get("event", "")
    model = entry.content_type.model_class()
    what = model._meta.verbose_name if model is not None else entry.content_type.model
    changes = [
        FieldChange(field=str(name), before=_display(values[0]), after=_display(values[1]))
        for name, values in (entry.changes_display_dict if entry.changes else {}).items()
        if len(values) == 2
    ]
    return HistoryEntry(
        at=entry.timestamp,
        actor=(entry.actor.get_full_name() or entry.actor.get_username())
        if entry.actor
        else "system",
        what=str(what),
        object_repr=entry.object_repr,
        action=EVENT_LABELS.get(event) or ACTION_LABELS.get(entry.action, "logged"),
        version=data.get("version"),
        is_publish=event == PUBLISHED,
        summary=data.get("summary", ""),
        changes=changes,
    )


def definitions_index() -> list[dict]:
    """Each definition: its version in force, drafts waiting, and its latest change."""
    rows = []
    for kind in KINDS:
        version_model = kind.version_class()
        in_force = drafts = None
        if version_model is not None:
            in_force = version_in_force(version_model)
            drafts = version_model.objects.aggregate(
                n=Count("pk", filter=Q(status=DefinitionStatus.DRAFT))
            )["n"]
        latest = kind_entries(kind).first()
        app_label, model_name = kind.main_model.lower().split(".")
        rows.append(
            {
                "kind": kind,
                "in_force": in_force,
                "drafts": drafts,
                "latest": history_entry(latest) if latest is not None else None,
                "history_url": reverse("audit:history", args=[kind.key]),
                "admin_url": reverse(f"admin:{app_label}_{model_name}_changelist"),
                "edit_permission": f"{app_label}.change_{model_name}",
            }
        )
    return rows
