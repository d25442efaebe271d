"""Every task the app registers runs on one of the named queues (revops/settings/base.py), and
Celery's router sends it there: a new task module cannot slip onto a queue no worker reads."""

from fnmatch import fnmatchcase

import pytest
from django.conf import settings

from revops.celery import app


def registered_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def queue_of(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_the_app_registers_the_tasks_we_know_of():
    # Guards the listing itself: an empty list would let the tests below pass vacuously.
    assert {
        "scoring.tasks.rescore_leads",
        "leads.tasks.sweep_handoff_breaches",
        "metrics.tasks.refresh_rollups",
        "leads.imports.tasks.run_import",
        "scoring.backtest.tasks.run_backtest",
        "revops.ping",
    } <= set(registered_tasks())


@pytest.mark.parametrize("name", registered_tasks())
def test_every_task_matches_exactly_one_queue_pattern(name):
    patterns = [pattern for pattern in settings.TASK_QUEUES if fnmatchcase(name, pattern)]
    assert len(patterns) == 1, f"{name} matches {patterns}: name its queue in TASK_QUEUES"
    assert settings.TASK_QUEUES[patterns[0]] in settings.QUEUES


@pytest.mark.parametrize("name", registered_tasks())
def test_the_router_sends_every_task_to_the_queue_settings_name(name):
    (pattern,) = [pattern for pattern in settings.TASK_QUEUES if fnmatchcase(name, pattern)]
    assert queue_of(name) == settings.TASK_QUEUES[pattern]


def test_the_queues_keep_each_kind_of_work_apart():
    assert queue_of("scoring.tasks.rescore_leads") == "scoring"
    assert queue_of("leads.tasks.sweep_handoff_breaches") == "pipeline"
    assert queue_of("leads.tasks.send_notification_emails") == "pipeline"
    assert queue_of("metrics.tasks.refresh_rollups") == "metrics"
    assert queue_of("leads.imports.tasks.run_import") == "imports"
    assert queue_of("scoring.predictive.tasks.retrain_predictive_model") == "celery"
    assert settings.ALL_QUEUES.split(",") == list(settings.QUEUES)
