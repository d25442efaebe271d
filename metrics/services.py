"""Writes of the weekly alignment meeting (the week's meeting, its actions, freezing its figures)
and of the monthly review (its month, freezing its figures).

Each service validates before it writes (``full_clean``) inside one transaction, so a refusal
raises ``ValidationError`` and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format

from metrics.meeting import STALL_DAYS_DEFAULT, display_zone, meeting_page_figures, week_of
from metrics.models import (
    FIGURES_VERSION,
    ActionItem,
    Meeting,
    MeetingSnapshot,
    MonthlyReview,
    MonthlyReviewSnapshot,
)
from metrics.monthly import review_page_figures


def _user_or_none(user: AbstractBaseUser | None):
    return user if user is not None and user.is_authenticated else None


def meeting_of_week(today: date) -> Meeting | None:
    """The meeting already held or planned in the week (Monday to Sunday) ``today`` falls in
    (the earliest, should there be several)."""
    monday, sunday = week_of(today)
    return Meeting.objects.filter(held_on__range=(monday, sunday)).order_by("held_on").first()


def meeting_get_or_create_for_week(
    *, today: date, user: AbstractBaseUser | None = None
) -> tuple[Meeting, bool]:
    """The meeting of the week ``today`` falls in, or a new one held ``today``."""
    existing = meeting_of_week(today)
    if existing is not None:
        return existing, False
    meeting = Meeting(
        held_on=today,
        title=f"Pipeline review, week of {date_format(week_of(today)[0], 'j F Y')}",
        created_by=_user_or_none(user),
    )
    meeting.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            meeting.save()
    except IntegrityError:
        # Two first visits at once: the other one created it.
        return Meeting.objects.get(held_on=today), False
    return meeting, True


@transaction.atomic
def action_item_add(
    *,
    meeting: Meeting,
    text: str,
    owner: AbstractBaseUser,
    due_on: date,
    created_by: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> ActionItem:
    """Record an action agreed in ``meeting``. Refused (``ValidationError`` on ``text`` or
    ``due_on``) when it says nothing or falls due before the meeting."""
    if owner is None or not owner.is_active:
        raise ValidationError({"owner": "Choose an active user to own the action."})
    item = ActionItem(
        meeting=meeting,
        text=text,
        owner=owner,
        due_on=due_on,
        created_by=_user_or_none(created_by),
        created_at=now or timezone.now(),
    )
    item.full_clean()
    item.save()
    return item


@transaction.atomic
def action_item_complete(
    *, item: ActionItem | int, user: AbstractBaseUser, now: datetime | None = None
) -> ActionItem:
    """Mark an action done by ``user``. Refused when it is already done: the first completion
    (who and when) is kept."""
    pk = item.pk if isinstance(item, ActionItem) else item
    locked = ActionItem.objects.select_for_update(of=("self",)).select_related("done_by").get(pk=pk)
    if locked.done_at is not None:
        when = date_format(timezone.localtime(locked.done_at, display_zone()), "j M Y, H:i")
        by = ""
        if locked.done_by is not None:
            by = f" by {locked.done_by.get_full_name() or locked.done_by.get_username()}"
        raise ValidationError(f"“{locked.text}” was already marked done on {when}{by}.")
    # Never before it was agreed (a clock skew must not break the constraint).
    locked.done_at = max(now or timezone.now(), locked.created_at)
    locked.done_by = _user_or_none(user)
    locked.save(update_fields=["done_at", "done_by"])
    return locked


@transaction.atomic
def meeting_freeze(
    *,
    meeting: Meeting,
    user: AbstractBaseUser | None,
    now: datetime | None = None,
    stall_days: int = STALL_DAYS_DEFAULT,
) -> MeetingSnapshot:
    """Freeze the meeting's figures as they stand now, so it can be reopened as discussed.

    Freezing again is allowed and replaces what the page shows: the new snapshot is added with
    who froze it and when, and the earlier ones are kept as the record of what was replaced.
    """
    # Serialise concurrent freezes of one meeting: the later one is simply the latest.
    Meeting.objects.select_for_update().filter(pk=meeting.pk).exists()
    now = now or timezone.now()
    snapshot = MeetingSnapshot(
        meeting=meeting,
        frozen_at=now,
        frozen_by=_user_or_none(user),
        figures_version=FIGURES_VERSION,
        figures=meeting_page_figures(meeting, now=now, stall_days=stall_days),
    )
    snapshot.full_clean()
    snapshot.save()
    return snapshot


# --- The monthly review ----------------------------------------------------------------------


def monthly_review_get_or_create(
    *, month: date, user: AbstractBaseUser | None = None
) -> tuple[MonthlyReview, bool]:
    """The review of the month ``month`` falls in, created on first use."""
    first = month.replace(day=1)
    review = MonthlyReview(month=first, created_by=_user_or_none(user))
    existing = MonthlyReview.objects.filter(month=first).first()
    if existing is not None:
        return existing, False
    review.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError:
        return MonthlyReview.objects.get(month=first), False
    return review, True


@transaction.atomic
def monthly_review_freeze(
    *, review: MonthlyReview, user: AbstractBaseUser | None, now: datetime | None = None
) -> MonthlyReviewSnapshot:
    """Freeze the review's figures as they stand now, the way ``meeting_freeze`` does: a new
    append-only snapshot with who and when; earlier ones stay on record."""
    MonthlyReview.objects.select_for_update().filter(pk=review.pk).exists()
    now = now or timezone.now()
    snapshot = MonthlyReviewSnapshot(
        review=review,
        frozen_at=now,
        frozen_by=_user_or_none(user),
        figures_version=FIGURES_VERSION,
        figures=review_page_figures(review, now=now),
    )
    snapshot.full_clean()
    snapshot.save()
    return snapshot
