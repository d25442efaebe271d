"""Ready-made mappings: this app's own lead export (a round trip), and the real data sets in
``../shared/datasets/`` (read from there, or from ``$REVOPS_DATASETS_DIR``; never copied into
the repository).

* ``maven-accounts`` — Maven CRM ``accounts.csv``: 85 accounts (sector → industry with the
  "technolgy" typo fixed, revenue in millions → annual revenue, office location → country).
* ``maven-opportunities`` — Maven CRM ``sales_pipeline.csv``: 8,800 opportunities linked to
  those accounts by name; the 30 sales agents become (inactive) users owning them;
  ``engage_date`` → created, ``close_date`` → closed; ``deal_stage`` Won / Lost → won / lost,
  Engaging / Prospecting → open (stages demo / discovery). The dates are days of the display
  time zone (a deal closed on 2017-04-01 counts in April and Q2 on the dashboards).
  Prospecting deals have no date in the file, so they are created at the import time. The file
  has no contacts: no lead moves.
* ``maven-sales-teams`` — Maven CRM ``sales_teams.csv``: its 35 agents become sales reps on
  their manager's team (6 managers; agents and managers the database does not know become
  inactive users, named as ``maven-opportunities`` names its owners, so either file may come
  first); the regional offices (Central, East, West) are all in the North America territory.
* ``x-education-leads`` — X Education ``Leads.csv``: 9,240 leads with their source
  ("Lead Source", "Google" and "google" being one source), external id "Prospect ID",
  occupation → seniority (students are the ICP's poor fit), country names → codes. The file has
  no dates at all, so leads are created at the import time; a converted lead (Converted = 1,
  "became a paying customer") is imported as a Customer with the history that implies
  (lead → MQL → SAL → SQL → Opportunity → Customer, all at its creation), the others stay Leads.
  No opportunity rows are invented: the file has no deal amounts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from leads.imports.mapping import (
    ACCOUNTS,
    FORMAT_TAG,
    LEADS,
    OPPORTUNITIES,
    SALES_REPS,
    Mapping,
)

DATASETS_ENV = "REVOPS_DATASETS_DIR"


def datasets_dir() -> Path:
    configured = os.environ.get(DATASETS_ENV)
    if configured:
        return Path(configured)
    return Path(settings.BASE_DIR).parent / "shared" / "datasets"


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    kind: str
    mapping: dict
    dataset: str = ""  # the file it is made for, relative to the data sets folder

    def to_mapping(self) -> Mapping:
        return Mapping.from_json(self.mapping, kind=self.kind)

    def dataset_path(self) -> Path | None:
        return datasets_dir() / self.dataset if self.dataset else None


def _mapping(kind: str, name: str, fields: dict, **options) -> dict:
    """Times without an offset are UTC; dates alone (Maven's) are days of the mapping's
    ``date_time_zone``, unset here: the display time zone the dashboards count days in."""
    return {"format": FORMAT_TAG, "kind": kind, "name": name, "fields": fields,
            "options": {"time_zone": "UTC", **options}}  # fmt: skip


X_EDUCATION_CHANNELS = {
    "Google": "paid_search", "bing": "paid_search", "Pay per Click Ads": "paid_search",
    "Organic Search": "organic_search", "Direct Traffic": "direct", "Olark Chat": "direct",
    "Live Chat": "direct", "Click2call": "direct", "Reference": "referral",
    "Referral Sites": "referral", "Welingak Website": "partner", "WeLearn": "partner",
    "welearnblog_Home": "partner", "Facebook": "paid_social", "Social Media": "organic_social",
    "youtubechannel": "organic_social", "blog": "content", "Press_Release": "content",
    "NC_EDM": "email",
}  # fmt: skip

MAVEN_STATUS = {"Won": "won", "Lost": "lost", "Engaging": "open", "Prospecting": "open"}
MAVEN_STAGE = {"Won": "closed_won", "Lost": "closed_lost", "Engaging": "demo",
               "Prospecting": "discovery"}  # fmt: skip
MAVEN_OFFICES = {"Central": "NA", "East": "NA", "West": "NA"}  # US regional offices
# Students are the ICP's poor fit; the rest says little about seniority.
X_EDUCATION_OCCUPATIONS = {"Student": "student", "Working Professional": "individual",
                           "Businessman": "executive", "Unemployed": "unknown",
                           "Housewife": "unknown", "Other": "unknown"}  # fmt: skip

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="revops-leads-export",
            label="This app's lead export (/leads/export.csv)",
            kind=LEADS,
            mapping=_mapping(
                LEADS,
                "RevOps lead export",
                {
                    "external_id": {"column": "external id"},
                    "email": {"column": "email"},
                    "first_name": {"column": "first name"},
                    "last_name": {"column": "last name"},
                    "account_name": {"column": "account"},
                    "source": {"column": "source"},
                    "campaign": {"column": "campaign"},
                    "stage": {"column": "stage"},
                    "owner": {"column": "owner"},
                    "in_marketing_nurture": {"column": "in marketing nurture"},
                    "created_at": {"column": "created at", "format": "iso"},
                },
            ),
        ),
        Preset(
            name="maven-accounts",
            label="Maven CRM: accounts.csv",
            kind=ACCOUNTS,
            dataset="maven-crm-sales-opportunities/accounts.csv",
            mapping=_mapping(
                ACCOUNTS,
                "Maven CRM accounts",
                {
                    "name": {"column": "account"},
                    "industry": {"column": "sector", "values": {"technolgy": "technology"}},
                    "employees": {"column": "employees"},
                    "annual_revenue": {"column": "revenue", "scale": "1000000"},
                    "country": {"column": "office_location", "values": {"Philipines": "PH"}},
                },
            ),
        ),
        Preset(
            name="maven-opportunities",
            label="Maven CRM: sales_pipeline.csv",
            kind=OPPORTUNITIES,
            dataset="maven-crm-sales-opportunities/sales_pipeline.csv",
            mapping=_mapping(
                OPPORTUNITIES,
                "Maven CRM sales pipeline",
                {
                    "external_id": {"column": "opportunity_id"},
                    "name": {"columns": ["account", "product"], "join": " — "},
                    "account_name": {"column": "account"},
                    "owner": {"column": "sales_agent"},
                    "amount": {"column": "close_value"},
                    "currency": {"constant": "USD"},
                    "status": {"column": "deal_stage", "values": MAVEN_STATUS},
                    "stage": {"column": "deal_stage", "values": MAVEN_STAGE},
                    "created_at": {"column": "engage_date", "format": "%Y-%m-%d"},
                    "closed_at": {"column": "close_date", "format": "%Y-%m-%d"},
                },
                create_owners=True,
                create_accounts=False,
            ),
        ),
        Preset(
            name="maven-sales-teams",
            label="Maven CRM: sales_teams.csv",
            kind=SALES_REPS,
            dataset="maven-crm-sales-opportunities/sales_teams.csv",
            mapping=_mapping(
                SALES_REPS,
                "Maven CRM sales teams",
                {
                    "rep": {"column": "sales_agent"},
                    "manager": {"column": "manager"},
                    "region": {"column": "regional_office", "values": MAVEN_OFFICES},
                },
                create_owners=True,
            ),
        ),
        Preset(
            name="x-education-leads",
            label="X Education: Leads.csv",
            kind=LEADS,
            dataset="x-education-leads/Leads.csv",
            mapping=_mapping(
                LEADS,
                "X Education leads",
                {
                    "external_id": {"column": "Prospect ID"},
                    "source": {"column": "Lead Source"},
                    "country": {
                        "column": "Country",
                        "values": {"unknown": "", "Asia/Pacific Region": ""},
                    },
                    "seniority": {
                        "column": "What is your current occupation",
                        "values": X_EDUCATION_OCCUPATIONS,
                    },
                    "stage": {"column": "Converted", "values": {"1": "customer", "0": "lead"}},
                },
                create_sources=True,
                source_channel_groups=X_EDUCATION_CHANNELS,
            ),
        ),
    )
}


def preset_get(name: str) -> Preset | None:
    return PRESETS.get(name)
