"""Dates without a time read as local days, and mappings guessed from the headers of common CRM
exports (issue 14). Pure: no database."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from leads.defaults import DEFAULT_STAGES
from leads.imports.mapping import (
    LEADS,
    OPPORTUNITIES,
    Mapping,
    MappingContext,
    compile_mapping,
    dates_note,
    guess_mapping,
    parse_datetime,
)
from leads.lifecycle import Lifecycle, Stage
from revops.datetimes import local_day_start, parse_date_or_instant

LIFECYCLE = Lifecycle(
    tuple(
        Stage(key=r[0], name=r[1], label=r[2], team=r[3], kind=r[4], order=i)
        for i, r in enumerate(DEFAULT_STAGES)
    )
)
NEW_YORK_CONTEXT = MappingContext(lifecycle=LIFECYCLE, default_time_zone="America/New_York")
NEW_YORK, SANTIAGO = ZoneInfo("America/New_York"), ZoneInfo("America/Santiago")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("2026-03-31", None, utc(2026, 3, 31, 4)),  # still March in New York
        ("2026-04-01", "%Y-%m-%d", utc(2026, 4, 1, 4)),  # a quarter's first day
        ("03/08/2026", "%m/%d/%Y", utc(2026, 3, 8, 5)),  # the spring-forward day starts in EST
        ("2026-03-09", None, utc(2026, 3, 9, 4)),  # the day after: EDT
        ("2026-11-01", None, utc(2026, 11, 1, 4)),  # the fall-back day starts in EDT
        ("2026-12-31", None, utc(2027, 1, 1, 5) - (utc(2027, 1, 1) - utc(2026, 12, 31))),
        ("2026-03-31 23:30", "%Y-%m-%d %H:%M", utc(2026, 3, 31, 23, 30)),  # a time: `time_zone`
        ("2026-03-31T23:30:00-04:00", None, utc(2026, 4, 1, 3, 30)),  # an offset wins
    ],
)
def test_a_date_alone_is_the_start_of_its_local_day(text, fmt, expected):
    assert parse_datetime(text, fmt, ZoneInfo("UTC"), date_zone=NEW_YORK) == expected


def test_a_stated_time_of_day_and_a_midnight_that_does_not_exist():
    noon = parse_datetime(
        "2026-03-31", None, ZoneInfo("UTC"), date_zone=NEW_YORK, date_time=time(12)
    )
    assert noon == utc(2026, 3, 31, 16)
    # Santiago's clocks jump from 00:00 to 01:00 on 6 September 2026: the day starts at 01:00.
    start = local_day_start(datetime(2026, 9, 6).date(), zone=SANTIAGO)
    assert start == utc(2026, 9, 6, 4) and start.astimezone(SANTIAGO).hour == 1
    assert parse_date_or_instant("2026-04-01", date_zone=NEW_YORK) == utc(2026, 4, 1, 4)
    assert parse_date_or_instant("2026-04-01T00:00:00Z", date_zone=NEW_YORK) == utc(2026, 4, 1)


def test_the_mapping_states_the_zone_of_its_days_and_defaults_to_the_display_zone():
    header = ["Close Date"]
    mapping = Mapping.from_json({"kind": "opportunities", "fields": {"name": {"constant": "x"},
                                 "closed_at": {"column": "Close Date"}}})  # fmt: skip
    assert dates_note(mapping, NEW_YORK_CONTEXT) == (
        "Dates without a time are read as America/New_York days."
    )
    values, _ = compile_mapping(mapping, header, NEW_YORK_CONTEXT).parse(2, ["2026-04-01"])
    assert values["closed_at"] == utc(2026, 4, 1, 4)
    paris = Mapping.from_json({**mapping.to_json(), "options": {"date_time_zone": "Europe/Paris"}})
    assert paris.to_json()["options"]["date_time_zone"] == "Europe/Paris"
    values, _ = compile_mapping(paris, header, NEW_YORK_CONTEXT).parse(2, ["2026-04-01"])
    assert values["closed_at"] == utc(2026, 3, 31, 22)
    assert "Europe/Paris days" in dates_note(paris, NEW_YORK_CONTEXT)


def guessed(kind: str, header: list[str]) -> dict[str, str]:
    mapping = guess_mapping(kind, header, [], NEW_YORK_CONTEXT)
    return {name: spec.column for name, spec in mapping.fields}


@pytest.mark.parametrize(
    ("vendor", "header", "expected"),
    [
        ("HubSpot", ["Record ID", "Deal Name", "Deal Stage", "Amount", "Create Date",
                     "Close Date", "Deal owner"],
         {"external_id": "Record ID", "name": "Deal Name", "stage": "Deal Stage",
          "amount": "Amount", "created_at": "Create Date", "closed_at": "Close Date",
          "owner": "Deal owner"}),
        ("Salesforce", ["Opportunity ID", "Opportunity Name", "Account Name", "Stage", "Amount",
                        "Created Date", "Close Date", "Opportunity Owner"],
         {"external_id": "Opportunity ID", "name": "Opportunity Name",
          "account_name": "Account Name", "stage": "Stage", "amount": "Amount",
          "created_at": "Created Date", "closed_at": "Close Date",
          "owner": "Opportunity Owner"}),
        ("Pipedrive", ["Deal - ID", "Deal - Title", "Deal - Organization", "Deal - Value",
                       "Deal - Currency", "Deal - Stage", "Deal - Status", "Deal - Owner",
                       "Deal - Deal created", "Deal - Won time"],
         {"external_id": "Deal - ID", "name": "Deal - Title",
          "account_name": "Deal - Organization", "amount": "Deal - Value",
          "currency": "Deal - Currency", "stage": "Deal - Stage", "status": "Deal - Status",
          "owner": "Deal - Owner", "created_at": "Deal - Deal created",
          "closed_at": "Deal - Won time"}),
        ("Zoho", ["Record Id", "Deal Name", "Account Name", "Stage", "Amount", "Closing Date",
                  "Deal Owner", "Created Time"],
         {"external_id": "Record Id", "name": "Deal Name", "account_name": "Account Name",
          "stage": "Stage", "amount": "Amount", "closed_at": "Closing Date",
          "owner": "Deal Owner", "created_at": "Created Time"}),
        ("Maven funnel", ["opportunity_id", "sales_agent", "product", "account", "deal_stage",
                          "engage_date", "close_date", "close_value"],
         {"external_id": "opportunity_id", "owner": "sales_agent", "account_name": "account",
          "stage": "deal_stage", "created_at": "engage_date", "closed_at": "close_date",
          "amount": "close_value"}),
        ("Olist closed deals", ["mql_id", "seller_id", "sdr_id", "sr_id", "won_date",
                                "business_segment"],
         {"lead_external_id": "mql_id", "closed_at": "won_date"}),
    ],
)  # fmt: skip
def test_deal_exports_are_guessed(vendor, header, expected):
    assert guessed(OPPORTUNITIES, header) == expected, vendor


@pytest.mark.parametrize(
    ("vendor", "header", "expected"),
    [
        ("HubSpot", ["Record ID", "First Name", "Last Name", "Email", "Contact owner",
                     "Original Source", "Lifecycle Stage", "Create Date",
                     "Became a Customer Date"],
         {"external_id": "Record ID", "first_name": "First Name", "last_name": "Last Name",
          "email": "Email", "owner": "Contact owner", "source": "Original Source",
          "stage": "Lifecycle Stage", "created_at": "Create Date",
          "customer_at": "Became a Customer Date"}),
        ("Salesforce", ["Lead ID", "First Name", "Last Name", "Email", "Lead Source",
                        "Lead Status", "Lead Owner", "Created Date"],
         {"external_id": "Lead ID", "first_name": "First Name", "last_name": "Last Name",
          "email": "Email", "source": "Lead Source", "stage": "Lead Status",
          "owner": "Lead Owner", "created_at": "Created Date"}),
        ("Pipedrive", ["Person - ID", "Person - Name", "Person - Email", "Person - Owner"],
         {"external_id": "Person - ID", "name": "Person - Name", "email": "Person - Email",
          "owner": "Person - Owner"}),
        ("Zoho", ["Record Id", "First Name", "Last Name", "Email", "Lead Source", "Lead Owner",
                  "Created Time"],
         {"external_id": "Record Id", "first_name": "First Name", "last_name": "Last Name",
          "email": "Email", "source": "Lead Source", "owner": "Lead Owner",
          "created_at": "Created Time"}),
        ("Olist marketing funnel", ["mql_id", "first_contact_date", "landing_page_id", "origin"],
         {"external_id": "mql_id", "created_at": "first_contact_date", "source": "origin"}),
        ("Olist closed deals", ["mql_id", "won_date"],
         {"external_id": "mql_id", "customer_at": "won_date"}),
    ],
)  # fmt: skip
def test_lead_exports_are_guessed(vendor, header, expected):
    assert guessed(LEADS, header) == expected, vendor
