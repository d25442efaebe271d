"""Beat behind a leader lock (revops/beat.py): of two beat processes only one sends, and the
other takes over when it dies, without sending any task twice."""

import itertools
import re
from datetime import datetime

import pytest
import redis
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from revops.beat import FileLeaderLock, PostgresLeaderLock
from tests.conftest import REQUIRE_SERVICES
from tests.workers import celery_beat, free_port, kill_hard, private_redis, wait_for


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("these tests need PostgreSQL in CI")
        pytest.skip("needs DATABASE_URL on PostgreSQL")


def test_a_file_lock_lets_one_holder_in_until_it_lets_go(tmp_path):
    first, second = FileLeaderLock(tmp_path / "beat.lock"), FileLeaderLock(tmp_path / "beat.lock")

    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    first.release()
    assert second.acquire() and not first.held()
    second.release()


@pytest.mark.services
@pytest.mark.django_db
def test_the_advisory_lock_has_one_holder_and_is_free_once_its_session_ends(postgresql):
    first, second = PostgresLeaderLock(), PostgresLeaderLock()
    try:
        assert first.acquire() and first.held()
        assert not second.acquire() and not second.held()

        # The leader's session ends without a word (its process was killed, its host vanished).
        pid = first.connection.connection.info.backend_pid
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

        assert not first.held()
        wait_for(second.acquire, timeout=5)
        assert second.held()
    finally:
        first.release()
        second.release()


# --- Two real beat processes -------------------------------------------------------------------

SENT = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}).*Sending due task probe ")
PROBE_QUEUE = "beat-probe"


def sends(process) -> list[datetime]:
    """When this beat sent the probe task, from its log."""
    return [
        datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        for line in list(process.log_lines)
        if (match := SENT.search(line))
    ]


def schedule_reads(process) -> int:
    """How many times this beat read the schedule again because it changed in the database."""
    return sum("Schedule changed" in line for line in list(process.log_lines))


def quiet_for(process, *, seconds: float) -> bool:
    """Whether this beat has sent nothing for ``seconds`` (it sends due tasks once a second)."""
    sent = sends(process)
    return not sent or (datetime.now() - sent[-1]).total_seconds() >= seconds


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_of_two_beats_sends_and_the_other_takes_over_when_it_dies(postgresql):
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    probe = PeriodicTask.objects.create(
        name="probe", task="revops.ping", interval=every_second, queue=PROBE_QUEUE
    )
    db = connection.settings_dict
    with private_redis(free_port()) as broker:
        env = {
            "DJANGO_SETTINGS_MODULE": "revops.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": "cache+memory://",
            "CELERY_TASK_ALWAYS_EAGER": "false",  # the test settings' default would run them
        }
        queued = redis.Redis.from_url(broker)
        with celery_beat(env, ready="took the leader lock") as first:
            wait_for(lambda: len(sends(first)) >= 2, timeout=15)
            reads = schedule_reads(first)
            with celery_beat(env, ready="standing by") as second:
                sent = len(sends(first))
                wait_for(lambda: len(sends(first)) >= sent + 3, timeout=15)
                assert sends(second) == []  # both running: only the leader sends
                # A stand-by writes nothing to the schedule, so the leader never reads it again
                # under its sends (read at the instant of one, it sent that task twice).
                assert schedule_reads(first) == reads

                kill_hard(first)  # no shutdown, no release: its session just ends
                wait_for(lambda: len(sends(second)) >= 3, timeout=20)

                # Stop the schedule, not the process: a SIGTERM can land between beat logging a
                # send and publishing it, as the kill above can. Then wait out the last publish.
                probe.enabled = False
                probe.save()
                wait_for(lambda: quiet_for(second, seconds=3), timeout=20)
                before, after = sends(first), sends(second)
                # One send the kill may have cut short (beat logs a send before it publishes it;
                # seen once in CI: 9 logged, 8 queued). None arrives unlogged, none twice.
                logged = len(before) + len(after)
                wait_for(lambda: queued.llen(PROBE_QUEUE) >= logged - 1, timeout=10)
                assert queued.llen(PROBE_QUEUE) <= logged

        # None twice while one beat leads: a task due every second went out at most once a
        # second. At the takeover the killed beat may have sent its last one without saving
        # when (the kill falls between the two): the new leader sends it again, once, after it.
        # (Two sends 18 ms apart, seen twice in CI, came from the stand-by's start, asserted
        # above, not from the takeover.)
        for sent in (before, after):
            gaps = [
                (later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)
            ]
            assert min(gaps) > 0.5, gaps
        assert after[0] > before[-1]
