"""Importing engagement events: linked to leads by external id or e-mail, idempotent on
(source system, external id), triggering stage moves and rescoring like live events."""

import csv
import io
from datetime import UTC, datetime

import pytest

from leads.imports.engine import COMMITTED, REJECTED, import_file
from leads.imports.mapping import Mapping
from leads.models import EngagementEvent, Lead, StageTransition
from scoring.models import LeadScoreState
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

HEADER = ["Lead ID", "Email", "Activity Type", "Timestamp", "Activity ID", "utm_source"]
FIELDS = {
    "lead_external_id": "Lead ID",
    "lead_email": "Email",
    "kind": "Activity Type",
    "occurred_at": "Timestamp",
    "external_id": "Activity ID",
    "source_system": {"constant": "hubspot"},
    "properties": {"columns": ["utm_source"]},
}


def write_csv(tmp_path, rows, header=HEADER, name="events.csv"):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def mapping(fields=FIELDS) -> Mapping:
    return Mapping.from_json({"kind": "events", "fields": fields})


@pytest.fixture
def leads():
    return (
        LeadFactory(external_id="L-1", email="one@x.com"),
        LeadFactory(external_id="L-2", email="two@x.com"),
    )


def test_events_link_to_leads_by_external_id_or_email(tmp_path, leads):
    one, two = leads
    path = write_csv(
        tmp_path,
        [
            ["L-1", "", "Page view", "2026-03-02T10:00:00Z", "E1", "google"],
            ["", "TWO@x.com", "form_fill", "2026-03-02T11:00:00Z", "E2", ""],
            ["L-1", "", "E-mail click", "2026-03-03T09:00:00+01:00", "E3", ""],
        ],
    )
    report = import_file(path=path, mapping=mapping())
    assert (report.status, report.created) == (COMMITTED, 3)
    events = {e.external_id: e for e in EngagementEvent.objects.all()}
    assert (events["E1"].lead, events["E1"].kind, events["E1"].properties) == (
        one,
        "page_view",
        {"utm_source": "google"},
    )
    assert (events["E2"].lead, events["E2"].source_system) == (two, "hubspot")
    assert events["E3"].occurred_at == datetime(2026, 3, 3, 8, tzinfo=UTC)
    states = LeadScoreState.objects.filter(lead__in=leads)
    assert len(states) == 2 and all(s.pending_seq > s.scored_seq for s in states)


def test_reimporting_the_same_events_creates_nothing_new(tmp_path, leads):
    rows = [
        ["L-1", "", "page_view", "2026-03-02T10:00:00Z", "E1", ""],
        ["L-2", "", "page_view", "2026-03-02T10:00:00Z", "E2", ""],
    ]
    import_file(path=write_csv(tmp_path, rows), mapping=mapping())
    rows.append(["L-2", "", "pricing_page", "2026-03-04T10:00:00Z", "E3", ""])
    report = import_file(path=write_csv(tmp_path, rows, name="again.csv"), mapping=mapping())
    assert (report.status, report.created, report.duplicates) == (COMMITTED, 1, 2)
    assert "2 already received" in report.summary
    assert EngagementEvent.objects.count() == 3


def test_an_unknown_lead_is_a_row_error_and_nothing_is_written(tmp_path, leads):
    path = write_csv(
        tmp_path,
        [
            ["L-1", "", "page_view", "2026-03-02T10:00:00Z", "E1", ""],
            ["L-404", "", "page_view", "2026-03-02T10:00:00Z", "E2", ""],
            ["", "ghost@x.com", "page_view", "2026-03-02T10:00:00Z", "E3", ""],
        ],
    )
    report = import_file(path=path, mapping=mapping())
    assert report.status == REJECTED
    assert [(e.row, e.field, e.column, e.value, e.message) for e in report.errors] == [
        (3, "lead_external_id", "Lead ID", "L-404", "is no lead's external id"),
        (4, "lead_email", "Email", "ghost@x.com", "is no lead's e-mail address"),
    ]
    assert not EngagementEvent.objects.exists()
    assert not LeadScoreState.objects.filter(pending_seq__gt=0).exists()


def test_duplicate_event_ids_within_a_file_and_unknown_kinds(tmp_path, leads):
    path = write_csv(
        tmp_path,
        [
            ["L-1", "", "page_view", "2026-03-02T10:00:00Z", "E1", ""],
            ["L-1", "", "page_view", "2026-03-02T10:05:00Z", "E1", ""],
            ["L-1", "", "tweet", "2026-03-02T10:00:00Z", "E2", ""],
        ],
    )
    report = import_file(path=path, mapping=mapping(), skip_invalid=True)
    assert [(e.row, e.field, e.message.split(";")[0]) for e in report.errors] == [
        (3, "external_id", "appears twice in the file (first on row 2)"),
        (4, "kind", "is not a known kind"),
    ]
    assert (report.created, report.skipped) == (1, 2)


def test_a_booked_meeting_moves_a_sal_to_sql_as_a_live_event_does(tmp_path):
    lead = LeadFactory(
        external_id="L-9", stage="sal", stage_entered_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    path = write_csv(tmp_path, [["L-9", "", "Meeting booked", "2026-03-05T15:00:00Z", "M1", ""]])
    assert import_file(path=path, mapping=mapping()).status == COMMITTED
    lead.refresh_from_db()
    assert lead.stage == "sql"
    move = StageTransition.objects.get(lead=lead)
    assert (move.from_stage, move.to_stage) == ("sal", "sql")
    assert move.transitioned_at == datetime(2026, 3, 5, 15, tzinfo=UTC)


def test_events_without_external_ids_are_each_stored(tmp_path, leads):
    fields = {k: v for k, v in FIELDS.items() if k != "external_id"}
    rows = [["L-1", "", "page_view", "2026-03-02T10:00:00Z", "", ""]] * 2
    report = import_file(path=write_csv(tmp_path, rows), mapping=mapping(fields))
    assert report.created == 2
    assert Lead.objects.get(external_id="L-1").events.count() == 2


def test_a_reimport_with_new_events_writes_only_those_and_moves_leads_once(tmp_path, leads):
    sal = LeadFactory(
        external_id="L-3", stage="sal", stage_entered_at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    old = [["L-1", "", "page_view", "2026-03-02T10:00:00Z", f"E{n}", ""] for n in range(3)]
    import_file(path=write_csv(tmp_path, old), mapping=mapping())
    meeting = ["L-3", "", "meeting_booked", "2026-03-05T15:00:00Z", "M1", ""]
    report = import_file(path=write_csv(tmp_path, [*old, meeting], name="2.csv"), mapping=mapping())
    assert (report.created, report.duplicates) == (1, 3)
    sal.refresh_from_db()
    assert sal.stage == "sql"
    assert StageTransition.objects.filter(lead=sal).count() == 1
    assert EngagementEvent.objects.count() == 4
