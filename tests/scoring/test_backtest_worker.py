"""A backtest run by a real Celery worker on Redis against PostgreSQL, and one whose message
was lost (broker down) picked up by the sweep."""

import os
from datetime import timedelta

import pytest

from scoring.backtest import services, tasks
from scoring.backtest.models import Backtest
from tests.conftest import restore_default_definitions
from tests.scoring import test_worker_integration as integration
from tests.scoring.backtest_world import build_world, draft_model_doubling_demo_requests
from tests.workers import celery_worker, free_port, private_redis, wait_for

# The worker integration tests' fixtures: real services only, a worker's environment, publishing.
real_services = integration.real_services
worker_env = integration.worker_env
publishing = integration.publishing
QUEUE = integration.QUEUE
reset_broker_connections = integration.reset_broker_connections

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


def done(backtest_id: int) -> bool:
    return Backtest.objects.get(pk=backtest_id).status == Backtest.Status.DONE


def test_a_worker_runs_the_backtest(real_services, worker_env, publishing):
    build_world()
    draft = draft_model_doubling_demo_requests()
    broker = os.environ["CELERY_BROKER_URL"]
    publishing(broker, QUEUE)
    with celery_worker({**worker_env, "CELERY_BROKER_URL": broker}, queue=QUEUE):
        backtest = services.backtest_start(actor=None, draft_model=draft)
        wait_for(lambda: done(backtest.pk))
    backtest.refresh_from_db()
    assert backtest.processed == 4
    assert backtest.summary["columns"]["draft"]["eligible"] == 2


def test_a_lost_message_is_picked_up_by_the_sweep(real_services, worker_env, publishing):
    build_world()
    draft = draft_model_doubling_demo_requests()
    port = free_port()  # the broker is down when the backtest starts
    publishing(f"redis://127.0.0.1:{port}/0", QUEUE)
    backtest = services.backtest_start(actor=None, draft_model=draft)
    assert Backtest.objects.get(pk=backtest.pk).status == Backtest.Status.RUNNING
    Backtest.objects.filter(pk=backtest.pk).update(
        updated_at=backtest.updated_at - timedelta(minutes=10)
    )
    with (
        private_redis(port) as broker_url,
        celery_worker({**worker_env, "CELERY_BROKER_URL": broker_url}, queue=QUEUE),
    ):
        reset_broker_connections()
        assert tasks.sweep_backtests() == 1
        wait_for(lambda: done(backtest.pk))
    assert Backtest.objects.get(pk=backtest.pk).processed == 4
