"""How imports of events and leads write (issue 15, import speed): the file is read once, every
row is checked before anything reaches the fact tables (a rejected file takes no ids), events
are stored in (lead, occurred_at) order, each lead is marked for rescoring once per import, and
the progress bar covers the writing that follows the reading."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from leads.imports import csvfile, engine
from leads.imports.engine import COMMITTED, REJECTED, import_file
from leads.models import EngagementEvent, Lead, StageTransition
from leads.services import facts
from leads.services.bulk import InsertWriter, writer_for
from scoring.models import LeadScoreState
from tests.factories import LeadFactory
from tests.leads import test_import_events as events_files
from tests.leads import test_import_leads as leads_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(engine, "CHUNK_ROWS", 10)


@pytest.fixture
def files_opened(monkeypatch):
    """How many times an import opens its file."""
    opened = []
    real = csvfile.open_rows

    def counting(path, fmt):
        opened.append(path)
        return real(path, fmt)

    monkeypatch.setattr(csvfile, "open_rows", counting)
    return opened


def event(lead_ext: str, minute: int, number: int, kind: str = "page_view") -> list[str]:
    return [lead_ext, "", kind, f"2026-03-02T10:{minute:02d}:00Z", f"E{number}", ""]


def next_event_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('leads_engagementevent', 'id'))")
        return cursor.fetchone()[0]


def test_an_events_file_is_read_once_and_stored_in_lead_then_time_order(
    tmp_path, small_chunks, files_opened
):
    leads = [LeadFactory(external_id=f"L-{n}") for n in range(3)]
    # File order: by time across leads, in reverse; 45 rows, five chunks.
    rows = [event(f"L-{n % 3}", 59 - n, n) for n in range(45)]
    path = events_files.write_csv(tmp_path, rows)
    report = import_file(path=path, mapping=events_files.mapping())
    assert (report.status, report.created, report.rows) == (COMMITTED, 45, 45)
    assert len(files_opened) == 1
    stored = list(EngagementEvent.objects.order_by("pk").values_list("lead_id", "occurred_at"))
    assert stored == sorted(stored)
    assert {lead_id for lead_id, _ in stored} == {lead.pk for lead in leads}


def test_a_lead_whose_events_span_many_chunks_is_marked_for_rescoring_once(tmp_path, small_chunks):
    lead = LeadFactory(external_id="L-1")
    before = LeadScoreState.objects.filter(lead=lead).values_list("pending_seq", flat=True)
    before = before[0] if before else 0
    rows = [event("L-1", n, n) for n in range(35)]  # four chunks, one lead
    report = import_file(
        path=events_files.write_csv(tmp_path, rows), mapping=events_files.mapping()
    )
    assert (report.status, report.created, report.rescore_leads) == (COMMITTED, 35, 1)
    assert LeadScoreState.objects.get(lead=lead).pending_seq == before + 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's id sequences")
def test_a_bad_event_on_the_last_row_writes_nothing_and_takes_no_ids(tmp_path, small_chunks):
    LeadFactory(external_id="L-1")
    rows = [event("L-1", n % 60, n) for n in range(44)]
    rows.append(["L-1", "", "page_view", "yesterday", "E-late", ""])
    before = next_event_id()
    report = import_file(
        path=events_files.write_csv(tmp_path, rows), mapping=events_files.mapping()
    )
    assert (report.status, report.error_rows, report.rows) == (REJECTED, 1, 45)
    assert [(e.row, e.field) for e in report.errors] == [(46, "occurred_at")]
    assert next_event_id() == before + 1
    assert not EngagementEvent.objects.exists()
    assert report.created == report.rescore_leads == 0


def test_skip_invalid_stores_the_good_events_of_every_chunk(tmp_path, small_chunks):
    LeadFactory(external_id="L-1")
    rows = [event("L-1", n % 60, n) for n in range(25)]
    rows[3] = ["L-404", "", "page_view", "2026-03-02T10:00:00Z", "E-x", ""]
    rows[17] = ["L-1", "", "tweet", "2026-03-02T10:00:00Z", "E-y", ""]
    path = events_files.write_csv(tmp_path, rows)
    report = import_file(path=path, mapping=events_files.mapping(), skip_invalid=True)
    assert (report.status, report.created, report.skipped) == (COMMITTED, 23, 2)
    assert EngagementEvent.objects.count() == 23


def test_events_of_trigger_kinds_still_move_their_leads_after_the_store(tmp_path, small_chunks):
    sal = LeadFactory(
        external_id="L-9", stage="sal", stage_entered_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    rows = [event("L-9", n, n) for n in range(15)]
    rows.append(event("L-9", 30, 99, kind="meeting_booked"))
    report = import_file(
        path=events_files.write_csv(tmp_path, rows), mapping=events_files.mapping()
    )
    assert report.status == COMMITTED
    sal.refresh_from_db()
    assert sal.stage == "sql"
    move = StageTransition.objects.get(lead=sal)
    assert move.transitioned_at == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's id sequences")
def test_a_leads_file_is_read_once_and_a_late_bad_row_takes_no_ids(
    tmp_path, small_chunks, files_opened
):
    rows = [leads_files.row(email=f"l{n}@x.com", company=f"Co {n}") for n in range(45)]
    rows.append(leads_files.row(email="late@x.com", created="2026-02-30 10:00"))
    before = leads_files.next_ids()
    report = import_file(
        path=leads_files.write_csv(tmp_path, rows), mapping=leads_files.leads_mapping()
    )
    assert (report.status, report.error_rows, report.rows) == (REJECTED, 1, 46)
    assert len(files_opened) == 1
    after = leads_files.next_ids()
    assert {table: after[table] - before[table] for table in before} == dict.fromkeys(before, 1)
    assert not Lead.objects.exists()


def test_a_leads_file_in_many_chunks_writes_every_chunk_with_its_history(
    tmp_path, small_chunks, files_opened
):
    rows = [
        leads_files.row(email=f"l{n}@x.com", company="Same Co", website="same.example",
                        stage="mql" if n % 2 else "")
        for n in range(25)
    ]  # fmt: skip
    path = leads_files.write_csv(tmp_path, rows)
    report = import_file(path=path, mapping=leads_files.leads_mapping())
    assert (report.status, report.created, len(files_opened)) == (COMMITTED, 25, 1)
    assert report.created_refs["accounts"] == 1  # created by the first chunk, found by the next
    assert Lead.objects.filter(account__domain="same.example").count() == 25
    mqls = Lead.objects.filter(stage="mql")
    assert mqls.count() == 12
    assert StageTransition.objects.count() == 25 + 12
    assert LeadScoreState.objects.filter(pending_seq=1).count() == 25


def test_progress_goes_on_while_the_checked_rows_are_written(tmp_path, small_chunks):
    rows = [leads_files.row(email=f"l{n}@x.com", company=f"Co {n}") for n in range(45)]
    seen: list[float] = []
    report = import_file(
        path=leads_files.write_csv(tmp_path, rows),
        mapping=leads_files.leads_mapping(),
        progress=lambda fraction, _rows: seen.append(fraction),
    )
    assert report.status == COMMITTED
    assert seen == sorted(seen) and seen[-1] == 1.0
    reading = [f for f in seen if f <= 0.5]
    writing = [f for f in seen if 0.5 < f < 1.0]
    assert reading and len(writing) >= 3  # five chunks written, each reported


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_staged_rows_are_written_in_order_in_batches_with_progress(copy):
    leads = sorted(LeadFactory.create_batch(3), key=lambda lead: lead.pk)
    at = datetime(2026, 3, 2, tzinfo=UTC)
    rows = [
        facts.EventRow(lead_id=leads[n % 3].pk, kind="page_view", occurred_at=at.replace(hour=n),
                       source_system="t", external_id=f"S{n}")
        for n in reversed(range(12))
    ]  # fmt: skip
    done: list[int] = []
    with transaction.atomic():
        writer = writer_for() if copy else InsertWriter(connection)
        facts.events_stage(events=rows[:5], writer=writer)
        facts.events_stage(events=rows[5:], writer=writer)
        # The writer's contract: flush before reading on its connection again. Reading while
        # its thread was still copying interleaved the two on one connection, and the read
        # never returned (a CI run hung here for 15 minutes).
        writer.flush()
        assert not EngagementEvent.objects.exists()  # staged, not stored
        writer.insert_staged(
            EngagementEvent, facts.EVENT_FIELDS, order_by=["lead", "occurred_at"], batch=5,
            progress=done.append,
        )  # fmt: skip
        writer.close()
    stored = list(EngagementEvent.objects.order_by("pk").values_list("lead_id", "occurred_at"))
    assert len(stored) == 12 and stored == sorted(stored)
    assert done == [5, 10, 12]


def test_the_cycle_collector_is_off_while_rows_are_processed_and_back_on_after(
    tmp_path, monkeypatch
):
    import gc

    LeadFactory(external_id="L-1")
    seen = []
    real = engine.EventImport.process

    def recording(self, rows):
        seen.append(gc.isenabled())
        return real(self, rows)

    monkeypatch.setattr(engine.EventImport, "process", recording)
    assert gc.isenabled()
    path = events_files.write_csv(tmp_path, [event("L-1", 1, 1)])
    assert import_file(path=path, mapping=events_files.mapping()).status == COMMITTED
    bad = events_files.write_csv(tmp_path, [event("L-404", 2, 2)], name="bad.csv")
    assert import_file(path=bad, mapping=events_files.mapping()).status == REJECTED
    assert seen == [False, False]
    assert gc.isenabled()
