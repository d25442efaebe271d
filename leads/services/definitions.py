"""Writes on the versioned definitions: drafts and publishing."""

import copy
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from auditlog.context import disable_auditlog
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leads.audit.services import audit_draft_created, audit_published
from leads.choices import DefinitionStatus
from leads.models import DefinitionVersion
from leads.selectors import latest_published_effective_from

V = TypeVar("V", bound=DefinitionVersion)

# Other apps react to a publish (scoring rescores every lead) without leads importing them.
_PUBLISH_HOOKS: dict[type[DefinitionVersion], list[Callable[..., None]]] = defaultdict(list)
# What to tell the publisher about that work: (message, URL name of a page that follows it).
_PUBLISH_FOLLOW_UPS: dict[type[DefinitionVersion], list[tuple[str, str]]] = defaultdict(list)


def on_definition_published(
    model: type[DefinitionVersion],
    hook: Callable[..., None],
    *,
    follow_up: tuple[str, str] | None = None,
) -> None:
    """Register ``hook(version=…)``; it runs inside the publishing transaction, so the work it
    records commits (or rolls back) with the publish."""
    if hook not in _PUBLISH_HOOKS[model]:
        _PUBLISH_HOOKS[model].append(hook)
        if follow_up is not None:
            _PUBLISH_FOLLOW_UPS[model].append(follow_up)


def definition_publish_follow_ups(model: type[DefinitionVersion]) -> list[tuple[str, str]]:
    """The work a publish of ``model`` starts elsewhere, as (message, URL name) pairs."""
    return list(_PUBLISH_FOLLOW_UPS[model])


def definition_publish(
    *, version: V, actor: AbstractBaseUser | None, effective_from: datetime | None = None
) -> V:
    """Publish a draft. It takes force at ``effective_from`` (default: now) and supersedes the
    version in force before it; older versions stay readable for history and KPIs."""
    model = type(version)
    with transaction.atomic():
        version = model.objects.select_for_update().get(pk=version.pk)
        if version.is_published:
            raise ValidationError(f"{version.label} v{version.number} is already published.")
        effective_from = effective_from or timezone.now()
        latest = latest_published_effective_from(model)
        if latest is not None and effective_from <= latest:
            raise ValidationError(
                {
                    "effective_from": (
                        f"Must be after {latest:%Y-%m-%d %H:%M} UTC, when the latest published "
                        f"{version.label} took force: history cannot be rewritten."
                    )
                }
            )
        version.full_clean()
        version.validate_for_publish()
        before = copy.copy(version)
        version.status = DefinitionStatus.PUBLISHED
        version.effective_from = effective_from
        version.published_at = timezone.now()
        version.published_by = actor
        # One explicit "published vN, effective …" entry instead of the signal's plain update.
        with disable_auditlog():
            version.save(update_fields=["status", "effective_from", "published_at", "published_by"])
        audit_published(version=version, before=before, actor=actor)
        for hook in _PUBLISH_HOOKS[model]:
            hook(version=version)
    return version


def next_number(model: type[DefinitionVersion]) -> int:
    """The number the next version of ``model`` takes (the unique constraint guards races)."""
    newest = model.objects.order_by("-number").values_list("number", flat=True).first()
    return (newest or 0) + 1


def definition_create_draft(
    *, model: type[V], actor: AbstractBaseUser | None, copy_from: V | None = None, note: str = ""
) -> V:
    """A new draft, numbered after the newest version, optionally a copy of ``copy_from``."""
    with transaction.atomic():
        number = next_number(model)
        fields = {}
        if copy_from is not None:
            fields = {
                f.name: getattr(copy_from, f.name)
                for f in model._meta.concrete_fields
                if f.editable and not f.primary_key and f.name not in {"note", "created_by"}
            }
        children = []
        # The copied rows go in with bulk_create (no signals): the audit trail gets one
        # "draft vN created from vM" entry rather than one per row, and none missing.
        with disable_auditlog():
            draft = model.objects.create(number=number, created_by=actor, note=note, **fields)
            if copy_from is not None:
                children = list(getattr(copy_from, model.children_relation).all())
                for child in children:
                    child.pk = None
                    child.id = None
                    child._state.adding = True
                    child.version = draft
                if children:
                    type(children[0]).objects.bulk_create(children)
        audit_draft_created(
            draft=draft, actor=actor, copy_from=copy_from, copied_rows=len(children)
        )
    return draft
