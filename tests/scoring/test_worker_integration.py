"""Real components: a Celery worker process on Redis against PostgreSQL rescoring leads."""

import os
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from leads.models import EngagementEvent, Handoff, Lead, SalesRep
from leads.services import engagement_events_record
from revops.celery import app
from scoring import tasks
from scoring.models import LeadScoreState
from tests.conftest import REQUIRE_SERVICES, broker_is_redis
from tests.factories import AccountFactory, LeadFactory
from tests.workers import celery_worker, free_port, private_redis, wait_for

# serialized_rollback: the flush between transactional tests would drop the default
# definitions the migrations created; restore them for each test.
pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# One queue for the module: Celery caches the default queue once it has published.
QUEUE = f"revops-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def real_services():
    if connection.vendor != "postgresql" or not broker_is_redis():
        if REQUIRE_SERVICES:
            pytest.fail("these tests need PostgreSQL and Redis in CI")
        pytest.skip("needs DATABASE_URL on PostgreSQL and CELERY_BROKER_URL on Redis")


@pytest.fixture
def worker_env():
    """What a worker process needs to use this test's database."""
    db = connection.settings_dict
    return {
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }


def reset_broker_connections() -> None:
    """Drop the app's pooled broker connections so the next publish uses the current URL."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def publishing(monkeypatch):
    """Let this process publish to a broker instead of running tasks eagerly."""

    keys = ("task_always_eager", "broker_url", "task_default_queue")
    saved = {key: app.conf[key] for key in keys}

    def configure(broker_url: str, queue: str) -> None:
        app.conf.update(task_always_eager=False, broker_url=broker_url, task_default_queue=queue)
        monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
        reset_broker_connections()

    yield configure
    app.conf.update(saved)
    reset_broker_connections()


def hot_lead() -> Lead:
    account = AccountFactory(
        industry="software", employees=800, annual_revenue=50_000_000, region="NA", country="US"
    )
    return LeadFactory(account=account, seniority="director", title="Director of Ops")


def demo_request(lead: Lead, external_id: str) -> list[EngagementEvent]:
    stored, _ = engagement_events_record(
        events=[
            EngagementEvent(
                lead=lead,
                kind=kind,
                occurred_at=timezone.now() - timedelta(minutes=5),
                source_system="test",
                external_id=f"{external_id}-{kind}",
            )
            for kind in ("demo_request", "pricing_page")
        ]
    )
    return stored


def test_event_is_rescored_by_a_worker_and_opens_an_assigned_handoff(
    real_services, worker_env, publishing
):
    rep = SalesRep.objects.create(user=get_user_model().objects.create_user("rep.worker"))
    lead = hot_lead()
    queue = QUEUE
    broker = os.environ["CELERY_BROKER_URL"]
    publishing(broker, queue)
    with celery_worker({**worker_env, "CELERY_BROKER_URL": broker}, queue=f"{queue},scoring"):
        demo_request(lead, "worker-1")
        wait_for(lambda: Lead.objects.get(pk=lead.pk).stage == "mql")
    lead.refresh_from_db()
    handoff = Handoff.objects.get(lead=lead)
    assert lead.score_state.total >= 65
    assert handoff.assignee == rep.user
    assert handoff.response_due_at > handoff.assigned_at
    assert not LeadScoreState.objects.get(lead=lead).is_dirty


def test_lead_is_rescored_after_the_broker_comes_back(real_services, worker_env, publishing):
    """The broker is down when the event is written: the event and the dirty mark are kept,
    and the sweep gets the lead rescored by a worker once a broker is back."""
    lead = hot_lead()
    port = free_port()  # nothing listens here yet: the broker is down
    broker = f"redis://127.0.0.1:{port}/0"
    queue = QUEUE
    publishing(broker, queue)
    demo_request(lead, "down-1")
    assert EngagementEvent.objects.filter(lead=lead).count() == 2
    assert LeadScoreState.objects.get(lead=lead).is_dirty
    assert Lead.objects.get(pk=lead.pk).stage == "lead"

    with (
        private_redis(port) as broker_url,
        celery_worker({**worker_env, "CELERY_BROKER_URL": broker_url}, queue=f"{queue},scoring"),
    ):
        reset_broker_connections()
        # Its rescore was never sent; once that is longer ago than the re-send period, the
        # sweep sends it.
        LeadScoreState.objects.filter(lead=lead).update(
            enqueued_at=Now() - timedelta(seconds=settings.SCORING_REQUEUE_AFTER_SECONDS + 1)
        )
        assert tasks.sweep_scoring()["requeued"] == 1
        wait_for(lambda: not LeadScoreState.objects.get(lead=lead).is_dirty)
    lead.refresh_from_db()
    assert lead.stage == "mql"
    assert lead.score_state.engagement == 38.0  # demo request 30 + pricing page 8
