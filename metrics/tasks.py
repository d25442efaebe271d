"""Celery entry points for the dashboards: thin and idempotent; the work is in ``snapshots``."""

from celery import shared_task

from metrics import (
    dashboards,
    goal_notices,
    kpi_catalog,
    meeting,
    rollups,
    services,
    snapshots,
    target_selectors,
)
from revops.db_router import stale_reads

# The pages register their builders with ``snapshots`` when their modules are imported.
PAGES_WITH_SNAPSHOTS = (dashboards, kpi_catalog, meeting, target_selectors)


@shared_task(name="metrics.tasks.refresh_snapshots", soft_time_limit=50, time_limit=60)
def refresh_snapshots() -> dict:
    """Beat, every 30 s: recompute the dashboard snapshots people are looking at (from the
    read replica when there is one and it is within its lag bound)."""
    with stale_reads():
        return snapshots.snapshots_refresh(budget_seconds=25.0)


@shared_task(name="metrics.tasks.refresh_rollups", soft_time_limit=110, time_limit=120)
def refresh_rollups() -> dict:
    """Beat, every 15 s: recompute the rollups' days whose facts changed. Idempotent; a no-op
    while another refresh runs; a failed one leaves its marks for the next."""
    return {str(fact): days for fact, days in rollups.rollups_refresh().items()}


@shared_task(name="metrics.tasks.open_this_weeks_meeting")
def open_this_weeks_meeting() -> str:
    """Beat, hourly: this week's pipeline review exists from Monday on, so the meeting-room
    screen (a Viewer, who changes nothing) finds it without opening it. Idempotent."""
    opened, _ = services.meeting_get_or_create_for_week(today=meeting.display_today())
    return opened.held_on.isoformat()


@shared_task(name="metrics.tasks.send_goal_alerts", soft_time_limit=120, time_limit=150)
def send_goal_alerts() -> int:
    """Beat, every 15 minutes: e-mail an alert for each goal that turned red (once per goal)."""
    return goal_notices.goal_alerts_send()


@shared_task(name="metrics.tasks.send_scorecard_digest", soft_time_limit=120, time_limit=150)
def send_scorecard_digest() -> int:
    """Beat, hourly: on Mondays, the scorecard to each team (once per team and week)."""
    return goal_notices.scorecard_digest_send()
