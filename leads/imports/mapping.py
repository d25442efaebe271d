"""Column mappings for CSV imports. Pure: no ORM, tested without a database, fast per row.

A mapping says, for each target field of an import kind, where its value comes from (a column,
a constant, or several columns joined) and how the text is read (a date format, a table of
values, a scale…). ``Mapping.from_json`` / ``to_json`` are the saved and exported form (also read
by ``manage.py import_csv --mapping file.json``); ``compile_mapping`` checks a mapping against a
file's header and returns a ``RowParser`` that turns each row into typed values or precise
per-field errors; ``guess_mapping`` proposes a mapping from a header (HubSpot and Salesforce
export names included) and a few sample rows.

The JSON form::

    {
      "format": "revops.import-mapping/1",
      "kind": "leads",       // accounts | leads | events | opportunities | sales_reps
      "name": "HubSpot contacts",
      "csv": {"encoding": "auto", "delimiter": "auto"},
      "fields": {
        "email":      {"column": "Email"},
        "created_at": {"column": "Create Date", "format": "%m/%d/%Y %H:%M",
                       "time_zone": "America/New_York"},
        "stage":      {"column": "Lifecycle Stage", "values": {"Subscriber": "lead"}},
        "source":     {"constant": "Trade show 2026"},
        "name":       {"columns": ["product", "account"], "join": " · "},
        "properties": {"columns": ["utm_source", "utm_medium"]}
      },
      "options": {"time_zone": "UTC", "date_time_zone": "America/New_York",
                  "create_owners": false, "owners_become_reps": false, …}
    }

Times of day without an offset are read in ``time_zone`` (per field: its ``time_zone``). A date
without a time (``2017-03-31``, or a format without %H) is a *local day*: it starts at
``date_time`` (00:00) in ``date_time_zone``, by default the display time zone the dashboards
count days in (``settings.DISPLAY_TIME_ZONE``), so a deal closed on 1 April counts in April.

A blank cell never overwrites a stored value (it means "not in this export").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leads.choices import (
    ChannelGroup,
    EventKind,
    FitTier,
    OpportunityStage,
    OpportunityStatus,
    Region,
    Seniority,
)
from leads.imports.countries import COUNTRY_CODES
from leads.lifecycle import Lifecycle
from revops.datetimes import OFFSET_LIMIT, InstantError, local_day_start, to_utc
from revops.text import CONTROL_CHARACTERS, control_character_problem

FORMAT_TAG = "revops.import-mapping/1"
ACCOUNTS, LEADS, EVENTS, OPPORTUNITIES = "accounts", "leads", "events", "opportunities"
SALES_REPS = "sales_reps"
KINDS = (ACCOUNTS, LEADS, EVENTS, OPPORTUNITIES, SALES_REPS)
KIND_LABELS = {
    ACCOUNTS: "Accounts",
    LEADS: "Leads (contacts)",
    EVENTS: "Engagement events",
    OPPORTUNITIES: "Opportunities (deals)",
    SALES_REPS: "Sales reps and teams",
}

TEXT, EMAIL, INTEGER, DECIMAL, DATETIME = "text", "email", "integer", "decimal", "datetime"
BOOLEAN, CHOICE, COUNTRY, DOMAIN, TAGS, PROPERTIES = (
    "boolean", "choice", "country", "domain", "tags", "properties"
)  # fmt: skip
CHOICES = "choices"  # several of the field's choices in one cell ("A; B")
DATE_TYPES = (DATETIME,)

# Dates outside these years are typos (0226 for 2026), not history.
MIN_YEAR, MAX_YEAR = 1900, 2100
INT_MAX = 2_147_483_647
SPREADSHEET_QUOTED = ("'=", "'+", "'-", "'@", "'\t", "'\r")
BOOLEAN_TRUE = {"1", "true", "t", "yes", "y", "x", "on", "checked", "wahr", "oui", "si", "ja"}
BOOLEAN_FALSE = {"0", "false", "f", "no", "n", "off", "unchecked", "falsch", "non", "nein"}
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
ISO_HINT = "like 2026-03-01 or 2026-03-01T14:30:00+00:00"
DATE_FORMAT_CANDIDATES = (
    "%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y", "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y", "%d/%m/%Y %H:%M", "%d.%m.%Y",
    "%d.%m.%Y %H:%M", "%m/%d/%y", "%d/%m/%y", "%b %d, %Y", "%d %b %Y", "%Y/%m/%d",
)  # fmt: skip
SPEC_KEYS = {"column", "constant", "columns", "join", "format", "time_zone", "values", "default",
             "scale", "decimal", "separator"}  # fmt: skip
ERROR_VALUE_LENGTH = 80


def norm(text: str) -> str:
    """A comparison key: lower-case letters and digits only ("Closed - Won" → "closedwon")."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def header_key(text: str) -> str:
    """Header names compared by words: "Email Address (work)" → "email address"."""
    text = re.sub(r"\([^)]*\)\s*$", "", text.strip().lower())
    return " ".join(re.findall(r"[a-z0-9]+", text.replace("_", " ")))


class MappingError(ValueError):
    """The mapping itself is wrong (not a row): every problem, one message each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class FieldProblem(ValueError):
    """One cell cannot be read as its target field; the message says why, for a person."""


@dataclass(frozen=True)
class RowError:
    """A precise problem: spreadsheet row (header = 1), target field, column, value, why."""

    row: int
    field: str
    column: str
    value: str
    message: str

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "field": self.field,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }

    def __str__(self) -> str:
        what = self.column or self.field
        if self.column and self.field and header_key(self.column) != header_key(self.field):
            what = f"{self.column} → {self.field}"
        where = f"row {self.row}" + (f", {what}" if what else "")
        value = f" {self.value!r}" if self.value else ""
        return f"{where}:{value} {self.message}"


# --- Target fields ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetField:
    name: str
    label: str
    type: str
    max_length: int | None = None
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    synonyms: tuple[tuple[str, str], ...] = ()  # (raw text, choice value) beyond the labels
    aliases: tuple[str, ...] = ()  # header names that mean this field (header_key form)
    help: str = ""
    max_digits: int | None = None
    decimal_places: int | None = None

    @property
    def is_date(self) -> bool:
        return self.type in DATE_TYPES

    def choice_lookup(self) -> dict[str, str]:
        lookup = {}
        for raw, value in self.synonyms:
            lookup[norm(raw)] = value
        for value, label in self.choices:
            lookup[norm(label)] = value
            lookup[norm(value)] = value
        return lookup


@dataclass(frozen=True)
class MappingContext:
    """What the parser needs from the database, read once by the caller."""

    lifecycle: Lifecycle
    default_time_zone: str = "UTC"  # where dates without a time are days (the display zone)


def _t(name, label, type_, *aliases, **kwargs) -> TargetField:
    return TargetField(name, label, type_, aliases=tuple(aliases), **kwargs)


SENIORITY_SYNONYMS = (
    ("c-level", "executive"), ("c level", "executive"), ("ceo", "executive"), ("cfo", "executive"),
    ("cto", "executive"), ("owner", "executive"), ("founder", "executive"),
    ("president", "executive"), ("vice president", "vp"), ("svp", "vp"), ("evp", "vp"),
    ("head", "director"), ("head of", "director"), ("senior manager", "manager"),
    ("individual contributor", "individual"), ("ic", "individual"), ("staff", "individual"),
    ("employee", "individual"), ("entry", "individual"), ("", "unknown"), ("other", "unknown"),
)  # fmt: skip
REGION_SYNONYMS = (
    ("north america", "NA"), ("amer", "NA"), ("americas", "NA"), ("europe", "EMEA"),
    ("middle east", "EMEA"), ("africa", "EMEA"), ("asia", "APAC"), ("asia pacific", "APAC"),
    ("asia/pacific", "APAC"), ("oceania", "APAC"), ("latin america", "LATAM"),
    ("south america", "LATAM"), ("central america", "LATAM"),
)  # fmt: skip
EVENT_SYNONYMS = (
    ("page visit", "page_view"), ("visited page", "page_view"), ("web visit", "page_view"),
    ("website visit", "page_view"), ("pageview", "page_view"), ("pricing", "pricing_page"),
    ("pricing page visit", "pricing_page"), ("email opened", "email_open"),
    ("opened email", "email_open"), ("email clicked", "email_click"),
    ("clicked link in email", "email_click"), ("download", "content_download"),
    ("downloaded content", "content_download"), ("webinar registration", "webinar_registered"),
    ("registered for webinar", "webinar_registered"), ("webinar attendance", "webinar_attended"),
    ("attended webinar", "webinar_attended"), ("attended event", "event_attended"),
    ("form submission", "form_fill"), ("form submitted", "form_fill"),
    ("filled out form", "form_fill"), ("trial", "trial_signup"), ("free trial", "trial_signup"),
    ("demo requested", "demo_request"), ("requested demo", "demo_request"),
    ("meeting scheduled", "meeting_booked"), ("meeting", "meeting_booked"),
    ("unsubscribed", "unsubscribe"), ("bounce", "email_bounce"), ("bounced", "email_bounce"),
    ("hard bounce", "email_bounce"),
)  # fmt: skip
OPPORTUNITY_STAGE_SYNONYMS = (
    # Salesforce's default opportunity stages
    ("prospecting", "discovery"), ("qualification", "discovery"),
    ("needs analysis", "discovery"), ("value proposition", "demo"),
    ("id. decision makers", "demo"), ("perception analysis", "demo"),
    ("proposal/price quote", "proposal"), ("negotiation/review", "negotiation"),
    # HubSpot's default deal stages (internal names and labels)
    ("appointmentscheduled", "discovery"), ("appointment scheduled", "discovery"),
    ("qualifiedtobuy", "discovery"), ("qualified to buy", "discovery"),
    ("presentationscheduled", "demo"), ("presentation scheduled", "demo"),
    ("decisionmakerboughtin", "proposal"), ("decision maker bought-in", "proposal"),
    ("contractsent", "negotiation"), ("contract sent", "negotiation"),
    ("won", "closed_won"), ("lost", "closed_lost"),
    # Pipedrive's default pipeline and Zoho CRM's deal stages
    ("qualified", "discovery"), ("contact made", "discovery"), ("demo scheduled", "demo"),
    ("proposal made", "proposal"), ("negotiations started", "negotiation"),
    ("closed (won)", "closed_won"), ("closed (lost)", "closed_lost"),
    ("closed lost to competition", "closed_lost"),
    # plain funnel exports (Maven: Prospecting → Engaging → Won / Lost)
    ("prospect", "discovery"), ("engaging", "demo"), ("closed won", "closed_won"),
    ("closed lost", "closed_lost"),
)  # fmt: skip
OPPORTUNITY_STATUS_SYNONYMS = (
    ("closed won", "won"), ("closedwon", "won"), ("win", "won"), ("closed lost", "lost"),
    ("closedlost", "lost"), ("loss", "lost"), ("in progress", "open"), ("active", "open"),
    ("pipeline", "open"),
)  # fmt: skip
# HubSpot lifecycle stages and Salesforce lead statuses, by the stage key they mean.
LEAD_STAGE_SYNONYMS = (
    ("subscriber", "lead"), ("new", "lead"), ("open - not contacted", "lead"),
    ("marketing qualified lead", "mql"), ("marketingqualifiedlead", "mql"),
    ("sales accepted lead", "sal"), ("working - contacted", "sal"),
    ("sales qualified lead", "sql"), ("salesqualifiedlead", "sql"),
    ("closed - converted", "opportunity"), ("evangelist", "customer"), ("won", "customer"),
    ("closed won", "customer"), ("closed - not converted", "disqualified"),
    ("unqualified", "disqualified"), ("recycled", "nurture"), ("lost", "closed_lost"),
)  # fmt: skip

# "Became a … Date" columns of HubSpot contact exports, by stage key.
HUBSPOT_STAGE_DATES = {
    "lead": ("became a lead date",),
    "mql": ("became a marketing qualified lead date", "mql date", "qualified date"),
    "sal": ("became a sales accepted lead date",),
    "sql": ("became a sales qualified lead date",),
    "opportunity": ("became an opportunity date", "converted date", "engage date"),
    "customer": (
        "became a customer date",
        "won date",
        "closed won date",
        "won time",
        "conversion date",
    ),
}

CREATED_ALIASES = (
    "created at",
    "create date",
    "created date",
    "date created",
    "created",
    "created on",
    "createdate",
    "creation date",
    "created time",
    "add time",
)  # fmt: skip  (Zoho: Created Time; Pipedrive: Add time)
EXTERNAL_ID_ALIASES = ("external id", "crm id", "record id", "id")


def _account_fields() -> tuple[TargetField, ...]:
    return (
        _t("name", "Name", TEXT, "account", "account name", "company", "company name", "name",
           "organization", "organisation", "organization name", "accounts name",
           max_length=200, required=True),
        _t("domain", "Domain", DOMAIN, "domain", "website", "website url", "company domain name",
           "company domain", "web site", "company website", max_length=200,
           help="Normalized: https://www.example.com/about → example.com."),
        _t("industry", "Industry", TEXT, "industry", "sector", "vertical", max_length=80),
        _t("employees", "Employees", INTEGER, "employees", "number of employees",
           "employee count", "headcount", "no of employees"),
        _t("annual_revenue", "Annual revenue", DECIMAL, "annual revenue", "revenue",
           max_digits=16, decimal_places=2, help="Use a scale of 1000000 for “in millions”."),
        _t("country", "Country", COUNTRY, "country", "country region", "billing country",
           "office location", "hq country",
           help="An ISO code (US) or an English name (United States)."),
        _t("region", "Region", CHOICE, "region", "territory", "sales region",
           choices=tuple(Region.choices), synonyms=REGION_SYNONYMS,
           help="Derived from the country when not mapped."),
        _t("technologies", "Technologies", TAGS, "technologies", "technology", "tech stack"),
        _t("signals", "Signals", TAGS, "signals", "buying signals"),
        _t("external_id", "External id", TEXT, *EXTERNAL_ID_ALIASES, "account id", "company id",
           "organization id", "account external id", max_length=100),
        _t("created_at", "Created at", DATETIME, *CREATED_ALIASES),
    )  # fmt: skip


def _stage_date_fields(lifecycle: Lifecycle) -> tuple[TargetField, ...]:
    fields = []
    for stage in lifecycle.stages:
        if stage.key == lifecycle.first:
            continue
        aliases = [f"{stage.key} at", f"{stage.key} date", f"date entered {stage.key}",
                   f"became {header_key(stage.name)} date", f"{header_key(stage.name)} date",
                   f"date entered {header_key(stage.name)}"]  # fmt: skip
        if stage.key in HUBSPOT_STAGE_DATES:
            aliases += HUBSPOT_STAGE_DATES[stage.key]
        fields.append(
            _t(f"{stage.key}_at", f"Entered {stage.name} at", DATETIME, *aliases,
               help=f"When the lead became {stage.name} (else its creation time).")
        )  # fmt: skip
    return tuple(fields)


def _lead_fields(lifecycle: Lifecycle) -> tuple[TargetField, ...]:
    stage_choices = tuple((s.key, s.name) for s in lifecycle.stages)
    known = {key for key, _ in stage_choices}
    synonyms = tuple((raw, key) for raw, key in LEAD_STAGE_SYNONYMS if key in known) + tuple(
        (s.label, s.key) for s in lifecycle.stages if s.label
    )
    return (
        _t("email", "E-mail", EMAIL, "email", "email address", "e mail", "work email",
           "contact email", "primary email", "business email", "person email", "lead email",
           max_length=254),
        _t("external_id", "External id", TEXT, *EXTERNAL_ID_ALIASES, "contact id", "lead id",
           "prospect id", "salesforce id", "hubspot id", "mql id", "person id",
           "record id hubspot", "contact record id", max_length=100),
        _t("first_name", "First name", TEXT, "first name", "firstname", "given name", "forename",
           max_length=80),
        _t("last_name", "Last name", TEXT, "last name", "lastname", "surname", "family name",
           max_length=80),
        _t("name", "Full name", TEXT, "name", "full name", "contact name", "lead name",
           "person name", max_length=161,
           help="Split into first and last name when those are not mapped."),
        _t("phone", "Phone", TEXT, "phone", "phone number", "mobile", "mobile phone",
           "mobile phone number", "telephone", "work phone", max_length=40),
        _t("title", "Job title", TEXT, "title", "job title", "position", "job role",
           max_length=150),
        _t("seniority", "Seniority", CHOICE, "seniority", "seniority level", "job seniority",
           "management level", choices=tuple(Seniority.choices), synonyms=SENIORITY_SYNONYMS),
        _t("country", "Country", COUNTRY, "country", "country region", "mailing country",
           "country of residence"),
        _t("account_name", "Account (company name)", TEXT, "account", "account name", "company",
           "company name", "organization", "organisation", "associated company",
           max_length=200, help="Matched by name (any case); created when missing if allowed."),
        _t("account_domain", "Account domain", DOMAIN, "website", "website url",
           "company domain name", "domain", "company website", "company domain",
           max_length=200, help="Matched before the name."),
        _t("account_external_id", "Account external id", TEXT, "account id",
           "account external id", "company id", "associated company id", max_length=100),
        _t("source", "Source", TEXT, "lead source", "source", "original source",
           "original source type", "lead source type", "origin", "lead origin",
           "original traffic source", "person source", max_length=80,
           help="Matched by name (any case); created when missing if allowed."),
        _t("campaign", "Campaign", TEXT, "campaign", "campaign name", "utm campaign",
           "original campaign", max_length=150),
        _t("owner", "Owner", TEXT, "owner", "lead owner", "contact owner", "owner name",
           "owner email", "hubspot owner", "sales rep", "sales agent", "assigned to",
           "person owner", "contact owner name", max_length=254,
           help="A user's username, e-mail or full name."),
        _t("stage", "Lifecycle stage", CHOICE, "stage", "lifecycle stage", "lead stage",
           "lead status", "funnel stage", choices=stage_choices, synonyms=synonyms,
           help="Writes the stage history it implies (lead → … → stage)."),
        _t("created_at", "Created at", DATETIME, *CREATED_ALIASES, "lead created date",
           "first contact date", "first contact", "person created", "lead creation date"),
        _t("in_marketing_nurture", "In marketing nurture", BOOLEAN, "in marketing nurture",
           "marketing nurture", help="Else derived from the stage."),
        *_stage_date_fields(lifecycle),
    )  # fmt: skip


def _event_fields() -> tuple[TargetField, ...]:
    return (
        _t("lead_email", "Lead e-mail", EMAIL, "email", "lead email", "contact email",
           "email address", max_length=254),
        _t("lead_external_id", "Lead external id", TEXT, "lead external id", "lead id",
           "contact id", "prospect id", "record id", "external lead id", max_length=100),
        _t("kind", "Kind", CHOICE, "kind", "event", "event type", "activity type", "type",
           "activity", "event kind", choices=tuple(EventKind.choices), synonyms=EVENT_SYNONYMS,
           required=True),
        _t("occurred_at", "Occurred at", DATETIME, "occurred at", "timestamp", "date",
           "event date", "activity date", "time", "occurred", "event time", required=True),
        _t("source_system", "Source system", TEXT, "source system", "system", max_length=40,
           help='Together with the external id, makes re-imports idempotent (default "import").'),
        _t("external_id", "External id", TEXT, "external id", "event id", "activity id",
           max_length=100),
        _t("properties", "Properties", PROPERTIES, "properties",
           help="A JSON object column, or several columns kept as {column: value}."),
    )  # fmt: skip


def _opportunity_fields() -> tuple[TargetField, ...]:
    return (
        _t("name", "Name", TEXT, "opportunity name", "deal name", "name", "opportunity",
           "deal title", "title", "deal", max_length=200, required=True),
        _t("external_id", "External id", TEXT, "external id", "opportunity id", "deal id",
           "record id", "crm id", "id", "opportunity external id", max_length=100),
        _t("lead_email", "Lead e-mail", EMAIL, "contact email", "lead email", "email",
           "primary contact email", max_length=254),
        _t("lead_external_id", "Lead external id", TEXT, "lead external id", "lead id",
           "contact id", "prospect id", "mql id", "person id", "contact name id",
           max_length=100),
        _t("account_name", "Account (company name)", TEXT, "account", "account name", "company",
           "company name", "associated company", "organization", "deal organization",
           "organization name", max_length=200),
        _t("account_domain", "Account domain", DOMAIN, "account domain", "company domain name",
           "website", "domain", max_length=200),
        _t("account_external_id", "Account external id", TEXT, "account id",
           "account external id", "company id", max_length=100),
        _t("owner", "Owner", TEXT, "opportunity owner", "deal owner", "owner", "sales agent",
           "sales rep", "owner email", "owner name", "deal owner name", "assigned to",
           "salesperson", "account executive", max_length=254,
           help="A user's username, e-mail or full name."),
        _t("amount", "Amount", DECIMAL, "amount", "deal amount", "close value", "value",
           "opportunity amount", "amount in company currency", "deal value", "won amount",
           "expected revenue", max_digits=14, decimal_places=2),
        _t("currency", "Currency", TEXT, "currency", "amount currency", "currency code",
           "opportunity currency", "deal currency code", "deal currency", max_length=3),
        _t("stage", "Stage", CHOICE, "stage", "deal stage", "opportunity stage", "pipeline stage",
           choices=tuple(OpportunityStage.choices), synonyms=OPPORTUNITY_STAGE_SYNONYMS),
        _t("status", "Status", CHOICE, "status", "deal status", "won lost", "result", "outcome",
           choices=tuple(OpportunityStatus.choices), synonyms=OPPORTUNITY_STATUS_SYNONYMS,
           help="Else from the stage (closed won / closed lost / open)."),
        _t("created_at", "Created at", DATETIME, *CREATED_ALIASES, "engage date",
           "deal created", "deal created on", "deal deal created", "opportunity created date"),
        _t("closed_at", "Closed at", DATETIME, "close date", "closed at", "closed date",
           "date closed", "closed on", "won date", "closing date", "deal closed on",
           "deal deal closed on", "won time", "lost time", "close time", "deal won time",
           "deal lost time", "actual close date", "deal close date", "closed won date"),
        _t("loss_reason", "Loss reason", TEXT, "loss reason", "closed lost reason",
           "lost reason", "reason lost", max_length=120),
    )  # fmt: skip


def _sales_rep_fields() -> tuple[TargetField, ...]:
    person = "A user's username, e-mail or full name"
    return (
        _t("rep", "Sales rep", TEXT, "sales agent", "sales rep", "rep", "agent", "username",
           "user", "email", "email address", "user email", "rep email", "owner", "owner email",
           "owner name", "salesperson", "account executive", "user name", "rep name",
           "agent name", "full name", "name", max_length=254, required=True,
           help=f"{person}; matched like an owner, created as an inactive user when allowed."),
        _t("name", "Full name", TEXT, "full name", "rep name", "agent name", "name",
           max_length=161, help="Names a user the import creates (when the rep is an e-mail)."),
        _t("manager", "Manager (their team)", TEXT, "manager", "sales manager",
           "team manager", "manager name", "manager email", "reports to", "team lead",
           "team leader", "team", "sales team", max_length=254,
           help=f"{person}: a team is its manager's reps. A blank cell keeps the rep's team."),
        _t("region", "Territory", CHOICE, "territory", "region", "sales region",
           "sales territory", "regional office", "office region", choices=tuple(Region.choices),
           synonyms=REGION_SYNONYMS, help="Empty: any territory."),
        _t("tiers", "Fit tiers", CHOICES, "tiers", "fit tiers", "icp tiers", "tier", "segments",
           choices=tuple(FitTier.choices),
           help="The fit tiers the rep works, e.g. A; B (empty: any)."),
        _t("capacity", "Capacity", INTEGER, "capacity", "max open", "max open leads",
           "max handoffs", "lead capacity", help="Most pending handoffs at once (at least 1)."),
        _t("is_active", "Receives handoffs", BOOLEAN, "active", "is active", "receives leads",
           "receives handoffs", "in round robin"),
    )  # fmt: skip


def target_fields(kind: str, context: MappingContext) -> tuple[TargetField, ...]:
    if kind == ACCOUNTS:
        return _account_fields()
    if kind == LEADS:
        return _lead_fields(context.lifecycle)
    if kind == EVENTS:
        return _event_fields()
    if kind == OPPORTUNITIES:
        return _opportunity_fields()
    if kind == SALES_REPS:
        return _sales_rep_fields()
    raise MappingError([f"Unknown import kind {kind!r}; choose one of {', '.join(KINDS)}."])


# At least one field of each group must be mapped, and each row needs a value in one of them.
ONE_OF = {
    LEADS: [("email", "external_id")],
    EVENTS: [("lead_email", "lead_external_id")],
}
ONE_OF_WHY = {
    LEADS: "a lead needs an e-mail or an external id (so a re-import updates it)",
    EVENTS: "an event needs its lead's e-mail or external id",
}


# --- The mapping and its JSON form -------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    column: str | None = None
    constant: str | None = None
    columns: tuple[str, ...] = ()
    join: str | None = None
    format: str | None = None  # dates: a strptime format, "iso" (default), "epoch", "epoch_ms"
    time_zone: str | None = None  # for dates without an offset; else the mapping's
    values: tuple[tuple[str, str], ...] = ()  # file text → target value, before parsing
    default: str | None = None  # used when the cell is blank
    scale: str | None = None  # numbers are multiplied by it (1000000 for "in millions")
    decimal: str = "."  # the decimal separator of numbers
    separator: str | None = None  # tags: the list separator (default ; or ,)

    @classmethod
    def from_json(cls, name: str, data: Any) -> FieldSpec:
        if isinstance(data, str):
            data = {"column": data}
        if not isinstance(data, dict):
            raise MappingError([f'{name}: expected an object like {{"column": "Email"}}.'])
        unknown = set(data) - SPEC_KEYS
        problems = [f"{name}: unknown key {key!r}" for key in sorted(unknown)]
        sources = [key for key in ("column", "constant", "columns") if data.get(key) is not None]
        if len(sources) != 1:
            problems.append(f"{name}: give exactly one of column, constant or columns.")
        values = data.get("values") or {}
        scalar = str | int | float | bool
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, scalar) for k, v in values.items()
        ):
            problems.append(f"{name}: values must map file texts to target values.")
            values = {}
        columns = data.get("columns") or ()
        if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
            problems.append(f"{name}: columns must be a list of column names.")
            columns = ()
        for key in ("column", "join", "format", "time_zone", "default", "separator", "decimal"):
            if data.get(key) is not None and not isinstance(data[key], str):
                problems.append(f"{name}: {key} must be a text.")
        if problems:
            raise MappingError(problems)
        scale = data.get("scale")
        constant = data.get("constant")
        return cls(
            column=data.get("column"),
            constant=None if constant is None else _text(constant),
            columns=tuple(columns),
            join=data.get("join"),
            format=data.get("format") or None,
            time_zone=data.get("time_zone") or None,
            values=tuple((k, _text(v)) for k, v in values.items()),
            default=data.get("default"),
            scale=None if scale in (None, "") else str(scale),
            decimal=data.get("decimal") or ".",
            separator=data.get("separator"),
        )

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        if self.column is not None:
            out["column"] = self.column
        if self.constant is not None:
            out["constant"] = self.constant
        if self.columns:
            out["columns"] = list(self.columns)
        for key in ("join", "format", "time_zone", "default", "scale", "separator"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.decimal != ".":
            out["decimal"] = self.decimal
        if self.values:
            out["values"] = dict(self.values)
        return out

    @property
    def source_label(self) -> str:
        if self.column is not None:
            return self.column
        if self.columns:
            return " + ".join(self.columns)
        return "(constant)"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ImportOptions:
    time_zone: str = "UTC"  # for dates and times without an offset
    date_time_zone: str | None = None  # dates without a time are days there; None: display zone
    date_time: str = "00:00"  # the time of day a date without a time stands for
    update_existing: bool = True  # a match updates it; else the row is an error
    create_owners: bool = False  # unknown owners become inactive users
    owners_become_reps: bool = False  # the import's owners get a sales-rep record (on no team)
    create_accounts: bool | None = None  # None: yes for leads, no for opportunities
    create_sources: bool = True
    create_campaigns: bool = True
    source_channel_groups: tuple[tuple[str, str], ...] = ()  # new source name → channel group
    default_channel_group: str = ChannelGroup.OTHER.value

    def creates_accounts(self, kind: str) -> bool:
        return kind == LEADS if self.create_accounts is None else self.create_accounts

    def channel_group(self, source_name: str) -> str:
        groups = {norm(name): group for name, group in self.source_channel_groups}
        return groups.get(norm(source_name), self.default_channel_group)

    @classmethod
    def from_json(cls, data: Any) -> ImportOptions:
        if data in (None, {}):
            return cls()
        if not isinstance(data, dict):
            raise MappingError(["options: expected an object."])
        known = {f for f in cls.__dataclass_fields__}
        problems = [f"options: unknown option {key!r}" for key in sorted(set(data) - known)]
        kwargs: dict[str, Any] = {}
        for key in (
            "update_existing",
            "create_owners",
            "owners_become_reps",
            "create_sources",
            "create_campaigns",
        ):
            if key in data:
                if not isinstance(data[key], bool):
                    problems.append(f"options: {key} must be true or false.")
                else:
                    kwargs[key] = data[key]
        if "create_accounts" in data:
            create_accounts = data["create_accounts"]
            if create_accounts is not None and not isinstance(create_accounts, bool):
                problems.append("options: create_accounts must be true, false or null.")
            else:
                kwargs["create_accounts"] = data["create_accounts"]
        if "time_zone" in data:
            if not _valid_zone(data["time_zone"]):
                problems.append(f"options: unknown time zone {data['time_zone']!r}.")
            else:
                kwargs["time_zone"] = data["time_zone"]
        if data.get("date_time_zone") is not None:
            if not _valid_zone(data["date_time_zone"]):
                problems.append(f"options: unknown time zone {data['date_time_zone']!r}.")
            else:
                kwargs["date_time_zone"] = data["date_time_zone"]
        if "date_time" in data:
            if _time_of_day(data["date_time"]) is None:
                problems.append('options: date_time must be a time of day like "00:00".')
            else:
                kwargs["date_time"] = data["date_time"]
        groups = data.get("source_channel_groups") or {}
        if not isinstance(groups, dict):
            problems.append("options: source_channel_groups must map source names to groups.")
            groups = {}
        bad = sorted({g for g in groups.values() if g not in ChannelGroup.values})
        default_group = data.get("default_channel_group", ChannelGroup.OTHER.value)
        if default_group not in ChannelGroup.values:
            bad.append(str(default_group))
        if bad:
            problems.append(
                f"options: unknown channel group {', '.join(map(repr, bad))}; "
                f"known: {', '.join(ChannelGroup.values)}."
            )
        if problems:
            raise MappingError(problems)
        kwargs["source_channel_groups"] = tuple(groups.items())
        kwargs["default_channel_group"] = default_group
        return cls(**kwargs)

    def to_json(self) -> dict:
        return {
            "time_zone": self.time_zone,
            "date_time_zone": self.date_time_zone,
            "date_time": self.date_time,
            "update_existing": self.update_existing,
            "create_owners": self.create_owners,
            "owners_become_reps": self.owners_become_reps,
            "create_accounts": self.create_accounts,
            "create_sources": self.create_sources,
            "create_campaigns": self.create_campaigns,
            "source_channel_groups": dict(self.source_channel_groups),
            "default_channel_group": self.default_channel_group,
        }


def _time_of_day(text: Any) -> time | None:
    if not isinstance(text, str):
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        return None


def _valid_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Mapping:
    kind: str
    fields: tuple[tuple[str, FieldSpec], ...]
    options: ImportOptions = field(default_factory=ImportOptions)
    name: str = ""
    encoding: str = "auto"
    delimiter: str = "auto"

    @property
    def specs(self) -> dict[str, FieldSpec]:
        return dict(self.fields)

    @classmethod
    def from_json(cls, data: Any, *, kind: str | None = None) -> Mapping:
        """Read the JSON form (a dict, or its text); ``kind`` checks it is for that import."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as problem:
                raise MappingError([f"The mapping is not valid JSON: {problem}"]) from problem
        if not isinstance(data, dict):
            raise MappingError(["The mapping must be a JSON object."])
        problems = []
        tag = data.get("format", FORMAT_TAG)
        if tag != FORMAT_TAG:
            problems.append(f"Unknown mapping format {tag!r}; expected {FORMAT_TAG!r}.")
        map_kind = data.get("kind", kind)
        if map_kind not in KINDS:
            problems.append(f"Unknown import kind {map_kind!r}; choose one of {', '.join(KINDS)}.")
        elif kind is not None and map_kind != kind:
            problems.append(f"This mapping is for {map_kind}, not {kind}.")
        fields_data = data.get("fields", {})
        if not isinstance(fields_data, dict):
            problems.append("fields must be an object: target field → where its value comes from.")
            fields_data = {}
        specs = []
        for name, spec in fields_data.items():
            try:
                specs.append((name, FieldSpec.from_json(name, spec)))
            except MappingError as problem:
                problems += problem.problems
        try:
            options = ImportOptions.from_json(data.get("options"))
        except MappingError as problem:
            problems += problem.problems
            options = ImportOptions()
        csv_options = data.get("csv") or {}
        if not isinstance(csv_options, dict):
            problems.append('csv must be an object like {"delimiter": ";", "encoding": "auto"}.')
            csv_options = {}
        if problems:
            raise MappingError(problems)
        return cls(
            kind=map_kind,
            fields=tuple(specs),
            options=options,
            name=str(data.get("name", "")),
            encoding=str(csv_options.get("encoding") or "auto"),
            delimiter=str(csv_options.get("delimiter") or "auto"),
        )

    def to_json(self) -> dict:
        return {
            "format": FORMAT_TAG,
            "kind": self.kind,
            "name": self.name,
            "csv": {"encoding": self.encoding, "delimiter": self.delimiter},
            "fields": {name: spec.to_json() for name, spec in self.fields},
            "options": self.options.to_json(),
        }

    def with_fields(self, fields: Iterable[tuple[str, FieldSpec]]) -> Mapping:
        return replace(self, fields=tuple(fields))


# --- Reading values ---------------------------------------------------------------------------


def clean_cell(text: str) -> str:
    """Trimmed; a leading apostrophe a spreadsheet-safe export put before = + - @ removed."""
    text = text.strip()
    if text[:2] in SPREADSHEET_QUOTED:
        return text[1:]
    return text


def has_time(fmt: str | None) -> bool:
    """Whether values of this date format carry a time of day (else they are dates)."""
    if fmt in (None, "iso", "epoch", "epoch_ms"):
        return fmt in ("epoch", "epoch_ms")
    return re.search(r"%[-#]?[HIMSXcfpzZTRrs]", fmt) is not None


def parse_datetime(
    text: str,
    fmt: str | None,
    zone: ZoneInfo,
    *,
    date_zone: ZoneInfo | None = None,
    date_time: time = time(0),
) -> datetime:
    """A cell as an instant in UTC. A value with a time but no offset is read in ``zone``; a
    date without a time is the local day it names: ``date_time`` (00:00) on it in
    ``date_zone`` (default ``zone``)."""
    fmt = fmt or "iso"
    date_only = False
    try:
        if fmt == "iso":
            value = datetime.fromisoformat(text)
            date_only = len(text) == 10
        elif fmt in ("epoch", "epoch_ms"):
            seconds = float(text) / (1000 if fmt == "epoch_ms" else 1)
            value = datetime.fromtimestamp(seconds, tz=UTC)
        elif fmt == "%Y-%m-%d" and len(text) == 10 and text[4] == "-":
            value = datetime.fromisoformat(text)  # the common case, 20 × faster than strptime
            date_only = True
        else:
            value = datetime.strptime(text, fmt)
            date_only = not has_time(fmt)
    except (ValueError, OverflowError, OSError):
        expected = ISO_HINT if fmt == "iso" else fmt
        raise FieldProblem(f"is not a valid date (expected {expected})") from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise FieldProblem(f"has the year {value.year}, out of range ({MIN_YEAR}–{MAX_YEAR})")
    if not date_only and value.tzinfo is not None:
        # The common case (an offset in range): converted here, without the message
        # to_utc prepares for a refusal; anything else takes to_utc's checks below.
        offset = value.utcoffset()
        if offset is not None and -OFFSET_LIMIT < offset < OFFSET_LIMIT:
            try:
                return value.astimezone(UTC)
            except (OverflowError, ValueError):
                pass
    try:  # the rule every instant from outside follows (an offset PostgreSQL can store)
        if date_only:
            return local_day_start(value.date(), zone=date_zone or zone, at=date_time)
        return to_utc(value, zone=zone)
    except InstantError as problem:
        raise FieldProblem(problem.detail) from None


def parse_decimal(text: str, *, decimal_mark: str = ".") -> Decimal:
    cleaned = re.sub(r"[^\d,.\-+eE]", "", text)  # currency symbols, spaces, codes
    if decimal_mark == ",":
        cleaned = cleaned.replace(".", "").replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    negative = text.strip().startswith("(") and text.strip().endswith(")")  # accounting style
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise FieldProblem("is not a number") from None
    if not value.is_finite() or not cleaned:
        raise FieldProblem("is not a number")
    return -value if negative else value


def parse_number(
    text: str,
    *,
    decimal_mark: str = ".",
    scale: Decimal | None = None,
    whole: bool = False,
    max_digits: int | None = None,
    decimal_places: int = 0,
) -> Decimal | int:
    """A cell as a non-negative number that fits its field: a whole number up to ``INT_MAX``,
    or a decimal of at most ``max_digits`` digits, ``decimal_places`` of them after the point
    (rounded to those). Sizes are compared by exponent before any arithmetic, so ``1e30`` or
    ``1e999999`` is "too large", never a decimal-context error."""
    value = parse_decimal(text, decimal_mark=decimal_mark)
    if value.is_zero():
        return 0 if whole else Decimal(0).quantize(Decimal(1).scaleb(-decimal_places))
    if value < 0:
        raise FieldProblem("cannot be negative")
    integer_digits = len(str(INT_MAX)) if whole else (max_digits or 28) - decimal_places
    too_large = f"is too large (at most {integer_digits} digits)"
    if whole:
        too_large = f"is too large (at most {INT_MAX:,})"
    if scale is not None:
        if value.adjusted() + scale.adjusted() > integer_digits:
            raise FieldProblem(too_large)
        value *= scale
    if value.adjusted() >= integer_digits:
        raise FieldProblem(too_large)
    if whole:
        if value != value.to_integral_value():
            raise FieldProblem("is not a whole number")
        if value > INT_MAX:
            raise FieldProblem(too_large)
        return int(value)
    value = value.quantize(Decimal(1).scaleb(-decimal_places))
    if value.adjusted() >= integer_digits:  # 99.999 rounded up to 100.00
        raise FieldProblem(too_large)
    return value


def parse_boolean(text: str) -> bool:
    key = text.strip().lower()
    if key in BOOLEAN_TRUE:
        return True
    if key in BOOLEAN_FALSE:
        return False
    raise FieldProblem("is not a yes/no value (use yes/no, true/false or 1/0)")


def parse_country(text: str) -> str:
    code = COUNTRY_CODES.get(norm(text))
    if code is None and len(text) == 2 and text.isalpha():
        code = text.upper()
    if code is None:
        raise FieldProblem(
            "is not a known country; use a two-letter ISO code (US, DE), "
            "or map it in the values table"
        )
    return code


def normalize_domain(value: str) -> str:
    """As ``leads.models.normalize_domain`` (kept here so this module needs no ORM)."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    if "/" in value or ":" in value or "@" in value or "?" in value or "#" in value:
        try:
            value = urlsplit(value if "//" in value else f"//{value}").hostname or ""
        except ValueError:
            return ""
    return value.removeprefix("www.").rstrip(".")  # a bare host needs no URL parsing


def parse_tags(text: str, separator: str | None) -> list[str]:
    parts = text.split(separator) if separator else re.split(r"[;,|]", text)
    return sorted({part.strip().lower() for part in parts if part.strip()})


def _enumerate_choices(target: TargetField) -> str:
    values = [value for value, _ in target.choices]
    shown = ", ".join(values[:14]) + (", …" if len(values) > 14 else "")
    return shown


def _converter(
    target: TargetField, spec: FieldSpec, options: ImportOptions, date_zone: str = "UTC"
) -> Callable:
    """The function that turns one non-blank cell into the field's value; ``date_zone`` is
    where dates without a time are days (``date_time_zone`` resolved)."""
    kind = target.type
    if kind == TEXT:
        limit = target.max_length
        upper = target.name == "currency"

        def text(raw: str) -> str:
            if limit and len(raw) > limit:
                raise FieldProblem(f"is longer than {limit} characters ({len(raw)})")
            return raw.upper() if upper else raw

        return text
    if kind == EMAIL:

        def email(raw: str) -> str:
            value = raw.lower()
            if len(value) > (target.max_length or 254) or not EMAIL_SHAPE.match(value):
                raise FieldProblem("is not a valid e-mail address")
            return value

        return email
    if kind in (INTEGER, DECIMAL):
        limits = {
            "decimal_mark": spec.decimal,
            "scale": Decimal(spec.scale) if spec.scale else None,
            "whole": kind == INTEGER,
            "max_digits": target.max_digits,
            "decimal_places": target.decimal_places or 0,
        }
        return lambda raw: parse_number(raw, **limits)
    if kind == DATETIME:
        zone = ZoneInfo(spec.time_zone or options.time_zone)
        days = ZoneInfo(spec.time_zone or date_zone)
        at = _time_of_day(options.date_time) or time(0)
        fmt = spec.format
        return lambda raw: parse_datetime(raw, fmt, zone, date_zone=days, date_time=at)
    if kind == BOOLEAN:
        return parse_boolean
    if kind == CHOICE:
        lookup = target.choice_lookup()
        exact = {value: value for value, _ in target.choices}  # the common case, no norm()
        label = target.label.lower()

        def choice(raw: str) -> str:
            value = exact.get(raw) or lookup.get(norm(raw))
            if value is None:
                raise FieldProblem(
                    f"is not a known {label}; expected one of {_enumerate_choices(target)}"
                )
            return value

        return choice
    if kind == COUNTRY:
        return parse_country
    if kind == DOMAIN:

        def domain(raw: str) -> str:
            value = normalize_domain(raw)
            if not value or "." not in value:
                raise FieldProblem("is not a domain or web address")
            if len(value) > (target.max_length or 200):
                raise FieldProblem(f"is longer than {target.max_length} characters")
            return value

        return domain
    if kind == TAGS:
        separator = spec.separator
        return lambda raw: parse_tags(raw, separator)
    if kind == CHOICES:
        lookup, order = target.choice_lookup(), [value for value, _ in target.choices]
        separator, label = spec.separator, target.label.lower()

        def several(raw: str) -> list[str]:
            chosen = set()
            for part in raw.split(separator) if separator else re.split(r"[;,|/]", raw):
                if not part.strip():
                    continue
                value = lookup.get(norm(part))
                if value is None:
                    raise FieldProblem(
                        f"names {part.strip()!r}, not one of the {label} "
                        f"({_enumerate_choices(target)})"
                    )
                chosen.add(value)
            return [value for value in order if value in chosen]

        return several
    if kind == PROPERTIES:

        def properties(raw):
            if isinstance(raw, dict):
                return raw
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: nested thousands deep
                raise FieldProblem("is not a JSON object") from None
            if not isinstance(value, dict):
                raise FieldProblem("is not a JSON object")
            if "\\u" in raw:  # an escaped control character (PostgreSQL's JSON refuses \u0000)
                for text in _json_texts(value):
                    if problem := control_character_problem(text):
                        raise FieldProblem(f"{problem} (escaped in the JSON)")
            return value

        return properties
    raise AssertionError(f"no converter for {kind}")


class Declined(Exception):
    """A column the bulk path will not vouch for: its chunk is parsed row by row instead."""


_YEAR = attrgetter("year")
_IN_UTC = methodcaller("astimezone", UTC)


def _bulk_converter(target: TargetField, spec: FieldSpec, convert: Callable) -> Callable:
    """``convert`` over a column of non-blank cells at once: C-level ``map`` for the common
    cases (ISO instants with an offset, known choices, texts within their length), ``convert``
    per cell otherwise. Raises ``Declined`` where a cell would be a row error, so rows with
    problems are always reported by ``RowParser.parse``, one message the same whichever path."""
    kind = target.type

    def each(cells: list) -> list:
        try:
            return list(map(convert, cells))
        except FieldProblem:
            raise Declined from None

    if kind == TEXT:
        limit, upper = target.max_length, target.name == "currency"

        def texts(cells: list) -> list:
            if limit and max(map(len, cells)) > limit:
                raise Declined
            return list(map(str.upper, cells)) if upper else cells

        return texts
    if kind == EMAIL:
        limit = target.max_length or 254

        def emails(cells: list) -> list:
            values = list(map(str.lower, cells))
            if max(map(len, values)) > limit or not all(map(EMAIL_SHAPE.match, values)):
                raise Declined
            return values

        return emails
    if kind == CHOICE:
        exact = {value: value for value, _ in target.choices}

        def choices(cells: list) -> list:
            values = list(map(exact.get, cells))
            return each(cells) if None in values else values

        return choices
    if kind == DATETIME and (spec.format or "iso") == "iso":

        def instants(cells: list) -> list:
            # A date alone (10 characters) is a local day, a naive time is read in a zone:
            # both are the per-cell path's. Instants with an offset in range are converted here.
            if min(map(len, cells)) <= 10:
                return each(cells)
            try:
                values = list(map(datetime.fromisoformat, cells))
            except ValueError:
                raise Declined from None
            if not MIN_YEAR <= min(map(_YEAR, values)) <= max(map(_YEAR, values)) <= MAX_YEAR:
                raise Declined
            offsets = set(map(datetime.utcoffset, values))
            if None in offsets:
                return each(cells)
            if not all(-OFFSET_LIMIT < offset < OFFSET_LIMIT for offset in offsets):
                raise Declined
            return list(map(_IN_UTC, values))

        return instants
    return each


# --- Compiling a mapping against a header -----------------------------------------------------


@dataclass(frozen=True)
class _Step:
    name: str
    column: str
    get: Callable[[list[str]], Any]
    convert: Callable[[Any], Any] | None  # None: the value is a pre-parsed constant
    required: bool
    get_all: Callable[[list[list[str]]], list] | None = None  # ``get`` over many rows
    convert_all: Callable[[list], list] | None = None  # ``convert`` over a column (_bulk_converter)


_BLANK = object()  # a cell that gives its field no value


class RowParser:
    """Turns a row's cells into ``{field: value}`` (mapped, non-blank fields only) and errors."""

    def __init__(self, kind: str, mapping: Mapping, width: int, steps: list[_Step]) -> None:
        self.kind = kind
        self.mapping = mapping
        self.width = width
        self.steps = steps
        self.one_of = [
            group for group in ONE_OF.get(kind, []) if any(name in mapping.specs for name in group)
        ]
        self.fields = {step.name for step in steps}

    def parse(self, row: int, cells: list[str]) -> tuple[dict[str, Any], list[RowError]]:
        if len(cells) != self.width:
            return {}, [
                RowError(
                    row,
                    "",
                    "",
                    "",
                    f"has {len(cells)} fields but the header has {self.width} "
                    "(a delimiter or quote inside a value?)",
                )
            ]
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        # One search over the whole row; only a hit looks for the mapped cells that hold it.
        controls = CONTROL_CHARACTERS.search("".join(cells)) is not None
        for step in self.steps:
            raw = step.get(cells)
            if step.convert is None:
                values[step.name] = raw
                continue
            if controls and (problem := _control_problem(raw)):
                shown = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
                errors.append(
                    RowError(row, step.name, step.column, shown[:ERROR_VALUE_LENGTH], problem)
                )
                continue
            if not raw:  # "", None, {} (a property set without a value)
                if step.required:
                    errors.append(RowError(row, step.name, step.column, "", "is required"))
                continue
            try:
                value = step.convert(raw)
            except FieldProblem as problem:
                shown = raw if isinstance(raw, str) else json.dumps(raw)
                errors.append(
                    RowError(row, step.name, step.column, shown[:ERROR_VALUE_LENGTH], str(problem))
                )
                continue
            if value is not None and value != "":
                values[step.name] = value
        for group in self.one_of:
            for name in group:  # a loop, not any(): this runs for every row
                if name in values:
                    break
            else:
                if not any(e.field in group for e in errors):
                    why = f"{ONE_OF_WHY[self.kind]}, none given"
                    errors.append(RowError(row, group[0], "", "", why))
        return values, errors

    def parse_clean(self, rows: list[tuple[int, list[str]]]) -> ParsedColumns | None:
        """The values of every row (as ``parse`` gives them), column by column, when every row
        is valid; None when any row may have a problem (then ``parse`` each row for its
        messages). A file of well-formed rows is parsed in a fraction of the per-row time."""
        cells = [cells for _, cells in rows]
        if not cells or set(map(len, cells)) != {self.width}:
            return None
        if CONTROL_CHARACTERS.search("".join(chain.from_iterable(cells))) is not None:
            return None
        columns: dict[str, list] = {}
        try:
            for step in self.steps:
                if step.convert is None:
                    columns[step.name] = [step.get(cells[0])] * len(cells)
                    continue
                raws = step.get_all(cells)
                if (raws and not isinstance(raws[0], str)) or "" in raws:
                    blanks = [position for position, raw in enumerate(raws) if not raw]
                else:
                    blanks = []
                if blanks and step.required:
                    return None
                if blanks:
                    kept = [raw for raw in raws if raw]
                    converted = iter(step.convert_all(kept) if kept else [])
                    values = [_BLANK if not raw else next(converted) for raw in raws]
                else:
                    values = step.convert_all(raws)
                if None in values or "" in values:  # converted to nothing: not a value
                    values = [_BLANK if v is None or v == "" else v for v in values]
                columns[step.name] = values
        except Declined:
            return None
        parsed = ParsedColumns([row for row, _ in rows], columns)
        for group in self.one_of:
            if parsed.complete.isdisjoint(group) and not all(
                any(name in values for name in group) for values in parsed.rows()
            ):
                return None
        return parsed


class ParsedColumns:
    """A chunk of valid rows, parsed column by column: ``numbers`` (the rows' numbers in the
    file) and ``columns`` (field → one value a row, ``BLANK`` where the row gives none).
    ``rows()`` is the same as ``RowParser.parse`` gives, row by row."""

    def __init__(self, numbers: list[int], columns: dict[str, list]) -> None:
        self.numbers = numbers
        self.columns = columns
        self.complete = {name for name, values in columns.items() if _BLANK not in values}

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        parsed = [
            dict(zip(names, row, strict=True)) for row in zip(*self.columns.values(), strict=True)
        ]
        for name in names:
            if name not in self.complete:
                for values, value in zip(parsed, self.columns[name], strict=True):
                    if value is _BLANK:
                        del values[name]
        return parsed


BLANK = _BLANK


def _json_texts(value: Any) -> Iterable[str]:
    """Every string of a parsed JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_texts(item)


def _control_problem(raw: Any) -> str | None:
    """A cell's control character (or, for several columns, the first one's), as a row error
    says it: invisible on every page, and usually a sign the file's encoding was misread."""
    texts = raw.values() if isinstance(raw, dict) else [raw]
    for text in texts:
        if isinstance(text, str) and (problem := control_character_problem(text)):
            return (
                f"{problem}: a control character is not text (was the file saved in another "
                "encoding? Save it as UTF-8, or name its encoding in the mapping)"
            )
    return None


def _column_index(header: list[str]) -> dict[str, int]:
    index = {}
    for position, name in enumerate(header):
        index.setdefault(name, position)
        index.setdefault(name.strip().lower(), position)
    return index


def _getter(spec: FieldSpec, index: dict[str, int], target: TargetField, problems, name):
    def position(column: str) -> int | None:
        found = index.get(column, index.get(column.strip().lower()))
        if found is None:
            problems.append(f"{name}: the file has no column {column!r}.")
        return found

    values = dict(spec.values)
    values_norm = {norm(k): v for k, v in spec.values}
    default = spec.default

    def translate(text: str) -> str:
        if values:
            if text in values:
                return values[text]
            key = norm(text)
            if key in values_norm and key:
                return values_norm[key]
        return text

    if spec.column is not None:
        at = position(spec.column)
        if at is None:
            return None

        if not values and default is None:
            return _Getter(lambda cells: clean_cell(cells[at]), _cleaned_column(at))

        def cell(cells: list[str]) -> str:
            text = translate(clean_cell(cells[at]))
            return default if text == "" and default is not None else text

        return _Getter(cell)
    if spec.columns:
        positions = [position(column) for column in spec.columns]
        if any(p is None for p in positions):
            return None
        pairs = list(zip(spec.columns, positions, strict=True))
        if target.type == PROPERTIES and spec.join is None:
            return _Getter(lambda cells: {c: v for c, p in pairs if (v := clean_cell(cells[p]))})
        joiner = spec.join if spec.join is not None else " "

        def joined(cells: list[str]) -> str:
            text = translate(joiner.join(v for _, p in pairs if (v := clean_cell(cells[p]))))
            return default if text == "" and default is not None else text

        return _Getter(joined)
    return None


class _Getter:
    """A field's value from a row's cells (``one``), and from many rows' (``all``)."""

    def __init__(self, one: Callable[[list[str]], Any], all_rows=None) -> None:
        self.one = one
        self.all = all_rows or (lambda rows: list(map(one, rows)))


def _cleaned_column(at: int) -> Callable[[list[list[str]]], list[str]]:
    """``clean_cell`` of one column over many rows: strips at C speed; the apostrophe a
    spreadsheet-safe export puts before = + - @ is looked for only in a column that has one."""
    take = itemgetter(at)

    def column(rows: list[list[str]]) -> list[str]:
        cells = list(map(str.strip, map(take, rows)))
        if "'" in "".join(cells):
            return list(map(clean_cell, cells))
        return cells

    return column


def compile_mapping(mapping: Mapping, header: list[str], context: MappingContext) -> RowParser:
    """Check the mapping against the file's header; every problem is reported at once."""
    targets = {t.name: t for t in target_fields(mapping.kind, context)}
    index = _column_index(header)
    problems: list[str] = []
    steps: list[_Step] = []
    options = mapping.options
    for name, spec in mapping.fields:
        target = targets.get(name)
        if target is None:
            problems.append(
                f"{name}: not a field of {mapping.kind} imports; fields: {', '.join(targets)}."
            )
            continue
        spec_problems = _spec_problems(name, spec, target)
        if spec_problems:
            problems += spec_problems
            continue
        convert = _converter(target, spec, options, dates_zone(mapping, context))
        for raw, value in spec.values:
            if value == "":
                continue
            try:
                convert(value)
            except FieldProblem as problem:
                problems.append(
                    f"{name}: the values table maps {raw!r} to {value!r}, which {problem}."
                )
        if spec.constant is not None:
            constant = spec.constant
            if constant == "":
                continue
            try:
                parsed = convert(constant)
            except FieldProblem as problem:
                problems.append(f"{name}: the constant {constant!r} {problem}.")
                continue
            steps.append(_Step(name, "(constant)", lambda cells, v=parsed: v, None, False))
            continue
        get = _getter(spec, index, target, problems, name)
        if get is None:
            continue
        steps.append(
            _Step(name, spec.source_label, get.one, convert, target.required, get_all=get.all,
                  convert_all=_bulk_converter(target, spec, convert))
        )  # fmt: skip
    mapped = {name for name, _ in mapping.fields}
    for target in targets.values():
        if target.required and target.name not in mapped:
            problems.append(f"{target.name}: required — map it to a column or a constant.")
    for group in ONE_OF.get(mapping.kind, []):
        if not mapped & set(group):
            problems.append(f"Map one of {' or '.join(group)}: {ONE_OF_WHY[mapping.kind]}.")
    if problems:
        raise MappingError(problems)
    return RowParser(mapping.kind, mapping, len(header), steps)


def dates_zone(mapping: Mapping, context: MappingContext) -> str:
    """The time zone whose days the mapping's dates without a time are."""
    return mapping.options.date_time_zone or context.default_time_zone


def dates_note(mapping: Mapping, context: MappingContext) -> str:
    """What the preview says about dates without a time ("" when no date is mapped)."""
    targets = {t.name: t for t in target_fields(mapping.kind, context)}
    dated = [
        name
        for name, spec in mapping.fields
        if name in targets and targets[name].is_date and spec.constant is None
        and not has_time(spec.format) and spec.format not in ("epoch", "epoch_ms")
    ]  # fmt: skip
    if not dated:
        return ""
    zones = {mapping.specs[name].time_zone or dates_zone(mapping, context) for name in dated}
    at = mapping.options.date_time
    when = "" if at in ("00:00", "00:00:00") else f", at {at} there"
    return f"Dates without a time are read as {' / '.join(sorted(zones))} days{when}."


def _spec_problems(name: str, spec: FieldSpec, target: TargetField) -> list[str]:
    problems = []
    if spec.format is not None and not target.is_date:
        problems.append(f"{name}: a format applies to dates only.")
    if spec.format is not None and spec.format not in ("iso", "epoch", "epoch_ms"):
        if "%" not in spec.format:
            problems.append(
                f"{name}: the date format {spec.format!r} has no %-codes (e.g. %d/%m/%Y); "
                'use "iso", "epoch" or "epoch_ms" otherwise.'
            )
        else:
            try:
                datetime(2026, 3, 1, 14, 30).strftime(spec.format)
            except ValueError as problem:
                problems.append(f"{name}: the date format is invalid: {problem}.")
    if spec.time_zone is not None and not _valid_zone(spec.time_zone):
        problems.append(f"{name}: unknown time zone {spec.time_zone!r}.")
    if spec.scale is not None:
        try:
            scale = Decimal(spec.scale)
        except InvalidOperation:
            scale = Decimal(0)
        if target.type not in (INTEGER, DECIMAL):
            problems.append(f"{name}: a scale applies to numbers only.")
        elif not scale.is_finite() or scale <= 0:
            problems.append(f"{name}: the scale must be a positive number.")
    if spec.decimal not in (".", ","):
        problems.append(f"{name}: the decimal separator must be . or ,")
    if spec.separator is not None and target.type not in (TAGS, CHOICES):
        problems.append(f"{name}: a separator applies to lists (technologies, tiers…) only.")
    if spec.columns and target.type not in (PROPERTIES, TEXT) and spec.join is None:
        problems.append(f'{name}: several columns need a join text (e.g. " ").')
    if spec.join is not None and not spec.columns:
        problems.append(f"{name}: join applies to several columns.")
    if target.type == PROPERTIES and spec.constant is not None:
        problems.append(f"{name}: properties come from columns.")
    return problems


# --- Guessing ---------------------------------------------------------------------------------


def guess_mapping(
    kind: str,
    header: list[str],
    sample: list[list[str]],
    context: MappingContext,
    *,
    name: str = "",
) -> Mapping:
    """A first mapping from header names (each column to at most one field, each field from at
    most one column, the earliest alias winning) and date formats from the sample rows."""
    targets = target_fields(kind, context)
    keys = [header_key(column) for column in header]
    taken: set[int] = set()
    fields: list[tuple[str, FieldSpec]] = []
    # Rank: a column named exactly like a field's first alias beats a looser alias.
    candidates = []
    for target in targets:
        for rank, alias in enumerate(target.aliases):
            for position, key in enumerate(keys):
                if key == alias:
                    candidates.append((rank, position, target))
    candidates.sort(key=lambda c: (c[0], c[1]))
    chosen: dict[str, int] = {}
    for _, position, target in candidates:
        if target.name in chosen or position in taken:
            continue
        chosen[target.name] = position
        taken.add(position)
    order = {t.name: i for i, t in enumerate(targets)}
    for target_name, position in sorted(chosen.items(), key=lambda item: order[item[0]]):
        target = next(t for t in targets if t.name == target_name)
        spec = FieldSpec(column=header[position])
        samples = [clean_cell(row[position]) for row in sample if position < len(row)]
        samples = [value for value in samples if value]
        if target.is_date:
            spec = replace(spec, format=guess_date_format(samples))
        elif target.type == DECIMAL and any(re.fullmatch(r"\d+(\.\d{3})*,\d+", s) for s in samples):
            spec = replace(spec, decimal=",")
        fields.append((target_name, spec))
    # Splitting a full name is only needed when first and last name are not there.
    names = dict(fields)
    if "name" in names and ("first_name" in names or "last_name" in names) and kind == LEADS:
        fields = [(n, s) for n, s in fields if n != "name"]
    # A file of reps with only a name column: the name is who the rep is.
    if kind == SALES_REPS and "rep" not in names and "name" in names:
        fields = [("rep" if n == "name" else n, s) for n, s in fields]
    return Mapping(kind=kind, fields=tuple(fields), name=name)


def guess_date_format(samples: list[str]) -> str | None:
    """The format that reads the most samples (a few bad dates must not hide it): ISO 8601
    (None) first, then the candidates in order — month-first before day-first, as US CRMs
    export. None when nothing reads any sample."""
    if not samples:
        return None
    zone = ZoneInfo("UTC")

    def fits(fmt: str | None) -> int:
        count = 0
        for sample in samples:
            try:
                parse_datetime(sample, fmt, zone)
            except FieldProblem:
                continue
            count += 1
        return count

    candidates: list[str | None] = [None, *DATE_FORMAT_CANDIDATES]
    if all(re.fullmatch(r"\d{12,13}", s) for s in samples):
        candidates.append("epoch_ms")
    elif all(re.fullmatch(r"\d{9,10}", s) for s in samples):
        candidates.append("epoch")
    best, best_count = None, 0
    for fmt in candidates:
        count = fits(fmt)
        if count > best_count:
            best, best_count = fmt, count
            if count == len(samples):
                break
    return best


def unmapped_columns(mapping: Mapping, header: list[str]) -> list[str]:
    used = set()
    for _, spec in mapping.fields:
        if spec.column is not None:
            used.add(spec.column.strip().lower())
        used.update(column.strip().lower() for column in spec.columns)
    return [column for column in header if column.strip().lower() not in used]
