"""Writes of the sales organisation: sales reps (who receives handoffs, in which territory and
tiers, at what capacity) and teams (a manager and the reps whose ``manager`` they are).

Each write runs in one transaction, validates through the model (``full_clean``: the admin's
rules and messages) and saves only the fields it changes. A team is not a row of its own: it is
the reps pointing at a manager, so setting a team moves reps in and out of it together.
"""

from __future__ import annotations

import logging
from collections import Counter
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


# What a bulk write (a CSV import) may set; the manager by user id.
REP_IMPORT_FIELDS = ("region", "tiers", "capacity", "manager_id", "is_active")
# Checked elsewhere (users and managers in bulk), or not set by a bulk write.
_NOT_CHECKED_PER_REP = ["user", "manager", "out_of_office_from", "out_of_office_until"]


def sales_rep_problems(**fields) -> dict[str, str]:
    """What the model says about a rep with these fields (its user and manager aside), as
    ``{field: message}``: a file's row is checked with this before anything is written."""
    unknown = set(fields) - set(REP_IMPORT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown sales rep fields: {sorted(unknown)}")
    return _problems(SalesRep(**fields))


def _problems(rep: SalesRep) -> dict[str, str]:
    try:
        rep.full_clean(exclude=_NOT_CHECKED_PER_REP)
    except ValidationError as error:
        return {name: " ".join(messages) for name, messages in error.message_dict.items()}
    return {}


@dataclass(frozen=True)
class RepValues:
    """One rep as a file gives it: the user, and only the fields the file sets (a blank cell
    is no change), among ``REP_IMPORT_FIELDS``."""

    user_id: int
    fields: dict


@dataclass(frozen=True)
class RepsWritten:
    """What ``sales_reps_upsert`` did, by user id: reps created, reps changed, and how many
    were already as given."""

    created: tuple[int, ...]
    updated: tuple[int, ...]
    unchanged: int


def sales_reps_upsert(*, actor_id: int | None, reps: list[RepValues]) -> RepsWritten:
    """Create or update many sales reps at once (a CSV import of reps and their teams): a
    user without a rep record gets one, a rep gets the fields given; setting ``manager_id``
    puts the rep on that manager's team. An imported manager may be an inactive user (a
    manager from another CRM's history): their team is still a team on the dashboards.

    Validated like ``sales_rep_create`` (the model's rules, no rep their own manager, the
    managers exist), all or nothing in one transaction: one INSERT, and one UPDATE per set of
    changed fields. Giving a rep exactly what it has changes nothing."""
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        user_ids = [values.user_id for values in reps]
        existing = {
            rep.user_id: rep
            for rep in SalesRep.objects.select_for_update()
            .filter(user_id__in=user_ids)
            .order_by("pk")
        }
        twice = sorted(pk for pk, n in Counter(user_ids).items() if n > 1)
        if twice:
            errors["user"] = [f"user {pk} is given twice" for pk in twice]
        managers = {values.fields.get("manager_id") for values in reps} - {None}
        known = set(get_user_model().objects.filter(pk__in=managers).values_list("pk", flat=True))
        new, changed = [], {}
        for values in reps:
            unknown = set(values.fields) - set(REP_IMPORT_FIELDS)
            if unknown:
                raise TypeError(f"Unknown sales rep fields: {sorted(unknown)}")
            rep = existing.get(values.user_id) or SalesRep(user_id=values.user_id)
            names = tuple(
                sorted(
                    n for n, v in values.fields.items() if rep.pk is None or getattr(rep, n) != v
                )
            )
            for name in names:
                setattr(rep, name, values.fields[name])
            problems = _problems(rep)
            manager_id = rep.manager_id
            if manager_id is not None and manager_id not in known and "manager_id" in names:
                problems["manager"] = f"No user with id {manager_id}."
            if manager_id is not None and manager_id == rep.user_id:
                problems["manager"] = "A rep cannot be their own manager."
            for name, message in problems.items():
                errors.setdefault(name, []).append(f"user {values.user_id}: {message}")
            if rep.pk is None:
                new.append(rep)
            elif names:
                changed.setdefault(names, []).append(rep)
        if errors:
            raise ValidationError(errors)
        created = SalesRep.objects.bulk_create(new)
        for names, group in changed.items():
            SalesRep.objects.bulk_update(group, list(names))
    updated = [rep.user_id for group in changed.values() for rep in group]
    if created or updated:
        logger.info(
            "Sales reps written in bulk by %s: %s created, %s changed",
            actor_id,
            len(created),
            len(updated),
        )
    return RepsWritten(
        created=tuple(rep.user_id for rep in created),
        updated=tuple(updated),
        unchanged=len(reps) - len(created) - len(updated),
    )


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
