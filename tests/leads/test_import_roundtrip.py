"""The lead export and the lead import are inverses: export ⇒ import ⇒ export gives the same
file (new ids aside), into an emptied database as into the same one."""

import csv
import io
from datetime import UTC, datetime

import pytest

from leads.imports.engine import COMMITTED, import_file
from leads.imports.presets import PRESETS
from leads.imports.services import mapping_guess
from leads.models import Lead
from scoring.models import LeadScoreState
from scoring.services import lead_rescore
from tests.factories import AccountFactory, CampaignFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leads():
    owner = UserFactory(username="rep.alex")
    campaign = CampaignFactory(name="Spring webinar", source__name="Webinar")
    enterprise = AccountFactory(name="Globex, Inc.", industry="software", employees=800)
    made = [
        LeadFactory(
            email="ada@example.com",
            first_name="Ada",
            last_name="Lovelace",
            external_id="HS-1",
            account=enterprise,
            source=campaign.source,
            campaign=campaign,
            owner=owner,
            stage="sql",
            in_marketing_nurture=False,
            created_at=datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC),
        ),
        LeadFactory(
            email="grace@example.com",
            first_name="=Grace",
            last_name="-Hopper",
            external_id="",
            account=None,
            source=None,
            stage="nurture",
            created_at=datetime(2026, 2, 27, 23, 59, tzinfo=UTC),
        ),
        LeadFactory(
            email="",
            first_name="Émilie",
            last_name="du Châtelet",
            external_id="SF-9",
            account=AccountFactory(name="Académie"),
            stage="lead",
            created_at=datetime(2025, 12, 31, tzinfo=UTC),
        ),
    ]
    for lead in made:
        lead_rescore(lead_id=lead.pk)  # the tier in the export is the scoring engine's
    return made


def export(client) -> str:
    response = client.get("/leads/export.csv")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8")


def without_ids(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][0] == "id"
    return sorted(row[1:] for row in rows)


def rescore_imported():
    for lead_id in LeadScoreState.objects.filter(pending_seq__gt=0).values_list("lead", flat=True):
        lead_rescore(lead_id=lead_id)


@pytest.mark.parametrize("mapping_from", ["preset", "guess"])
def test_export_import_export_into_an_emptied_database(admin_client, leads, tmp_path, mapping_from):
    before = export(admin_client)
    path = tmp_path / "leads.csv"
    path.write_text(before, encoding="utf-8")  # the export's BOM comes along
    Lead.objects.all().delete()
    if mapping_from == "preset":
        mapping = PRESETS["revops-leads-export"].to_mapping()
    else:
        mapping, _ = mapping_guess(path, kind="leads")
    report = import_file(path=path, mapping=mapping)
    assert (report.status, report.created, report.encoding) == (COMMITTED, 3, "utf-8-sig")
    rescore_imported()
    assert without_ids(export(admin_client)) == without_ids(before)
    ada = Lead.objects.get(external_id="HS-1")
    assert [t.to_stage for t in ada.transitions.all()] == ["lead", "mql", "sal", "sql"]


def test_importing_an_export_into_the_same_database_changes_nothing(admin_client, leads, tmp_path):
    before = export(admin_client)
    path = tmp_path / "leads.csv"
    path.write_text(before, encoding="utf-8")
    report = import_file(path=path, mapping=PRESETS["revops-leads-export"].to_mapping())
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert export(admin_client) == before
