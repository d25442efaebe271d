"""Celery entry points for the handoff workflow: thin and idempotent; the work is in services."""

import logging

from celery import shared_task

from leads import services

logger = logging.getLogger(__name__)

# About a minute of work at most; the next beat run takes over beyond it.
MAX_SWEEP_ROUNDS = 50


@shared_task(name="leads.tasks.sweep_handoff_breaches")
def sweep_handoff_breaches() -> dict:
    """Beat, every minute: mark new SLA breaches once and notify; then send the e-mails. A
    backlog is worked off in bounded transactions, one after the other."""
    totals = {"response_breaches": 0, "accept_breaches": 0, "notifications": 0, "reassigned": 0}
    for _ in range(MAX_SWEEP_ROUNDS):
        result = services.handoff_breach_sweep()
        for key in totals:
            totals[key] += getattr(result, key)
        if not result.more:
            break
    if totals["notifications"]:
        send_notification_emails.delay()
    return totals


@shared_task(
    name="leads.tasks.send_notification_emails",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_notification_emails() -> int:
    """Send pending notification e-mails in batches (also run by beat, so none is forgotten)."""
    sent = 0
    while batch := services.notifications_email_pending():
        sent += batch
    return sent


@shared_task(name="leads.tasks.maintain_event_partitions")
def maintain_event_partitions() -> dict:
    """Beat, hourly: the event table's month partitions ahead of time (and for rows that fell
    into the default partition), then retention, if set (``leads.partitions``)."""
    from leads.partitions import event_partitions_maintain, events_retire

    retired = events_retire()
    maintained = event_partitions_maintain()
    return {
        "created": maintained.created,
        "moved_rows": maintained.moved_rows,
        "dropped": retired.dropped,
        "folded_rows": retired.folded_rows,
    }
