"""Importing accounts, and the import job's life (claimed once, failures recorded)."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from leads.imports import services
from leads.imports.engine import COMMITTED, REJECTED, import_file
from leads.imports.mapping import Mapping
from leads.models import Account, ImportJob
from scoring.models import LeadScoreState
from tests.factories import AccountFactory, LeadFactory

pytestmark = pytest.mark.django_db

HEADER = [
    "Company ID",
    "Company name",
    "Website",
    "Industry",
    "Employees",
    "Revenue (M)",
    "Country",
    "Tech stack",
]
FIELDS = {
    "external_id": "Company ID",
    "name": "Company name",
    "domain": "Website",
    "industry": "Industry",
    "employees": "Employees",
    "annual_revenue": {"column": "Revenue (M)", "scale": "1000000"},
    "country": "Country",
    "technologies": {"column": "Tech stack", "separator": "|"},
}


def write_csv(tmp_path, rows, name="accounts.csv"):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def mapping(fields=FIELDS) -> Mapping:
    return Mapping.from_json({"kind": "accounts", "fields": fields})


def test_new_accounts_with_normalized_values(tmp_path):
    path = write_csv(
        tmp_path,
        [
            [
                "C-1",
                "Globex",
                "https://www.Globex.example/about",
                "software",
                "1,200",
                "45.5",
                "Germany",
                "Salesforce | HubSpot",
            ],
        ],
    )
    assert import_file(path=path, mapping=mapping()).status == COMMITTED
    globex = Account.objects.get()
    assert (globex.domain, globex.country, globex.region) == ("globex.example", "DE", "EMEA")
    assert (globex.employees, globex.annual_revenue) == (1200, Decimal("45500000.00"))
    assert globex.technologies == ["hubspot", "salesforce"]
    assert globex.external_id == "C-1"


def test_accounts_match_by_external_id_then_domain_then_name(tmp_path):
    by_ext = AccountFactory(name="Old name", external_id="C-1", domain="one.example")
    by_domain = AccountFactory(name="Two", domain="two.example", industry="retail")
    by_name = AccountFactory(name="Three Ltd", domain="", employees=5)
    lead = LeadFactory(account=by_domain)
    path = write_csv(
        tmp_path,
        [
            ["C-1", "New name", "", "", "", "", "", ""],
            ["", "Two", "two.example", "retail", "", "", "", ""],
            ["", "three ltd", "", "", "50", "", "", ""],
            ["", "Four", "", "", "", "", "", ""],
        ],
    )
    report = import_file(path=path, mapping=mapping())
    assert (report.created, report.updated, report.unchanged) == (1, 2, 1)
    by_ext.refresh_from_db()
    by_name.refresh_from_db()
    assert (by_ext.name, by_ext.domain) == ("New name", "one.example")  # blank: kept
    assert by_name.employees == 50
    assert Account.objects.count() == 4
    # Only an account that changed sends its leads to rescoring.
    assert not LeadScoreState.objects.filter(lead=lead, pending_seq__gt=0).exists()
    report = import_file(
        path=write_csv(
            tmp_path, [["", "Two", "two.example", "software", "", "", "", ""]], name="2.csv"
        ),
        mapping=mapping(),
    )
    assert report.updated == 1
    assert LeadScoreState.objects.get(lead=lead).pending_seq == 1


def test_accounts_duplicated_in_the_file_or_contradicting_the_database(tmp_path):
    AccountFactory(name="A", external_id="C-1", domain="a.example")
    AccountFactory(name="B", domain="b.example")
    path = write_csv(
        tmp_path,
        [
            ["C-1", "A", "b.example", "", "", "", "", ""],
            ["", "Same", "", "", "", "", "", ""],
            ["", "same", "", "", "", "", "", ""],
            ["C-9", "Nine", "", "", "-3", "", "Narnia", ""],
        ],
    )
    report = import_file(path=path, mapping=mapping())
    assert report.status == REJECTED
    assert [(e.row, e.field) for e in report.errors] == [
        (2, "domain"),
        (4, "name"),
        (5, "employees"),
        (5, "country"),
    ]
    assert report.errors[0].message.startswith("belongs to account #")
    assert report.errors[1].message == "appears twice in the file (first on row 3)"


@pytest.fixture
def job(settings, tmp_path, admin_user):
    settings.MEDIA_ROOT = tmp_path / "media"
    upload = ContentFile(b"account\nAcme\nGlobex\n", name="accounts.csv")
    upload.size = len(upload.read())
    upload.seek(0)
    job = services.import_job_create(kind="accounts", upload=upload, user=admin_user)
    job.status = ImportJob.Status.QUEUED
    job.save()
    return job


def test_a_queued_job_is_imported_once_however_often_its_task_runs(job):
    assert job.mapping["fields"] == {"name": {"column": "account"}}
    first = services.import_job_run(job_id=job.pk)
    assert (first.status, first.created_count) == ("done", 2)
    assert services.import_job_run(job_id=job.pk) is None  # a redelivered message
    assert Account.objects.count() == 2


def test_a_job_whose_worker_died_is_taken_over(job):
    ImportJob.objects.filter(pk=job.pk).update(status="running", started_at="2020-01-01T00:00Z")
    assert services.import_job_run(job_id=job.pk).status == "done"


def test_a_crash_marks_the_job_failed_and_writes_nothing(job, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services.engine, "import_file", broken)
    failed = services.import_job_run(job_id=job.pk)
    assert failed.status == "failed"
    assert failed.message == "The import failed and wrote nothing: disk on fire"
    assert not services.progress_path(failed).exists()
