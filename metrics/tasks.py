"""Celery entry points for the dashboards: thin and idempotent; the work is in ``snapshots``."""

from celery import shared_task

from metrics import dashboards, kpi_catalog, meeting, snapshots

# The pages register their builders with ``snapshots`` when their modules are imported.
PAGES_WITH_SNAPSHOTS = (dashboards, kpi_catalog, meeting)


@shared_task(name="metrics.tasks.refresh_snapshots", soft_time_limit=50, time_limit=60)
def refresh_snapshots() -> dict:
    """Beat, every 30 s: recompute the dashboard snapshots people are looking at."""
    return snapshots.snapshots_refresh(budget_seconds=25.0)
