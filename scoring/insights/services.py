"""Turn an insight's suggestion into a change of a draft ICP version (never of a published one)."""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from leads.choices import CriterionAttribute, DefinitionStatus
from leads.models import IcpCriterion, IcpVersion
from leads.selectors import icp_in_force
from leads.services import definition_create_draft
from scoring.insights import maths
from scoring.insights.selectors import icp_insights, insight_suggestions

CHANGE_ICP = "leads.change_icpversion"


@dataclass(frozen=True)
class AppliedSuggestion:
    draft: IcpVersion
    created_draft: bool
    summary: str


def _draft_to_change(actor) -> tuple[IcpVersion, bool]:
    draft = IcpVersion.objects.filter(status=DefinitionStatus.DRAFT).order_by("-number").first()
    if draft is not None:
        return draft, False
    current = icp_in_force()
    if current is None:
        raise ValidationError("There is no ICP in force to draft a change from.")
    note = f"Draft from v{current.number}, changed from the ICP insights."
    return definition_create_draft(
        model=IcpVersion, actor=actor, copy_from=current, note=note
    ), True


def suggestion_apply(*, key: str, actor: AbstractBaseUser | None) -> AppliedSuggestion:
    """Apply the suggestion ``key`` (as the insights page lists it now) to the newest draft ICP,
    creating one from the ICP in force if there is none."""
    if actor is not None and not actor.has_perm(CHANGE_ICP):
        raise PermissionDenied("You may not change the ICP.")
    suggestion = next((s for s in insight_suggestions(icp_insights()) if s.key == key), None)
    if suggestion is None:
        raise ValidationError(
            "This suggestion no longer applies (the deals or the draft changed): reload the page."
        )
    with transaction.atomic():
        draft, created = _draft_to_change(actor)
        draft = IcpVersion.objects.select_for_update().get(pk=draft.pk)
        if suggestion.kind == "raise":
            summary = _raise(draft, suggestion.segment)
        else:
            summary = _lower(draft, suggestion.segment)
    return AppliedSuggestion(draft=draft, created_draft=created, summary=summary)


def _criterion_name(segment: maths.Segment) -> str:
    attribute = CriterionAttribute(segment.attribute).label
    return f"{attribute}: {segment.label}"[:120]


def _raise(draft: IcpVersion, segment: maths.Segment) -> str:
    name = _criterion_name(segment)
    criterion = draft.criteria.filter(name=name).first()
    if criterion is None:
        criterion = IcpCriterion(version=draft, name=name, attribute=segment.attribute)
        band = next(
            (b for b in maths.BANDS.get(segment.attribute, ()) if b.label == segment.key), None
        )
        if band is not None:
            criterion.min_value = Decimal(str(band.low)) if band.low is not None else None
            criterion.max_value = Decimal(str(band.high)) if band.high is not None else None
        else:
            criterion.values = [segment.key]
    criterion.points = max(criterion.points, maths.SUGGESTED_POINTS)
    criterion.is_exclusion = False
    criterion.full_clean()
    criterion.save()
    return f"“{name}” is worth {criterion.points} fit points in ICP v{draft.number} (draft)."


def _lower(draft: IcpVersion, segment: maths.Segment) -> str:
    changes = []
    for name in segment.criteria:
        criterion = draft.criteria.filter(name=name).first()
        if criterion is None:
            continue
        is_list = segment.attribute not in maths.BANDS
        others = [v for v in criterion.values if v.lower() != segment.key.lower()]
        if is_list and others:
            # The criterion also covers other values: only this segment stops earning points.
            criterion.values = others
            criterion.full_clean()
            criterion.save()
            changes.append(f"“{name}” no longer matches {segment.label}")
            continue
        points = maths.lowered_points(criterion.points)
        if points == 0:
            criterion.delete()
            changes.append(f"“{name}” removed")
        else:
            criterion.points = points
            criterion.full_clean()
            criterion.save()
            changes.append(f"“{name}” lowered to {points} points")
    if not changes:
        raise ValidationError(
            f"ICP v{draft.number} (draft) has none of the criteria this suggestion is about."
        )
    return "; ".join(changes) + f" in ICP v{draft.number} (draft)."
