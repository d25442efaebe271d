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
    token = probe.set("request")
    try:
        nested = lambda: run_concurrently([where, where])  # noqa: E731
        found, (inner_first, inner_second) = run_concurrently([probe.get, nested])
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
        run_concurrently([failing, slow])
    assert finished == ["slow"]


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
    # The overview's trends and goals; the content page's usage and three of its utilization's
    # reads; the meeting's sections.
    assert len(in_pool) >= 2 + 4 + 6
    one_after_the_other = first_views(0)
    assert side_by_side == one_after_the_other
    overview, figures = side_by_side
    assert overview["scorecard"]["groups"] and figures["new_leads"]["total"]
    assert overview["content"]["utilization"].handed_off_leads
