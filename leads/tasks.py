"""Celery entry points for the handoff workflow: thin and idempotent; the work is in services."""

import logging

from celery import shared_task

from leads import services

logger = logging.getLogger(__name__)


@shared_task(name="leads.tasks.sweep_handoff_breaches")
def sweep_handoff_breaches() -> dict:
    """Beat, every minute: mark new SLA breaches once and notify; then send the e-mails."""
    result = services.handoff_breach_sweep()
    if result.notifications:
        send_notification_emails.delay()
    return result.__dict__


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
