"""Content requests: assets sales asks marketing for from a handoff, and marketing closes.

Writes (``content_request_<action>``) validate first (``full_clean``) inside one transaction and
refuse with ``PermissionDenied`` (wrong role) or ``ValidationError`` (bad input, a request
already closed), changing nothing. Each write adds one audit entry (django-auditlog) naming who
did it, so the trail holds the request's whole story beside the row's own who-and-when.

Who may do what (``leads.roles``): sales reps and managers (``leads.work_handoffs``) file a
request from any handoff they can open; marketing and RevOps admins
(``metrics.change_contentrequest``) list them, mark them in progress and close them.
"""

from __future__ import annotations

from datetime import datetime

from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.utils import timezone

from leads.models import ContentAsset, Handoff, ObjectionTag
from leads.roles import CONTENT_REQUESTS_CLOSE, CONTENT_REQUESTS_READ, WORK_HANDOFFS
from metrics.models import ContentRequest

FILE_REQUEST = WORK_HANDOFFS
CLOSE_REQUEST = CONTENT_REQUESTS_CLOSE
LIST_REQUESTS = CONTENT_REQUESTS_READ

FILED = "content_request_filed"
STARTED = "content_request_started"
CLOSED = "content_request_closed"

Status = ContentRequest.Status
# What marketing can set a request to, from where it stands.
MOVES = {
    Status.OPEN: (Status.IN_PROGRESS, Status.DONE, Status.DECLINED),
    Status.IN_PROGRESS: (Status.DONE, Status.DECLINED),
    Status.DONE: (),
    Status.DECLINED: (),
}


def _actor(user: AbstractBaseUser | None):
    return user if user is not None and user.is_authenticated else None


def _audit(request: ContentRequest, *, event: str, actor, changes: dict, summary: str) -> None:
    LogEntry.objects.log_create(
        request,
        force_log=True,
        action=LogEntry.Action.CREATE if event == FILED else LogEntry.Action.UPDATE,
        changes=changes,
        actor=_actor(actor),
        additional_data={"event": event, "summary": summary, "handoff": request.handoff_id},
    )


def user_can_file(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and user.has_perm(FILE_REQUEST)


def user_can_close(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and user.has_perm(CLOSE_REQUEST)


def content_request_file(
    *,
    handoff: Handoff,
    requested_by: AbstractBaseUser,
    title: str,
    objection: ObjectionTag | None = None,
    note: str = "",
    now: datetime | None = None,
) -> ContentRequest:
    """Sales asks for an asset that does not exist yet, from ``handoff``: for the handoff's
    stage and, optionally, an objection heard. Refused when the same request (same title,
    whatever the case) is still open on the handoff."""
    if not user_can_file(requested_by):
        raise PermissionDenied("Only sales reps and managers file content requests.")
    if objection is not None and not objection.is_active:
        raise ValidationError({"objection": f"No longer in use: {objection.label}."})
    request = ContentRequest(
        handoff=handoff,
        requested_by=requested_by,
        title=title,
        stage=handoff.stage,
        objection=objection,
        note=note,
        created_at=now or timezone.now(),
    )
    request.full_clean()
    try:
        with transaction.atomic():
            request.save()
            _audit(
                request,
                event=FILED,
                actor=requested_by,
                changes={"title": [None, request.title], "status": [None, request.status]},
                summary=f"Requested “{request.title}” from handoff {handoff.pk}",
            )
    except IntegrityError as clash:
        # Two submissions at once: the unique constraint saw the second.
        raise ValidationError(
            {"title": "This handoff already has an open request for that."}
        ) from clash
    return request


@transaction.atomic
def content_request_update(
    *,
    request: ContentRequest | int,
    actor: AbstractBaseUser,
    status: str,
    fulfilled_by: ContentAsset | None = None,
    close_note: str = "",
    now: datetime | None = None,
) -> ContentRequest:
    """Marketing moves a request on: in progress, done (with the asset that answers it) or
    declined (with a reason sales reads). A closed request stays closed: a second close (a
    double submission, or two people at once) is refused and the first one kept."""
    if not user_can_close(actor):
        raise PermissionDenied("Only marketing and RevOps admins work content requests.")
    pk = request.pk if isinstance(request, ContentRequest) else request
    locked = ContentRequest.objects.select_for_update(of=("self",)).get(pk=pk)
    if status not in Status.values:
        raise ValidationError({"status": "Choose a status."})
    if status not in MOVES[Status(locked.status)]:
        if not locked.is_open:
            raise ValidationError(
                f"“{locked.title}” is already {locked.get_status_display().lower()}: "
                "nothing was changed."
            )
        raise ValidationError(
            {"status": f"A request {locked.get_status_display().lower()} cannot be set to that."}
        )
    before = {
        "status": locked.status,
        "fulfilled_by": locked.fulfilled_by_id,
        "close_note": locked.close_note,
    }
    locked.status = status
    fields = ["status"]
    if status in ContentRequest.CLOSED_STATUSES:
        locked.fulfilled_by = fulfilled_by if status == Status.DONE else None
        locked.close_note = close_note
        # Never before it was filed (a clock skew must not break the constraint).
        locked.closed_at = max(now or timezone.now(), locked.created_at)
        locked.closed_by = _actor(actor)
        fields += ["fulfilled_by", "close_note", "closed_at", "closed_by"]
    locked.full_clean()
    locked.save(update_fields=fields)
    after = {
        "status": locked.status,
        "fulfilled_by": locked.fulfilled_by_id,
        "close_note": locked.close_note,
    }
    changes = {
        field: [str(before[field]), str(after[field])]
        for field in before
        if before[field] != after[field]
    }
    summary = f"“{locked.title}” set to {locked.get_status_display().lower()}"
    if locked.fulfilled_by_id:
        summary += f" with “{locked.fulfilled_by}”"
    _audit(
        locked,
        event=STARTED if status == Status.IN_PROGRESS else CLOSED,
        actor=actor,
        changes=changes,
        summary=summary,
    )
    return locked


# --- Reads -----------------------------------------------------------------------------------


def content_request_list(*, status: str = "") -> QuerySet[ContentRequest]:
    """Marketing's list: open and in-progress requests first (oldest first, the ones waiting
    longest), then the closed ones, latest closed first; or only those of ``status``
    (``"open"``: open and in progress)."""
    rows = ContentRequest.objects.select_related(
        "handoff__lead__account", "requested_by", "objection", "fulfilled_by", "closed_by"
    )
    if status == "open":
        rows = rows.filter(status__in=ContentRequest.OPEN_STATUSES)
    elif status in Status.values:
        rows = rows.filter(status=status)
    return rows.annotate(
        waiting=Case(
            When(status__in=ContentRequest.OPEN_STATUSES, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("waiting", F("closed_at").desc(nulls_first=True), "created_at", "pk")


def handoff_content_requests(handoff: Handoff | int) -> QuerySet[ContentRequest]:
    """The requests filed from one handoff, newest first (the handoff page lists them)."""
    pk = handoff.pk if isinstance(handoff, Handoff) else handoff
    return ContentRequest.objects.filter(handoff_id=pk).select_related(
        "requested_by", "objection", "fulfilled_by"
    )
