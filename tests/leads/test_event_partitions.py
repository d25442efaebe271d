"""Engagement events partitioned by month (PostgreSQL): the table's shape, idempotent ingestion
across partitions (the key table), partitions made ahead and out of the default partition, the
seed's bare load, and the migration of a populated table."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from leads.models import EngagementEvent, EventKey
from leads.partitions import (
    DEFAULT_PARTITION,
    PARTITION_LOCK,
    event_partitions_maintain,
    month_add,
    month_of,
    month_partitions,
    partition_name,
)
from leads.services import facts
from leads.services.pipeline import engagement_events_ingest
from tests.api.conftest import grant, token_client
from tests.factories import LeadFactory, UserFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite keeps one plain event table"
    ),
]
URL = "/api/v1/events/"


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM leads_engagementevent WHERE id = %s", [event_id]
        )
        return cursor.fetchone()[0]


def row(lead, external_id: str, at: datetime, system: str = "hubspot") -> facts.EventRow:
    return facts.EventRow(
        lead_id=lead.pk, kind="page_view", occurred_at=at, source_system=system,
        external_id=external_id,
    )  # fmt: skip


@pytest.mark.django_db
def test_the_table_is_partitioned_by_month_with_a_default_and_months_ahead():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_partkeydef('leads_engagementevent'::regclass), "
            "pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'leads_engagementevent'::regclass AND contype = 'p'"
        )
        assert cursor.fetchone() == ("RANGE (occurred_at)", "PRIMARY KEY (id, occurred_at)")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
        assert cursor.fetchone()[0]
    current = month_of(timezone.now())
    months = month_partitions()
    assert {month_add(current, n) for n in range(-24, 4)} <= set(months)
    # Each partition got the parent's indexes (partitioned indexes).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
            [partition_name(current)],
        )
        names = [name for (name,) in cursor.fetchall()]
    assert len(names) == 4  # primary key, (lead, occurred_at), occurred_at, linked content


@pytest.mark.django_db
def test_events_land_in_their_months_partition_and_old_ones_in_the_default():
    lead = LeadFactory()
    now = timezone.now()
    result = facts.events_record(
        events=[row(lead, "now", now), row(lead, "old", datetime(2011, 5, 3, tzinfo=UTC))]
    )
    recent, old = sorted(result.events, key=lambda e: e.external_id)
    assert partition_of(recent.pk) == partition_name(month_of(now))
    assert partition_of(old.pk) == DEFAULT_PARTITION


@pytest.mark.django_db
def test_the_same_key_in_another_month_is_a_duplicate_through_the_api():
    lead = LeadFactory()
    sender = token_client(grant(UserFactory(username="sync"), "leads.add_engagementevent"))
    first = {"lead": lead.pk, "kind": "page_view", "occurred_at": "2026-01-15T10:00:00Z",
             "source_system": "hubspot", "external_id": "evt-1"}  # fmt: skip
    assert sender.post(URL, [first], format="json").json()["created"] == 1
    # The same event re-sent with another instant (another partition), and a backdated one.
    for when in ("2026-03-02T10:00:00Z", "2012-07-01T00:00:00Z"):
        again = sender.post(URL, [{**first, "occurred_at": when}], format="json").json()
        assert (again["created"], again["duplicate_count"]) == (0, 1)
    assert EngagementEvent.objects.filter(external_id="evt-1").count() == 1
    assert EventKey.objects.filter(source_system="hubspot", external_id="evt-1").count() == 1


@pytest.mark.django_db
def test_the_key_table_follows_deletes_and_changed_keys():
    lead = LeadFactory()
    stored = facts.events_record(events=[row(lead, "a", timezone.now())]).events[0]

    def keys():
        return list(EventKey.objects.values_list("source_system", "external_id"))

    assert keys() == [("hubspot", "a")]
    EngagementEvent.objects.filter(pk=stored.pk).update(external_id="b")
    assert keys() == [("hubspot", "b")]
    EngagementEvent.objects.filter(pk=stored.pk).update(kind="email_open")  # key unchanged
    assert keys() == [("hubspot", "b")]
    EngagementEvent.objects.filter(pk=stored.pk).delete()
    assert keys() == []
    # Freed: the event may be received again.
    assert facts.events_record(events=[row(lead, "b", timezone.now())]).stored == [0]


@pytest.mark.django_db
def test_a_second_event_with_a_received_key_is_refused_by_the_database():
    """Whatever the writer: a raw insert of a received key in another month fails."""
    from django.db import IntegrityError

    lead = LeadFactory()
    facts.events_record(events=[row(lead, "k", datetime(2026, 1, 5, tzinfo=UTC))])
    with pytest.raises(IntegrityError), transaction.atomic():
        EngagementEvent.objects.create(
            lead=lead, kind="page_view", occurred_at=datetime(2026, 4, 5, tzinfo=UTC),
            source_system="hubspot", external_id="k",
        )  # fmt: skip


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_connections_racing_with_one_key_in_two_months_store_it_once():
    """A's batch is written but not committed when B's starts: B's read finds no key, B
    inserts into another month's partition, waits on A's key in the key table's primary key,
    and when A commits, B's insert fails and its retry finds the event received."""
    lead = LeadFactory()
    a_written, b_started = threading.Event(), threading.Event()
    results, errors = {}, []

    def first():
        try:
            with transaction.atomic():
                results["a"] = engagement_events_ingest(
                    events=[row(lead, "race", datetime(2026, 1, 10, tzinfo=UTC))]
                )
                a_written.set()
                b_started.wait(10)
                threading.Event().wait(0.5)  # B is now blocked on A's key
        except Exception as problem:
            errors.append(problem)
        finally:
            a_written.set()
            connections.close_all()

    def second():
        try:
            a_written.wait(10)
            b_started.set()
            results["b"] = engagement_events_ingest(
                events=[row(lead, "race", datetime(2026, 3, 10, tzinfo=UTC))]
            )
        except Exception as problem:
            errors.append(problem)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert (results["a"].stored, results["b"].duplicates) == ([0], [0])
    assert results["b"].stored == []
    assert EngagementEvent.objects.filter(external_id="race").count() == 1


@pytest.mark.django_db
def test_maintenance_gives_a_month_with_rows_in_the_default_its_own_partition():
    lead = LeadFactory()
    long_ago = datetime(2019, 5, 20, 8, tzinfo=UTC)
    stored = facts.events_record(
        events=[row(lead, "x", long_ago), row(lead, "y", long_ago + timedelta(days=3))]
    ).events
    assert {partition_of(e.pk) for e in stored} == {DEFAULT_PARTITION}
    keys = EventKey.objects.count()
    result = event_partitions_maintain()
    assert result.created == [partition_name(datetime(2019, 5, 1, tzinfo=UTC))]
    assert result.moved_rows == 2
    assert {partition_of(e.pk) for e in stored} == {"leads_engagementevent_p2019_05"}
    assert EventKey.objects.count() == keys  # moving rows keeps their keys
    # Idempotent: nothing left to do.
    assert event_partitions_maintain().created == []
    # And the months ahead are made when the clock moves on.
    later = month_add(month_of(timezone.now()), 5)
    ahead = event_partitions_maintain(now=later)
    assert partition_name(month_add(later, 3)) in ahead.created


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_maintenance_run_while_another_holds_the_lock_does_nothing():
    LeadFactory()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
            far = datetime(2031, 1, 1, tzinfo=UTC)
            result = event_partitions_maintain(now=far)
            assert result.created == [] and result.skipped
            cursor.execute("ROLLBACK")
        assert event_partitions_maintain(now=far).created  # free again
    finally:
        other.close()


@pytest.mark.django_db
def test_the_bare_load_rebuilds_partitioned_indexes_and_writes_the_keys():
    from leads.services.bulk import indexes_built_after, writer_for

    lead = LeadFactory()
    with transaction.atomic(), indexes_built_after(connection, [EngagementEvent]):
        writer = writer_for(connection)
        writer.insert(
            EngagementEvent,
            facts.EVENT_FIELDS,
            [
                (lead.pk, "page_view", at, {}, None, "demo", f"DEMO-{n}", at)
                for n, at in enumerate([timezone.now(), datetime(2018, 2, 2, tzinfo=UTC)])
            ],
        )
        writer.close()
    assert set(EventKey.objects.values_list("external_id", flat=True)) == {"DEMO-0", "DEMO-1"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s",
            [partition_name(month_of(timezone.now()))],
        )
        assert cursor.fetchone()[0] == 4
    # The old month got a partition of its own after the load.
    assert datetime(2018, 2, 1, tzinfo=UTC) in month_partitions()


def _relkind() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'leads_engagementevent'::regclass")
        return cursor.fetchone()[0]


def _events_by_id() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, lead_id, kind, occurred_at, source_system, external_id "
            "FROM leads_engagementevent"
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _migrate(target) -> None:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes() if target is None else [target]
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_converts_a_populated_table_and_back():
    lead = LeadFactory()
    _migrate(("leads", "0014_handoff_due_indexes"))
    try:
        assert _relkind() == "r"
        now = timezone.now()
        instants = [
            datetime(2009, 11, 30, 23, 59, 59, tzinfo=UTC),  # far back: a month of its own
            month_add(month_of(now), -2),  # a month boundary exactly
            month_add(month_of(now), -1) - timedelta(microseconds=1),
            now,
            month_add(month_of(now), 9) + timedelta(days=3),  # far ahead
        ]
        with connection.cursor() as cursor:
            for n, at in enumerate(instants):
                cursor.execute(
                    "INSERT INTO leads_engagementevent (lead_id, kind, occurred_at, properties, "
                    "source_system, external_id, received_at) VALUES (%s, 'page_view', %s, "
                    "'{}', 'hubspot', %s, %s)",
                    [lead.pk, at, f"m-{n}" if n % 2 == 0 else "", at],
                )
        before = _events_by_id()
        _migrate(None)
        assert _relkind() == "p"
        assert _events_by_id() == before  # every row, id for id
        for event_id, (*_, occurred_at, _system, _external) in before.items():
            assert partition_of(event_id) == partition_name(month_of(occurred_at))
        assert set(EventKey.objects.values_list("external_id", flat=True)) == {
            "m-0", "m-2", "m-4"
        }  # fmt: skip
        # Ingestion goes on: the sequence continues after the copied ids, keys still hold.
        result = facts.events_record(events=[row(lead, "m-0", now), row(lead, "new", now)])
        assert result.duplicates == [0]
        assert result.events[0].pk > max(before)
        assert partition_of(result.events[0].pk) == partition_name(month_of(now))

        # And back: one plain table with the unique constraint, the same rows.
        after = _events_by_id()
        _migrate(("leads", "0014_handoff_due_indexes"))
        assert _relkind() == "r"
        assert _events_by_id() == after
        from django.db import IntegrityError

        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO leads_engagementevent (lead_id, kind, occurred_at, properties, "
                "source_system, external_id, received_at) VALUES (%s, 'page_view', %s, '{}', "
                "'hubspot', 'new', %s)",
                [lead.pk, now, now],
            )
    finally:
        _migrate(None)
    assert _relkind() == "p"
