"""An events file whose chunks are clean is worked column by column (``EventImport.
process_parsed``): the same events, counts, rescoring marks and stage moves as row by row, and
a chunk with a problem still reports it row by row."""

from datetime import UTC, datetime

import pytest

from leads.imports import engine
from leads.imports.engine import COMMITTED, REJECTED, import_file
from leads.imports.mapping import Mapping
from leads.models import EngagementEvent, StageTransition
from scoring.models import LeadScoreState
from tests.factories import LeadFactory
from tests.leads.test_import_events import write_csv

pytestmark = pytest.mark.django_db

HEADER = ["Lead ID", "Activity Type", "Timestamp", "Activity ID"]
MAPPING = Mapping.from_json(
    {
        "kind": "events",
        "fields": {
            "lead_external_id": "Lead ID",
            "kind": "Activity Type",
            "occurred_at": "Timestamp",
            "external_id": "Activity ID",
            "source_system": {"constant": "hubspot"},
        },
    }
)


@pytest.fixture
def rows_by_row(monkeypatch):
    """Chunks of 10 rows; records the rows that went through the row-by-row handler."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 10)
    seen = []
    real = engine.EventImport.process

    def process(handler, rows):
        seen.extend(row for row, _ in rows)
        return real(handler, rows)

    monkeypatch.setattr(engine.EventImport, "process", process)
    return seen


def event(lead: str, minute: int, number: int, kind: str = "page_view") -> list[str]:
    return [lead, kind, f"2026-03-02T10:{minute:02d}:00-05:00", f"E{number}"]


def test_clean_chunks_store_every_event_and_mark_each_lead_once(tmp_path, rows_by_row):
    leads = [LeadFactory(external_id=f"L-{n}") for n in range(3)]
    rows = [event(f"L-{n % 3}", n % 60, n) for n in range(25)]
    report = import_file(path=write_csv(tmp_path, rows, header=HEADER), mapping=MAPPING)
    assert (report.status, report.created, report.rescore_leads) == (COMMITTED, 25, 3)
    assert rows_by_row == []
    stored = EngagementEvent.objects.filter(external_id="E7").get()
    assert (stored.lead_id, stored.occurred_at) == (
        leads[1].pk,
        datetime(2026, 3, 2, 15, 7, tzinfo=UTC),
    )
    assert set(LeadScoreState.objects.values_list("lead_id", "pending_seq")) >= {
        (lead.pk, 1) for lead in leads
    }


def test_a_reimport_counts_events_received_before_and_stores_only_the_new(tmp_path, rows_by_row):
    LeadFactory(external_id="L-1")
    sal = LeadFactory(
        external_id="L-2", stage="sal", stage_entered_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    old = [event("L-1", n, n) for n in range(12)]
    import_file(path=write_csv(tmp_path, old, header=HEADER), mapping=MAPPING)
    again = [*old, event("L-2", 30, 99, kind="meeting_booked")]
    report = import_file(
        path=write_csv(tmp_path, again, header=HEADER, name="again.csv"), mapping=MAPPING
    )
    assert (report.status, report.created, report.duplicates) == (COMMITTED, 1, 12)
    assert report.rescore_leads == 1
    assert EngagementEvent.objects.count() == 13
    sal.refresh_from_db()
    assert sal.stage == "sql"
    assert StageTransition.objects.filter(lead=sal).count() == 1
    assert rows_by_row == []


def test_a_chunk_naming_an_unknown_lead_or_a_repeat_is_checked_row_by_row(tmp_path, rows_by_row):
    LeadFactory(external_id="L-1")
    rows = [event("L-1", n, n) for n in range(30)]
    rows[4] = event("L-404", 4, 4)  # row 6, first chunk
    rows[25] = event("L-1", 25, 3)  # row 27, third chunk: E3 again
    report = import_file(path=write_csv(tmp_path, rows, header=HEADER), mapping=MAPPING)
    assert report.status == REJECTED
    assert [(e.row, e.field) for e in report.errors] == [
        (6, "lead_external_id"),
        (27, "external_id"),
    ]
    assert "first on row 5" in report.errors[1].message
    assert not EngagementEvent.objects.exists()
    assert rows_by_row == [*range(2, 12), *range(22, 32)]
