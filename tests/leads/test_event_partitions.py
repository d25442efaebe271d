"""Engagement events partitioned by month (PostgreSQL): the table's shape, idempotent ingestion
across partitions (the key table), partitions made ahead and out of the default partition, the
seed's bare load, and the migration of a populated table."""

import dataclasses
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
from tests.metrics.test_meeting_content import world  # noqa: F401 - a fixture used below

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


def row(lead, external_id: str, at: datetime, kind: str = "page_view", asset=None):
    return facts.EventRow(
        lead_id=lead.pk, kind=kind, occurred_at=at, source_system="hubspot",
        external_id=external_id, content_asset_id=asset.pk if asset else None,
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


# --- Retention -------------------------------------------------------------------------------


def _state_rows(leads, kinds):
    from scoring.models import LeadScoreState, sum_field_name

    fields = ["engagement", "total", "grade", *(sum_field_name(kind) for kind in kinds)]
    return {
        row["lead_id"]: row
        for row in LeadScoreState.objects.filter(lead__in=leads).values("lead_id", *fields)
    }


def _scores(leads, spec, model_id, as_of_day):
    """Re-read every lead's sums from events (a new half-life's publish does this), rescore."""
    from scoring import bulk

    lo, hi = min(lead.pk for lead in leads), max(lead.pk for lead in leads)
    bulk.ensure_states(lo, hi)
    bulk.reread_sums(lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day)
    bulk.rescore_from_sums(lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day)
    return _state_rows(leads, spec.rules)


def _same_scores(before: dict, after: dict) -> None:
    """Scores (engagement, total, grade) exactly; the float sums to the last bits of their
    additions' order."""
    assert before.keys() == after.keys()
    for lead_id, row in before.items():
        for name, value in row.items():
            if isinstance(value, float) and name.startswith("sum_"):
                assert after[lead_id][name] == pytest.approx(value, rel=1e-12, abs=1e-12)
            else:
                assert after[lead_id][name] == value, (lead_id, name)


@pytest.mark.django_db
@pytest.mark.usefixtures("world")  # the content slide's facts: a won deal used an asset by an event
def test_retention_drops_old_months_only_after_folding_them_and_nothing_read_changes(settings):
    from leads.models import ContentEvent, FoldedEventDay
    from leads.partitions import events_retire
    from metrics.kpis import Period
    from metrics.meeting import content_section
    from metrics.queries.content import content_utilization
    from scoring import engine
    from scoring.backtest.selectors import _event_counts
    from scoring.models import ScoringModel, sum_field_name
    from scoring.selectors import lead_event_days
    from tests.metrics.factories import ContentAssetFactory, OpportunityFactory
    from tests.metrics.test_meeting_content import NOW

    now = timezone.now()
    current = month_of(now)
    old, recent = month_add(current, -8), month_add(current, -1)
    leads = [LeadFactory() for _ in range(3)]
    rows = []
    for n, lead in enumerate(leads):
        for day, kind, count in [(2, "page_view", 7), (2, "email_open", 1), (9, "page_view", 2),
                                 (3 + n, "content_download", 3)]:  # fmt: skip
            for minute in range(count):
                at = old + timedelta(days=day, hours=n, minutes=minute)
                rows.append(row(lead, f"{lead.pk}-{day}-{kind}-{minute}", at, kind))
                rows.append(
                    row(lead, f"{lead.pk}-r{day}-{kind}-{minute}", recent + (at - old), kind)
                )
        # Backdated far beyond every partition: in the default one.
        rows.append(row(lead, f"{lead.pk}-ancient", datetime(2015, 3, 3, 9, tzinfo=UTC)))
    # Engaged with an asset before its opportunity was created (content utilization).
    asset = ContentAssetFactory(title="Buyer's guide")
    rows.append(row(leads[0], "guide", old + timedelta(days=4), "content_download", asset))
    OpportunityFactory(lead=leads[0], created_at=old + timedelta(days=20))
    facts.events_record(events=rows)
    everyone = list(EngagementEvent.objects.values_list("lead_id", flat=True).distinct())
    all_leads = list(type(leads[0]).objects.filter(pk__in=everyone))
    model_id = ScoringModel.objects.order_by("pk").values_list("pk", flat=True).first()
    as_of_day = engine.day_number(now)
    spec = engine.ScoringSpec(
        version=1, half_life_days=30.0, band_1=20.0, band_2=8.0, band_3=2.0,
        rules={"page_view": engine.KindRule(1.0, 5), "email_open": engine.KindRule(2.0, 1),
               "content_download": engine.KindRule(4.0, 2)},
    )  # fmt: skip
    longer = dataclasses.replace(spec, half_life_days=90.0)

    def reads():
        period = Period(old, month_add(old, 1))
        lo, hi = min(everyone), max(everyone)
        return {
            "days": {pk: sorted(lead_event_days(pk)) for pk in everyone},
            "backtest": _event_counts(lo, hi, now),
            "content": content_section(NOW),
            "utilization": content_utilization(period),
        }

    half_life_changed = _scores(all_leads, longer, model_id, as_of_day)
    scores = _scores(all_leads, spec, model_id, as_of_day)
    before = reads()
    assert before["utilization"].opportunities_with_prior_engagement == 1
    events = EngagementEvent.objects.count()

    settings.EVENT_RETENTION_MONTHS = 6
    result = events_retire(now=now)
    horizon = month_add(current, -6)
    assert partition_name(old) in result.dropped
    assert min(month_partitions()) == horizon
    assert not EngagementEvent.objects.filter(occurred_at__lt=horizon).exists()
    assert result.folded_rows == events - EngagementEvent.objects.count() > 0
    assert FoldedEventDay.objects.exists()
    # The retired content-linked events keep their rows (the content KPIs read those).
    assert ContentEvent.objects.filter(occurred_at__lt=horizon).exists()

    # The same answers from what is left and what was folded.
    assert reads() == before
    _same_scores(scores, _scores(all_leads, spec, model_id, as_of_day))
    _same_scores(half_life_changed, _scores(all_leads, longer, model_id, as_of_day))

    # A backdated event on a day already folded: raw and folded counts add up before the cap.
    late = old + timedelta(days=9, hours=5)
    facts.events_record(events=[row(leads[0], "late", late)])
    expected = sorted(before["days"][leads[0].pk] + [("page_view", engine.day_number(late))])
    assert sorted(lead_event_days(leads[0].pk)) == expected
    with_late = _scores(all_leads, spec, model_id, as_of_day)
    # The decayed sum, not the total: eight months back an event adds ~0.004 points, which the
    # total's rounding to two places may swallow on some days of the month.
    page_views = sum_field_name("page_view")
    assert with_late[leads[0].pk][page_views] > scores[leads[0].pk][page_views]
    events_retire(now=now)  # folds it onto that day's count
    assert sorted(lead_event_days(leads[0].pk)) == expected
    _same_scores(with_late, _scores(all_leads, spec, model_id, as_of_day))
    # An old event re-sent after its month was dropped is still a duplicate.
    again = facts.events_record(events=[row(leads[1], f"{leads[1].pk}-2-page_view-0", old)])
    assert again.duplicates == [0]


@pytest.mark.django_db
def test_retention_is_off_unless_set(settings):
    from leads.partitions import events_retire

    settings.EVENT_RETENTION_MONTHS = 0
    lead = LeadFactory()
    facts.events_record(events=[row(lead, "old", datetime(2016, 1, 1, tzinfo=UTC))])
    assert events_retire().skipped == "retention off"
    assert EngagementEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_beat_task_retires_then_makes_partitions(settings):
    from leads.tasks import maintain_event_partitions

    lead = LeadFactory()
    settings.EVENT_RETENTION_MONTHS = 0
    facts.events_record(events=[row(lead, "old", datetime(2017, 8, 8, tzinfo=UTC))])
    first = maintain_event_partitions()
    assert first["created"] == ["leads_engagementevent_p2017_08"] and first["dropped"] == []
    settings.EVENT_RETENTION_MONTHS = 12
    second = maintain_event_partitions()
    assert "leads_engagementevent_p2017_08" in second["dropped"]
    assert second["folded_rows"] == 1 and second["created"] == []
    assert not EngagementEvent.objects.exists()


@pytest.mark.django_db
def test_a_form_is_told_an_event_key_was_received_before():
    """The admin's message, which the unique constraint gave before the key table."""
    from django.core.exceptions import ValidationError

    lead = LeadFactory()
    stored = facts.events_record(events=[row(lead, "seen", timezone.now())]).events[0]
    again = EngagementEvent(
        lead=lead, kind="page_view", occurred_at=datetime(2026, 2, 1, tzinfo=UTC),
        source_system="hubspot", external_id="seen",
    )  # fmt: skip
    with pytest.raises(ValidationError, match="already received"):
        again.full_clean()
    stored.refresh_from_db()
    stored.kind = "email_open"
    stored.full_clean()  # its own key is no clash
