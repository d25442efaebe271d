"""Importing leads: references, the stage history a stage implies, deduplication and updates,
all-or-nothing versus skipping invalid rows, and bad files."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from leads.imports.engine import COMMITTED, DRY_RUN, REJECTED, import_file
from leads.imports.mapping import Mapping
from leads.models import Account, Lead, Source, StageTransition
from scoring.models import LeadScoreState
from tests.factories import AccountFactory, LeadFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Company",
    "Website",
    "Lead Source",
    "Owner",
    "Lifecycle Stage",
    "Create Date",
    "Record ID",
]
FIELDS = {
    "email": "Email",
    "first_name": "First Name",
    "last_name": "Last Name",
    "account_name": "Company",
    "account_domain": "Website",
    "source": "Lead Source",
    "owner": "Owner",
    "stage": "Lifecycle Stage",
    "created_at": {"column": "Create Date", "format": "%Y-%m-%d %H:%M"},
    "external_id": "Record ID",
}


def write_csv(tmp_path, rows, header=HEADER, *, name="leads.csv", encoding="utf-8", delimiter=","):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def leads_mapping(fields=FIELDS, **options) -> Mapping:
    return Mapping.from_json({"kind": "leads", "fields": fields, "options": options})


def row(
    email="ada@example.com",
    first="Ada",
    last="Lovelace",
    company="Analytical Engines",
    website="engines.example",
    source="Webinar",
    owner="",
    stage="",
    created="2026-03-02 09:30",
    record="",
):
    return [email, first, last, company, website, source, owner, stage, created, record]


def at(*args):
    return datetime(*args, tzinfo=UTC)


def moves(lead):
    return list(
        StageTransition.objects.filter(lead=lead).values_list(
            "from_stage", "to_stage", "transitioned_at", "actor_type"
        )
    )


def test_new_leads_with_their_references_and_implied_history(tmp_path):
    rep = UserFactory(
        username="rep.alex", email="alex@revops.example", first_name="Alex", last_name="Kim"
    )
    existing = AccountFactory(name="Known Co", domain="known.example")
    path = write_csv(
        tmp_path,
        [
            row(stage="Sales Qualified Lead", owner="Alex Kim", record="HS-1"),
            row(
                email="grace@known.example",
                first="Grace",
                website="https://www.known.example/x",
                company="Known Company Ltd",
                source="webinar",
                owner="alex@revops.example",
                created="2026-03-03 10:00",
                record="HS-2",
            ),
        ],
    )
    report = import_file(path=path, mapping=leads_mapping())
    assert report.status == COMMITTED, report.errors
    assert (report.created, report.rows) == (2, 2)
    assert report.created_refs == {"sources": 1, "accounts": 1}
    ada = Lead.objects.get(email="ada@example.com")
    grace = Lead.objects.get(email="grace@known.example")
    # A source named in two spellings is one source; the account is matched by domain first.
    assert ada.source == grace.source and Source.objects.count() == 1
    assert grace.account == existing
    assert ada.account.name == "Analytical Engines" and ada.account.domain == "engines.example"
    assert ada.owner == rep and grace.owner == rep
    created = at(2026, 3, 2, 9, 30)
    assert (ada.stage, ada.stage_entered_at, ada.created_at) == ("sql", created, created)
    assert moves(ada) == [
        ("", "lead", created, "import"),
        ("lead", "mql", created, "import"),
        ("mql", "sal", created, "import"),
        ("sal", "sql", created, "import"),
    ]
    # A sales stage takes the lead out of marketing automation, as a live move does.
    assert ada.in_marketing_nurture is False and grace.in_marketing_nurture is True
    assert moves(grace) == [("", "lead", at(2026, 3, 3, 10), "import")]
    # Marked for rescoring in the import's transaction.
    states = LeadScoreState.objects.filter(lead__in=[ada, grace])
    assert all(state.pending_seq > state.scored_seq for state in states) and len(states) == 2


def test_stage_dates_from_the_file_time_the_history(tmp_path):
    header = ["Email", "Stage", "Created", "MQL date", "Became a Sales Qualified Lead Date"]
    path = write_csv(
        tmp_path, [["a@x.com", "sql", "2026-03-01", "2026-03-04", "2026-03-09"]], header
    )
    fields = {
        "email": "Email",
        "stage": "Stage",
        "created_at": "Created",
        "mql_at": "MQL date",
        "sql_at": "Became a Sales Qualified Lead Date",
    }
    assert import_file(path=path, mapping=leads_mapping(fields)).status == COMMITTED
    lead = Lead.objects.get()
    # Dates alone are New York days (the display time zone): 05:00 UTC, 04:00 from 8 March.
    assert [(f, t, when) for f, t, when, _ in moves(lead)] == [
        ("", "lead", at(2026, 3, 1, 5)),
        ("lead", "mql", at(2026, 3, 4, 5)),
        ("mql", "sal", at(2026, 3, 4, 5)),
        ("sal", "sql", at(2026, 3, 9, 4)),
    ]
    assert lead.stage_entered_at == at(2026, 3, 9, 4)


def test_dates_that_contradict_each_other_are_row_errors(tmp_path):
    header = ["Email", "Stage", "Created", "MQL date"]
    path = write_csv(tmp_path, [["a@x.com", "mql", "2026-03-05", "2026-03-01"]], header)
    fields = {"email": "Email", "stage": "Stage", "created_at": "Created", "mql_at": "MQL date"}
    report = import_file(path=path, mapping=leads_mapping(fields))
    assert report.status == REJECTED
    [error] = report.errors
    assert (error.row, error.field, error.column) == (2, "mql_at", "MQL date")
    assert "MQL date 2026-03-01 05:00 is before the creation (2026-03-05 05:00)" in error.message


def test_reimport_updates_instead_of_duplicating(tmp_path):
    lead = LeadFactory(
        email="ada@example.com", first_name="Augusta", external_id="", created_at=at(2026, 1, 5)
    )
    StageTransition.objects.create(
        lead=lead,
        from_stage="",
        to_stage="lead",
        transitioned_at=at(2026, 1, 5),
        actor_type="system",
    )
    path = write_csv(
        tmp_path, [row(email="ADA@example.com", record="HS-1", stage="mql", created="", source="")]
    )
    report = import_file(path=path, mapping=leads_mapping())
    assert (report.created, report.updated, report.status) == (0, 1, COMMITTED)
    lead.refresh_from_db()
    assert Lead.objects.count() == 1
    assert (lead.first_name, lead.external_id, lead.stage) == ("Ada", "HS-1", "mql")
    assert lead.created_at == at(2026, 1, 5)  # blank in the file: kept
    assert lead.source is not None  # blank cells never clear a stored value
    [move] = [m for m in moves(lead) if m[0] == "lead"]
    assert move[1] == "mql" and move[3] == "import"
    # Matched by external id the second time, even with another e-mail; nothing changes.
    path = write_csv(
        tmp_path,
        [row(email="", first="Ada", record="HS-1", stage="mql", created="", source="")],
        name="again.csv",
    )
    report = import_file(path=path, mapping=leads_mapping())
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)


def test_an_external_id_and_an_email_of_two_different_leads_is_an_error(tmp_path):
    LeadFactory(email="one@x.com", external_id="A-1")
    LeadFactory(email="two@x.com", external_id="A-2")
    report = import_file(
        path=write_csv(tmp_path, [row(email="two@x.com", record="A-1")]), mapping=leads_mapping()
    )
    [error] = report.errors
    assert error.field == "email"
    assert "belongs to lead #" in error.message and "'A-1' is lead #" in error.message


def test_duplicate_ids_within_one_file_are_errors_on_the_later_rows(tmp_path):
    path = write_csv(
        tmp_path,
        [
            row(record="X-1"),
            row(email="b@x.com", record="X-2"),
            row(email="Ada@Example.com", record="X-3"),
            row(email="c@x.com", record="x-2"),
        ],
    )
    report = import_file(path=path, mapping=leads_mapping())
    assert report.status == REJECTED
    assert [(e.row, e.field, e.message) for e in report.errors] == [
        (4, "email", "appears twice in the file (first on row 2)"),
        (5, "external_id", "appears twice in the file (first on row 3)"),
    ]
    assert Lead.objects.count() == 0


def test_all_or_nothing_a_rejected_import_changes_nothing(tmp_path):
    LeadFactory(email="kept@x.com", first_name="Kept")
    accounts, sources = Account.objects.count(), Source.objects.count()
    path = write_csv(
        tmp_path,
        [
            row(email="kept@x.com", first="Changed"),
            row(email="new@x.com", company="Brand New Co", source="Brand new source"),
            row(email="bad@x.com", created="2026-02-30 10:00"),
            row(email="worse", stage="hot"),
        ],
    )
    report = import_file(path=path, mapping=leads_mapping())
    assert report.status == REJECTED
    assert (report.created, report.updated, report.error_rows) == (0, 0, 2)
    assert [(e.row, e.field, e.value) for e in report.errors] == [
        (4, "created_at", "2026-02-30 10:00"),
        (5, "email", "worse"),
        (5, "stage", "hot"),
    ]
    assert "Rejected, nothing imported: 2 of 4 rows have problems" in report.summary
    assert Lead.objects.get().first_name == "Kept"
    assert (Account.objects.count(), Source.objects.count()) == (accounts, sources)
    assert not StageTransition.objects.exists()


def next_ids() -> dict[str, int]:
    """The ids the next lead, account and stage transition would get (taking them: sequences
    are not transactional, which is the point)."""
    found = {}
    with connection.cursor() as cursor:
        for model in (Lead, Account, StageTransition):
            table = model._meta.db_table
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
            found[table] = cursor.fetchone()[0]
    return found


@pytest.mark.skipif(connection.vendor != "postgresql", reason="sequences are PostgreSQL's")
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_rejected_import_takes_no_ids(tmp_path, monkeypatch, dry_run):
    """Rows were written chunk by chunk until the first bad one, then rolled back: the ids they
    took from the sequences stayed taken (a rejected 100k-row file used 190k lead ids)."""
    monkeypatch.setattr("leads.imports.engine.CHUNK_ROWS", 10)
    rows = [row(email=f"l{n}@x.com", company=f"Co {n}", website="") for n in range(45)]
    rows.append(row(email="late@x.com", created="2026-02-30 10:00"))
    before = next_ids()
    report = import_file(path=write_csv(tmp_path, rows), mapping=leads_mapping(), dry_run=dry_run)
    assert (report.status, report.error_rows, report.rows) == (REJECTED, 1, 46)
    after = next_ids()
    assert {table: after[table] - before[table] for table in before} == dict.fromkeys(before, 1)
    assert not Lead.objects.exists()


def test_skip_invalid_imports_the_rest_and_reports_every_skipped_row(tmp_path):
    path = write_csv(
        tmp_path,
        [
            row(email="one@x.com"),
            row(email="bad@x.com", created="yesterday"),
            row(email="two@x.com"),
            row(email="", record=""),
        ],
    )
    report = import_file(path=path, mapping=leads_mapping(), skip_invalid=True)
    assert report.status == COMMITTED
    assert (report.created, report.skipped) == (2, 2)
    assert sorted({e.row for e in report.errors}) == [3, 5]
    assert set(Lead.objects.values_list("email", flat=True)) == {"one@x.com", "two@x.com"}


def test_owners_unknown_are_errors_unless_created_as_inactive_users(tmp_path):
    path = write_csv(tmp_path, [row(owner="Moses Frase")])
    report = import_file(path=path, mapping=leads_mapping())
    assert report.errors[0].field == "owner"
    assert "is not a user's username, e-mail or name" in report.errors[0].message
    report = import_file(path=path, mapping=leads_mapping(create_owners=True))
    assert report.created_refs["owners"] == 1
    owner = Lead.objects.get().owner
    assert (owner.username, owner.first_name, owner.last_name) == ("moses.frase", "Moses", "Frase")
    assert owner.is_active is False and not owner.has_usable_password()
    # The next import matches the same user by name, and by username.
    path = write_csv(tmp_path, [row(email="b@x.com", owner="moses.frase")], name="b.csv")
    assert import_file(path=path, mapping=leads_mapping()).status == COMMITTED
    assert get_user_model().objects.filter(username__startswith="moses").count() == 1


def test_unknown_sources_can_be_refused(tmp_path):
    SourceFactory(name="Webinar")
    path = write_csv(tmp_path, [row(source="Webinar"), row(email="b@x.com", source="Podcast")])
    report = import_file(path=path, mapping=leads_mapping(create_sources=False))
    assert [(e.row, e.field, e.value) for e in report.errors] == [(3, "source", "Podcast")]


def test_updating_can_be_switched_off(tmp_path):
    LeadFactory(email="ada@example.com")
    report = import_file(
        path=write_csv(tmp_path, [row()]), mapping=leads_mapping(update_existing=False)
    )
    assert report.status == REJECTED
    assert "exists already (lead #" in report.errors[0].message


def test_a_dry_run_checks_everything_and_writes_nothing(tmp_path):
    report = import_file(
        path=write_csv(tmp_path, [row(), row(email="b@x.com")]),
        mapping=leads_mapping(),
        dry_run=True,
    )
    assert (report.status, report.created) == (DRY_RUN, 2)
    assert report.summary.startswith("Dry run, nothing written: 2 rows: 2 created")
    assert not Lead.objects.exists() and not Source.objects.exists()


def test_a_windows_1252_semicolon_file_with_a_bom_less_header(tmp_path):
    path = write_csv(
        tmp_path, [row(first="René", company="Café Crème SARL")], encoding="cp1252", delimiter=";"
    )
    report = import_file(path=path, mapping=leads_mapping())
    assert report.status == COMMITTED
    assert (report.encoding, report.delimiter) == ("cp1252", ";")
    assert report.encoding_note.endswith("read as Windows-1252")
    lead = Lead.objects.get()
    assert (lead.first_name, lead.account.name) == ("René", "Café Crème SARL")


def test_control_characters_of_the_latin1_fallback_are_row_errors_naming_the_column(tmp_path):
    # 0x81 is undefined in Windows-1252, so the file is read as Latin-1 and 0x80 becomes U+0080,
    # an invisible control character that was stored silently.
    path = tmp_path / "latin.csv"
    path.write_bytes(b"Email,First Name\r\nada@x.com,Caf\x80\r\ngrace@x.com,Fran\xe7ois\x81\r\n")
    mapping = leads_mapping({"email": "Email", "first_name": "First Name"})
    report = import_file(path=path, mapping=mapping)
    assert (report.status, report.encoding) == (REJECTED, "latin-1")
    assert [(e.row, e.column, e.value) for e in report.errors] == [
        (2, "First Name", "Caf\x80"),
        (3, "First Name", "Fran\xe7ois\x81"),
    ]
    assert "holds the control character U+0080" in report.errors[0].message
    assert not Lead.objects.exists()
    skipped = import_file(path=path, mapping=mapping, skip_invalid=True)
    assert (skipped.status, skipped.created, skipped.skipped) == (COMMITTED, 0, 2)


def test_a_file_with_a_bom_and_tabs(tmp_path):
    path = write_csv(tmp_path, [row()], encoding="utf-8-sig", delimiter="\t")
    report = import_file(path=path, mapping=leads_mapping())
    assert (report.status, report.encoding, report.delimiter) == (COMMITTED, "utf-8-sig", "\t")


def test_a_mapping_naming_missing_columns_is_rejected_before_any_row(tmp_path):
    report = import_file(
        path=write_csv(tmp_path, [row()]), mapping=leads_mapping({"email": "E-mail"})
    )
    assert report.status == REJECTED
    assert report.problems == ["email: the file has no column 'E-mail'."]
    assert report.rows == 0


def test_full_name_is_split_and_a_nurture_lead_with_an_mql_date_was_an_mql(tmp_path):
    header = ["Email", "Name", "Stage", "Created", "MQL"]
    path = write_csv(
        tmp_path, [["a@x.com", "Ada King Lovelace", "Nurture", "2026-03-01", "2026-03-02"]], header
    )
    fields = {
        "email": "Email",
        "name": "Name",
        "stage": "Stage",
        "created_at": "Created",
        "mql_at": "MQL",
    }
    assert import_file(path=path, mapping=leads_mapping(fields)).status == COMMITTED
    lead = Lead.objects.get()
    assert (lead.first_name, lead.last_name) == ("Ada King", "Lovelace")
    assert [(f, t) for f, t, *_ in moves(lead)] == [
        ("", "lead"),
        ("lead", "mql"),
        ("mql", "nurture"),
    ]
    assert lead.in_marketing_nurture is True
