"""Writes of the shared goals: a period's draft, its goals, and publishing it.

Goal sets are versioned definitions (``leads.services.definitions``): publishing is that
module's ``definition_publish`` (who, when, effective from, one audit entry); a draft is made
here because it needs its period. Every write validates first (``full_clean``) and refuses with
``ValidationError``, changing nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from auditlog.context import disable_auditlog
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from leads.audit.services import audit_draft_created
from leads.services.definitions import definition_publish, next_number
from metrics.goals import GoalPeriod
from metrics.models import Goal, GoalSet

# The fields of a goal a draft takes over from the set it is copied from.
GOAL_FIELDS = (
    "order",
    "metric",
    "side",
    "scope",
    "channel_group",
    "source",
    "team_manager",
    "rep",
    "target",
    "direction",
    "amber_at",
    "red_at",
    "floor",
)


def _actor(user: AbstractBaseUser | None):
    return user if user is not None and user.is_authenticated else None


def goal_set_create_draft(
    *,
    period: GoalPeriod,
    actor: AbstractBaseUser | None,
    copy_from: GoalSet | None = None,
    note: str = "",
) -> GoalSet:
    """A new draft of ``period``'s goals, numbered after the newest goal set, holding a copy of
    ``copy_from``'s goals (the period's set in force, or last period's to start from)."""
    with transaction.atomic():
        draft = GoalSet(
            number=next_number(GoalSet),
            period_kind=period.kind,
            first_day=period.first_day,
            last_day=period.last_day,
            note=note,
            created_by=_actor(actor),
        )
        draft.full_clean(exclude=["number"])
        copied = []
        # One "draft vN created from vM" audit entry rather than one per copied goal.
        with disable_auditlog():
            draft.save()
            if copy_from is not None:
                copied = [
                    Goal(version=draft, **{f: getattr(goal, f) for f in GOAL_FIELDS})
                    for goal in copy_from.goals.all()
                ]
                Goal.objects.bulk_create(copied)
        audit_draft_created(
            draft=draft, actor=_actor(actor), copy_from=copy_from, copied_rows=len(copied)
        )
    return draft


@transaction.atomic
def goal_set_replace_goals(
    *, draft: GoalSet, goals: Iterable[Goal], note: str | None = None
) -> GoalSet:
    """Make ``goals`` (unsaved) the draft's goals, in the order given, replacing the ones it
    had. Refused when the draft is published or a goal is invalid (the error names the row:
    ``goal 2: …``)."""
    draft = GoalSet.objects.select_for_update().get(pk=draft.pk)
    draft.ensure_editable()
    rows = list(goals)
    errors = []
    for index, goal in enumerate(rows):
        goal.version = draft
        goal.order = index
        try:
            goal.full_clean()
        except ValidationError as invalid:
            for field, messages in invalid.message_dict.items():
                where = "" if field == "__all__" else f"{field}: "
                errors.extend(f"Goal {index + 1}: {where}{message}" for message in messages)
    if errors:
        raise ValidationError(errors)
    draft.goals.all().delete()
    for goal in rows:
        goal.pk = None
        goal.save()
    if note is not None and note != draft.note:
        draft.note = note
        draft.save(update_fields=["note"])
    return draft


def goal_set_publish(
    *, draft: GoalSet, actor: AbstractBaseUser | None, effective_from: datetime | None = None
) -> GoalSet:
    """Publish a draft: it replaces the period's goals in force from ``effective_from`` (now)."""
    return definition_publish(version=draft, actor=_actor(actor), effective_from=effective_from)
