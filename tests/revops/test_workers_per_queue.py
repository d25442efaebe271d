"""Two real worker processes per queue against one Redis and one PostgreSQL, as the hosts of a
scaled deployment run them (docker-compose's worker services, docs/scaling.md): the same work
sent several times at once has its effect once."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F
from django.utils import timezone

from leads import tasks as lead_tasks
from leads.models import Handoff, Lead, LeadActivity, Notification, SalesRep, StageTransition
from leads.models.workflow import ActivityAction
from metrics import rollups
from metrics import tasks as metric_tasks
from metrics.rollup_models import CohortDay, HandoffDay, OpportunityDay, RollupDirty
from scoring import tasks as scoring_tasks
from scoring.models import LeadScoreState
from tests.conftest import REQUIRE_SERVICES, broker_is_redis
from tests.leads.test_handoff_services import hand_off
from tests.scoring import test_worker_integration as integration
from tests.workers import celery_worker, wait_for

publishing = integration.publishing

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def broker():
    """The shared Redis this test run was given, its queues emptied of an earlier run's left
    overs before and after (they are this test database's: a message names its rows by id)."""
    if connection.vendor != "postgresql" or not broker_is_redis():
        if REQUIRE_SERVICES:
            pytest.fail("these tests need PostgreSQL and Redis in CI")
        pytest.skip("needs DATABASE_URL on PostgreSQL and CELERY_BROKER_URL on Redis")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*settings.QUEUES)
    yield client
    client.delete(*settings.QUEUES)


@contextmanager
def two_workers(queue: str):
    """Two worker processes consuming ``queue`` (the queue's own name, as in production),
    started side by side; stopped with a warm shutdown, so tasks they run finish first."""
    db = connection.settings_dict
    env = {
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": "cache+memory://",
    }
    managers = [
        celery_worker(env, queue=queue, hostname=f"{queue}{n}@%h", stop_timeout=60) for n in (1, 2)
    ]
    with ThreadPoolExecutor(len(managers)) as pool:
        futures = [pool.submit(manager.__enter__) for manager in managers]
        outcomes = [(m, f.exception()) for m, f in zip(managers, futures, strict=True)]
    started = [manager for manager, error in outcomes if error is None]
    try:
        for _, error in outcomes:
            if error is not None:
                raise error
        yield [future.result() for future in futures]
    finally:
        with ThreadPoolExecutor(len(managers)) as pool:
            list(pool.map(lambda manager: manager.__exit__(None, None, None), started))


def drained(broker, queue: str) -> bool:
    """Nothing waiting in ``queue`` and nothing taken but unacknowledged (kombu keeps those,
    a late-acknowledged task or one with a countdown, in its "unacked" hash until done)."""
    return broker.llen(queue) == 0 and broker.hlen("unacked") == 0


def ran(worker, task: str) -> int:
    return sum(f"Task {task}[" in line and " succeeded " in line for line in worker.log_lines)


def test_the_same_rescores_sent_again_and_again_score_each_event_once(broker, publishing):
    SalesRep.objects.create(user=get_user_model().objects.create_user("rep.twice"))
    publishing(settings.CELERY_BROKER_URL, settings.DEFAULT_QUEUE)
    leads = [integration.hot_lead() for _ in range(6)]
    ids = [lead.pk for lead in leads]

    with two_workers("scoring") as workers:
        for lead in leads:  # each sends its rescore on commit
            integration.demo_request(lead, f"twice-{lead.pk}")
        for _ in range(4):  # and the same rescores again, with sweeps, all at once
            scoring_tasks.rescore_leads.delay(ids)
            scoring_tasks.sweep_scoring.delay()
        wait_for(
            lambda: (
                not LeadScoreState.objects.filter(
                    lead_id__in=ids, pending_seq__gt=F("scored_seq")
                ).exists()
            ),
            timeout=30,
        )
        wait_for(lambda: drained(broker, "scoring"), timeout=30)
    assert broker.llen("scoring") == 0  # every message was taken, and run before the stop
    assert all(ran(worker, "scoring.tasks.rescore_leads") for worker in workers)

    for lead in Lead.objects.filter(pk__in=ids).select_related("score_state"):
        assert lead.stage == "mql"
        assert lead.score_state.engagement == 38.0  # demo request 30 + pricing page 8, once
        assert StageTransition.objects.filter(lead=lead, to_stage="mql").count() == 1
        assert Handoff.objects.filter(lead=lead).count() == 1


def test_breach_sweeps_run_side_by_side_notify_once_per_breach(broker, publishing):
    rep = SalesRep.objects.create(user=get_user_model().objects.create_user("rep.sweep"))
    publishing(settings.CELERY_BROKER_URL, settings.DEFAULT_QUEUE)
    # Both SLA clocks of the default policy ran out long ago.
    handoffs = [hand_off(assignee=rep.user, at=timezone.now() - timedelta(days=10)) for _ in "abcd"]

    with two_workers("pipeline") as workers:
        for _ in range(6):
            lead_tasks.sweep_handoff_breaches.delay()
        wait_for(
            lambda: not Handoff.objects.filter(accept_breached_at__isnull=True).exists(),
            timeout=30,
        )
        wait_for(lambda: drained(broker, "pipeline"), timeout=30)
    assert broker.llen("pipeline") == 0
    assert all(ran(worker, "leads.tasks.sweep_handoff_breaches") for worker in workers)

    for handoff in handoffs:
        kinds = sorted(Notification.objects.filter(handoff=handoff).values_list("kind", flat=True))
        assert kinds == ["accept_breach", "response_breach"]
        actions = sorted(
            LeadActivity.objects.filter(handoff=handoff).values_list("action", flat=True)
        )
        assert actions == sorted([ActivityAction.ACCEPT_BREACHED, ActivityAction.RESPONSE_BREACHED])
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


def rollup_rows() -> list[tuple]:
    rows = []
    for model in (HandoffDay, CohortDay, OpportunityDay):
        fields = [field.attname for field in model._meta.concrete_fields if field.attname != "id"]
        rows += [(model.__name__, *row) for row in model.objects.values_list(*fields)]
    return sorted(rows, key=repr)  # dimensions may be None


def test_rollup_refreshes_run_side_by_side_count_every_fact_once(broker, publishing):
    rep = SalesRep.objects.create(user=get_user_model().objects.create_user("rep.rollup"))
    publishing(settings.CELERY_BROKER_URL, settings.DEFAULT_QUEUE)
    for days in (1, 2, 3, 8):
        hand_off(assignee=rep.user, at=timezone.now() - timedelta(days=days))

    with two_workers("metrics") as workers:
        for _ in range(6):
            metric_tasks.refresh_rollups.delay()
        wait_for(lambda: drained(broker, "metrics"), timeout=30)
    assert broker.llen("metrics") == 0
    assert all(ran(worker, "metrics.tasks.refresh_rollups") for worker in workers)

    assert not RollupDirty.objects.exists()
    refreshed = rollup_rows()
    assert sum(row.accepted + row.rejected + row.pending for row in HandoffDay.objects.all()) == 4
    rollups.rollups_rebuild()  # one build from the raw facts, in this process
    assert refreshed == rollup_rows()
