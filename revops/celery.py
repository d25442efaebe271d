"""The Celery application: configured from Django settings (the CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

app = Celery("revops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_filesystem_broker_folders() -> None:
    """kombu's filesystem transport does not create its folders; make them before use."""
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            os.makedirs(options[key], exist_ok=True)


@worker_init.connect
def _prepare_broker_for_worker(**_kwargs) -> None:
    ensure_filesystem_broker_folders()


@app.on_after_configure.connect
def _prepare_broker_for_publishers(**_kwargs) -> None:
    ensure_filesystem_broker_folders()


@app.task(name="revops.ping")
def ping() -> str:
    """Round trip through the broker: used by health checks and the worker tests."""
    return "pong"


@app.task(name="revops.tidy_tables", soft_time_limit=1800, time_limit=1860)
def tidy_tables() -> dict:
    """Beat, every 10 minutes: vacuum / analyze the tables that need it when the server's
    autovacuum is off (revops.maintenance.tables_tidy); idempotent, a no-op when it is on."""
    from revops.maintenance import tables_tidy

    return tables_tidy()
