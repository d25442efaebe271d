"""Audit entries the model signals cannot write: a draft copied in bulk, and a publish.

Both are recorded as one explicit auditlog entry with the actor the service was given (a
service may run outside any request, where no middleware knows the user).
"""

from datetime import UTC

from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from leads.audit.kinds import additional_data_for

DRAFT_CREATED = "draft_created"
PUBLISHED = "published"
PUBLISH_FIELDS = ("status", "effective_from", "published_at", "published_by")


def _actor(actor: AbstractBaseUser | None):
    return actor if actor is not None and actor.is_authenticated else None


def audit_draft_created(
    *,
    draft: models.Model,
    actor: AbstractBaseUser | None,
    copy_from: models.Model | None,
    copied_rows: int,
) -> LogEntry:
    """One entry for a new draft: its fields (from nothing) and where its rows came from."""
    if copy_from is None:
        summary = f"Draft v{draft.number} created (empty)"
    else:
        summary = (
            f"Draft v{draft.number} created from v{copy_from.number} "
            f"({copied_rows} {'row' if copied_rows == 1 else 'rows'} copied)"
        )
    return LogEntry.objects.log_create(
        draft,
        force_log=True,
        action=LogEntry.Action.CREATE,
        changes=model_instance_diff(None, draft) or {},
        actor=_actor(actor),
        additional_data={
            **additional_data_for(draft),
            "event": DRAFT_CREATED,
            "summary": summary,
            "copied_from": copy_from.number if copy_from is not None else None,
        },
    )


def audit_published(
    *, version: models.Model, before: models.Model, actor: AbstractBaseUser | None
) -> LogEntry:
    """The publish of ``version`` (``before`` is the draft as it was): what changed and when the
    version takes force."""
    effective = version.effective_from.astimezone(UTC)
    summary = f"Published v{version.number}, effective {effective:%Y-%m-%d %H:%M} UTC"
    return LogEntry.objects.log_create(
        version,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        changes=model_instance_diff(before, version, fields_to_check=PUBLISH_FIELDS) or {},
        actor=_actor(actor),
        additional_data={
            **additional_data_for(version),
            "event": PUBLISHED,
            "summary": summary,
            "effective_from": effective.isoformat(),
        },
    )
