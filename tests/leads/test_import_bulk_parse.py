"""A chunk of rows parsed column by column (``RowParser.parse_clean``) gives exactly what the
row-by-row parser gives, or declines so that the rows are parsed one by one with their
messages. No database."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.imports.mapping import Mapping, compile_mapping
from tests.leads.test_import_mapping import CONTEXT

EVENTS = {
    "lead_external_id": "Record ID",
    "lead_email": "Email",
    "kind": "Type",
    "occurred_at": "When",
    "external_id": "Event ID",
    "source_system": {"constant": "crm"},
}
HEADER = ["Record ID", "Email", "Type", "When", "Event ID"]
LEADS = {
    "email": "Email",
    "first_name": "First",
    "stage": "Stage",
    "created_at": {"column": "Created", "format": "%Y-%m-%d"},
    "country": "Country",
}
LEAD_HEADER = ["Email", "First", "Stage", "Created", "Country"]

WHENS = ["2026-03-01T10:00:00+00:00", "2026-03-01T10:00:00-05:00", "2026-03-01 10:00",
         "2026-03-01", "2026-03-01T10:00:00+17:00", "0226-03-01T10:00:00Z", "yesterday",
         ""]  # fmt: skip
CELLS = {
    "Record ID": st.sampled_from(["L-1", " L-2 ", "", "'=L-3", "L-\x07", "x" * 101]),
    "Email": st.sampled_from(["ada@example.com", "ADA@Example.com", "", "not-an-email"]),
    "Type": st.sampled_from(["page_view", "Page View", "email_open", "", "tweet"]),
    "When": st.sampled_from(WHENS),
    "Event ID": st.sampled_from(["E1", "E2", "", " E3"]),
    "First": st.sampled_from(["Ada", "", "O'Brien", "'+Grace"]),
    "Stage": st.sampled_from(["lead", "MQL", "", "nowhere"]),
    "Created": st.sampled_from(["2026-03-01", "03/01/2026", ""]),
    "Country": st.sampled_from(["DE", "Germany", "", "Atlantis"]),
}


def rows_of(header):
    row = st.tuples(*(CELLS[name] for name in header)).map(list)
    short = st.just(["only one cell"])
    return st.lists(st.one_of(row, row, row, short), min_size=1, max_size=12)


def parse_each(parser, rows):
    return [parser.parse(number, cells) for number, cells in rows]


def check_same(parser, cells_list):
    rows = list(enumerate(cells_list, start=2))
    parsed = parser.parse_clean(rows)
    each = parse_each(parser, rows)
    if parsed is None:
        return False
    assert parsed.numbers == [number for number, _ in rows]
    assert parsed.rows() == [values for values, _ in each]
    assert not any(errors for _, errors in each)
    return True


@pytest.mark.parametrize(
    ("kind", "fields", "header"), [("events", EVENTS, HEADER), ("leads", LEADS, LEAD_HEADER)]
)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_rows_parsed_by_column_equal_the_rows_parsed_one_by_one(kind, fields, header, data):
    parser = compile_mapping(Mapping.from_json({"kind": kind, "fields": fields}), header, CONTEXT)
    check_same(parser, data.draw(rows_of(header)))


def test_a_clean_chunk_of_iso_instants_is_parsed_by_column():
    parser = compile_mapping(Mapping.from_json({"kind": "events", "fields": EVENTS}),
                             HEADER, CONTEXT)  # fmt: skip
    cells = [["L-1", "", "Page View", "2026-03-01T10:00:00-05:00", f"E{n}"] for n in range(3)]
    assert check_same(parser, cells)
    parsed = parser.parse_clean(list(enumerate(cells, start=2)))
    assert parsed.columns["occurred_at"] == [datetime(2026, 3, 1, 15, tzinfo=UTC)] * 3
    assert parsed.complete == {"lead_external_id", "kind", "occurred_at", "external_id",
                               "source_system"}  # fmt: skip


def test_a_chunk_with_a_bad_row_is_left_to_the_row_parser():
    parser = compile_mapping(Mapping.from_json({"kind": "events", "fields": EVENTS}),
                             HEADER, CONTEXT)  # fmt: skip
    cells = [["L-1", "", "page_view", "2026-03-01T10:00:00Z", "E1"],
             ["L-1", "", "tweet", "2026-03-01T10:00:00Z", "E2"]]  # fmt: skip
    assert parser.parse_clean(list(enumerate(cells, start=2))) is None
