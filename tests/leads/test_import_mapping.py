"""The pure side of imports: reading values, guessing mappings, the mapping JSON, and the stage
history an import implies. No database."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from leads.defaults import DEFAULT_STAGES
from leads.imports import history
from leads.imports.history import HistoryProblem
from leads.imports.mapping import (
    FORMAT_TAG,
    FieldSpec,
    Mapping,
    MappingContext,
    MappingError,
    compile_mapping,
    guess_date_format,
    guess_mapping,
    normalize_domain,
    target_fields,
)
from leads.lifecycle import Lifecycle, Stage

LIFECYCLE = Lifecycle(
    tuple(
        Stage(key=r[0], name=r[1], label=r[2], team=r[3], kind=r[4], order=i)
        for i, r in enumerate(DEFAULT_STAGES)
    )
)
CONTEXT = MappingContext(lifecycle=LIFECYCLE)
NAMES = {stage.key: stage.name for stage in LIFECYCLE.stages}


def parser(kind: str, header: list[str], fields: dict, **options):
    mapping = Mapping.from_json({"kind": kind, "fields": fields, "options": options})
    return compile_mapping(mapping, header, CONTEXT)


def parse_one(kind: str, fields: dict, cells: dict, **options):
    header = list(cells)
    return parser(kind, header, fields, **options).parse(2, list(cells.values()))


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Values -----------------------------------------------------------------------------------


def test_dates_with_a_format_in_the_mappings_time_zone():
    values, errors = parse_one(
        "events",
        {
            "lead_email": "Email",
            "kind": "Type",
            "occurred_at": {"column": "When", "format": "%m/%d/%Y %I:%M %p"},
        },
        {"Email": "a@x.com", "Type": "page_view", "When": "03/08/2026 09:30 PM"},
        time_zone="America/New_York",
    )
    assert errors == []
    assert values["occurred_at"] == at(2026, 3, 9, 1, 30)  # EST was UTC-5 until 8 March, 2 am


def test_iso_dates_keep_their_offset_and_dates_alone_are_midnight():
    fields = {"lead_email": "Email", "kind": "Type", "occurred_at": "When"}
    with_offset, _ = parse_one(
        "events",
        fields,
        {"Email": "a@x.com", "Type": "form_fill", "When": "2026-03-01T10:00+02:00"},
    )
    day_only, _ = parse_one(
        "events", fields, {"Email": "a@x.com", "Type": "form_fill", "When": "2026-03-01"}
    )
    assert with_offset["occurred_at"] == at(2026, 3, 1, 8)
    assert day_only["occurred_at"] == at(2026, 3, 1)


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("2026-12-01T10:00:00+16:00", None, "has the UTC offset +16:00, out of range"),
        ("2026-12-01 10:00 -2359", "%Y-%m-%d %H:%M %z", "has the UTC offset -23:59, out of"),
        ("2026-02-30", None, "is not a valid date (expected like 2026-03-01"),
        ("31/04/2026", "%d/%m/%Y", "is not a valid date (expected %d/%m/%Y)"),
        ("13/45/2026", "%m/%d/%Y", "is not a valid date"),
        ("0226-03-01", None, "has the year 226, out of range (1900–2100)"),
        ("yesterday", None, "is not a valid date"),
    ],
)
def test_impossible_dates_are_errors_naming_row_field_and_value(text, fmt, message):
    spec = {"column": "When", **({"format": fmt} if fmt else {})}
    values, errors = parse_one(
        "events",
        {"lead_email": "Email", "kind": "Type", "occurred_at": spec},
        {"Email": "a@x.com", "Type": "page_view", "When": text},
    )
    assert "occurred_at" not in values
    [error] = errors
    assert (error.row, error.field, error.column, error.value) == (2, "occurred_at", "When", text)
    assert message in error.message
    assert str(error).startswith(f"row 2, When → occurred_at: {text!r} ")


@pytest.mark.parametrize(
    ("text", "spec", "expected"),
    [
        ("1,054", {}, Decimal("1054.00")),
        ("$1,054.50", {}, Decimal("1054.50")),
        ("1.234,5", {"decimal": ","}, Decimal("1234.50")),
        ("12.5", {"scale": "1000000"}, Decimal("12500000.00")),
        (" 7 ", {}, Decimal("7.00")),
    ],
)
def test_numbers(text, spec, expected):
    values, errors = parse_one(
        "opportunities",
        {"name": "Name", "amount": {"column": "Amount", **spec}},
        {"Name": "Deal", "Amount": text},
    )
    assert errors == []
    assert values["amount"] == expected


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("amount", "-5", "cannot be negative"),
        ("amount", "lots", "is not a number"),
        ("amount", "1e20", "is too large (at most 12 digits)"),
        ("amount", "1e30", "is too large (at most 12 digits)"),  # was decimal.InvalidOperation
        ("amount", "9" * 400, "is too large (at most 12 digits)"),
        ("amount", "1e999999999", "is too large (at most 12 digits)"),
        ("amount", "999999999999.999", "is too large (at most 12 digits)"),  # rounds up
        ("amount", "NaN", "is not a number"),
        ("amount", "-Infinity", "is not a number"),
    ],
)
def test_bad_numbers(field, text, message):
    _, [error] = parse_one(
        "opportunities", {"name": "Name", field: "Value"}, {"Name": "Deal", "Value": text}
    )
    assert (error.field, error.message) == (field, message)


@pytest.mark.parametrize(
    ("fields", "text", "message"),
    [
        ({"annual_revenue": "V"}, "1e30", "is too large (at most 14 digits)"),
        ({"annual_revenue": {"column": "V", "scale": "1000000"}}, "1e9", "is too large"),
        ({"annual_revenue": {"column": "V", "scale": "1e6"}}, "1e999999", "is too large"),
        ({"employees": "V"}, "1e30", "is too large (at most 2,147,483,647)"),
        ({"employees": "V"}, "2147483648", "is too large (at most 2,147,483,647)"),
        ({"employees": "V"}, "1e-999999999", "is not a whole number"),
    ],
)
def test_a_number_beyond_its_field_is_a_row_error_not_a_crash(fields, text, message):
    values, errors = parse_one("accounts", {"name": "N", **fields}, {"N": "Acme", "V": text})
    [error] = errors
    assert error.message.startswith(message)
    assert (error.column, error.value) == ("V", text[:80])
    assert set(values) == {"name"}


def test_a_tiny_number_rounds_to_zero():
    values, errors = parse_one(
        "accounts", {"name": "N", "annual_revenue": "V"}, {"N": "Acme", "V": "1e-999999999"}
    )
    assert (values["annual_revenue"], errors) == (Decimal("0.00"), [])


def test_whole_numbers():
    values, errors = parse_one(
        "accounts", {"name": "N", "employees": "E"}, {"N": "A", "E": "1,200"}
    )
    assert (values["employees"], errors) == (1200, [])
    _, [error] = parse_one("accounts", {"name": "N", "employees": "E"}, {"N": "A", "E": "12.5"})
    assert error.message == "is not a whole number"


@pytest.mark.parametrize(
    "text", ["Fran\u00e7ois\x81", "caf\x80", "a\x1b[31mred", "tab\x0bvertical"]
)
def test_a_control_character_in_a_mapped_cell_is_a_row_error_naming_it(text):
    values, errors = parse_one(
        "leads", {"email": "E", "first_name": "F"}, {"E": "a@x.com", "F": text, "Note": "\x85"}
    )
    [error] = errors
    assert (error.field, error.column, error.value) == ("first_name", "F", text)
    assert "holds the control character U+" in error.message
    assert "Save it as UTF-8" in error.message
    assert values == {"email": "a@x.com"}


def test_tabs_and_line_breaks_in_a_cell_are_text():
    values, errors = parse_one(
        "leads", {"email": "E", "first_name": "F"}, {"E": "a@x.com", "F": "Ada\tB\r\nC"}
    )
    assert (errors, values["first_name"]) == ([], "Ada\tB\r\nC")


def test_a_control_character_escaped_in_json_properties_is_a_row_error():
    fields = {"lead_email": "E", "kind": "K", "occurred_at": "W", "properties": "P"}
    cells = {"E": "a@x.com", "K": "page_view", "W": "2026-03-01"}
    _, [error] = parse_one("events", fields, {**cells, "P": '{"url": "/x\\u0000"}'})
    assert error.field == "properties"
    assert "U+0000" in error.message
    _, [deep] = parse_one("events", fields, {**cells, "P": '{"a": ' + "[" * 100_000 + "}"})
    assert deep.message == "is not a JSON object"


@pytest.mark.parametrize(
    ("text", "expected"), [("yes", True), ("No", False), ("1", True), ("FALSE", False), ("x", True)]
)
def test_booleans(text, expected):
    values, errors = parse_one(
        "leads", {"email": "E", "in_marketing_nurture": "N"}, {"E": "a@x.com", "N": text}
    )
    assert (values["in_marketing_nurture"], errors) == (expected, [])


def test_enums_accept_keys_labels_and_known_synonyms():
    fields = {"lead_email": "E", "kind": "K", "occurred_at": "T"}
    for text, kind in [
        ("page_view", "page_view"),
        ("Page view", "page_view"),
        ("Form submission", "form_fill"),
        ("MEETING BOOKED", "meeting_booked"),
    ]:
        values, errors = parse_one("events", fields, {"E": "a@x.com", "K": text, "T": "2026-03-01"})
        assert (values.get("kind"), errors) == (kind, [])


def test_unknown_enum_value_lists_what_is_expected():
    _, [error] = parse_one(
        "opportunities", {"name": "N", "status": "S"}, {"N": "Deal", "S": "Engaging"}
    )
    assert error.field == "status"
    assert error.message == "is not a known status; expected one of open, won, lost"


def test_a_values_table_translates_before_parsing():
    fields = {"name": "N", "status": {"column": "S", "values": {"Engaging": "open", "Won": "won"}}}
    values, errors = parse_one("opportunities", fields, {"N": "Deal", "S": "engaging"})
    assert (values["status"], errors) == ("open", [])


def test_lead_stages_accept_hubspot_lifecycle_names_and_buyer_labels():
    for text, key in [
        ("Marketing Qualified Lead", "mql"),
        ("salesqualifiedlead", "sql"),
        ("Subscriber", "lead"),
        ("Evaluating", "sql"),
        ("Closed lost", "closed_lost"),
    ]:
        values, errors = parse_one(
            "leads", {"email": "E", "stage": "S"}, {"E": "a@x.com", "S": text}
        )
        assert (values["stage"], errors) == (key, [])


def test_countries_by_code_or_name():
    fields = {"email": "E", "country": "C"}
    for text, code in [("de", "DE"), ("United States", "US"), ("UK", "GB"), ("Korea", "KR")]:
        values, errors = parse_one("leads", fields, {"E": "a@x.com", "C": text})
        assert (values["country"], errors) == (code, [])
    _, [error] = parse_one("leads", fields, {"E": "a@x.com", "C": "Atlantis"})
    assert error.message.startswith("is not a known country")


def test_emails_are_lower_cased_and_checked():
    values, _ = parse_one("leads", {"email": "E"}, {"E": " Ada@Example.COM "})
    assert values["email"] == "ada@example.com"
    _, errors = parse_one("leads", {"email": "E"}, {"E": "ada.example.com"})
    assert [e.message for e in errors] == ["is not a valid e-mail address"]


def test_too_long_text_is_an_error():
    _, [error] = parse_one(
        "leads", {"email": "E", "first_name": "F"}, {"E": "a@x.com", "F": "x" * 81}
    )
    assert error.message == "is longer than 80 characters (81)"


def test_cells_an_export_made_spreadsheet_safe_read_back():
    values, _ = parse_one("leads", {"email": "E", "title": "T"}, {"E": "a@x.com", "T": "'=Head"})
    assert values["title"] == "=Head"


def test_blank_cells_are_absent_and_defaults_fill_them():
    fields = {"email": "E", "title": "T", "phone": {"column": "P", "default": "n/a"}}
    values, errors = parse_one("leads", fields, {"E": "a@x.com", "T": "  ", "P": ""})
    assert errors == []
    assert "title" not in values
    assert values["phone"] == "n/a"


def test_a_row_needs_one_of_the_identifying_fields():
    _, [error] = parse_one("leads", {"email": "E", "external_id": "X"}, {"E": "", "X": ""})
    assert "needs an e-mail or an external id" in error.message


def test_a_row_with_more_or_fewer_cells_than_the_header_is_an_error():
    row_parser = parser("leads", ["E", "F"], {"email": "E"})
    _, [error] = row_parser.parse(7, ["a@x.com", "Ada", "extra"])
    assert error.row == 7
    assert error.message.startswith("has 3 fields but the header has 2")


def test_columns_joined_and_properties_from_columns():
    fields = {"name": {"columns": ["Account", "Product"], "join": " — "}}
    values, _ = parse_one("opportunities", fields, {"Account": "", "Product": "GTX"})
    assert values["name"] == "GTX"
    values, _ = parse_one(
        "events",
        {
            "lead_email": "E",
            "kind": "K",
            "occurred_at": "T",
            "properties": {"columns": ["utm_source", "page"]},
        },
        {"E": "a@x.com", "K": "page_view", "T": "2026-03-01", "utm_source": "g", "page": ""},
    )
    assert values["properties"] == {"utm_source": "g"}


def test_domains_are_normalized_like_the_model():
    from leads.models import normalize_domain as model_normalize

    for text in ["https://WWW.Example.com/about", "example.org", "sub.example.co.uk/"]:
        assert normalize_domain(text) == model_normalize(text)


def test_target_field_lengths_match_the_models():
    from leads.models import Account, EngagementEvent, Lead, Opportunity

    models = {
        "accounts": Account,
        "leads": Lead,
        "events": EngagementEvent,
        "opportunities": Opportunity,
    }
    for kind, model in models.items():
        for target in target_fields(kind, CONTEXT):
            if not target.max_length or not hasattr(model, target.name):
                continue
            field = model._meta.get_field(target.name)
            if field.get_internal_type() == "CharField":
                assert target.max_length == field.max_length, (kind, target.name)
    # References are created with the file's text as their name.
    from leads.models import Campaign, Source

    lead_fields = {t.name: t for t in target_fields("leads", CONTEXT)}
    assert lead_fields["source"].max_length == Source._meta.get_field("name").max_length
    assert lead_fields["campaign"].max_length == Campaign._meta.get_field("name").max_length
    assert lead_fields["account_name"].max_length == Account._meta.get_field("name").max_length


# --- The mapping JSON -------------------------------------------------------------------------


def test_mapping_json_round_trip():
    data = {
        "format": FORMAT_TAG,
        "kind": "opportunities",
        "name": "Pipeline",
        "csv": {"encoding": "cp1252", "delimiter": ";"},
        "fields": {
            "name": {"columns": ["a", "b"], "join": " · "},
            "amount": {"column": "Amount", "decimal": ",", "scale": "1000"},
            "closed_at": {"column": "Close", "format": "%d.%m.%Y", "time_zone": "Europe/Berlin"},
            "status": {"column": "Stage", "values": {"Gewonnen": "won"}, "default": "open"},
            "currency": {"constant": "EUR"},
        },
        "options": {"create_owners": True, "time_zone": "Europe/Berlin"},
    }
    mapping = Mapping.from_json(data)
    assert Mapping.from_json(mapping.to_json()) == mapping
    assert mapping.to_json()["fields"] == data["fields"]
    assert (mapping.encoding, mapping.delimiter) == ("cp1252", ";")


def test_a_bare_column_name_is_shorthand():
    assert Mapping.from_json({"kind": "leads", "fields": {"email": "Email"}}).specs == {
        "email": FieldSpec(column="Email")
    }


def test_mapping_problems_are_all_listed_at_once():
    mapping = Mapping.from_json(
        {
            "kind": "leads",
            "fields": {
                "emial": "Email",
                "first_name": "Vorname",
                "created_at": {"column": "Created", "format": "dd/mm/yyyy"},
                "country": {"constant": "Atlantis"},
                "stage": {"column": "Stage", "values": {"Hot": "scorching"}},
            },
        }
    )
    with pytest.raises(MappingError) as raised:
        compile_mapping(mapping, ["Email", "Created", "Stage"], CONTEXT)
    problems = raised.value.problems
    assert any(p.startswith("emial: not a field of leads imports") for p in problems)
    assert "first_name: the file has no column 'Vorname'." in problems
    assert any(
        p.startswith("created_at: the date format 'dd/mm/yyyy' has no %-codes") for p in problems
    )
    assert any(
        p.startswith("country: the constant 'Atlantis' is not a known country") for p in problems
    )
    assert any(
        "maps 'Hot' to 'scorching', which is not a known lifecycle stage" in p for p in problems
    )
    assert any(p.startswith("Map one of email or external_id") for p in problems)


def test_malformed_mapping_json_is_refused_with_reasons():
    for data, expected in [
        ("{not json", "The mapping is not valid JSON"),
        ({"kind": "deals", "fields": {}}, "Unknown import kind 'deals'"),
        (
            {"kind": "leads", "fields": {"email": {"column": "E", "constant": "x"}}},
            "email: give exactly one of column, constant or columns.",
        ),
        (
            {"kind": "leads", "fields": {"email": "E"}, "options": {"create_owners": "yes"}},
            "options: create_owners must be true or false.",
        ),
        ({"kind": "leads", "format": "other/2", "fields": {}}, "Unknown mapping format"),
    ]:
        with pytest.raises(MappingError) as raised:
            Mapping.from_json(data)
        assert expected in str(raised.value)
    with pytest.raises(MappingError, match="This mapping is for leads, not events"):
        Mapping.from_json({"kind": "leads", "fields": {}}, kind="events")


# --- Guessing ---------------------------------------------------------------------------------


def guessed(kind: str, header: list[str], sample=()) -> dict:
    mapping = guess_mapping(kind, header, [list(row) for row in sample], CONTEXT)
    return {name: spec.column for name, spec in mapping.fields}


def test_guess_hubspot_contact_export():
    header = [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Job Title",
        "Company Name",
        "Website URL",
        "Country/Region",
        "Lifecycle Stage",
        "Original Source",
        "Contact owner",
        "Create Date",
        "Became a Marketing Qualified Lead Date",
        "Became a Customer Date",
    ]
    assert guessed("leads", header) == {
        "email": "Email",
        "external_id": "Record ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "phone": "Phone Number",
        "title": "Job Title",
        "country": "Country/Region",
        "account_name": "Company Name",
        "account_domain": "Website URL",
        "source": "Original Source",
        "owner": "Contact owner",
        "stage": "Lifecycle Stage",
        "created_at": "Create Date",
        "mql_at": "Became a Marketing Qualified Lead Date",
        "customer_at": "Became a Customer Date",
    }


def test_guess_salesforce_lead_and_opportunity_exports():
    leads = [
        "Lead ID",
        "First Name",
        "Last Name",
        "Email Address",
        "Company",
        "Lead Source",
        "Lead Status",
        "Lead Owner",
        "Created Date",
    ]
    assert guessed("leads", leads) == {
        "email": "Email Address",
        "external_id": "Lead ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "account_name": "Company",
        "source": "Lead Source",
        "owner": "Lead Owner",
        "stage": "Lead Status",
        "created_at": "Created Date",
    }
    opportunities = [
        "Opportunity ID",
        "Opportunity Name",
        "Account Name",
        "Amount",
        "Stage",
        "Close Date",
        "Created Date",
        "Opportunity Owner",
        "Lead Source",
    ]
    assert guessed("opportunities", opportunities) == {
        "name": "Opportunity Name",
        "external_id": "Opportunity ID",
        "account_name": "Account Name",
        "owner": "Opportunity Owner",
        "amount": "Amount",
        "stage": "Stage",
        "created_at": "Created Date",
        "closed_at": "Close Date",
    }


def test_guess_reads_the_apps_own_export_header():
    header = [
        "id",
        "external id",
        "email",
        "first name",
        "last name",
        "account",
        "source",
        "campaign",
        "stage",
        "tier",
        "owner",
        "in marketing nurture",
        "created at",
    ]
    mapped = guessed("leads", header)
    assert "id" not in mapped.values() and "tier" not in mapped.values()
    assert mapped["in_marketing_nurture"] == "in marketing nurture"
    assert mapped["account_name"] == "account"


def test_guess_date_formats_from_sample_values():
    assert guess_date_format(["2026-03-01", "2026-03-02T10:00:00Z"]) is None
    assert guess_date_format(["03/31/2026 14:05", "04/01/2026 09:00"]) == "%m/%d/%Y %H:%M"
    assert guess_date_format(["31/03/2026", "01/04/2026"]) == "%d/%m/%Y"
    assert guess_date_format(["31.03.2026"]) == "%d.%m.%Y"
    assert guess_date_format(["1772323200000"]) == "epoch_ms"
    header = ["Email", "Type", "Date"]
    mapping = guess_mapping("events", header, [["a@x.com", "Page view", "03/31/2026"]], CONTEXT)
    assert mapping.specs["occurred_at"].format == "%m/%d/%Y"


# --- Implied stage history --------------------------------------------------------------------


def test_a_new_lead_passes_every_funnel_stage_before_its_own():
    assert history.creation_path(LIFECYCLE, "sql") == ["lead", "mql", "sal", "sql"]
    assert history.creation_path(LIFECYCLE, "customer")[-2:] == ["opportunity", "customer"]
    assert history.creation_path(LIFECYCLE, "closed_lost") == [
        "lead",
        "mql",
        "sal",
        "sql",
        "opportunity",
        "closed_lost",
    ]
    assert history.creation_path(LIFECYCLE, "nurture") == ["lead", "nurture"]
    assert history.creation_path(LIFECYCLE, "nurture", {"mql"}) == ["lead", "mql", "nurture"]


def test_a_date_beyond_the_stage_contradicts_it():
    with pytest.raises(HistoryProblem) as raised:
        history.creation_path(LIFECYCLE, "mql", {"sql"})
    assert raised.value.field == "sql_at"


def test_steps_take_their_dates_or_the_previous_ones():
    steps = history.timed_steps(
        ["lead", "mql", "sal", "sql"],
        start=at(2026, 3, 1),
        dates={"lead": at(2026, 3, 1), "sal": at(2026, 3, 5)},
        names=NAMES,
    )
    assert steps == [
        ("lead", at(2026, 3, 1)),
        ("mql", at(2026, 3, 1)),
        ("sal", at(2026, 3, 5)),
        ("sql", at(2026, 3, 5)),
    ]
    with pytest.raises(HistoryProblem, match="SQL date 2026-02-01 00:00 is before the creation"):
        history.timed_steps(
            ["lead", "mql", "sal", "sql"],
            start=at(2026, 3, 1),
            dates={"sql": at(2026, 2, 1)},
            names=NAMES,
        )


def test_updates_move_undated_steps_to_now_but_not_past_a_later_date():
    steps = history.timed_steps(
        ["sal", "sql"],
        start=at(2026, 3, 1),
        dates={"sql": at(2026, 3, 4)},
        names=NAMES,
        undated_at=at(2026, 3, 20),
    )
    assert steps == [("sal", at(2026, 3, 4)), ("sql", at(2026, 3, 4))]


def test_moves_of_existing_leads():
    assert history.move_path(LIFECYCLE, "lead", "sql") == ["mql", "sal", "sql"]
    assert history.move_path(LIFECYCLE, "sql", "mql") == ["mql"]
    assert history.move_path(LIFECYCLE, "nurture", "sql") == ["sql"]
    assert history.move_path(LIFECYCLE, "sal", "closed_lost") == [
        "sql",
        "opportunity",
        "closed_lost",
    ]
    assert history.move_path(LIFECYCLE, "sql", "sql") == []


def test_deals_move_their_lead_to_opportunity_then_customer_or_lost():
    won = history.deal_milestones([(at(2026, 3, 10), "won", at(2026, 4, 20))])
    assert history.deal_moves(LIFECYCLE, current="mql", entered_at=at(2026, 3, 2), deal=won) == [
        ("sal", at(2026, 3, 10)),
        ("sql", at(2026, 3, 10)),
        ("opportunity", at(2026, 3, 10)),
        ("customer", at(2026, 4, 20)),
    ]
    lost = history.deal_milestones(
        [(at(2026, 3, 10), "lost", at(2026, 4, 1)), (at(2026, 3, 12), "lost", at(2026, 4, 5))]
    )
    assert history.deal_moves(
        LIFECYCLE, current="opportunity", entered_at=at(2026, 3, 1), deal=lost
    ) == [("closed_lost", at(2026, 4, 5))]
    still_open = history.deal_milestones(
        [(at(2026, 3, 10), "lost", at(2026, 4, 1)), (at(2026, 3, 12), "open", None)]
    )
    assert (
        history.deal_moves(
            LIFECYCLE, current="opportunity", entered_at=at(2026, 3, 1), deal=still_open
        )
        == []
    )
    assert (
        history.deal_moves(LIFECYCLE, current="customer", entered_at=at(2026, 1, 1), deal=lost)
        == []
    )


def test_no_move_is_dated_before_the_lead_entered_its_stage():
    deal = history.deal_milestones([(at(2026, 3, 10), "open", None)])
    moves = history.deal_moves(LIFECYCLE, current="nurture", entered_at=at(2026, 3, 15), deal=deal)
    assert moves == [("opportunity", at(2026, 3, 15))]
