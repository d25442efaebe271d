"""The CSV import, the API and the admin write the same rows for the same input — the lead, its
stage history, its events (a re-sent event skipped) and the deal's stage move — because all
three write through the one write layer; and scoring hears of the lead from each."""

import csv
import io
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient

from leads.imports.engine import COMMITTED, import_file
from leads.imports.mapping import Mapping
from leads.models import EngagementEvent, Lead, Opportunity, StageTransition
from scoring.models import LeadScoreState
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LEAD = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "title": "CTO",
    "country": "DE",
    "external_id": "CRM-1",
}
EVENTS = [  # (external id, kind, occurred at)
    ("E1", "page_view", datetime(2026, 3, 2, 10, tzinfo=UTC)),
    ("E2", "pricing_page", datetime(2026, 3, 2, 11, tzinfo=UTC)),
    ("E3", "meeting_booked", datetime(2026, 3, 2, 12, tzinfo=UTC)),
]
RESENT = EVENTS[:1]  # delivered twice: stored once
LEAD_WRITTEN = ("account_id", "seniority", "stage", "stage_entered_at", "in_marketing_nurture",
                "tier", "created_at")  # fmt: skip


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def account():
    return AccountFactory(name="Analytical Engines", domain="engines.example")


def rows_written() -> dict:
    lead = Lead.objects.get(email=LEAD["email"])
    return {
        "lead": Lead.objects.filter(pk=lead.pk).values(*LEAD, *LEAD_WRITTEN).get(),
        "history": list(
            StageTransition.objects.filter(lead=lead)
            .order_by("transitioned_at", "pk")
            .values_list("from_stage", "to_stage", "transitioned_at")
        ),
        "events": sorted(
            EngagementEvent.objects.filter(lead=lead).values_list(
                "kind", "occurred_at", "source_system", "external_id", "properties"
            )
        ),
        "rescore": LeadScoreState.objects.filter(lead=lead, pending_seq__gt=0).exists(),
    }


def csv_file(tmp_path, name: str, header: list[str], rows: list[list[str]]):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def through_the_import(tmp_path, account, user) -> None:
    leads = csv_file(
        tmp_path,
        "leads.csv",
        ["First", "Last", "Email", "Title", "Country", "Id", "Website", "Created"],
        [[*LEAD.values(), account.domain, f"{CREATED:%Y-%m-%d %H:%M}"]],
    )
    fields = {
        "first_name": "First",
        "last_name": "Last",
        "email": "Email",
        "title": "Title",
        "country": "Country",
        "external_id": "Id",
        "account_domain": "Website",
        "created_at": {"column": "Created", "format": "%Y-%m-%d %H:%M"},
    }
    mapping = Mapping.from_json({"kind": "leads", "fields": fields})
    assert import_file(path=leads, mapping=mapping, actor_id=user.pk).status == COMMITTED
    fields = {
        "lead_external_id": "Lead",
        "kind": "Kind",
        "occurred_at": "At",
        "external_id": "Id",
        "source_system": {"constant": "hubspot"},
    }
    mapping = Mapping.from_json({"kind": "events", "fields": fields})
    for name, batch, stored, duplicates in (
        ("events.csv", EVENTS, 3, 0),
        ("again.csv", RESENT, 0, 1),
    ):
        rows = [[LEAD["external_id"], kind, at.isoformat(), ext] for ext, kind, at in batch]
        path = csv_file(tmp_path, name, ["Lead", "Kind", "At", "Id"], rows)
        report = import_file(path=path, mapping=mapping, actor_id=user.pk)
        assert (report.status, report.created, report.duplicates) == (COMMITTED, stored, duplicates)


def through_the_api(account, user) -> None:
    api = APIClient()
    api.force_authenticate(user)
    body = {**LEAD, "account": account.pk, "created_at": CREATED.isoformat()}
    assert api.post("/api/v1/leads/", body, format="json").status_code == 201
    for batch in (EVENTS, RESENT):
        events = [
            {
                "lead_external_id": LEAD["external_id"],
                "kind": kind,
                "occurred_at": at.isoformat(),
                "source_system": "hubspot",
                "external_id": ext,
            }
            for ext, kind, at in batch
        ]
        assert api.post("/api/v1/events/", events, format="json").status_code in (200, 201)


def split(instant: datetime) -> dict:
    """A date and time as the admin's split widget posts them, in the display time zone."""
    local = instant.astimezone(ZoneInfo(settings.DISPLAY_TIME_ZONE))
    return {"_0": f"{local:%Y-%m-%d}", "_1": f"{local:%H:%M:%S}"}


def admin_form(client, url: str, data: dict) -> None:
    flat = {}
    for name, value in data.items():
        if isinstance(value, datetime):
            flat.update({f"{name}{part}": text for part, text in split(value).items()})
        else:
            flat[name] = value
    response = client.post(url, flat)
    assert response.status_code == 302, response.context["adminform"].form.errors


# The lead page's stage-history inline (read-only): its management form, with no rows.
NO_INLINE_ROWS = {"transitions-TOTAL_FORMS": "0", "transitions-INITIAL_FORMS": "0",
                  "transitions-MIN_NUM_FORMS": "0", "transitions-MAX_NUM_FORMS": "0"}  # fmt: skip


def through_the_admin(client, account) -> None:
    admin_form(
        client,
        reverse("admin:leads_lead_add"),
        {**LEAD, "seniority": "unknown", "account": account.pk, "created_at": CREATED,
         "in_marketing_nurture": "on", "_save": "Save", **NO_INLINE_ROWS},
    )  # fmt: skip
    lead = Lead.objects.get(email=LEAD["email"])
    for ext, kind, at in EVENTS:  # the admin refuses a re-sent event as a duplicate
        admin_form(
            client,
            reverse("admin:leads_engagementevent_add"),
            {"lead": lead.pk, "kind": kind, "occurred_at": at, "properties": "{}",
             "source_system": "hubspot", "external_id": ext, "received_at": at,
             "_save": "Save"},
        )  # fmt: skip


def test_the_import_the_api_and_the_admin_write_the_same_rows(
    tmp_path, account, admin_user, admin_client
):
    written = {}
    with rolled_back():
        through_the_import(tmp_path, account, admin_user)
        written["import"] = rows_written()
    with rolled_back():
        through_the_api(account, admin_user)
        written["api"] = rows_written()
    with rolled_back():
        through_the_admin(admin_client, account)
        written["admin"] = rows_written()

    assert written["api"] == written["import"]
    assert written["admin"] == written["import"]
    expected = written["import"]
    assert expected["history"] == [("", "lead", CREATED)]
    assert [(kind, ext) for kind, _, _, ext, _ in expected["events"]] == [
        ("meeting_booked", "E3"),
        ("page_view", "E1"),
        ("pricing_page", "E2"),
    ]
    assert expected["rescore"]  # scoring heard of the lead on every path


def test_a_deal_moves_its_lead_alike_through_the_api_and_the_admin(admin_user, admin_client):
    opened, won = datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC)
    moves = {}
    for path in ("api", "admin"):
        with rolled_back():
            lead = Lead.objects.create(email="grace@example.com", stage_entered_at=CREATED)
            Lead.objects.filter(pk=lead.pk).update(stage="sql")
            if path == "api":
                api = APIClient()
                api.force_authenticate(admin_user)
                created = api.post(
                    "/api/v1/opportunities/",
                    {"name": "Initech", "lead": lead.pk, "amount": "9000",
                     "created_at": opened.isoformat()},
                    format="json",
                )  # fmt: skip
                assert created.status_code == 201, created.content
                changed = api.patch(
                    f"/api/v1/opportunities/{created.json()['id']}/",
                    {"status": "won", "stage": "closed_won", "closed_at": won.isoformat()},
                    format="json",
                )
                assert changed.status_code == 200, changed.content
            else:
                url = reverse("admin:leads_opportunity_add")
                deal = {"name": "Initech", "lead": lead.pk, "amount": "9000",
                        "currency": "USD", "stage": "discovery", "status": "open",
                        "created_at": opened, "_save": "Save"}  # fmt: skip
                admin_form(admin_client, url, deal)
                opportunity = Opportunity.objects.get(lead=lead)
                url = reverse("admin:leads_opportunity_change", args=[opportunity.pk])
                admin_form(
                    admin_client,
                    url,
                    {**deal, "status": "won", "stage": "closed_won", "closed_at": won},
                )
            moves[path] = list(
                StageTransition.objects.filter(lead=lead)
                .order_by("transitioned_at", "pk")
                .values_list("from_stage", "to_stage", "transitioned_at", "actor", "reason")
            )
    assert (
        moves["api"]
        == moves["admin"]
        == [
            ("sql", "opportunity", opened, admin_user.pk, "Opportunity 'Initech' opened"),
            ("opportunity", "customer", won, admin_user.pk, "Opportunity 'Initech' won"),
        ]
    )
