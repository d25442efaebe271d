"""The shipped presets on the real data sets in ../shared/datasets/ (or $REVOPS_DATASETS_DIR).

The files are never copied into the repository. Without them these tests are skipped, except
in CI or with REVOPS_REQUIRE_SERVICES=1, where a missing data set fails the run.
"""

import csv
import os
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, Sum
from django.utils import timezone

from leads.imports.engine import COMMITTED, import_file
from leads.imports.presets import PRESETS, datasets_dir
from leads.models import Account, Lead, Opportunity, SalesRep, Source, StageTransition
from metrics.kpis import Period
from metrics.queries import GroupBy, conversion_by_source, opportunity_results_by

pytestmark = pytest.mark.django_db

REQUIRED = os.environ.get("REVOPS_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"


def dataset(name: str):
    preset = PRESETS[name]
    path = preset.dataset_path()
    if not path.is_file():
        message = (
            f"The shared data set {path} is missing (set REVOPS_DATASETS_DIR to the folder "
            "holding maven-crm-sales-opportunities/ and x-education-leads/)."
        )
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return path, preset.to_mapping()


def run(name: str, **kwargs):
    path, mapping = dataset(name)
    report = import_file(path=path, mapping=mapping, **kwargs)
    assert report.status == COMMITTED, (report.problems, report.errors[:5])
    assert report.error_count == 0
    return report


def test_the_data_sets_folder_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("REVOPS_DATASETS_DIR", str(tmp_path))
    assert datasets_dir() == tmp_path
    assert PRESETS["maven-accounts"].dataset_path() == (
        tmp_path / "maven-crm-sales-opportunities" / "accounts.csv"
    )


def test_maven_accounts():
    report = run("maven-accounts")
    assert (report.rows, report.created) == (85, 85)
    acme = Account.objects.get(name="Acme Corporation")
    assert (acme.industry, acme.employees, acme.country, acme.region) == (
        "technology",
        2822,
        "US",
        "NA",
    )
    assert acme.annual_revenue == Decimal("1100040000.00")  # 1,100.04 million
    assert not Account.objects.filter(industry="technolgy").exists()
    assert Account.objects.get(name="Bioholding").country == "PH"  # "Philipines"
    assert run("maven-accounts").unchanged == 85


def test_maven_opportunities_with_sales_agents_as_owners():
    run("maven-accounts")
    report = run("maven-opportunities")
    assert (report.rows, report.created) == (8800, 8800)
    assert report.created_refs == {"owners": 30}
    by_status = dict(Opportunity.objects.values_list("status").annotate(n=Count("pk")))
    assert by_status == {"won": 4238, "lost": 2473, "open": 2089}
    won = Opportunity.objects.filter(status="won")
    assert won.aggregate(total=Sum("amount"))["total"] == Decimal("10005534.00")
    assert Opportunity.objects.filter(account=None).count() == 1425
    assert Opportunity.objects.filter(stage="discovery").count() == 500  # Prospecting
    deal = Opportunity.objects.select_related("owner", "account").get(external_id="1C1I7A6R")
    assert (deal.name, deal.account.name, deal.amount) == (
        "Cancity — GTX Plus Basic",
        "Cancity",
        Decimal("1054.00"),
    )
    assert (deal.created_at.date().isoformat(), deal.closed_at.date().isoformat()) == (
        "2016-10-20",
        "2017-03-01",
    )
    owners = get_user_model().objects.filter(opportunities__isnull=False).distinct()
    assert owners.count() == 30 and not owners.filter(is_active=True).exists()
    assert deal.owner.get_full_name() == "Moses Frase"
    again = run("maven-opportunities")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 8800)


def test_maven_sales_teams_put_every_agent_on_their_managers_team():
    report = run("maven-sales-teams")
    assert (report.rows, report.created) == (35, 35)
    assert report.created_refs == {"users": 41}  # 35 agents and 6 managers, all inactive
    path, _ = dataset("maven-sales-teams")
    with path.open(newline="", encoding="utf-8") as handle:
        manager_of = {row["sales_agent"]: row["manager"] for row in csv.DictReader(handle)}
    reps = SalesRep.objects.select_related("user", "manager")
    assert {rep.user.get_full_name(): rep.manager.get_full_name() for rep in reps} == manager_of
    assert set(reps.values_list("region", flat=True)) == {"NA"}
    # The pipeline's owners are these people, matched by name: no user is created again.
    run("maven-accounts")
    assert run("maven-opportunities").created_refs == {}
    # Won and lost per team over 2017 (every close is in 2017) equal the files'.
    expected = Counter()
    with PRESETS["maven-opportunities"].dataset_path().open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["deal_stage"] in ("Won", "Lost"):
                expected[(manager_of[row["sales_agent"]], row["deal_stage"])] += 1
    year = Period.from_dates(date(2017, 1, 1), date(2017, 12, 31), "America/New_York")
    found = Counter()
    for row in opportunity_results_by(year, by=GroupBy.TEAM):
        found[(row.group.name, "Won")] = row.results.won
        found[(row.group.name, "Lost")] = row.results.lost
    assert found == expected and len({team for team, _ in found}) == 6
    again = run("maven-sales-teams")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 35)
    assert again.created_refs == {}


def test_x_education_leads_with_sources_and_conversions():
    started = timezone.now()
    report = run("x-education-leads")
    assert (report.rows, report.created) == (9240, 9240)
    assert report.created_refs == {"sources": 20}  # "Google" and "google" are one source
    assert Source.objects.get(name="Google").leads.count() == 2873
    assert Source.objects.get(name="Google").channel_group == "paid_search"
    assert Lead.objects.filter(source=None).count() == 36
    stages = dict(Lead.objects.values_list("stage").annotate(n=Count("pk")))
    assert stages == {"customer": 3561, "lead": 5679}
    # Every lead starts at "lead"; a converted one passed every stage to Customer.
    assert StageTransition.objects.count() == 9240 + 3561 * 5 == report.transitions
    assert Lead.objects.filter(seniority="student").count() == 210
    assert Lead.objects.filter(country="IN").count() == 6492
    # The funnel counts them like any lead: 3,561 of 9,240 reached an opportunity and won.
    today = timezone.localdate(started)
    period = Period.from_dates(today - timedelta(days=1), today + timedelta(days=1), "UTC")
    overall = conversion_by_source(period).overall
    assert overall.funnel.cohort == 9240
    assert overall.funnel.reached("opportunity") == overall.funnel.reached("customer") == 3561
    assert overall.lead_to_opportunity_rate == pytest.approx(3561 / 9240)
    assert run("x-education-leads").unchanged == 9240
