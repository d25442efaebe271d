"""The product's lead features and outcome rule: pure functions over plain records, no ORM.

The selector (``scoring.predictive.selectors``) reads one :class:`LeadRecord` per lead, with its
engagement already cut off in SQL at the lead's cutoff (see the package docstring); this module
turns records into feature rows for :mod:`scoring.predictive.learning`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from leads.choices import EventKind
from scoring.engine import PERSONAL_EMAIL_DOMAINS
from scoring.predictive.spec import Feature, FeatureSpec

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class LeadRecord:
    """What is known about a lead at its cutoff. ``event_counts`` and ``last_event_at`` only
    cover events strictly before ``cutoff``."""

    lead_id: int
    created_at: datetime
    cutoff: datetime
    email: str = ""
    seniority: str = ""
    country: str = ""
    source: str | None = None
    channel_group: str | None = None
    source_origin: str | None = None
    from_campaign: bool = False
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    region: str | None = None
    technologies: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    event_counts: Mapping[str, int] = field(default_factory=dict)
    last_event_at: datetime | None = None


def _event_key(kind: str) -> str:
    return f"events_{kind}"


LEAD_FEATURES: tuple[Feature, ...] = (
    Feature("source", "Source", "category"),
    Feature("channel_group", "Channel", "category"),
    Feature("source_origin", "Sourced by", "category"),
    Feature("from_campaign", "From a campaign", "flag"),
    Feature("seniority", "Seniority", "category"),
    Feature("personal_email", "Personal e-mail address", "flag"),
    Feature("industry", "Industry", "category"),
    Feature("employees", "Employees", "amount"),
    Feature("annual_revenue", "Annual revenue", "amount"),
    Feature("country", "Country", "category"),
    Feature("region", "Region", "category"),
    Feature("technology_count", "Technologies known", "count"),
    Feature("signal_count", "Account signals", "count"),
    *(Feature(_event_key(kind), f"{label} events", "count") for kind, label in EventKind.choices),
    Feature("days_before_cutoff", "Days from creation to handoff (or now)", "amount"),
    Feature("days_since_last_event", "Days since last engagement", "amount"),
)

LEAD_SPEC = FeatureSpec(
    features=LEAD_FEATURES,
    missing_values=frozenset({"unknown"}),
    min_frequency=10,
    spline_knots=0,  # a few hundred outcomes: one log1p column per count, no splines
    candidate_interactions=(("channel_group", "seniority"), ("industry", "seniority")),
    max_interactions=1,
    c_grid=(0.03, 0.1, 0.3, 1.0),
    cv_folds=5,
)


def lead_feature_row(record: LeadRecord) -> dict:
    """The feature values of a lead. Only what the record holds (nothing sales did after the
    cutoff is in it); keys match :data:`LEAD_FEATURES`."""
    domain = record.email.rpartition("@")[2].lower() if "@" in record.email else ""
    age = max(0.0, (record.cutoff - record.created_at).total_seconds() / SECONDS_PER_DAY)
    idle = None
    if record.last_event_at is not None:
        idle = max(0.0, (record.cutoff - record.last_event_at).total_seconds() / SECONDS_PER_DAY)
    row = {
        "source": record.source,
        "channel_group": record.channel_group,
        "source_origin": record.source_origin,
        "from_campaign": record.from_campaign,
        "seniority": record.seniority,
        "personal_email": domain in PERSONAL_EMAIL_DOMAINS if domain else None,
        "industry": (record.industry or "").strip().lower() or None,
        "employees": record.employees,
        "annual_revenue": record.annual_revenue,
        "country": record.country or None,
        "region": record.region or None,
        "technology_count": len(record.technologies),
        "signal_count": len(record.signals),
        "days_before_cutoff": round(age, 2),
        "days_since_last_event": None if idle is None else round(idle, 2),
    }
    for kind in EventKind.values:
        row[_event_key(kind)] = int(record.event_counts.get(kind, 0))
    return row
