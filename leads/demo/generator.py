"""Deterministic demo data: twelve months of a B2B pipeline, as rows ready for bulk loading.

Pure Python (``random.Random`` only, no ORM), so it is fast, testable without a database and
reproducible byte for byte: the same :class:`DemoPlan` (seed, size, as-of instant, first ids,
definition ids) always yields the same rows. Rows stream out in :class:`Chunk` s, parents before
children, so a loader can write them as they come with memory bounded by one batch of leads.

The row contract the loader relies on:

- a chunk names its :class:`TableSpec` (a table key, the model label and the field attnames) and
  carries tuples in that column order;
- values are database-ready primitives: ``int``, ``float``, ``bool``, ``str`` or ``None``.
  Instants are UTC, rendered ``"YYYY-MM-DD HH:MM:SS"`` (sortable as text; what Django stores on
  SQLite; read as UTC by the UTC session Django opens on PostgreSQL). Dates are ``"YYYY-MM-DD"``,
  decimals plain strings (``"48000.00"``), JSON columns serialized JSON text.

Independent random streams (accounts, calendar, leads, events) keep the funnel of a given seed
the same whatever ``events_per_lead`` is.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import zoneinfo
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from leads import defaults
from leads.choices import (
    AccountSignal,
    ActorType,
    AssetType,
    ChannelGroup,
    EventKind,
    FitTier,
    FunnelStage,
    HandoffOutcome,
    OpportunityStage,
    OpportunityStatus,
    Region,
    Seniority,
    SourceOrigin,
)

DAY = 86_400
HOUR = 3_600
WINDOW_DAYS = 365
SOURCE_SYSTEM = "demo"
USER_EMAIL_DOMAIN = "demo.example.com"
UNUSABLE_PASSWORD = "!demo-user-no-password"  # Django treats a leading "!" as unusable.

STAGE_KEYS = {row[0] for row in defaults.DEFAULT_STAGES}
LEAD, MQL, SAL, SQL, OPPORTUNITY, CUSTOMER = defaults.FUNNEL_STAGE_KEYS
NURTURE, DISQUALIFIED, CLOSED_LOST = "nurture", "disqualified", "closed_lost"
SALES_STAGES = frozenset({SAL, SQL, OPPORTUNITY, CUSTOMER, CLOSED_LOST})
assert {NURTURE, DISQUALIFIED, CLOSED_LOST, *SALES_STAGES} <= STAGE_KEYS


# --- Contracts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    key: str  # stable name used for ids and reports, e.g. "lead"
    model: str  # app label + model name; "user" means settings.AUTH_USER_MODEL
    columns: tuple[str, ...]  # field attnames, in row order ("id" first)
    # Columns a loader may drop when the model does not have them (yet).
    optional: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Chunk:
    table: TableSpec
    rows: list[tuple]


@dataclass(frozen=True)
class SlaTerms:
    """The SLA policy a handoff of one fit tier runs on (ids from the database, or None)."""

    policy_id: int | None
    respond_hours: float
    accept_hours: float


@dataclass(frozen=True)
class CalendarSpec:
    time_zone: str
    # weekday (0 = Monday) → (opens, closes) as minutes after local midnight
    hours: Mapping[int, tuple[int, int]]
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True)
class ReasonRef:
    key: str
    id: int
    label: str
    requires_note: bool = False


def default_calendar() -> CalendarSpec:
    spec = defaults.DEFAULT_CALENDAR
    hours = {}
    for weekday, opens, closes in spec["working_hours"]:
        o, c = time.fromisoformat(opens), time.fromisoformat(closes)
        hours[weekday] = (o.hour * 60 + o.minute, c.hour * 60 + c.minute)
    holidays = frozenset(date.fromisoformat(day) for day, _ in spec["holidays"])
    return CalendarSpec(time_zone=spec["time_zone"], hours=hours, holidays=holidays)


def default_sla_terms() -> dict[str, SlaTerms]:
    """Tier → terms from the default policies, numbered as a fresh migration numbers them."""
    by_tier = {}
    for policy_id, (_, _, tier, respond, accept) in enumerate(defaults.DEFAULT_SLA_POLICIES, 1):
        by_tier[tier] = SlaTerms(policy_id, float(respond), float(accept))
    fallback = by_tier[""]
    return {tier: by_tier.get(tier, fallback) for tier in FitTier.values}


def default_reasons() -> tuple[ReasonRef, ...]:
    return tuple(
        ReasonRef(key=key, id=position, label=label, requires_note=note)
        for position, (key, label, note) in enumerate(defaults.DEFAULT_REJECTION_REASONS, 1)
    )


def start_of_today_utc() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class DemoPlan:
    """Everything the data is derived from. Same plan ⇒ same rows."""

    seed: int = 42
    leads: int = 5000
    events_per_lead: float = 8
    as_of: datetime = field(default_factory=start_of_today_utc)
    # table key → the first id the generator assigns (the loader passes max(id) + 1)
    first_ids: Mapping[str, int] = field(default_factory=dict)
    sla_terms: Mapping[str, SlaTerms] = field(default_factory=default_sla_terms)
    calendar: CalendarSpec = field(default_factory=default_calendar)
    reasons: tuple[ReasonRef, ...] = field(default_factory=default_reasons)
    batch_rows: int = 50_000  # about this many events per batch of leads

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC).")
        if self.leads < 0 or self.events_per_lead < 0:
            raise ValueError("leads and events_per_lead cannot be negative.")


USER = TableSpec(
    "user",
    "user",
    (
        "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name",
        "email", "is_staff", "is_active", "date_joined",
    ),
)  # fmt: skip
SALES_REP = TableSpec(
    "sales_rep",
    "leads.SalesRep",
    (
        "id", "user_id", "region", "tiers", "capacity", "is_active", "out_of_office_from",
        "out_of_office_until", "last_assigned_at", "manager_id",
    ),
    optional=frozenset({"region", "tiers", "capacity", "is_active", "out_of_office_from",
                        "out_of_office_until", "last_assigned_at", "manager_id"}),
)  # fmt: skip
SOURCE = TableSpec("source", "leads.Source", ("id", "name", "channel_group", "origin"))
CAMPAIGN = TableSpec(
    "campaign",
    "leads.Campaign",
    ("id", "name", "source_id", "cost", "currency", "starts_on", "ends_on", "external_id"),
)
CONTENT_ASSET = TableSpec(
    "content_asset", "leads.ContentAsset", ("id", "title", "asset_type", "funnel_stage", "url")
)
ACCOUNT = TableSpec(
    "account",
    "leads.Account",
    (
        "id", "name", "domain", "industry", "employees", "annual_revenue", "country", "region",
        "technologies", "signals", "external_id", "created_at",
    ),
)  # fmt: skip
LEAD_TABLE = TableSpec(
    "lead",
    "leads.Lead",
    (
        "id", "first_name", "last_name", "email", "phone", "title", "seniority", "country",
        "account_id", "source_id", "campaign_id", "owner_id", "stage", "stage_entered_at",
        "tier", "in_marketing_nurture", "external_id", "created_at", "updated_at",
    ),
)  # fmt: skip
EVENT = TableSpec(
    "event",
    "leads.EngagementEvent",
    (
        "id", "lead_id", "kind", "occurred_at", "properties", "content_asset_id",
        "source_system", "external_id", "received_at",
    ),
)  # fmt: skip
TRANSITION = TableSpec(
    "transition",
    "leads.StageTransition",
    (
        "id", "lead_id", "from_stage", "to_stage", "transitioned_at", "actor_type", "actor_id",
        "reason",
    ),
)  # fmt: skip
HANDOFF = TableSpec(
    "handoff",
    "leads.Handoff",
    (
        "id", "lead_id", "stage", "assignee_id", "sla_policy_id", "assigned_at",
        "response_due_at", "accept_due_at", "first_response_at", "accepted_at", "rejected_at",
        "reject_reason_id", "reject_note", "outcome", "response_business_seconds",
    ),
)  # fmt: skip
OPPORTUNITY_TABLE = TableSpec(
    "opportunity",
    "leads.Opportunity",
    (
        "id", "name", "lead_id", "account_id", "owner_id", "amount", "currency", "stage",
        "status", "created_at", "closed_at", "loss_reason", "external_id",
    ),
)  # fmt: skip

# Parents before children: the order chunks come out in.
TABLES = (
    USER, SALES_REP, SOURCE, CAMPAIGN, CONTENT_ASSET, ACCOUNT, LEAD_TABLE, EVENT, TRANSITION,
    HANDOFF, OPPORTUNITY_TABLE,
)  # fmt: skip


# --- Fit (a stand-in for the scoring engine) --------------------------------------------------


@dataclass(frozen=True)
class FitProfile:
    """What ICP criteria look at. Unknown values (None / empty) match nothing."""

    industry: str = ""
    employees: int | None = None
    annual_revenue: int | None = None
    country: str = ""
    region: str = ""
    technologies: frozenset[str] = frozenset()
    signals: frozenset[str] = frozenset()
    seniority: str = ""
    title: str = ""


def _compile_criteria(criteria: Sequence[tuple]) -> tuple[tuple, ...]:
    compiled = []
    for _name, attribute, values, minimum, maximum, points, is_exclusion in criteria:
        wanted = frozenset(str(v).strip().lower() for v in values)
        compiled.append((attribute, wanted, minimum, maximum, points, is_exclusion))
    return tuple(compiled)


_DEFAULT_CRITERIA = _compile_criteria(defaults.DEFAULT_ICP_CRITERIA)


def _criterion_matches(profile: FitProfile, attribute: str, wanted, minimum, maximum) -> bool:
    if attribute in ("employees", "annual_revenue"):
        value = getattr(profile, attribute)
        return (
            value is not None
            and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
        )
    if attribute in ("technologies", "signals"):
        return any(v.lower() in wanted for v in getattr(profile, attribute))
    if attribute == "title":
        title = profile.title.lower()
        return bool(title) and any(keyword in title for keyword in wanted)
    return getattr(profile, attribute).lower() in wanted


def demo_fit_points(
    profile: FitProfile, criteria: Sequence[tuple] | None = None
) -> tuple[int, bool]:
    """(fit points, excluded) of a profile under ICP criteria rows shaped like
    ``defaults.DEFAULT_ICP_CRITERIA`` (the defaults when None).

    Every criterion reads one attribute, so the points of an account-only profile and of a
    contact-only profile add up to those of the combined profile (the generator relies on it).
    """
    compiled = _DEFAULT_CRITERIA if criteria is None else _compile_criteria(criteria)
    points, excluded = 0, False
    for attribute, wanted, minimum, maximum, value, is_exclusion in compiled:
        if _criterion_matches(profile, attribute, wanted, minimum, maximum):
            if is_exclusion:
                excluded = True
            else:
                points += value
    return points, excluded


def demo_tier(points: int, excluded: bool, tiers: Mapping[str, int] | None = None) -> str:
    tiers = tiers or defaults.DEFAULT_ICP_TIERS
    if excluded:
        return FitTier.D.value
    if points >= tiers["tier_a_min_points"]:
        return FitTier.A.value
    if points >= tiers["tier_b_min_points"]:
        return FitTier.B.value
    if points >= tiers["tier_c_min_points"]:
        return FitTier.C.value
    return FitTier.D.value


# --- Business hours (a stand-in for the SLA clock) --------------------------------------------


class BusinessClock:
    """Adds business hours to UTC epoch seconds, on precomputed working windows."""

    def __init__(self, calendar: CalendarSpec, first_day: date, last_day: date) -> None:
        tz = zoneinfo.ZoneInfo(calendar.time_zone)
        self.opens: list[int] = []
        self.closes: list[int] = []
        day = first_day
        while day <= last_day:
            hours = calendar.hours.get(day.weekday())
            if hours and day not in calendar.holidays:
                midnight = datetime.combine(day, time(), tzinfo=tz)
                self.opens.append(int((midnight + timedelta(minutes=hours[0])).timestamp()))
                self.closes.append(int((midnight + timedelta(minutes=hours[1])).timestamp()))
            day += timedelta(days=1)
        self.tz = tz

    def add(self, start: int, hours: float) -> int:
        remaining = int(hours * HOUR)
        index = bisect.bisect_right(self.closes, start)
        while index < len(self.closes):
            begin = max(start, self.opens[index])
            available = self.closes[index] - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            index += 1
        return start + int(hours * 3 * HOUR)  # beyond the calendar: a rough continuation

    def local_weekday(self, instant: int) -> int:
        return datetime.fromtimestamp(instant, self.tz).weekday()


# --- The world the demo describes -------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    name: str
    channel: str
    origin: str
    volume: float  # share of new leads
    mql_rate: float  # chance a lead becomes an MQL (before the fit tier's multiplier)
    mql_days: float  # mean days from creation to MQL
    accept_rate: float  # chance sales accepts the handoff
    sql_rate: float  # SAL → SQL
    opp_rate: float  # SQL → opportunity
    win_rate: float  # opportunity → won
    cycle_days: float  # median days from opportunity to close
    amount: int  # median deal size, USD
    engagement: float  # relative engagement intensity


C, M, S = ChannelGroup, SourceOrigin.MARKETING, SourceOrigin.SALES
SOURCES = (
    # name, channel, origin, volume, mql, mql days, accept, sql, opp, win, cycle days, amount,
    # engagement
    SourceSpec("Webinar", C.EVENTS, M, 7, .45, 4, .83, .60, .70, .32, 55, 42_000, 1.5),
    SourceSpec("Customer referral", C.REFERRAL, M, 3, .55, 3, .88, .66, .75, .40, 40, 60_000, 1.1),
    SourceSpec("Partner referral", C.PARTNER, M, 4, .45, 5, .80, .55, .70, .32, 50, 55_000, 1.1),
    SourceSpec("Organic search", C.ORGANIC_SEARCH, M, 16, .22, 12, .70, .45, .60, .23, 70, 30_000,
               1.0),
    SourceSpec("Google Ads", C.PAID_SEARCH, M, 14, .18, 10, .62, .38, .55, .18, 75, 28_000, 0.8),
    SourceSpec("LinkedIn Ads", C.PAID_SOCIAL, M, 12, .12, 14, .48, .30, .45, .11, 85, 26_000, 0.7),
    SourceSpec("Facebook Ads", C.PAID_SOCIAL, M, 9, .07, 16, .38, .25, .40, .08, 90, 18_000, 0.5),
    SourceSpec("Content syndication", C.CONTENT, M, 10, .12, 18, .52, .30, .50, .13, 85, 25_000,
               0.8),
    SourceSpec("Newsletter", C.EMAIL, M, 8, .20, 15, .66, .40, .55, .21, 70, 27_000, 1.2),
    SourceSpec("Trade show", C.EVENTS, M, 5, .30, 6, .70, .45, .60, .22, 65, 38_000, 1.0),
    SourceSpec("Outbound SDR", C.OUTBOUND, S, 7, .25, 9, .75, .45, .60, .21, 80, 45_000, 0.6),
    SourceSpec("Direct / website", C.DIRECT, M, 5, .28, 7, .72, .48, .60, .24, 60, 32_000, 0.9),
)  # fmt: skip
del C, M, S

TIER_MQL = {"A": 1.7, "B": 1.25, "C": 0.8, "D": 0.35}
TIER_ACCEPT = {"A": 1.12, "B": 1.0, "C": 0.85, "D": 0.6}
TIER_WIN = {"A": 1.15, "B": 1.0, "C": 0.85, "D": 0.6}
TIER_ENGAGE = {"A": 1.35, "B": 1.15, "C": 0.9, "D": 0.7}

# name, role, first name, last name
USERS = (
    ("rep.alex", "rep", "Alex", "Morgan"),
    ("rep.blake", "rep", "Blake", "Okafor"),
    ("rep.casey", "rep", "Casey", "Lindqvist"),
    ("rep.dana", "rep", "Dana", "Whitfield"),
    ("rep.eli", "rep", "Eli", "Moreau"),
    ("rep.frankie", "rep", "Frankie", "Santos"),
    ("rep.gray", "rep", "Gray", "Tanaka"),
    ("rep.harper", "rep", "Harper", "Novak"),
    ("sdr.jordan", "sdr", "Jordan", "Reyes"),
    ("sdr.kai", "sdr", "Kai", "Andersen"),
    ("manager.sam", "manager", "Sam", "Delgado"),
    ("marketing.riley", "marketer", "Riley", "Chen"),
    ("marketing.quinn", "marketer", "Quinn", "Adeyemi"),
)
DEMO_USERNAMES = tuple(row[0] for row in USERS)
# Some reps answer fast, some do not: a multiplier on the chance of a late first response.
REP_SLOWNESS = (0.6, 0.8, 0.9, 1.0, 1.0, 1.2, 1.5, 1.9)
REP_SHARE = (1.2, 1.1, 1.0, 1.0, 1.0, 0.9, 0.9, 0.8)

INDUSTRIES = (
    # name, weight, revenue per employee (USD), company name endings
    ("software", 18, 220_000, ("Labs", "Software", "Systems", "Cloud", "Data", "Logic", "AI")),
    ("financial services", 10, 350_000, ("Capital", "Financial", "Bank", "Wealth", "Credit")),
    ("healthcare", 9, 160_000, ("Health", "Medical", "Care", "Clinics", "Bio", "Diagnostics")),
    ("e-commerce", 8, 300_000, ("Shop", "Goods", "Market", "Commerce", "Direct")),
    ("education", 8, 90_000, ("Academy", "Learning", "Institute", "Schools")),
    ("retail", 8, 180_000, ("Retail", "Stores", "Outfitters", "Brands", "Home")),
    ("manufacturing", 10, 240_000, ("Manufacturing", "Industries", "Works", "Materials")),
    ("government", 4, 120_000, ("Agency", "Authority", "City Services", "Department")),
    ("media", 6, 200_000, ("Media", "Studios", "Publishing", "Broadcasting")),
    ("professional services", 8, 150_000, ("Consulting", "Advisors", "Group", "Partners")),
    ("logistics", 5, 210_000, ("Logistics", "Freight", "Shipping", "Transport")),
    ("non-profit", 2, 70_000, ("Foundation", "Alliance", "Trust")),
    ("telecommunications", 4, 330_000, ("Telecom", "Networks", "Mobile", "Connect")),
)
ENDINGS = tuple(dict.fromkeys(ending for row in INDUSTRIES for ending in row[3]))
NAME_WORDS = (
    "North", "Blue", "Bright", "Iron", "Silver", "Cedar", "Summit", "Harbor", "Granite", "Maple",
    "Red", "Clear", "True", "Swift", "Open", "Stone", "River", "Pine", "Golden", "Lumen", "Nova",
    "Vertex", "Apex", "Atlas", "Beacon", "Crest", "Delta", "Echo", "Falcon", "Helix", "Kite",
    "Lake", "Meadow", "Orbit", "Pioneer", "Quartz", "Ridge", "Sierra", "Tidal", "Union",
    "Vista", "West", "Zenith", "Arbor", "Bay", "Cobalt", "Ember", "Fern", "Grove", "Hudson",
)  # fmt: skip
WORD_SLUGS = tuple("".join(c for c in w.lower() if c.isalnum()) for w in NAME_WORDS)
ENDING_SLUGS = tuple("".join(c for c in w.lower() if c.isalnum()) for w in ENDINGS)
COUNTRIES = (
    # code, region, weight, UTC offset (hours, standard time; good enough for "working hours")
    ("US", Region.NORTH_AMERICA, 40, -5), ("CA", Region.NORTH_AMERICA, 5, -5),
    ("GB", Region.EMEA, 10, 0), ("DE", Region.EMEA, 8, 1), ("FR", Region.EMEA, 5, 1),
    ("NL", Region.EMEA, 3, 1), ("SE", Region.EMEA, 2, 1), ("ES", Region.EMEA, 2, 1),
    ("IE", Region.EMEA, 1, 0), ("ZA", Region.EMEA, 1, 2), ("AE", Region.EMEA, 1, 4),
    ("AU", Region.APAC, 4, 10), ("JP", Region.APAC, 3, 9), ("SG", Region.APAC, 2, 8),
    ("IN", Region.APAC, 5, 5), ("BR", Region.LATAM, 4, -3), ("MX", Region.LATAM, 3, -6),
    ("AR", Region.LATAM, 1, -3),
)  # fmt: skip
TECHNOLOGIES = (
    ("salesforce", 0.30), ("hubspot", 0.28), ("snowflake", 0.12), ("segment", 0.10),
    ("marketo", 0.08), ("zendesk", 0.22), ("shopify", 0.08), ("intercom", 0.12),
    ("slack", 0.45), ("jira", 0.30), ("netsuite", 0.08), ("outreach", 0.07),
)  # fmt: skip
SIGNALS = (
    (AccountSignal.FUNDING_ROUND, 0.08), (AccountSignal.EXECUTIVE_HIRE, 0.10),
    (AccountSignal.HIRING_SURGE, 0.08), (AccountSignal.EXPANSION, 0.06),
    (AccountSignal.ACQUISITION, 0.03),
)  # fmt: skip
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Chris", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley",
    "Paul", "Emily", "Steven", "Michelle", "Andrew", "Amanda", "Kevin", "Melissa", "Brian",
    "Laura", "Priya", "Wei", "Hiroshi", "Fatima", "Lukas", "Sofia", "Mateo", "Chloe", "Noah",
    "Emma", "Arjun", "Mei", "Olga", "Ahmed", "Ines", "Lars", "Ana", "Diego", "Yuki", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
    "Patel", "Kim", "Nguyen", "Schmidt", "Mueller", "Dubois", "Rossi", "Tanaka", "Silva",
    "Kowalski", "Jansen", "Larsen", "Singh", "Chen", "Okoye", "Haddad", "Costa", "Ivanova",
)  # fmt: skip
TITLES = {
    # seniority: (weight, titles)
    Seniority.EXECUTIVE: (6, ("CEO", "Founder", "CFO", "COO", "Chief Revenue Officer", "CMO")),
    Seniority.VP: (9, ("VP Marketing", "VP Sales", "VP Revenue Operations", "VP Growth")),
    Seniority.DIRECTOR: (16, ("Director of Marketing", "Director of Sales Operations",
                              "Director of Demand Generation", "Head of RevOps")),
    Seniority.MANAGER: (26, ("Marketing Operations Manager", "Sales Manager",
                             "Demand Generation Manager", "CRM Manager")),
    Seniority.INDIVIDUAL: (33, ("Marketing Specialist", "Sales Development Representative",
                                "Business Analyst", "Account Executive", "Data Analyst")),
    Seniority.STUDENT: (3, ("Student", "MBA Candidate")),
    Seniority.UNKNOWN: (7, ("",)),
}  # fmt: skip
CONTENT_ASSETS = (
    ("The RevOps glossary", AssetType.BLOG_POST, FunnelStage.TOFU),
    ("What is an MQL, really?", AssetType.BLOG_POST, FunnelStage.TOFU),
    ("5 signs sales and marketing are misaligned", AssetType.BLOG_POST, FunnelStage.TOFU),
    ("Lead scoring 101", AssetType.BLOG_POST, FunnelStage.TOFU),
    ("Why lead handoffs fail", AssetType.BLOG_POST, FunnelStage.TOFU),
    ("The SLA playbook", AssetType.EBOOK, FunnelStage.TOFU),
    ("Building your ICP", AssetType.EBOOK, FunnelStage.TOFU),
    ("State of pipeline 2025", AssetType.WHITEPAPER, FunnelStage.TOFU),
    ("Pipeline analytics 101", AssetType.WEBINAR, FunnelStage.MOFU),
    ("From MQL to revenue", AssetType.WEBINAR, FunnelStage.MOFU),
    ("Fixing lead handoffs", AssetType.WEBINAR, FunnelStage.MOFU),
    ("How Cedar Health halved response times", AssetType.CASE_STUDY, FunnelStage.MOFU),
    ("Northwind's single source of truth", AssetType.CASE_STUDY, FunnelStage.MOFU),
    ("Implementing shared lifecycle stages", AssetType.IMPLEMENTATION_GUIDE, FunnelStage.MOFU),
    ("Attribution models compared", AssetType.WHITEPAPER, FunnelStage.MOFU),
    ("RevOps dashboard vs. spreadsheets", AssetType.COMPARISON, FunnelStage.BOFU),
    ("RevOps dashboard vs. BI tools", AssetType.COMPARISON, FunnelStage.BOFU),
    ("Pipeline ROI calculator", AssetType.ROI_CALCULATOR, FunnelStage.BOFU),
    ("Business case template", AssetType.PROPOSAL_TEMPLATE, FunnelStage.BOFU),
    ("Enterprise rollout story", AssetType.CASE_STUDY, FunnelStage.BOFU),
)
WEBINAR_TOPICS = (
    "Pipeline analytics 101", "From MQL to revenue", "Fixing lead handoffs",
    "ICP workshop", "Scoring that sales trusts", "Board-ready funnel metrics",
    "SLA clinic", "Attribution without tears",
)  # fmt: skip
TRADE_SHOWS = ("RevOps Summit", "B2B Growth Expo", "Pipeline Con")
SYNDICATION_VENDORS = ("TechTarget-style network", "Industry newsletter swap", "Analyst hub")
LOSS_REASONS = (
    ("Price", 22), ("Lost to competitor", 26), ("Timing / no budget this year", 18),
    ("No decision", 20), ("Missing feature", 8), ("Built in-house", 6),
)  # fmt: skip
OPPORTUNITY_PRODUCTS = ("Platform", "Platform + Analytics", "Team plan", "Enterprise plan")
REJECT_WEIGHTS = {
    # reason key: base weight; adjusted by tier and source below
    "not_icp_fit": 18, "no_budget": 14, "bad_timing": 18, "no_authority": 14,
    "student_competitor": 3, "duplicate": 5, "unreachable": 18, "other": 6,
}  # fmt: skip
DISQUALIFYING_REASONS = frozenset({"not_icp_fit", "student_competitor", "duplicate"})
REJECT_NOTES = (
    "Parent company already in a deal with us.",
    "Asked to be contacted after their re-org.",
    "Consultant researching for a client.",
    "Wrong region for our current coverage.",
)
ACCEPT_REASONS = (
    "Accepted: strong fit, active interest",
    "Accepted: asked for a call",
    "Accepted: good timing, budget confirmed",
)

# Engagement: generic event kinds and weights, and the demo's score weight per kind.
E = EventKind
GENERIC_KINDS = (
    (E.PAGE_VIEW, 46), (E.EMAIL_OPEN, 20), (E.EMAIL_CLICK, 8), (E.CONTENT_DOWNLOAD, 7),
    (E.PRICING_PAGE, 4), (E.WEBINAR_REGISTERED, 3), (E.WEBINAR_ATTENDED, 2), (E.FORM_FILL, 2),
    (E.EVENT_ATTENDED, 1), (E.TRIAL_SIGNUP, 0.6), (E.UNSUBSCRIBE, 0.25), (E.EMAIL_BOUNCE, 0.2),
)  # fmt: skip
PAGE_PATHS = (
    "/", "/product", "/product/scoring", "/product/sla", "/customers", "/blog",
    "/blog/lead-scoring-101", "/blog/what-is-an-mql", "/integrations", "/about", "/careers",
    "/security", "/docs",
)  # fmt: skip
EMAILS = ("Monthly newsletter", "Webinar invitation", "Nurture: ICP series", "Product update",
          "Case study digest", "Event follow-up")  # fmt: skip
del E


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_PROPERTIES = {
    EventKind.PAGE_VIEW: tuple(_dumps({"path": p}) for p in PAGE_PATHS),
    EventKind.PRICING_PAGE: (_dumps({"path": "/pricing"}), _dumps({"path": "/pricing#enterprise"})),
    EventKind.EMAIL_OPEN: tuple(_dumps({"email": e}) for e in EMAILS),
    EventKind.EMAIL_CLICK: tuple(_dumps({"email": e}) for e in EMAILS),
    EventKind.FORM_FILL: (_dumps({"form": "contact"}), _dumps({"form": "newsletter"})),
    EventKind.TRIAL_SIGNUP: (_dumps({"plan": "trial"}),),
    EventKind.DEMO_REQUEST: (_dumps({"form": "demo"}),),
    EventKind.MEETING_BOOKED: (_dumps({"meeting": "discovery"}),),
    EventKind.UNSUBSCRIBE: (_dumps({"list": "newsletter"}), _dumps({"list": "all"})),
    EventKind.EMAIL_BOUNCE: (_dumps({"bounce": "hard"}), _dumps({"bounce": "soft"})),
    EventKind.EVENT_ATTENDED: tuple(_dumps({"event": name}) for name in TRADE_SHOWS),
    EventKind.WEBINAR_REGISTERED: tuple(_dumps({"webinar": t}) for t in WEBINAR_TOPICS),
    EventKind.WEBINAR_ATTENDED: tuple(_dumps({"webinar": t}) for t in WEBINAR_TOPICS),
    EventKind.CONTENT_DOWNLOAD: ("{}",),
}


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


class _TimeFormat:
    """Epoch seconds → "YYYY-MM-DD HH:MM:SS" (UTC), fast: cached day prefixes."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}
        self.clock = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]

    def __call__(self, instant: int | None) -> str | None:
        if instant is None:
            return None
        day, second = divmod(instant, DAY)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + " "
        return prefix + self.clock[second]


def _day_iso(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


def _money(value: float) -> str:
    return f"{value:.2f}"


# --- The generator -----------------------------------------------------------------------------


def generate(plan: DemoPlan) -> Iterator[Chunk]:
    """Yield the demo data set as chunks, parents first (see the module docstring)."""
    yield from _Generator(plan).chunks()


@dataclass
class _Ids:
    """Next id per table, starting where the plan says."""

    first: Mapping[str, int]
    next: dict[str, int] = field(default_factory=dict)

    def take(self, key: str) -> int:
        return self.reserve(key, 1)

    def reserve(self, key: str, count: int) -> int:
        """The first of ``count`` consecutive ids."""
        value = self.next.get(key) or self.first.get(key, 1)
        self.next[key] = value + count
        return value


class _Generator:
    def __init__(self, plan: DemoPlan) -> None:
        self.plan = plan
        self.as_of = int(plan.as_of.timestamp())
        self.as_of_day = self.as_of // DAY
        self.start_day = self.as_of_day - WINDOW_DAYS
        self.start = self.start_day * DAY
        self.end = self.as_of - 1  # last instant a fact may carry
        self.ids = _Ids(plan.first_ids)
        self.fmt = _TimeFormat()
        start_date = date(1970, 1, 1) + timedelta(days=self.start_day)
        self.clock = BusinessClock(
            plan.calendar,
            start_date - timedelta(days=7),
            start_date + timedelta(days=WINDOW_DAYS + 150),
        )
        self.reasons = {reason.key: reason for reason in plan.reasons}
        self.contact_fit: dict[tuple[str, str], tuple[int, bool]] = {}

    # -- dimensions ----------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        yield Chunk(USER, self._users())
        yield Chunk(SALES_REP, self._sales_reps())
        yield Chunk(SOURCE, self._sources())
        yield Chunk(CAMPAIGN, self._campaigns())
        yield Chunk(CONTENT_ASSET, self._content_assets())
        yield from self._accounts()
        yield from self._leads()

    def _users(self) -> list[tuple]:
        joined = self.fmt(self.start - 60 * DAY + 9 * HOUR)
        rows, self.reps, self.sdrs, self.manager = [], [], [], None
        for username, role, first, last in USERS:
            user_id = self.ids.take("user")
            if role == "rep":
                self.reps.append(user_id)
            elif role == "sdr":
                self.sdrs.append(user_id)
            elif role == "manager":
                self.manager = user_id
            email = f"{first}.{last}@{USER_EMAIL_DOMAIN}".lower()
            staff = role in ("manager", "marketer")
            rows.append(
                (user_id, UNUSABLE_PASSWORD, None, False, username, first, last, email, staff,
                 True, joined)
            )  # fmt: skip
        self.rep_cum = _cumulative(REP_SHARE)
        return rows

    def _sales_reps(self) -> list[tuple]:
        """The reps as handoff assignees: any territory, any tier, the default capacity, all on
        the demo sales manager's team."""
        # id, user, region, tiers, capacity, active, out of office from / until, last
        # assigned, manager
        return [
            (
                self.ids.take("sales_rep"),
                user_id,
                "",
                "[]",
                40,
                True,
                None,
                None,
                None,
                self.manager,
            )
            for user_id in self.reps
        ]

    def _sources(self) -> list[tuple]:
        self.source_ids = []
        rows = []
        for spec in SOURCES:
            source_id = self.ids.take("source")
            self.source_ids.append(source_id)
            rows.append((source_id, spec.name, spec.channel.value, spec.origin.value))
        return rows

    def _campaigns(self) -> list[tuple]:
        """Campaigns per source over the window; also the per-day lead boosts they cause."""
        rng = random.Random(f"{self.plan.seed}:campaigns")
        n_sources = len(SOURCES)
        self.active = [[[] for _ in range(WINDOW_DAYS)] for _ in range(n_sources)]
        self.boost = [[1.0] * n_sources for _ in range(WINDOW_DAYS)]
        rows: list[tuple] = []
        names: set[tuple[int, str]] = set()

        def add(source: int, name: str, first: int, last: int, cost: float | None, boost: float):
            first, last = max(0, first), min(WINDOW_DAYS - 1, last)
            if first > last:
                return
            base, n = name, 2
            while (source, name) in names:
                name, n = f"{base} ({n})", n + 1
            names.add((source, name))
            campaign_id = self.ids.take("campaign")
            for day in range(first, last + 1):
                self.active[source][day].append(campaign_id)
                self.boost[day][source] = max(self.boost[day][source], boost)
            rows.append(
                (campaign_id, name, self.source_ids[source], None if cost is None else _money(cost),
                 "USD", _day_iso(self.start_day + first), _day_iso(self.start_day + last),
                 f"DEMO-CMP-{len(rows) + 1:04d}")
            )  # fmt: skip

        def quarter(day: int) -> str:
            d = date(1970, 1, 1) + timedelta(days=self.start_day + day)
            return f"Q{(d.month - 1) // 3 + 1} {d.year}"

        def month(day: int) -> str:
            return f"{(date(1970, 1, 1) + timedelta(days=self.start_day + day)):%b %Y}"

        by_name = {spec.name: index for index, spec in enumerate(SOURCES)}
        webinar = by_name["Webinar"]
        for k in range(8):  # a webinar every ~6 weeks, promoted for three weeks before
            event_day = 20 + k * 45 + rng.randrange(-4, 5)
            topic = WEBINAR_TOPICS[k % len(WEBINAR_TOPICS)]
            add(webinar, f"Webinar: {topic}", event_day - 21, event_day + 1,
                rng.uniform(1500, 4000), 3.5)  # fmt: skip
        add(by_name["Customer referral"], "Customer referral program", 0, WINDOW_DAYS - 1,
            12_000, 1.0)  # fmt: skip
        for partner in ("Northwind Consulting", "Summit Integrators", "Atlas Agency"):
            add(by_name["Partner referral"], f"Partner program — {partner}", 0, WINDOW_DAYS - 1,
                None, 1.0)  # fmt: skip
        add(by_name["Organic search"], "SEO content program", 0, WINDOW_DAYS - 1, 24_000, 1.0)
        google = by_name["Google Ads"]
        add(google, "Google Ads — Brand search", 0, WINDOW_DAYS - 1, rng.uniform(18e3, 26e3), 1)
        add(google, "Google Ads — Competitor keywords", 120, 300, rng.uniform(14e3, 22e3), 1.3)
        linkedin = by_name["LinkedIn Ads"]
        add(linkedin, "LinkedIn — ABM tier A accounts", 60, 240, rng.uniform(25e3, 40e3), 1.2)
        facebook = by_name["Facebook Ads"]
        add(facebook, "Facebook — Retargeting", 0, WINDOW_DAYS - 1, rng.uniform(9e3, 14e3), 1.0)
        for start in range(0, WINDOW_DAYS, 91):  # quarterly pushes
            q = quarter(start)
            add(google, f"Google Ads — {q} demand gen", start, start + 90,
                rng.uniform(8e3, 20e3), 1.25)  # fmt: skip
            add(linkedin, f"LinkedIn — Lead gen forms {q}", start, start + 90,
                rng.uniform(10e3, 30e3), 1.25)  # fmt: skip
            vendor = SYNDICATION_VENDORS[(start // 91) % len(SYNDICATION_VENDORS)]
            add(by_name["Content syndication"], f"Syndication — {vendor} {q}", start, start + 90,
                rng.uniform(6e3, 15e3), 1.1)  # fmt: skip
            add(by_name["Outbound SDR"], f"Outbound sequence — {q}", start, start + 90, None, 1)
        for start in (30, 150, 270):
            add(facebook, f"Facebook — Lookalike test {month(start)}", start, start + 60,
                rng.uniform(3e3, 8e3), 1.4)  # fmt: skip
        for start in range(0, WINDOW_DAYS - 5, 30):
            add(by_name["Newsletter"], f"Newsletter — {month(start)}", start, start + 29, 500,
                1.2)  # fmt: skip
        for k, show in enumerate(TRADE_SHOWS):
            event_day = 70 + k * 110 + rng.randrange(-10, 10)
            add(by_name["Trade show"], show, event_day - 3, event_day + 10,
                rng.uniform(25e3, 60e3), 4.0)  # fmt: skip
        return rows

    def _content_assets(self) -> list[tuple]:
        rows = []
        self.asset_ids: dict[str, list[int]] = {stage.value: [] for stage in FunnelStage}
        self.webinar_assets = []
        for title, asset_type, stage in CONTENT_ASSETS:
            asset_id = self.ids.take("content_asset")
            slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
            while "--" in slug:
                slug = slug.replace("--", "-")
            rows.append((asset_id, title, asset_type.value, stage.value,
                         f"https://www.example.com/resources/{slug}"))  # fmt: skip
            if asset_type == AssetType.WEBINAR:
                self.webinar_assets.append(asset_id)
            else:
                self.asset_ids[stage.value].append(asset_id)
        stages = [FunnelStage.TOFU, FunnelStage.TOFU, FunnelStage.TOFU, FunnelStage.MOFU,
                  FunnelStage.MOFU, FunnelStage.BOFU]  # fmt: skip
        self.download_pool = [a for s in stages for a in self.asset_ids[s.value]]
        self.late_download_pool = self.asset_ids["mofu"] + self.asset_ids["bofu"] * 2
        return rows

    def _accounts(self) -> Iterator[Chunk]:
        """Accounts, streamed. What leads need about each is kept in compact arrays (a few
        bytes per account), so a million leads do not hold a million strings."""
        plan = self.plan
        rng = random.Random(f"{plan.seed}:accounts")
        count = math.ceil(plan.leads / 3.5) if plan.leads else 0
        self.first_account_id = self.ids.reserve("account", count)
        self.acct_name = array("l")  # name code: (word, word, ending) packed
        self.acct_suffix = array("l")  # the domain's disambiguating number (0: none)
        self.acct_country = array("B")  # index into COUNTRIES
        self.acct_fit = array("h")  # fit points, -1 - points when the account is excluded
        self.acct_employees = array("l")
        industry_cum = _cumulative([row[1] for row in INDUSTRIES])
        country_cum = _cumulative([row[2] for row in COUNTRIES])
        words = len(NAME_WORDS)
        used = array("l", [0]) * (words * words * len(ENDINGS))
        rows: list[tuple] = []
        for index in range(count):
            industry, _, revenue_per_head, endings = rng.choices(
                INDUSTRIES, cum_weights=industry_cum
            )[0]
            country_index = bisect.bisect_left(country_cum, rng.random() * country_cum[-1])
            country, region, _, _ = COUNTRIES[country_index]
            employees = max(1, min(50_000, int(rng.lognormvariate(math.log(120), 1.6))))
            revenue = round(employees * revenue_per_head * rng.lognormvariate(0, 0.35), -3)
            size_boost = 1.6 if employees >= 200 else 1.0
            techs = sorted(
                name
                for name, p in TECHNOLOGIES
                if rng.random()
                < p * size_boost * (3 if name == "shopify" and industry in ("e-commerce", "retail")
                                    else 1)
            )  # fmt: skip
            signals = sorted(
                s.value
                for s, p in SIGNALS
                if rng.random() < p * (1.8 if industry == "software" and s == "funding_round"
                                       else 1)
            )  # fmt: skip
            ending = ENDINGS.index(endings[rng.randrange(len(endings))])
            code = (rng.randrange(words) * words + rng.randrange(words)) * len(ENDINGS) + ending
            suffix = used[code]
            used[code] = suffix + 1
            points, excluded = demo_fit_points(
                FitProfile(
                    industry=industry,
                    employees=employees,
                    annual_revenue=int(revenue),
                    country=country,
                    region=region.value,
                    technologies=frozenset(techs),
                    signals=frozenset(signals),
                )
            )
            created = self.start - rng.randrange(30, 900) * DAY + rng.randrange(DAY)
            self.acct_name.append(code)
            self.acct_suffix.append(suffix)
            self.acct_country.append(country_index)
            self.acct_fit.append(-1 - points if excluded else points)
            self.acct_employees.append(employees)
            rows.append(
                (self.first_account_id + index, self._account_name(index),
                 self._account_domain(index), industry, employees, _money(revenue), country,
                 region.value, _dumps(techs), _dumps(signals), f"DEMO-ACC-{index + 1:06d}",
                 self.fmt(created))
            )  # fmt: skip
            if len(rows) >= 50_000:
                yield Chunk(ACCOUNT, rows)
                rows = []
        if rows:
            yield Chunk(ACCOUNT, rows)

    def _account_parts(self, index: int) -> tuple[int, int, int]:
        code = self.acct_name[index]
        pair, ending = divmod(code, len(ENDINGS))
        first, second = divmod(pair, len(NAME_WORDS))
        return first, second, ending

    def _account_name(self, index: int) -> str:
        first, second, ending = self._account_parts(index)
        return f"{NAME_WORDS[first]} {NAME_WORDS[second]} {ENDINGS[ending]}"

    def _account_domain(self, index: int) -> str:
        first, second, ending = self._account_parts(index)
        suffix = self.acct_suffix[index]
        slug = WORD_SLUGS[first] + WORD_SLUGS[second] + ENDING_SLUGS[ending]
        return f"{slug}{suffix + 1 if suffix else ''}.example"

    # -- leads and everything that happens to them ----------------------------------------------

    def _daily_counts(self, rng: random.Random) -> list[int]:
        """How many leads each day of the window gets: weekday, season, trend and campaigns."""
        weekday_factor = (1.15, 1.25, 1.2, 1.1, 0.85, 0.3, 0.28)
        month_factor = {1: 1.05, 7: 0.9, 8: 0.85, 9: 1.1, 10: 1.1, 12: 0.75}
        self.day_source_cum = []
        weights = []
        for day in range(WINDOW_DAYS):
            absolute = self.start_day + day
            d = date(1970, 1, 1) + timedelta(days=absolute)
            source_weights = [spec.volume * self.boost[day][i] for i, spec in enumerate(SOURCES)]
            self.day_source_cum.append(_cumulative(source_weights))
            weights.append(
                sum(source_weights)
                / 100
                * weekday_factor[d.weekday()]
                * month_factor.get(d.month, 1.0)
                * (0.8 + 0.4 * day / WINDOW_DAYS)
                * rng.uniform(0.85, 1.15)
            )
        total = sum(weights)
        exact = [self.plan.leads * w / total for w in weights]
        counts = [int(x) for x in exact]
        short = self.plan.leads - sum(counts)
        by_remainder = sorted(range(WINDOW_DAYS), key=lambda i: (counts[i] - exact[i], i))
        for i in by_remainder[:short]:
            counts[i] += 1
        return counts

    def _work_time(self, rng: random.Random, instant: int, utc_offset: int, lo: int, hi: int):
        """Move an instant into local working hours (mostly) and off weekends (mostly)."""
        local = instant + utc_offset
        day, second = divmod(local, DAY)
        if rng.random() < 0.8:
            second = 8 * HOUR + int(rng.random() * 10 * HOUR)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        if weekday >= 5 and rng.random() < 0.75:
            day += 7 - weekday if rng.random() < 0.5 else 4 - weekday
        moved = day * DAY + second - utc_offset
        return moved if lo <= moved <= hi else instant

    def _leads(self) -> Iterator[Chunk]:
        plan = self.plan
        if not plan.leads:
            return
        calendar_rng = random.Random(f"{plan.seed}:calendar")
        rng = random.Random(f"{plan.seed}:leads")
        self.erng = random.Random(f"{plan.seed}:events")
        counts = self._daily_counts(calendar_rng)
        self.mean_weight = self._mean_engagement_weight(counts)
        batch_leads = max(200, int(plan.batch_rows / max(plan.events_per_lead, 1)))
        self.lead_rows: list[tuple] = []
        self.event_rows: list[tuple] = []
        self.transition_rows: list[tuple] = []
        self.handoff_rows: list[tuple] = []
        self.opportunity_rows: list[tuple] = []
        self.lead_seq = self.event_seq = self.opp_seq = self.story_events = 0
        n_accounts = len(self.acct_fit)
        for day, count in enumerate(counts):
            if not count:
                continue
            day_start = (self.start_day + day) * DAY
            source_cum = self.day_source_cum[day]
            drafts = []
            for _ in range(count):
                account = rng.randrange(n_accounts)
                source = bisect.bisect_left(source_cum, rng.random() * source_cum[-1])
                offset = COUNTRIES[self.acct_country[account]][3] * HOUR
                latest = min(day_start + DAY - 1, self.end - HOUR)
                created = self._work_time(
                    rng, day_start + rng.randrange(DAY), offset, day_start, latest
                )
                created = min(created, latest)
                drafts.append((created, account, source))
            drafts.sort()
            for created, account, source in drafts:
                self._lead(rng, day, created, account, source)
                if len(self.lead_rows) >= batch_leads:
                    yield from self._flush()
        yield from self._flush()

    def _flush(self) -> Iterator[Chunk]:
        for table, attribute in (
            (LEAD_TABLE, "lead_rows"),
            (EVENT, "event_rows"),
            (TRANSITION, "transition_rows"),
            (HANDOFF, "handoff_rows"),
            (OPPORTUNITY_TABLE, "opportunity_rows"),
        ):
            rows = getattr(self, attribute)
            if rows:
                yield Chunk(table, rows)
                setattr(self, attribute, [])

    def _mean_engagement_weight(self, counts: list[int]) -> float:
        """The average engagement weight of a lead, estimated on a deterministic sample drawn
        like the leads are, so ``events_per_lead`` comes out as the average whatever the mix."""
        rng = random.Random(f"{self.plan.seed}:calibration")
        day_cum = _cumulative(counts)
        samples, acc = 4000, 0.0
        for _ in range(samples):
            day = bisect.bisect_right(day_cum, rng.random() * day_cum[-1])
            source_cum = self.day_source_cum[day]
            spec = SOURCES[bisect.bisect_left(source_cum, rng.random() * source_cum[-1])]
            fit = self.acct_fit[rng.randrange(len(self.acct_fit))]
            seniority, title = self._person(rng)
            tier = self._tier(fit, seniority, title)
            age_days = WINDOW_DAYS - day - rng.random()
            acc += spec.engagement * TIER_ENGAGE[tier] * min(1.0, (age_days / 45) ** 0.5)
        return acc / samples

    _seniority_cum = _cumulative([weight for weight, _ in TITLES.values()])
    _seniorities = tuple(TITLES)

    def _person(self, rng: random.Random) -> tuple[str, str]:
        index = bisect.bisect_left(self._seniority_cum, rng.random() * self._seniority_cum[-1])
        seniority = self._seniorities[index]
        titles = TITLES[seniority][1]
        return seniority.value, titles[int(rng.random() * len(titles))]

    def _tier(self, account_fit: int, seniority: str, title: str) -> str:
        return demo_tier(*self._fit(account_fit, seniority, title))

    def _fit(self, account_fit: int, seniority: str, title: str) -> tuple[int, bool]:
        key = (seniority, title)
        contact = self.contact_fit.get(key)
        if contact is None:
            contact = self.contact_fit[key] = demo_fit_points(
                FitProfile(seniority=seniority, title=title)
            )
        account_excluded = account_fit < 0
        points = (-1 - account_fit if account_excluded else account_fit) + contact[0]
        return points, account_excluded or contact[1]

    def _later(self, rng: random.Random, instant: int, mean_days: float, offset: int) -> int:
        """An instant some (exponentially distributed) days later, in working hours."""
        later = instant + int(rng.expovariate(1 / mean_days) * DAY) + rng.randrange(HOUR)
        return self._work_time(rng, later, offset, instant + 60, later + 3 * DAY)

    def _transition(self, lead_id, from_stage, to_stage, at, actor_type, actor, reason):
        self.transition_rows.append(
            (self.ids.take("transition"), lead_id, from_stage, to_stage, self.fmt(at), actor_type,
             actor, reason)
        )  # fmt: skip

    def _lead(self, rng: random.Random, day: int, created: int, account: int, source: int):
        end = self.end
        spec = SOURCES[source]
        lead_id = self.ids.take("lead")
        self.lead_seq += 1
        seq = self.lead_seq
        country, _region, _, offset_hours = COUNTRIES[self.acct_country[account]]
        offset = offset_hours * HOUR
        seniority, title = self._person(rng)
        points, excluded = self._fit(self.acct_fit[account], seniority, title)
        tier = demo_tier(points, excluded)
        first = FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))]
        last = LAST_NAMES[int(rng.random() * len(LAST_NAMES))]
        email = f"{first}.{last}.{seq}@{self._account_domain(account)}".lower()
        phone = f"+1-202-555-{rng.randrange(100, 200):04d}" if offset_hours == -5 and (
            rng.random() < 0.4) else ""  # fmt: skip
        campaigns = self.active[source][day]
        campaign_id = campaigns[int(rng.random() * len(campaigns))] if campaigns else None
        rep_index = bisect.bisect_left(self.rep_cum, rng.random() * self.rep_cum[-1])
        rep = self.reps[rep_index]
        outbound = spec.channel == ChannelGroup.OUTBOUND
        sdr = self.sdrs[seq % len(self.sdrs)]
        owner = sdr if outbound else None
        story: list[tuple[int, str, int | None]] = []  # (instant, kind, content asset)

        if outbound:
            self._transition(lead_id, "", LEAD, created, ActorType.USER, sdr, "Prospected by SDR")
        else:
            self._transition(lead_id, "", LEAD, created, ActorType.SYSTEM,
                             None, f"New lead from {spec.name}")  # fmt: skip
        self._story_start(rng, spec, created, story)

        stage, stage_at = LEAD, created
        hot = False
        mql_at = None
        p_mql = 0.0 if excluded else min(0.95, spec.mql_rate * TIER_MQL[tier])
        if rng.random() < p_mql:
            mql_at = self._later(rng, created, spec.mql_days, offset)
            if mql_at > end - HOUR:
                mql_at = None
        if mql_at is not None:
            hot = rng.random() < (0.35 if tier in ("A", "B") else 0.12)
            if hot:
                request = max(created + 60, mql_at - rng.randrange(60, 2 * DAY))
                story.append((request, EventKind.DEMO_REQUEST, None))
            story.append((max(created + 60, mql_at - rng.randrange(60, 3 * DAY)),
                          EventKind.PRICING_PAGE, None))  # fmt: skip
            self._transition(lead_id, LEAD, MQL, mql_at, ActorType.SCORING, None,
                             f"Total score {65 + int(rng.random() * 30)} ≥ 65")  # fmt: skip
            stage, stage_at = MQL, mql_at
            stage, stage_at, owner = self._handoff(
                rng, lead_id, spec, tier, seniority, mql_at, rep, rep_index, offset, story, account
            )
        self._events(lead_id, created, mql_at, spec, tier, hot, offset, story)
        self.lead_rows.append(
            (lead_id, first, last, email, phone, title, seniority, country,
             self.first_account_id + account, self.source_ids[source], campaign_id, owner, stage,
             self.fmt(stage_at), tier, stage not in SALES_STAGES and stage != DISQUALIFIED,
             f"DEMO-{seq:06d}", self.fmt(created), self.fmt(stage_at))
        )  # fmt: skip

    def _story_start(self, rng, spec: SourceSpec, created: int, story: list) -> None:
        """The event that created the lead (and a webinar's attendance)."""
        channel = spec.channel
        at = created + rng.randrange(1, 90)
        if spec.name == "Webinar":
            story.append((at, EventKind.WEBINAR_REGISTERED, None))
            if rng.random() < 0.6:
                attended = created + rng.randrange(1, 21) * DAY
                if attended < self.end:
                    asset = self.webinar_assets[int(rng.random() * len(self.webinar_assets))]
                    story.append((attended, EventKind.WEBINAR_ATTENDED, asset))
        elif spec.name == "Trade show":
            story.append((at, EventKind.EVENT_ATTENDED, None))
        elif channel == ChannelGroup.CONTENT:
            pool = self.download_pool
            story.append((at, EventKind.CONTENT_DOWNLOAD, pool[int(rng.random() * len(pool))]))
        elif channel in (ChannelGroup.EMAIL, ChannelGroup.OUTBOUND):
            story.append((at, EventKind.EMAIL_CLICK, None))
        else:
            story.append((at, EventKind.FORM_FILL, None))

    def _handoff(self, rng, lead_id, spec, tier, seniority, mql_at, rep, rep_index, offset,
                 story, account):  # fmt: skip
        """The MQL handoff and whatever sales did next. Returns (stage, entered at, owner)."""
        end, clock = self.end, self.clock
        terms = self.plan.sla_terms.get(tier) or self.plan.sla_terms.get("")
        respond_h, accept_h = terms.respond_hours, terms.accept_hours
        assigned = mql_at
        response_due = clock.add(assigned, respond_h)
        accept_due = clock.add(assigned, accept_h)
        friday = clock.local_weekday(assigned) == 4
        p_late = min(0.9, (0.33 if friday else 0.09) * REP_SLOWNESS[rep_index])
        if rng.random() < p_late:
            response_hours = respond_h * rng.uniform(1.1, 4.0)
        else:
            response_hours = respond_h * rng.uniform(0.05, 0.95)
        first_response = clock.add(assigned, response_hours)
        if rng.random() < 0.12:  # a slow decision, past the accept-by time
            decided = clock.add(first_response, accept_h * rng.uniform(1.0, 2.5))
        else:
            decided = clock.add(first_response, (accept_h - respond_h) * rng.uniform(0.05, 0.9))
        never_answered = assigned > end - 60 * DAY and rng.random() < 0.05
        p_accept = min(0.97, spec.accept_rate * TIER_ACCEPT[tier])
        accepted = rng.random() < p_accept
        reason = None if accepted else self._reject_reason(rng, spec, tier, seniority)
        if reason is None and not accepted:
            accepted = True  # no rejection reasons defined: sales can only accept
        stage, stage_at = MQL, mql_at
        accepted_at = rejected_at = None
        reason_id, note = None, ""
        if never_answered or first_response > end:
            first_response_out, outcome = None, HandoffOutcome.PENDING
        elif decided > end:
            first_response_out, outcome = first_response, HandoffOutcome.PENDING
        else:
            first_response_out = first_response
            if accepted:
                outcome, accepted_at = HandoffOutcome.ACCEPTED, decided
            else:
                outcome, rejected_at = HandoffOutcome.REJECTED, decided
                reason_id = reason.id
                if reason.requires_note:
                    note = REJECT_NOTES[int(rng.random() * len(REJECT_NOTES))]
        self.handoff_rows.append(
            (self.ids.take("handoff"), lead_id, MQL, rep, terms.policy_id, self.fmt(assigned),
             self.fmt(response_due), self.fmt(accept_due), self.fmt(first_response_out),
             self.fmt(accepted_at), self.fmt(rejected_at), reason_id, note, outcome.value,
             None if first_response_out is None else int(response_hours * HOUR))
        )  # fmt: skip
        if outcome == HandoffOutcome.PENDING:
            return stage, stage_at, rep
        if outcome == HandoffOutcome.REJECTED:
            target = DISQUALIFIED if reason.key in DISQUALIFYING_REASONS else NURTURE
            text = f"Rejected: {reason.label}" + (f" — {note}" if note else "")
            self._transition(lead_id, MQL, target, rejected_at, ActorType.USER, rep, text)
            return target, rejected_at, None
        accept_text = ACCEPT_REASONS[int(rng.random() * len(ACCEPT_REASONS))]
        self._transition(lead_id, MQL, SAL, accepted_at, ActorType.USER, rep, accept_text)
        return self._sales(rng, lead_id, spec, tier, accepted_at, rep, offset, story, account)

    def _reject_reason(self, rng, spec: SourceSpec, tier: str, seniority: str):
        keys, weights = [], []
        for key in self.reasons:
            weight = REJECT_WEIGHTS.get(key, 4)
            if key == "not_icp_fit" and tier in ("C", "D"):
                weight *= 3
            if key == "no_authority" and seniority in ("individual", "unknown"):
                weight *= 3
            if key == "unreachable" and spec.channel == ChannelGroup.PAID_SOCIAL:
                weight *= 2.5
            keys.append(key)
            weights.append(weight)
        if not keys:
            return None
        return self.reasons[rng.choices(keys, weights=weights)[0]]

    def _sales(self, rng, lead_id, spec, tier, accepted_at, rep, offset, story, account):
        end = self.end
        stage, stage_at = SAL, accepted_at
        if rng.random() < spec.sql_rate:
            sql_at = self._later(rng, accepted_at, 6, offset)
            if sql_at > end:
                return stage, stage_at, rep
            story.append((sql_at, EventKind.MEETING_BOOKED, None))
            self._transition(lead_id, SAL, SQL, sql_at, ActorType.USER, rep,
                             "Discovery meeting booked")  # fmt: skip
            stage, stage_at = SQL, sql_at
        else:
            parked = self._later(rng, accepted_at, 20, offset)
            if rng.random() < 0.5 and parked <= end:
                self._transition(lead_id, SAL, NURTURE, parked, ActorType.USER, rep,
                                 "Not ready: revisit next quarter")  # fmt: skip
                return NURTURE, parked, None
            return stage, stage_at, rep
        if rng.random() >= spec.opp_rate:
            parked = self._later(rng, stage_at, 25, offset)
            if rng.random() < 0.6 and parked <= end:
                self._transition(lead_id, SQL, NURTURE, parked, ActorType.USER, rep,
                                 "No active project")  # fmt: skip
                return NURTURE, parked, None
            return stage, stage_at, rep
        opened = self._later(rng, stage_at, 7, offset)
        if opened > end:
            return stage, stage_at, rep
        self.opp_seq += 1
        product = OPPORTUNITY_PRODUCTS[int(rng.random() * len(OPPORTUNITY_PRODUCTS))]
        name = f"{self._account_name(account)} — {product}"
        self._transition(lead_id, SQL, OPPORTUNITY, opened, ActorType.USER, rep,
                         f"Opportunity created: {name}")  # fmt: skip
        employees = self.acct_employees[account]
        size = (0.4 if employees < 50 else 0.7 if employees < 200 else 1.0 if employees < 1000
                else 1.6 if employees < 5000 else 2.5)  # fmt: skip
        amount = max(1500, round(spec.amount * size * rng.lognormvariate(0, 0.5), -2))
        won = rng.random() < min(0.9, spec.win_rate * TIER_WIN[tier])
        cycle = spec.cycle_days * rng.lognormvariate(0, 0.45)
        if not won:
            cycle *= rng.uniform(0.6, 1.1)  # deals die sooner than they close
        closes = self._work_time(rng, opened + int(cycle * DAY), offset, opened + HOUR,
                                 opened + int(cycle * DAY) + 3 * DAY)  # fmt: skip
        loss_reason = ""
        if closes > end:
            status, closed_at = OpportunityStatus.OPEN, None
            progress = (end - opened) / max(1, closes - opened)
            stage_key = (OpportunityStage.DISCOVERY if progress < 0.25 else OpportunityStage.DEMO
                         if progress < 0.5 else OpportunityStage.PROPOSAL if progress < 0.8
                         else OpportunityStage.NEGOTIATION)  # fmt: skip
            stage, stage_at = OPPORTUNITY, opened
        elif won:
            status, closed_at = OpportunityStatus.WON, closes
            stage_key = OpportunityStage.CLOSED_WON
            self._transition(lead_id, OPPORTUNITY, CUSTOMER, closes, ActorType.USER, rep,
                             f"Closed won: ${amount:,.0f}")  # fmt: skip
            stage, stage_at = CUSTOMER, closes
        else:
            status, closed_at = OpportunityStatus.LOST, closes
            stage_key = OpportunityStage.CLOSED_LOST
            loss_reason = rng.choices(
                [r for r, _ in LOSS_REASONS], weights=[w for _, w in LOSS_REASONS]
            )[0]
            self._transition(lead_id, OPPORTUNITY, CLOSED_LOST, closes, ActorType.USER, rep,
                             f"Closed lost: {loss_reason}")  # fmt: skip
            stage, stage_at = CLOSED_LOST, closes
        self.opportunity_rows.append(
            (self.ids.take("opportunity"), name, lead_id, self.first_account_id + account, rep,
             _money(amount), "USD", stage_key.value, status.value, self.fmt(opened),
             self.fmt(closed_at), loss_reason, f"DEMO-OPP-{self.opp_seq:06d}")
        )  # fmt: skip
        return stage, stage_at, rep

    _generic_kinds = tuple(kind.value for kind, _ in GENERIC_KINDS)
    _generic_cum = _cumulative([weight for _, weight in GENERIC_KINDS])
    _properties = {kind.value: values for kind, values in _PROPERTIES.items()}

    def _events(self, lead_id, created, mql_at, spec, tier, hot, offset, story) -> None:
        """Write the lead's events (the scoring engine scores them after loading)."""
        if not self.plan.events_per_lead:
            return
        rng = self.erng
        random_ = rng.random
        end = self.end
        age_days = (end - created) / DAY
        weight = (
            spec.engagement
            * TIER_ENGAGE[tier]
            * min(1.0, (age_days / 45) ** 0.5)
            * rng.lognormvariate(-0.18, 0.6)
        )
        # The story's events (what created the lead, the meeting that made it an SQL…) count
        # towards the average: generic events fill the rest, scaled by the running mean of
        # story events, so the average is events_per_lead (never below the story's own ~1.6,
        # except that 0 means no events at all).
        self.story_events += len(story)
        story_mean = (1.5 * 50 + self.story_events) / (50 + self.lead_seq)
        wanted = max(0.0, self.plan.events_per_lead - story_mean) * weight / self.mean_weight
        generic = int(wanted + random_())
        events = [(at, kind.value, asset) for at, kind, asset in story if at <= end]
        span = end - created
        before = (mql_at - created) if mql_at else 0
        kinds = rng.choices(self._generic_kinds, cum_weights=self._generic_cum, k=generic)
        work_time = self._work_time
        pool, late_pool = self.download_pool, self.late_download_pool
        webinars = self.webinar_assets
        for kind in kinds:
            if before and random_() < 0.55:
                at = created + int(before * random_())
            else:
                at = created + int(span * random_() ** 1.7)
            at = max(created + 1, work_time(rng, at, offset, created + 1, end))
            asset = None
            if kind == "content_download":
                source_pool = late_pool if mql_at and at > mql_at else pool
                asset = source_pool[int(random_() * len(source_pool))]
            elif kind == "webinar_attended":
                asset = webinars[int(random_() * len(webinars))]
            events.append((at, kind, asset))
        events.sort()
        fmt, props = self.fmt, self._properties
        take = self.ids.take
        rows = self.event_rows
        for at, kind, asset in events:
            self.event_seq += 1
            choices = props[kind]
            properties = choices[int(random_() * len(choices))] if len(choices) > 1 else choices[0]
            received = min(at + 1 + int(random_() * 300), end)
            rows.append(
                (take("event"), lead_id, kind, fmt(at), properties, asset, SOURCE_SYSTEM,
                 f"DEMO-EV-{self.event_seq:09d}", fmt(received))
            )  # fmt: skip
