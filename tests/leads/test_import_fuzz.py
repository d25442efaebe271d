"""Fuzzing the CSV import (issue 16): Hypothesis writes files — encodings and byte-order marks,
delimiters and line ends, quotes left open, huge cells, numbers (exponents, signs, NaN,
thousands), dates (offsets PostgreSQL cannot store, impossible days, epochs), control characters
and stray bytes, repeated or missing header names — and imports them as every kind. Whatever the
file, the import answers with a report: committed, or rejected with a reason a person can act on
(a problem with the file or mapping, or row errors naming the row), never an exception; and a
rejected import writes nothing. The mapping page, which once answered 500 for good after a bad
file, must render whatever was uploaded.

Bounded (a fixed seed, ~30 s): ``IMPORT_FUZZ_EXAMPLES=2000`` for a longer run.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from leads.imports.engine import COMMITTED, REJECTED, import_file
from leads.imports.mapping import Mapping
from leads.models import (
    Account,
    Campaign,
    EngagementEvent,
    Lead,
    Opportunity,
    Source,
    StageTransition,
)
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("IMPORT_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same files on every run: a CI failure reproduces locally
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
WRITTEN = (Lead, Account, EngagementEvent, StageTransition, Opportunity, Source, Campaign)

# --- Cells ----------------------------------------------------------------------------------


def rarely(chance: int = 10):
    """True about once in ``chance`` draws (not the simplest value, so Hypothesis's bias
    towards simple examples does not make every file a corner case)."""
    return st.sampled_from([False] * (chance - 1) + [True])


CONTROL = st.sampled_from(["\x01", "\x1b", "\x7f", "\x80", "\x85", "\x9f", "\ufeff", "\x00"])
QUOTING = st.sampled_from(['"', '""', '"a""b', 'x"y', "'", "\\", "a\nb", "a\r\nb"])
junk_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30
) | st.builds(lambda a, c, b: a + c + b, st.text(max_size=5), CONTROL, st.text(max_size=5))
huge = st.sampled_from([10_000, 200_000]).map(lambda n: "x" * n)
numbers = st.sampled_from(
    ["0", "-0", "12", "-5", "1e30", "1E+400", "1e-999999", "NaN", "Infinity", "-inf", "1,234.5",
     "1.234,5", "$1,000", "(100)", "99999999999999.999", "2147483648", "0x10", "١٢٣", "1_000",
     "", " ", "12 000", "1e999999999"]
) | st.integers(min_value=-(10**40), max_value=10**40).map(str) | st.floats().map(str)  # fmt: skip
dates = st.sampled_from(
    ["2026-12-01T10:00:00+16:00", "2026-01-01T00:00:00-23:59", "2026-02-30",
     "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1899-12-31", "2101-01-01",
     "2026-03-02T25:00", "1700000000", "03/02/2026 09:30", "yesterday", "",
     "2026-03-02T15:00:00+15:59"]
) | st.datetimes().map(lambda d: d.isoformat())  # fmt: skip
past = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat())
KNOWN_EMAILS = ["ada@example.com", "grace@x.io", "alan@example.org"]
emails = st.sampled_from(["ADA@Example.com", "bad", "a@b", "@x.com", "", "a@x.com "])
valid_emails = st.sampled_from(KNOWN_EMAILS) | st.emails().map(str)
domains = st.sampled_from(["https://www.acme.example/x", "nodot", "", "a" * 300])
valid_domains = st.sampled_from(["acme.example", "initech.example", "www.globex.example"])
names = st.sampled_from(["Acme", "Initech", "Café Crème", "Zoë", "O'Brien, Ltd."])
json_properties = st.sampled_from(
    ["[1, 2]", "{", '{"a": "\\u0000"}', '{"a": "\\u0085"}', '{"a": ' + "[" * 5000 + "}"]
)

# column: (mapping spec, a valid value, any value of the column's type)
COLUMNS = {
    "accounts": {
        "Name": ("name", names, st.just("")),
        "Domain": ("domain", valid_domains, domains),
        "Employees": ("employees", st.integers(0, 10**6).map(str), numbers),
        "Annual revenue": (
            {"column": "Annual revenue", "scale": "1000"},
            st.decimals(0, 10**8, places=2).map(str),
            numbers,
        ),
        "Country": ("country", st.sampled_from(["US", "Germany", "fr"]), st.just("xx")),
        "Created": ("created_at", past, dates),
    },
    "leads": {
        "Email": ("email", valid_emails, emails),
        "First Name": ("first_name", names, st.just("")),
        "Company": ("account_name", names, st.just("")),
        "Website": ("account_domain", valid_domains, domains),
        "Lead Source": ("source", st.sampled_from(["Webinar", "webinar", "Google Ads"]), names),
        "Stage": ("stage", st.sampled_from(["lead", "mql", "Sales Qualified Lead"]), names),
        "Created": ("created_at", past, dates),
        "Record ID": ("external_id", st.sampled_from(["HS-1", "HS-2", "HS-3"]), st.just("")),
    },
    "events": {
        "Email": ("lead_email", st.sampled_from(KNOWN_EMAILS), emails),
        "Type": ("kind", st.sampled_from(["page_view", "form_fill"]), names),
        "When": ("occurred_at", past, dates),
        "Properties": ("properties", st.just('{"url": "/pricing"}'), json_properties),
        "Event ID": ("external_id", st.sampled_from(["e1", "e2", "e3"]), st.just("")),
    },
    "opportunities": {
        "Deal": ("name", names, st.just("")),
        "Email": ("lead_email", st.sampled_from(KNOWN_EMAILS), emails),
        "Amount": ("amount", st.decimals(0, 10**6, places=2).map(str), numbers),
        "Status": ("status", st.sampled_from(["open", "won", "lost"]), names),
        "Created": ("created_at", past, dates),
        "Closed": ("closed_at", past, dates),
    },
}


def fields_of(kind: str) -> dict:
    fields = {}
    for column, (target, _, _) in COLUMNS[kind].items():
        if isinstance(target, dict):
            fields[{"Annual revenue": "annual_revenue"}[column]] = target
        else:
            fields[target] = column
    return fields


# --- Files ----------------------------------------------------------------------------------


@st.composite
def csv_files(draw, kind: str) -> bytes:
    columns = COLUMNS[kind]
    header = list(columns)
    if draw(rarely(4)):  # a column the mapping ignores, a repeated or a blank name
        extra = draw(st.sampled_from(["Notes", header[0], "", " Email ", "Ünïcödé"]))
        header.insert(draw(st.integers(0, len(header))), extra)
    if draw(rarely(15)):  # a column the mapping needs is missing
        header.pop(draw(st.integers(0, len(header) - 1)))
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        fuzzy = draw(rarely(2))  # half the rows valid, the others anything
        row = []
        for name in header:
            if name not in columns:
                row.append(draw(junk_text))
            elif not fuzzy:
                row.append(draw(columns[name][1]))
            else:
                row.append(draw(st.one_of(columns[name][1], columns[name][2], junk_text,
                                          QUOTING, huge)))  # fmt: skip
        if draw(rarely(10)):  # too few or too many cells
            row = row[:-1] if draw(st.booleans()) else [*row, "extra"]
        rows.append(row)
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    line_end = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(rarely(10)):  # an unterminated quote
        text += '"unterminated' + delimiter + "x"
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(rarely(10)):  # stray bytes: a truncated UTF-8 sequence, 0x81, NUL
        position = draw(st.integers(0, len(data)))
        stray = draw(st.sampled_from([b"\xc3", b"\x81", b"\x00", b"\xff\xfe"]))
        data = data[:position] + stray + data[position:]
    if draw(rarely(25)):  # not a CSV at all
        data = draw(st.sampled_from([b"", codecs.BOM_UTF8, b"\n\n\n", b"PK\x03\x04\x00\x00"]))
    return data


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN} | {
        "User": get_user_model().objects.count()
    }


def assert_reported(report) -> None:
    """A report a person can act on: a status, and for a rejection the reasons."""
    assert report.status in (COMMITTED, REJECTED), report.status
    if report.status == REJECTED:
        assert report.problems or report.errors, report.summary
    for problem in report.problems:
        assert isinstance(problem, str) and problem.strip()
    for error in report.errors:
        assert error.row >= 1 and error.message.strip(), error
        assert str(error).startswith(f"row {error.row}")


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_any_file_is_imported_or_refused_with_reasons_and_a_refusal_writes_nothing(tmp_path, kind):
    mapping = Mapping.from_json({"kind": kind, "fields": fields_of(kind)})
    path = tmp_path / "fuzz.csv"
    for email in KNOWN_EMAILS:  # the leads events and deals refer to
        LeadFactory(email=email)

    @FUZZ
    @given(data=csv_files(kind), skip_invalid=st.booleans())
    def check(data: bytes, skip_invalid: bool) -> None:
        path.write_bytes(data)
        before = counts()
        report = import_file(path=path, mapping=mapping, skip_invalid=skip_invalid)
        event(f"{report.status}, {'problems' if report.problems else 'rows'}")  # statistics
        assert_reported(report)
        if report.status == REJECTED:
            assert counts() == before, report.summary
        elif not skip_invalid:
            assert report.error_rows == 0

    check()


@pytest.fixture
def importer(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return admin_client


@pytest.mark.parametrize("kind", ["accounts", "leads"])
def test_the_mapping_page_renders_whatever_was_uploaded(importer, kind):
    @settings(parent=FUZZ, max_examples=max(10, EXAMPLES // 6))
    @given(data=csv_files(kind))
    def check(data: bytes) -> None:
        upload = SimpleUploadedFile("fuzz.csv", data, content_type="text/csv")
        answer = importer.post("/leads/imports/", {"kind": kind, "file": upload})
        assert answer.status_code in (200, 302), answer.status_code  # 200: the form's error
        if answer.status_code == 302:
            page = importer.get(answer.url)
            assert page.status_code == 200

    check()
