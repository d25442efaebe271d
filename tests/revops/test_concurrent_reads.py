"""A first view's independent parts side by side (``revops.concurrent_reads``): each on a
connection of its own, in the request's context, in order, errors raised; one after the other
inside a transaction (other connections could not see its rows) and from a part in the pool."""

import threading
import time
from contextvars import ContextVar

import pytest
from django.db import connection

from revops import concurrent_reads
from revops.concurrent_reads import run_concurrently
from tests.conftest import REQUIRE_SERVICES

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql" and not REQUIRE_SERVICES,
    reason="side by side on PostgreSQL only (set DATABASE_URL)",
)
probe: ContextVar[str] = ContextVar("probe", default="unset")


def where() -> tuple[str, int]:
    """This thread and its database session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return threading.current_thread().name, cursor.fetchone()[0]


@on_postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_parts_run_side_by_side_each_on_a_session_of_its_own(settings):
    settings.READ_THREADS = 2
    (first, *others) = run_concurrently([where, where, where])
    assert first[0] == threading.current_thread().name
    assert all(name.startswith("revops-read") for name, _ in others)
    assert len({session for _, session in [first, *others]}) == 3

    def sleep() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.5)")
        return 0.5

    started = time.perf_counter()
    assert run_concurrently([sleep, sleep, sleep]) == [0.5, 0.5, 0.5]
    assert time.perf_counter() - started < 1.2  # one after the other: 1.5 s


@on_postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_each_part_runs_in_the_callers_context_and_a_part_in_the_pool_runs_its_own_inline(
    settings,
):
    settings.READ_THREADS = 2
    started = threading.Event()

    def nested():
        started.set()
        return run_concurrently([where, where])

    def caller_part():
        started.wait(timeout=10)  # the pool has taken the nested part
        return probe.get()

    token = probe.set("request")
    try:
        found, (inner_first, inner_second) = run_concurrently([caller_part, nested])
    finally:
        probe.reset(token)
    assert found == "request"
    # Waiting in a pool thread for the pool's threads could wait for ever: the part's own
    # parts ran in its thread, on its session.
    assert inner_first == inner_second
    assert inner_first[0].startswith("revops-read")


@on_postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_error_in_a_part_is_raised_once_every_part_has_finished(settings):
    settings.READ_THREADS = 2
    finished = []

    def slow() -> None:
        time.sleep(0.3)
        finished.append("slow")

    def failing() -> None:
        raise ValueError("no such period")

    with pytest.raises(ValueError, match="no such period"):
        run_concurrently([slow, failing])
    assert finished == ["slow"]


@on_postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_part_no_thread_has_taken_runs_in_the_callers_thread(settings):
    """The caller never waits for a part that waits for a thread: the pool's threads may all
    be waiting for something the caller is computing (a shared read it owns)."""
    settings.READ_THREADS = 2
    release, taken = threading.Event(), threading.Semaphore(0)

    def blocking() -> str:
        taken.release()
        release.wait(timeout=10)
        return threading.current_thread().name

    def caller_part() -> str:
        # Until both pool threads have taken a blocking part (a sleep here was a guess).
        assert taken.acquire(timeout=10) and taken.acquire(timeout=10)
        return threading.current_thread().name

    def last() -> str:
        release.set()  # run by the caller, it frees the pool's threads
        return threading.current_thread().name

    here = threading.current_thread().name
    first, one, two, stolen = run_concurrently([caller_part, blocking, blocking, last])
    assert first == here and stolen == here
    assert one.startswith("revops-read") and two.startswith("revops-read")


@pytest.mark.django_db
def test_inside_a_transaction_or_with_no_threads_the_parts_run_in_the_callers_thread(settings):
    settings.READ_THREADS = 2
    here = threading.current_thread().name
    names = lambda: threading.current_thread().name  # noqa: E731
    # The test's transaction is open: other sessions could not see its rows.
    assert run_concurrently([names, names, names]) == [here, here, here]
    settings.READ_THREADS = 0
    assert not concurrent_reads.can_run_concurrently()


def without_instants(value):
    """The figures less when they were computed (each part's own clock)."""
    if isinstance(value, dict):
        return {k: without_instants(v) for k, v in value.items() if k != "computed_at"}
    if isinstance(value, list | tuple):
        return [without_instants(item) for item in value]
    return value


@on_postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_first_views_computed_side_by_side_show_what_one_after_the_other_shows(
    settings, monkeypatch, admin_client
):
    from django.utils import timezone

    from leads.demo.hooks import demo_seeded
    from leads.demo.loader import demo_data_seed
    from leads.models import Source
    from metrics.meeting import display_today, meeting_page_figures
    from metrics.models import KpiSnapshot
    from metrics.services import meeting_get_or_create_for_week

    now = timezone.now()
    # One clock for both (a goal's pace counts the time elapsed), in every thread.
    monkeypatch.setattr(timezone, "now", lambda: now)
    demo_data_seed(seed=7, leads=300, events_per_lead=1, as_of=now)
    demo_seeded(as_of=now)
    meeting, _ = meeting_get_or_create_for_week(today=display_today(), user=None)
    source = Source.objects.order_by("pk").values_list("pk", flat=True).first()
    in_pool = []
    run_in_pool = concurrent_reads._run_in_pool
    monkeypatch.setattr(
        concurrent_reads,
        "_run_in_pool",
        lambda context, part: in_pool.append(part) or run_in_pool(context, part),
    )

    def first_views(threads: int):
        settings.READ_THREADS = threads
        KpiSnapshot.objects.all().delete()
        page = admin_client.get("/dashboards/?preset=this_quarter")
        assert page.status_code == 200
        overview = {name: page.context[name] for name in ("data", "trends", "scorecard")}
        # The content page's reads (its utilization's four, its asset usage) under a lead filter.
        content = admin_client.get(f"/dashboards/content/?preset=this_quarter&source={source}")
        overview["content"] = content.context["data"]
        KpiSnapshot.objects.all().delete()
        return without_instants(overview), without_instants(meeting_page_figures(meeting))

    side_by_side = first_views(2)
    # Some of the overview's, the content page's and the meeting's parts ran in the pool (a
    # part no pool thread had taken yet ran in the caller's thread).
    assert len(in_pool) >= 5
    one_after_the_other = first_views(0)
    assert side_by_side == one_after_the_other
    overview, figures = side_by_side
    assert overview["scorecard"]["groups"] and figures["new_leads"]["total"]
    assert overview["content"]["utilization"].handed_off_leads


@on_postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_shared_read_two_parts_need_at_once_is_computed_once(settings):
    from metrics.queries.shared import reads_shared, shared_read

    settings.READ_THREADS = 2
    calls = []

    @shared_read
    def slow_read(period: str) -> str:
        calls.append(threading.current_thread().name)
        if period == "bad":
            time.sleep(1.0)  # the other part asks for it meanwhile
            raise ValueError("no such period")
        time.sleep(0.3)
        return f"figures of {period}"

    with reads_shared() as reads:
        assert run_concurrently([lambda: slow_read("Q4"), lambda: slow_read("Q4")]) == [
            "figures of Q4",
            "figures of Q4",
        ]
        assert len(calls) == 1 and reads.shared == 1  # the other part waited for it
        with pytest.raises(ValueError, match="no such period"):
            run_concurrently([lambda: slow_read("bad"), lambda: slow_read("bad")])
        assert len(calls) == 2  # the failure was shared too, and not kept
        with pytest.raises(ValueError):
            slow_read("bad")
        assert len(calls) == 3
