"""Importing opportunities: linked to leads and accounts, owners matched or created, and the
lead history a deal implies — so the KPIs count imported deals like deals won in the app."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from leads.imports.engine import COMMITTED, REJECTED, import_file
from leads.imports.mapping import Mapping
from leads.models import Lead, Opportunity, StageTransition
from metrics.kpis import Period
from metrics.queries import conversion_by_source, opportunity_results
from tests.factories import AccountFactory, LeadFactory, SourceFactory, UserFactory
from tests.metrics.factories import MARCH, NEW_YORK, history, lost, won

pytestmark = pytest.mark.django_db

APRIL = Period.from_dates(date(2026, 4, 1), date(2026, 4, 30), NEW_YORK)
LEAD_HEADER = ["Record ID", "Email", "Lead Source", "Create Date"]
OPP_HEADER = [
    "Opportunity ID",
    "Opportunity Name",
    "Lead",
    "Contact Email",
    "Account Name",
    "Amount",
    "Stage",
    "Created Date",
    "Close Date",
    "Opportunity Owner",
]
OPP_FIELDS = {
    "external_id": "Opportunity ID",
    "name": "Opportunity Name",
    "lead_external_id": "Lead",
    "lead_email": "Contact Email",
    "account_name": "Account Name",
    "amount": "Amount",
    "stage": "Stage",
    "created_at": "Created Date",
    "closed_at": "Close Date",
    "owner": "Opportunity Owner",
}


def write_csv(tmp_path, name, header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def opp_mapping(fields=OPP_FIELDS, **options) -> Mapping:
    return Mapping.from_json({"kind": "opportunities", "fields": fields, "options": options})


def at(month, day, hour=12):
    return datetime(2026, month, day, hour, tzinfo=UTC)


def opp(
    ext,
    lead="",
    email="",
    stage="",
    created="2026-03-10",
    closed="",
    amount="",
    name="",
    account="",
    owner="",
):
    return [ext, name or f"Deal {ext}", lead, email, account, amount, stage, created, closed, owner]


@pytest.fixture
def imported_cohort(tmp_path):
    """Six leads created in March by an import (four from the webinar, two from ads), then
    their deals: W1 won in April, W2 lost in April, A1 still open."""
    leads = write_csv(
        tmp_path,
        "leads.csv",
        LEAD_HEADER,
        [
            ["W1", "w1@x.com", "Webinar", "2026-03-02T12:00:00Z"],
            ["W2", "w2@x.com", "Webinar", "2026-03-03T12:00:00Z"],
            ["W3", "w3@x.com", "Webinar", "2026-03-04T12:00:00Z"],
            ["W4", "w4@x.com", "Webinar", "2026-03-05T12:00:00Z"],
            ["A1", "a1@x.com", "Ads", "2026-03-06T12:00:00Z"],
            ["A2", "a2@x.com", "Ads", "2026-03-07T12:00:00Z"],
        ],
    )
    lead_fields = {
        "external_id": "Record ID",
        "email": "Email",
        "source": "Lead Source",
        "created_at": "Create Date",
    }
    mapping = Mapping.from_json({"kind": "leads", "fields": lead_fields})
    assert import_file(path=leads, mapping=mapping).status == COMMITTED
    deals = write_csv(
        tmp_path,
        "deals.csv",
        OPP_HEADER,
        [
            opp(
                "O1",
                lead="W1",
                stage="Closed Won",
                created="2026-03-10T12:00:00Z",
                closed="2026-04-20T12:00:00Z",
                amount="5,000.00",
            ),
            opp(
                "O2",
                email="w2@x.com",
                stage="Closed Lost",
                created="2026-03-12T12:00:00Z",
                closed="2026-04-05T12:00:00Z",
                amount="0",
            ),
            opp(
                "O3",
                lead="A1",
                stage="Negotiation/Review",
                created="2026-03-15T12:00:00Z",
                closed="2026-05-30",
            ),  # an open deal's close date is only expected: not stored
        ],
    )
    report = import_file(path=deals, mapping=opp_mapping())
    assert report.status == COMMITTED, report.errors
    return {lead.external_id: lead for lead in Lead.objects.all()}


def moves(lead):
    return [(m.from_stage, m.to_stage, m.transitioned_at) for m in lead.transitions.all()]


def test_deals_write_the_history_they_imply(imported_cohort):
    w1, w2, a1 = (Lead.objects.get(external_id=key) for key in ("W1", "W2", "A1"))
    assert moves(w1) == [
        ("", "lead", at(3, 2)),
        ("lead", "mql", at(3, 10)),
        ("mql", "sal", at(3, 10)),
        ("sal", "sql", at(3, 10)),
        ("sql", "opportunity", at(3, 10)),
        ("opportunity", "customer", at(4, 20)),
    ]
    assert moves(w2)[-2:] == [
        ("sql", "opportunity", at(3, 12)),
        ("opportunity", "closed_lost", at(4, 5)),
    ]
    assert moves(a1)[-1] == ("sql", "opportunity", at(3, 15))
    assert (w1.stage, w1.stage_entered_at, w1.in_marketing_nurture) == (
        "customer",
        at(4, 20),
        False,
    )
    assert (w2.stage, a1.stage) == ("closed_lost", "opportunity")
    o1, o3 = Opportunity.objects.get(external_id="O1"), Opportunity.objects.get(external_id="O3")
    assert (o1.status, o1.stage, o1.amount, o1.lead) == ("won", "closed_won", Decimal("5000"), w1)
    assert (o3.status, o3.stage, o3.closed_at) == ("open", "negotiation", None)


def test_kpis_count_imported_leads_and_deals(imported_cohort):
    conversion = conversion_by_source(MARCH)
    by_source = {row.source.name: row for row in conversion.by_source}
    webinar, ads = by_source["Webinar"], by_source["Ads"]
    assert [step.reached for step in webinar.funnel.steps] == [4, 2, 2, 2, 2, 1]
    assert (webinar.lead_to_opportunity_rate, webinar.opportunity_to_won_rate) == (0.5, 0.5)
    assert [step.reached for step in ads.funnel.steps] == [2, 1, 1, 1, 1, 0]
    assert (ads.lead_to_opportunity_rate, ads.opportunity_to_won_rate) == (0.5, 0.0)
    results = opportunity_results(APRIL)
    assert (results.won, results.lost, results.win_rate) == (1, 1, 0.5)
    assert results.won_amount == Decimal("5000.00")
    # Sales cycle: the lead's creation (2 March) to the win (20 April).
    assert results.average_cycle_days == pytest.approx(49.0)


def test_imported_leads_count_exactly_like_leads_that_moved_through_the_app(imported_cohort):
    """The same story told by the app (stage moves as they happened, deals won and lost) gives
    the same funnel and the same results as the import."""
    live = SourceFactory(name="Live webinar")
    created = [at(3, 2), at(3, 3), at(3, 4), at(3, 5)]
    twins = [LeadFactory(source=live, account=None, created_at=when) for when in created]
    steps = ["lead", "mql", "sal", "sql", "opportunity"]
    history(
        twins[0],
        *((s, at(3, 2) if s == "lead" else at(3, 10)) for s in steps),
        ("customer", at(4, 20)),
    )
    history(
        twins[1],
        *((s, at(3, 3) if s == "lead" else at(3, 12)) for s in steps),
        ("closed_lost", at(4, 5)),
    )
    for twin, when in zip(twins[2:], created[2:], strict=True):
        history(twin, ("lead", when))
    won(lead=twins[0], amount=5000, created_at=at(3, 10), closed_at=at(4, 20))
    lost(lead=twins[1], amount=0, created_at=at(3, 12), closed_at=at(4, 5))
    by_source = {row.source.name: row for row in conversion_by_source(MARCH).by_source}
    imported, app = by_source["Webinar"], by_source["Live webinar"]
    assert imported.funnel == app.funnel
    assert (imported.lead_to_opportunity_rate, imported.opportunity_to_won_rate) == (
        app.lead_to_opportunity_rate,
        app.opportunity_to_won_rate,
    )
    webinar_ids = [s for s in (imported.source.id, app.source.id)]
    from metrics.kpis import KpiFilters

    results = [opportunity_results(APRIL, KpiFilters(source_ids=(pk,))) for pk in webinar_ids]
    assert results[0] == results[1]


def test_an_unknown_lead_is_a_row_error(tmp_path):
    LeadFactory(external_id="L-1")
    path = write_csv(
        tmp_path,
        "o.csv",
        OPP_HEADER,
        [opp("O1", lead="L-1"), opp("O2", lead="L-404", email="nobody@x.com")],
    )
    report = import_file(path=path, mapping=opp_mapping())
    assert report.status == REJECTED
    [error] = report.errors
    assert (error.row, error.field, error.column, error.value) == (
        3,
        "lead_external_id",
        "Lead",
        "L-404",
    )
    assert error.message == "is no lead's external id (nor is 'nobody@x.com' a lead's e-mail)"
    assert not Opportunity.objects.exists()


def test_owners_and_accounts(tmp_path):
    rep = UserFactory(username="darcel", first_name="Darcel", last_name="Schlecht")
    acme = AccountFactory(name="Acme Corporation")
    path = write_csv(
        tmp_path,
        "o.csv",
        OPP_HEADER,
        [
            opp("O1", account="acme corporation", owner="Darcel Schlecht"),
            opp("O2", account="Acme Corporation", owner="Moses Frase"),
            opp("O3", account="Unknown Inc", owner="darcel"),
        ],
    )
    report = import_file(path=path, mapping=opp_mapping())
    assert [(e.row, e.field, e.value) for e in report.errors] == [
        (3, "owner", "Moses Frase"),
        (4, "account_name", "Unknown Inc"),
    ]
    report = import_file(path=path, mapping=opp_mapping(create_owners=True, create_accounts=True))
    assert report.status == COMMITTED
    assert report.created_refs == {"owners": 1, "accounts": 1}
    deals = {o.external_id: o for o in Opportunity.objects.select_related("owner", "account")}
    assert (deals["O1"].owner, deals["O1"].account) == (rep, acme)
    assert deals["O2"].owner.username == "moses.frase" and not deals["O2"].owner.is_active
    assert deals["O3"].account.name == "Unknown Inc"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"stage": "Closed Won", "closed": ""},
            "closed_at",
            "is required: a won opportunity needs its close date",
        ),
        (
            {"stage": "Closed Lost", "closed": "2026-03-01"},
            "closed_at",
            "is before the opportunity's creation (2026-03-10)",
        ),
        (
            {"stage": "Closed Won", "closed": "2026-04-01", "amount": "-10"},
            "amount",
            "cannot be negative",
        ),
    ],
)
def test_deals_are_checked_like_the_model(tmp_path, values, field, message):
    path = write_csv(tmp_path, "o.csv", OPP_HEADER, [opp("O1", **values)])
    report = import_file(path=path, mapping=opp_mapping())
    [error] = report.errors
    assert (error.field, error.message) == (field, message)
    assert not Opportunity.objects.exists()


def test_a_status_contradicting_the_stage_is_an_error(tmp_path):
    header = [*OPP_HEADER, "Status"]
    fields = {**OPP_FIELDS, "status": "Status"}
    path = write_csv(
        tmp_path, "o.csv", header, [[*opp("O1", stage="Closed Lost", closed="2026-04-01"), "Won"]]
    )
    [error] = import_file(path=path, mapping=opp_mapping(fields)).errors
    assert (error.field, error.message) == ("stage", "contradicts the status won")


def test_reimport_updates_a_deal_and_moves_its_lead_on(tmp_path):
    lead = LeadFactory(
        external_id="L-1", stage="sql", stage_entered_at=at(3, 5), created_at=at(3, 1)
    )
    first = write_csv(tmp_path, "1.csv", OPP_HEADER, [opp("O1", lead="L-1", stage="Proposal")])
    assert import_file(path=first, mapping=opp_mapping()).created == 1
    lead.refresh_from_db()
    assert lead.stage == "opportunity"
    later = write_csv(
        tmp_path,
        "2.csv",
        OPP_HEADER,
        [opp("O1", lead="L-1", stage="Closed Won", closed="2026-04-02", amount="900")],
    )
    report = import_file(path=later, mapping=opp_mapping())
    assert (report.created, report.updated) == (0, 1)
    deal = Opportunity.objects.get()
    assert (deal.status, deal.amount, deal.closed_at) == (
        "won",
        Decimal("900.00"),
        datetime(2026, 4, 2, 4, tzinfo=UTC),  # a date alone: the New York day's start
    )
    lead.refresh_from_db()
    assert lead.stage == "customer"
    assert list(StageTransition.objects.filter(lead=lead).values_list("to_stage", flat=True)) == [
        "opportunity",
        "customer",
    ]
