"""The definitions a new installation starts with (published as v1 by a data migration).

Plain data, no ORM: the migration, the demo seeder and the tests all read it from here.
"""

from datetime import UTC, datetime

# v1 takes force long before any demo data, so every historical fact has rules in force.
DEFAULT_EFFECTIVE_FROM = datetime(2020, 1, 1, tzinfo=UTC)

DEFAULT_STAGES = [
    # key, name, buyer label, team, kind, trigger type, score, event kind, opens handoff, on reject
    ("lead", "Lead", "Curious", "marketing", "open", "manual", None, "", False, ""),
    ("mql", "MQL", "Engaged", "marketing", "open", "score", 65, "", True, "nurture"),
    ("sal", "SAL", "Interested", "sales", "open", "manual", None, "", False, "nurture"),
    (
        "sql",
        "SQL",
        "Evaluating",
        "sales",
        "open",
        "event",
        None,
        "meeting_booked",
        False,
        "nurture",
    ),
    ("opportunity", "Opportunity", "Deciding", "sales", "open", "manual", None, "", False, ""),
    ("customer", "Customer", "Customer", "sales", "won", "manual", None, "", False, ""),
    ("nurture", "Nurture", "Not now", "marketing", "nurture", "manual", None, "", False, ""),
    (
        "disqualified",
        "Disqualified",
        "Not a fit",
        "marketing",
        "disqualified",
        "manual",
        None,
        "",
        False,
        "",
    ),
    (
        "closed_lost",
        "Closed lost",
        "Chose another way",
        "sales",
        "lost",
        "manual",
        None,
        "",
        False,
        "",
    ),
]

# The stages a lead passes on its way to revenue, in order (for funnels and the seeder).
FUNNEL_STAGE_KEYS = ["lead", "mql", "sal", "sql", "opportunity", "customer"]

# Fit tops out near 60 points, below the MQL threshold (65): a lead becomes an MQL only when a
# good fit also engages (a demo request, a webinar and a pricing visit…), never on fit alone.
DEFAULT_ICP_TIERS = {"tier_a_min_points": 35, "tier_b_min_points": 20, "tier_c_min_points": 10}

# fmt: off
DEFAULT_ICP_CRITERIA = [
    # name, attribute, values, min, max, points, is exclusion
    ("Target industry", "industry", ["software", "financial services", "healthcare", "e-commerce"], None, None, 10, False),
    ("Mid-market size", "employees", [], 200, 5000, 10, False),
    ("Enterprise size", "employees", [], 5001, None, 5, False),
    ("Revenue $20M–$1B", "annual_revenue", [], 20_000_000, 1_000_000_000, 5, False),
    ("Core regions", "region", ["na", "emea"], None, None, 5, False),
    ("Uses an integrated platform", "technologies", ["salesforce", "hubspot", "snowflake", "segment"], None, None, 10, False),
    ("Recent funding round", "signals", ["funding_round"], None, None, 5, False),
    ("New executive hire", "signals", ["executive_hire"], None, None, 3, False),
    ("Decision-maker seniority", "seniority", ["executive", "vp", "director"], None, None, 10, False),
    ("Students", "seniority", ["student"], None, None, 0, True),
    ("Micro companies", "employees", [], None, 10, 0, True),
]
# fmt: on

DEFAULT_CALENDAR = {
    "name": "Sales team — New York",
    "time_zone": "America/New_York",
    # weekday (0 = Monday), opens, closes
    "working_hours": [(day, "09:00", "17:00") for day in range(5)],
    "holidays": [
        ("2025-11-27", "Thanksgiving"),
        ("2025-12-25", "Christmas Day"),
        ("2026-01-01", "New Year's Day"),
        ("2026-05-25", "Memorial Day"),
        ("2026-07-03", "Independence Day (observed)"),
        ("2026-09-07", "Labor Day"),
        ("2026-11-26", "Thanksgiving"),
        ("2026-12-25", "Christmas Day"),
        ("2027-01-01", "New Year's Day"),
    ],
}

DEFAULT_SLA_POLICIES = [
    # name, stage key, tier, respond within, accept within (business hours)
    ("Tier A MQLs", "mql", "A", "2", "8"),
    ("All other MQLs", "mql", "", "4", "16"),
]

DEFAULT_REJECTION_REASONS = [
    # key, label, requires note
    ("not_icp_fit", "Not ICP fit", False),
    ("no_budget", "No budget", False),
    ("bad_timing", "Bad timing", False),
    ("no_authority", "No authority", False),
    ("student_competitor", "Student / competitor", False),
    ("duplicate", "Duplicate", False),
    ("unreachable", "Unreachable", False),
    ("other", "Other (explain in a note)", True),
]

DEFAULT_SCORING_MODEL = {
    "half_life_days": 30,
    "engagement_floor": 0,
    "engagement_cap": 100,
    "personal_email_penalty": -10,
    "competitor_penalty": -50,
    "band_1_min": 60,
    "band_2_min": 30,
    "band_3_min": 10,
}

DEFAULT_EVENT_WEIGHTS = [
    # kind, points per event, daily cap (events counted per day)
    ("page_view", 1, 5),
    ("pricing_page", 8, 2),
    ("email_open", 0.5, 3),
    ("email_click", 3, 3),
    ("content_download", 5, 3),
    ("webinar_registered", 4, 1),
    ("webinar_attended", 10, 1),
    ("event_attended", 10, 1),
    ("form_fill", 12, 2),
    ("trial_signup", 20, 1),
    ("demo_request", 30, 1),
    ("meeting_booked", 25, 1),
    ("unsubscribe", -20, 1),
    ("email_bounce", -15, 1),
]

DEFAULT_OBJECTIONS = [
    # key, label
    ("price", "Price"),
    ("timing", "Timing"),
    ("competitor", "Competitor"),
    ("integration", "Integration"),
    ("security", "Security / compliance"),
    ("no_need", "No perceived need"),
    ("internal_tool", "Building it in-house"),
]
