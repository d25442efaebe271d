"""Writes of the sales organisation: sales reps (who receives handoffs, in which territory and
tiers, at what capacity) and teams (a manager and the reps whose ``manager`` they are).

Each write runs in one transaction, validates through the model (``full_clean``: the admin's
rules and messages) and saves only the fields it changes. A team is not a row of its own: it is
the reps pointing at a manager, so setting a team moves reps in and out of it together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from leads.models import SalesRep

logger = logging.getLogger(__name__)

# What a rep's writes may set (``user`` only on creation; ``last_assigned_at`` never).
REP_FIELDS = (
    "region",
    "tiers",
    "capacity",
    "manager",
    "is_active",
    "out_of_office_from",
    "out_of_office_until",
)


def _check_manager(rep: SalesRep) -> None:
    if rep.manager_id is not None and rep.manager_id == rep.user_id:
        raise ValidationError({"manager": "A rep cannot be their own manager."})


def sales_rep_create(*, actor, user, **fields) -> SalesRep:
    """Make ``user`` a sales rep. An inactive user (an owner imported from another CRM) may be
    one: their rows then have a rep and a team; round robin assigns only active users."""
    unknown = set(fields) - set(REP_FIELDS)
    if unknown:
        raise TypeError(f"Unknown sales rep fields: {sorted(unknown)}")
    with transaction.atomic():
        if SalesRep.objects.filter(user=user).exists():
            raise ValidationError({"user": f"{user.get_username()} is already a sales rep."})
        rep = SalesRep(user=user, **fields)
        rep.full_clean()
        _check_manager(rep)
        rep.save()
    logger.info("Sales rep %s created by %s", rep.pk, getattr(actor, "pk", None))
    return rep


def sales_rep_update(*, actor, rep: SalesRep, **fields) -> SalesRep:
    """Change a rep's territory, tiers, capacity, manager, activity or time off."""
    unknown = set(fields) - set(REP_FIELDS)
    if unknown:
        raise TypeError(f"Unknown sales rep fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = SalesRep.objects.select_for_update().get(pk=rep.pk)
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.full_clean()
        _check_manager(locked)
        if fields:
            locked.save(update_fields=list(fields))
    logger.info(
        "Sales rep %s changed by %s: %s", rep.pk, getattr(actor, "pk", None), sorted(fields)
    )
    return locked


def sales_reps_ensure(*, actor_id: int | None, user_ids: list[int]) -> list[int]:
    """Make each of these users a sales rep (default territory, tiers and capacity, on no
    team) unless they are one: how owners imported from another CRM become reps in one step.
    Validated like any rep; one INSERT. Returns the new reps' ids."""
    with transaction.atomic():
        have = set(SalesRep.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
        reps = [SalesRep(user_id=pk) for pk in dict.fromkeys(user_ids) if pk not in have]
        for rep in reps:
            rep.full_clean(exclude=["user"])  # the users exist: they were just read or made
        created = SalesRep.objects.bulk_create(reps)
    ids = [rep.pk for rep in created]
    if ids:
        logger.info("%s sales reps created for imported owners by %s", len(ids), actor_id)
    return ids


@dataclass(frozen=True)
class TeamChange:
    """What setting a team did: the reps that joined it and those that left it (now on no
    team)."""

    joined: tuple[int, ...]
    left: tuple[int, ...]


def team_set(*, actor, manager, member_ids: list[int]) -> TeamChange:
    """Make the reps whose user ids are ``member_ids`` the whole team of ``manager``: those
    listed join it (leaving any other team), the others leave it. Every member must be a sales
    rep already, and the manager an active user who is not one of them."""
    member_ids = list(dict.fromkeys(member_ids))
    errors = {}
    if not manager.is_active:
        errors["manager"] = f"{manager.get_username()} is inactive and cannot manage a team."
    if manager.pk in member_ids:
        errors["members"] = "A manager cannot be a member of their own team."
    with transaction.atomic():
        reps = list(
            SalesRep.objects.select_for_update().filter(user_id__in=member_ids).order_by("pk")
        )
        missing = sorted(set(member_ids) - {rep.user_id for rep in reps})
        if missing:
            known = get_user_model().objects.filter(pk__in=missing).values_list("pk", flat=True)
            unknown = sorted(set(missing) - set(known))
            not_reps = sorted(set(missing) - set(unknown))
            parts = []
            if unknown:
                parts.append(f"no user with id {', '.join(map(str, unknown))}")
            if not_reps:
                parts.append(
                    f"user {', '.join(map(str, not_reps))} is not a sales rep (create the rep "
                    "first)"
                )
            errors.setdefault("members", "; ".join(parts) + ".")
        if errors:
            raise ValidationError(errors)
        joined = [rep.pk for rep in reps if rep.manager_id != manager.pk]
        SalesRep.objects.filter(pk__in=joined).update(manager=manager)
        leaving = SalesRep.objects.filter(manager=manager).exclude(user_id__in=member_ids)
        left = list(leaving.values_list("pk", flat=True))
        leaving.update(manager=None)
    logger.info(
        "Team of %s set by %s: joined %s, left %s",
        manager.pk,
        getattr(actor, "pk", None),
        joined,
        left,
    )
    return TeamChange(tuple(joined), tuple(left))
